"""The Redis store: several processes or machines share approvals, records and bindings.

Needs ``pip install 'gen-nodes[redis]'``. Single use is atomic in Redis itself:
``SET NX`` for ``add``, ``GETDEL`` for ``pop`` and a Lua script for ``replace``.
Keys are prefixed (``gen-nodes:`` by default) so the database can be shared.
"""

from __future__ import annotations

import json
from typing import Any

from gen_nodes.state import StoreError, canonical, check_ttl

# KEYS[1]; ARGV: expected, new value, ttl in ms ("" keeps the current expiry).
_REPLACE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1
"""


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


class RedisStore:
    """Entries in Redis under ``prefix``; expiry is Redis's own (``PX``)."""

    shared = True

    def __init__(self, url: str, prefix: str = "gen-nodes:", client: Any = None) -> None:
        try:
            import redis
        except ImportError:
            raise StoreError("A redis:// store needs the redis package: pip install 'gen-nodes[redis]'.") from None
        self.prefix = prefix
        self._url_shown = url.split("@")[-1]  # never show a password from the URL
        self._redis = client or redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5,
                                                     health_check_interval=30)
        self._replace = self._redis.register_script(_REPLACE)
        self._errors = redis.RedisError
        try:
            self._redis.ping()
        except redis.RedisError as exc:
            raise StoreError(f"Cannot reach Redis at {self._url_shown}: {type(exc).__name__}.") from None

    def __repr__(self) -> str:
        return f"RedisStore({self._url_shown!r})"

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self._errors as exc:
            raise StoreError(f"Redis at {self._url_shown} failed: {type(exc).__name__}.") from None

    def add(self, key: str, value: dict[str, Any], *, ttl: float) -> bool:
        check_ttl(ttl)
        return bool(self._call(self._redis.set, self.prefix + key, canonical(value), nx=True, px=_ms(ttl)))

    def get(self, key: str) -> dict[str, Any] | None:
        raw = self._call(self._redis.get, self.prefix + key)
        return None if raw is None else json.loads(raw)

    def set(self, key: str, value: dict[str, Any], *, ttl: float) -> None:
        check_ttl(ttl)
        self._call(self._redis.set, self.prefix + key, canonical(value), px=_ms(ttl))

    def replace(self, key: str, expected: dict[str, Any], value: dict[str, Any], *,
                ttl: float | None = None) -> bool:
        check_ttl(ttl, optional=True)
        ms = "" if ttl is None else str(_ms(ttl))
        done = self._call(self._replace, keys=[self.prefix + key], args=[canonical(expected), canonical(value), ms])
        return bool(done)

    def pop(self, key: str) -> dict[str, Any] | None:
        raw = self._call(self._redis.getdel, self.prefix + key)
        return None if raw is None else json.loads(raw)

    def delete(self, key: str) -> None:
        self._call(self._redis.delete, self.prefix + key)

    def close(self) -> None:
        self._redis.close()
