"""Keeping secrets out of sight: masking, and a string that hides itself in reprs.

Two things are secret wherever they appear: the API key sent as ``X-API-Key`` and
the plain-text ``token`` of a newly created key. We never detect them by prefix
(GEN's docs show ``gen_pat_``, ``gen_`` and ``ref_``): they are secret because of
where they sit.
"""

from __future__ import annotations

from typing import Any

#: Output fields that hold a secret, whatever the action.
SECRET_FIELDS = frozenset({"token"})


#: Prefixes GEN's documents show for keys; only these are kept visible when masking.
KNOWN_PREFIXES = ("gen_pat_", "gen_", "ref_")


def mask(secret: str) -> str:
    """A form safe to show: a documented prefix (if any) and the last 4 characters."""
    secret = str.__str__(secret)
    prefix = next((p for p in KNOWN_PREFIXES if secret.startswith(p)), "")
    if len(secret) < len(prefix) + 12:
        return prefix + "…"
    return f"{prefix}…{secret[-4:]}"


class Secret(str):
    """A ``str`` that prints masked in ``repr()`` (and so in logs of dicts and lists).

    ``str(s)``, ``json.dumps`` and ordinary string use still give the real value,
    so code that needs the secret works unchanged; only accidental display is masked.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask(self))


def hide_secrets(data: Any, fields: frozenset[str] = SECRET_FIELDS) -> Any:
    """Wrap every secret field's value of ``data`` in :class:`Secret` (in place for dicts)."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key in fields and isinstance(value, str):
                data[key] = Secret(value)
            else:
                hide_secrets(value, fields)
    elif isinstance(data, list):
        for item in data:
            hide_secrets(item, fields)
    return data


def masked_copy(data: Any, fields: frozenset[str] = SECRET_FIELDS) -> Any:
    """A deep copy of ``data`` with every secret field's value masked."""
    if isinstance(data, dict):
        return {
            k: (mask(v) if k in fields and isinstance(v, str) else masked_copy(v, fields))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [masked_copy(v, fields) for v in data]
    return data
