"""GEN's timestamps read as aware datetimes: one reader for filters, lookups and lifetimes."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def moment(value: Any) -> datetime | None:
    """A GEN timestamp (ISO-8601, ``Z`` or an offset; naive means UTC) as an aware datetime;
    None if absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
