"""Test helpers for chat-ops: loopback doubles of the chat platforms, a live ASGI server,
and requests signed the way Slack and Discord sign them.

- :class:`Recorder` is a real HTTP server on loopback standing in for what cannot run
  here: Slack's Web API (``/api/...``), a command's ``response_url`` and Discord's
  interaction webhook. It records every request and answers like the platform;
  :class:`PlatformDouble` also opens DM channels and posts messages (bot DMs).
- :func:`serve_asgi` runs an ASGI app under uvicorn on 127.0.0.1, port 0.
- :func:`slack_post` signs with ``slack_sdk``'s own signature code;
  :class:`DiscordSigner` signs with a fresh Ed25519 key pair (PyNaCl).
"""

from __future__ import annotations

import itertools
import json
import select
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlencode

import requests

from cli_support import stop_process


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # decoded JSON, a form dict, or text
    raw: str


class Recorder:
    """A loopback HTTP double that records what it receives and answers like the platform."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._changed = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8") if length else ""
                kind = self.headers.get("Content-Type", "")
                if "json" in kind and raw:
                    body: Any = json.loads(raw)
                elif "form" in kind:
                    body = {k: v[0] for k, v in parse_qs(raw).items()}
                else:
                    body = raw
                entry = Recorded(self.command, self.path, dict(self.headers), body, raw)
                status, answer = recorder.answer(entry)
                # Recorded before the answer goes out: a test that saw its call return sees the request.
                with recorder._changed:
                    recorder.requests.append(entry)
                    recorder._changed.notify_all()
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_PATCH = do_GET = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, entry: Recorded) -> tuple[int, Any]:
        if entry.path.startswith("/api/auth.test"):
            return 200, {"ok": True, "url": "https://example.slack.com/", "team": "T", "user": "gen",
                         "team_id": "T1", "user_id": "UBOT", "bot_id": "BBOT"}
        if entry.path.startswith("/api/"):
            return 200, {"ok": True}
        return 200, {"ok": True, "id": "1"}

    def __enter__(self) -> "Recorder":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def matching(self, path_prefix: str) -> list[Recorded]:
        with self._changed:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def wait_for(self, path_prefix: str, count: int = 1, timeout: float = 20.0) -> list[Recorded]:
        """The requests to ``path_prefix`` once there are ``count`` of them (AssertionError after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self.requests if r.path.startswith(path_prefix)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} request(s) to {path_prefix}, got {len(found)}: "
                                         f"{[r.path for r in self.requests]}")
                self._changed.wait(left)

    def all_text(self) -> str:
        with self._changed:
            return "\n".join(r.raw for r in self.requests)


class PlatformDouble(Recorder):
    """Slack's Web API and Discord's REST API on loopback: DM channels open, messages post.
    ``refuse`` makes the message post fail as the platform would."""

    refuse = False

    def answer(self, entry):
        if entry.path.startswith("/api/conversations.open"):
            return 200, {"ok": True, "channel": {"id": "D0DM"}}
        if entry.path.startswith("/api/chat.postMessage"):
            return (200, {"ok": False, "error": "not_allowed_token_type"}) if self.refuse else (
                200, {"ok": True, "channel": "D0DM", "ts": "1.2"})
        if entry.path.endswith("/users/@me/channels"):
            return 200, {"id": "DM1", "type": 1}
        if "/channels/DM1/messages" in entry.path:
            return (403, {"message": "Cannot send messages to this user", "code": 50007}) if self.refuse else (
                200, {"id": "M1", "channel_id": "DM1"})
        return super().answer(entry)


@contextmanager
def chatops_on(sandbox: Any, registry: Any = None) -> Iterator[Any]:
    """A chat core on a memory store, talking to ``sandbox`` (``registry``: default, every action); closed
    afterwards."""
    from gen_nodes.surfaces.chatops.core import ChatOps
    from gen_nodes.core.registry import default_registry
    from gen_nodes.state import open_store
    from gen_nodes.state.secretbox import SecretBox

    store = open_store("memory://")
    chat = ChatOps(registry or default_registry(), store, SecretBox("chatops-test-secret"), base_url=sandbox.base_url,
                   timeout=(2.0, 10.0))
    try:
        yield chat
    finally:
        chat.close()
        store.close()


