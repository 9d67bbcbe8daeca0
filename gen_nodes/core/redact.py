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
        if not fields.isdisjoint(data):
            for key in fields & data.keys():
                if isinstance(data[key], str):
                    data[key] = Secret(data[key])
        for value in data.values():
            if isinstance(value, (dict, list)):  # a call per container only, not per value
                hide_secrets(value, fields)
    elif isinstance(data, list):
        for item in data:
            if isinstance(item, (dict, list)):
                hide_secrets(item, fields)
    return data


def holds_secrets(data: Any, fields: frozenset[str] = SECRET_FIELDS) -> bool:
    """Whether a secret field with a string value sits anywhere in ``data``."""
    if isinstance(data, dict):
        if not fields.isdisjoint(data) and any(isinstance(data[key], str) for key in fields & data.keys()):
            return True
        return any(holds_secrets(value, fields) for value in data.values() if isinstance(value, (dict, list)))
    if isinstance(data, list):
        return any(holds_secrets(item, fields) for item in data if isinstance(item, (dict, list)))
    return False


def may_name_secrets(json_text: str, fields: frozenset[str] = SECRET_FIELDS) -> bool:
    """False only if no object decoded from ``json_text`` can have a secret field: no field's name
    appears in it between quotes, and no ``\\u`` escape could spell one. A scan of the text is
    ~50 times cheaper than walking what it decodes to."""
    return "\\u" in json_text or any(f'"{name}"' in json_text for name in fields)


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
