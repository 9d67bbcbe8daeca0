"""What tests of GEN clients share: a retry policy fast enough for tests, a session that counts what it sends."""

from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter

from gen_nodes.client.http import RetryPolicy

#: Three attempts with millisecond back-offs, so retry tests do not wait.
FAST_RETRY = RetryPolicy(attempts=3, backoff=0.001, max_backoff=0.005, max_retry_after=2.0)


class CountingAdapter(HTTPAdapter):
    """The standard transport, counting what is sent, as (method, path) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def send(self, request, **kwargs):
        self.sent.append((request.method, request.path_url.split("?")[0]))
        return super().send(request, **kwargs)

    def count(self, method: str | None = None) -> int:
        return sum(1 for m, _ in self.sent if method is None or m == method)


def counting_session() -> tuple[requests.Session, CountingAdapter]:
    session = requests.Session()
    adapter = CountingAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session, adapter