#: ``gen-nodes`` as a subprocess, from the repository root.
CLI = [sys.executable, "-m", "gen_nodes.surfaces.cli"]
REPO = Path(__file__).resolve().parent.parent


@contextmanager
def chatops_server(*args: str, env: dict[str, str], log: Path, before: tuple[str, ...] = ()) -> Iterator[str]:
    """A `gen-nodes [BEFORE...] chatops ...` server; yields the url of its first stdout line; stderr goes to ``log``."""
    with open(log, "w") as err:
        proc = subprocess.Popen([*CLI, *before, "chatops", *args, "--port", "0"], stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, cwd=REPO, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        assert line, f"no first line; stderr: {log.read_text()}"
        yield json.loads(line)["url"]
    finally:
        stop_process(proc)


@contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port); yields the base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# -- Slack ------------------------------------------------------------------------------


@contextmanager
def slack_served(chat: Any, api_url: str, *, signing_secret: str, token: str) -> Iterator[str]:
    """``chat``'s Slack app (Bolt, its Web API at ``api_url``) served on loopback; yields its events URL."""
    from slack_sdk import WebClient

    from gen_nodes.surfaces.chatops import slack as slack_adapter

    app = slack_adapter.build_app(chat, signing_secret=signing_secret, token=token,
                                  client=WebClient(token=token, base_url=api_url), token_verification_enabled=False)
    with serve_asgi(slack_adapter.build_asgi(app, chat, signing_secret=signing_secret)) as url:
        yield url + "/slack/events"


def slack_signed(secret: str, form: dict[str, Any], *, timestamp: int | None = None,
                 sign_with: str | None = None) -> tuple[bytes, dict[str, str]]:
    """A form as Slack sends it: the body and its signed headers (slack_sdk's signature code)."""
    from slack_sdk.signature import SignatureVerifier

    body = urlencode(form)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(sign_with or secret).generate_signature(timestamp=ts, body=body)
    return body.encode(), {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
                           "X-Slack-Signature": signature}


def slack_post(url: str, secret: str, form: dict[str, Any], *, timestamp: int | None = None,
               headers: dict[str, str] | None = None, sign_with: str | None = None) -> requests.Response:
    """POST a form as Slack does, signed with slack_sdk's signature code."""
    body, signed = slack_signed(secret, form, timestamp=timestamp, sign_with=sign_with)
    return requests.post(url, data=body, timeout=15, headers={**signed, **(headers or {})})


def slash_form(text: str, response_url: str, *, user: str = "U1", team: str = "T1",
               command: str = "/gen") -> dict[str, str]:
    return {"token": "legacy", "team_id": team, "team_domain": "acme", "channel_id": "C1",
            "channel_name": "ops", "user_id": user, "user_name": user.lower(), "command": command,
            "text": text, "api_app_id": "A1", "response_url": response_url, "trigger_id": "1337.42.abcd"}


def interaction_form(payload: dict[str, Any]) -> dict[str, str]:
    return {"payload": json.dumps(payload)}


def button_payload(action_id: str, value: str, response_url: str, *, user: str = "U1",
                   team: str = "T1") -> dict[str, Any]:
    return {"type": "block_actions", "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "username": user.lower(), "team_id": team}, "api_app_id": "A1",
            "token": "legacy", "trigger_id": "1337.43.efgh", "channel": {"id": "C1", "name": "ops"},
            "container": {"type": "message", "is_ephemeral": True}, "response_url": response_url,
            "actions": [{"action_id": action_id, "block_id": "gen_approval", "value": value,
                         "type": "button", "action_ts": str(time.time())}]}


def login_submission(key: str, private_metadata: str, *, user: str = "U1", team: str = "T1") -> dict[str, Any]:
    return {"type": "view_submission", "team": {"id": team, "domain": "acme"},
            "user": {"id": user, "username": user.lower(), "team_id": team}, "api_app_id": "A1",
            "token": "legacy", "trigger_id": "1337.44.ijkl",
            "view": {"id": "V1", "type": "modal", "callback_id": "gen_login", "private_metadata": private_metadata,
                     "state": {"values": {"api_key": {"api_key": {"type": "plain_text_input", "value": key}}}}}}


