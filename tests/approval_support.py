"""What the tests of approvals share: an inbox that plays the person a notify target reaches.

    inbox = Inbox()
    app = build_app(confirmation="approval", notify_targets=[inbox])
    ...                                  # a destructive call answers 202
    url = inbox.link(approval_id)        # the page link, as the person's channel got it
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from gen_nodes.safety.notify import Notice

#: The form token on an approval page.
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


class Inbox:
    """A notify target (``notify.Target``) keeping every notice it is handed, like a person's mailbox."""

    name = "inbox"

    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self._lock = threading.Lock()

    def deliver(self, notice: Notice) -> bool:
        with self._lock:
            self.notices.append(notice)
        return True

    def notice(self, approval_id: str) -> Notice:
        with self._lock:
            found = [n for n in self.notices if n.approval_id == approval_id]
        assert found, f"no notice for approval {approval_id}"
        return found[-1]

    def link(self, approval_id: str) -> str:
        return self.notice(approval_id).url or ""


class Unreachable:
    """A notify target that reaches nobody (a chat user with no DM channel, a webhook that is down)."""

    name = "unreachable"

    def deliver(self, notice: Any) -> bool:
        return False


class Receiver:
    """A webhook endpoint on loopback that keeps each raw body and its headers, answering ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.received.append((raw, {k.lower(): v for k, v in self.headers.items()}))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook/n8n-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
