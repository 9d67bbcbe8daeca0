"""Where a request carries the GEN API key: ``X-API-Key``, else ``Authorization: Bearer``."""

from __future__ import annotations

from typing import Any

KEY_HINT = ("Send your GEN API key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. "
            "This server does not use OAuth; configure the header in your client.")


def api_key_from_headers(headers: Any) -> str | None:
    """The GEN key of an HTTP request: ``X-API-Key``, else ``Authorization: Bearer``; None if neither.

    ``headers`` is any mapping with lower-case ``.get`` (Starlette's ``Headers`` or a plain dict
    with lower-case names).
    """
    key = headers.get("x-api-key")
    auth = headers.get("authorization") or ""
    if not key and auth[:7].lower() == "bearer ":
        key = auth[7:]
    key = (key or "").strip()
    return key or None