# -- Discord ----------------------------------------------------------------------------


class DiscordSigner:
    """A fresh Ed25519 key pair, signing interactions as Discord does."""

    def __init__(self) -> None:
        from nacl.signing import SigningKey

        self._key = SigningKey.generate()
        self.public_key = self._key.verify_key.encode().hex()

    def signed(self, payload: dict[str, Any], *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """An interaction as Discord sends it: the body and its signed headers."""
        body = json.dumps(payload).encode()
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._key.sign(ts.encode() + body).signature.hex()
        return body, {"Content-Type": "application/json", "X-Signature-Ed25519": signature,
                      "X-Signature-Timestamp": ts}

    def post(self, url: str, payload: dict[str, Any], *, timestamp: int | None = None,
             tamper: bool = False) -> requests.Response:
        body, headers = self.signed(payload, timestamp=timestamp)
        if tamper:
            body = body.replace(b'"type"', b'"type" ', 1)
        return requests.post(url, data=body, timeout=15, headers=headers)


#: Discord gives every interaction an id of its own (a snowflake); the server refuses to act on one twice.
_INTERACTION_IDS = itertools.count(1)


def interaction_id() -> str:
    return str(next(_INTERACTION_IDS))


def discord_command(words: list[str], options: dict[str, Any] | None = None, *, user: str = "111",
                    guild: str = "G1", token: str = "itoken") -> dict[str, Any]:
    """An APPLICATION_COMMAND interaction for ``/gen <words...>`` with typed options."""
    leaf: list[dict[str, Any]] = [{"name": k, "type": 4 if isinstance(v, int) and not isinstance(v, bool)
                                   else 5 if isinstance(v, bool) else 3, "value": v}
                                  for k, v in (options or {}).items()]
    for i, word in enumerate(reversed(words)):
        kind = 1 if i == 0 else 2
        leaf = [{"name": word, "type": kind, "options": leaf}]
    return {"type": 2, "id": interaction_id(), "application_id": "APP1", "token": token, "guild_id": guild,
            "channel_id": "CH1", "member": {"user": {"id": user, "username": "u" + user}},
            "data": {"id": "c1", "name": "gen", "type": 1, "options": leaf}}


def discord_button(custom_id: str, *, user: str = "111", guild: str = "G1", token: str = "btoken") -> dict[str, Any]:
    return {"type": 3, "id": interaction_id(), "application_id": "APP1", "token": token, "guild_id": guild,
            "channel_id": "CH1", "member": {"user": {"id": user}}, "message": {"id": "m1", "flags": 64},
            "data": {"custom_id": custom_id, "component_type": 2}}


def discord_modal(key: str, *, user: str = "111", guild: str = "G1", token: str = "mtoken") -> dict[str, Any]:
    return {"type": 5, "id": interaction_id(), "application_id": "APP1", "token": token, "guild_id": guild,
            "channel_id": "CH1", "member": {"user": {"id": user}},
            "data": {"custom_id": "gen_login", "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": "api_key", "value": key}]}]}}


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def post_unending(url: str, headers: dict[str, str], *, total: int = 2 * 1024 * 1024, chunk: int = 64 * 1024,
                  wait: float = 5.0) -> tuple[int | None, int]:
    """POST up to ``total`` bytes chunked through a raw socket and never send the last chunk, stopping
    as soon as the server answers: (its status or None if it never did, bytes sent). A server that
    reads the whole body before answering can only time out here."""
    import select
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = "".join(f"{k}: {v}\r\n" for k, v in {**headers, "Transfer-Encoding": "chunked"}.items())
    sent, answer = 0, b""
    with socket.create_connection((parts.hostname, parts.port), timeout=wait) as sock:
        sock.sendall(f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}\r\n".encode())
        try:
            while sent < total and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"%x\r\n%s\r\n" % (chunk, b"x" * chunk))
                sent += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and hung up; its answer may be waiting
        try:
            if select.select([sock], [], [], wait)[0]:
                answer = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            pass
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/") else None
    return (int(status) if status else None), sent
