"""The person of benchmark (m): a webhook notify target on loopback that decides in a browser's way.

``gen-nodes serve --confirmation approval --approval-notify <this URL>`` posts each approval's notice
here. The webhook answers at once (the gateway waits for it before its 202) and then, in a thread of
its own, does what a person's browser does with the link: a real ``GET`` of the approval page (its
cookie kept), then the form's ``POST`` with the page's token, ``decision=approve`` and the ``Origin``
a same-origin browser sends (the page's own). Each step's time is kept per approval id::

    with WebhookPerson() as person:            # person.url is the --approval-notify target
        ...                                    # a destructive call answers 202
        times = person.wait(approval_id)       # {"notified": t, "decided": t} (perf_counter)
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests

#: The form token on an approval page (the name the page's form gives it).
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class WebhookPerson:
    """A webhook receiver on loopback that approves every notice it gets through the page link."""

    def __init__(self) -> None:
        self.times: dict[str, dict[str, float]] = {}
        self.failures: list[str] = []
        self._done = threading.Condition()
        person = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                notified = time.perf_counter()
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()
                approval = json.loads(raw)["approval"]
                threading.Thread(target=person._decide, args=(approval["id"], approval["url"], notified),
                                 daemon=True).start()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook/approvals"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _decide(self, approval_id: str, page_url: str, notified: float) -> None:
        parts = urlsplit(page_url)
        try:
            with requests.Session() as browser:
                page = browser.get(page_url, timeout=30)
                page.raise_for_status()
                token = CSRF.search(page.text)
                if token is None:
                    raise RuntimeError("the approval page has no form token")
                decided = browser.post(page_url, data={"csrf": token.group(1), "decision": "approve"},
                                       headers={"Origin": f"{parts.scheme}://{parts.netloc}"},
                                       allow_redirects=False, timeout=30)
                if decided.status_code != 303:
                    raise RuntimeError(f"the approval page answered the decision with {decided.status_code}")
        except Exception as exc:  # reported by wait(); never with the link, which is a secret
            with self._done:
                self.failures.append(f"{approval_id}: {type(exc).__name__}: "
                                     f"{str(exc).replace(parts.path, '/approve/<the link>')}")
                self._done.notify_all()
            return
        with self._done:
            self.times[approval_id] = {"notified": notified, "decided": time.perf_counter()}
            self._done.notify_all()

    def wait(self, approval_id: str, timeout: float = 30) -> dict[str, float]:
        """The perf_counter times at which ``approval_id`` was notified and approved."""
        with self._done:
            if not self._done.wait_for(lambda: approval_id in self.times or self.failures, timeout):
                raise RuntimeError(f"approval {approval_id} was not decided within {timeout:.0f} s")
            if self.failures:
                raise RuntimeError(f"the person could not decide: {self.failures[0]}")
            return self.times[approval_id]

    def __enter__(self) -> "WebhookPerson":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
