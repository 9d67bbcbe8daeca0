"""How the approval link reaches a person (``notify.py`` wired into the gateway), and never a log.

A real HTTP receiver on loopback plays the operator's webhook (an n8n Webhook node): it gets the
signed notice, whose signature is checked by an independent HMAC; a receiver that is down makes
the call fail at once with ``nobody_to_ask``. The access log of ``app_from_env`` under uvicorn's
own command line never shows an approval link, and a path cannot forge a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time

import pytest
import requests

pytest.importorskip("starlette")

from starlette.testclient import TestClient  # noqa: E402

from gen_nodes.surfaces.gateway.app import build_app  # noqa: E402
from gen_nodes.safety.notify import SIGNATURE_HEADER, parse_targets, verify  # noqa: E402

from approval_support import Receiver  # noqa: E402
from client_support import FAST_RETRY  # noqa: E402

SECRET = "shared-with-the-receiver-" + "s" * 20


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def gateway(sandbox, targets):
    app = build_app(base_url=sandbox.base_url, store_url="memory://", confirmation="approval", retry=FAST_RETRY,
                    notify_targets=targets)
    return TestClient(app, raise_server_exceptions=False)


def test_the_webhook_gets_a_signed_notice_whose_link_opens_the_page(sandbox, receiver, caplog):
    user_key = {"X-API-Key": sandbox.api_key}
    with gateway(sandbox, parse_targets([receiver.url], secret=SECRET)) as gw, caplog.at_level(logging.DEBUG), \
            caplog.at_level(logging.DEBUG, logger="gen_nodes"):
        made = gw.post("/actions/create_api_key", headers=user_key, json={"name": "bot"}).json()
        asked = gw.post("/actions/revoke_api_key", headers=user_key, json={"id": made["id"]})
        assert asked.status_code == 202
        (raw, headers), = receiver.received
        assert headers["content-type"] == "application/json"
        expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
        assert headers[SIGNATURE_HEADER.lower()] == expected and verify(raw, expected, SECRET)
        assert not verify(raw.replace(b"revoke", b"create"), expected, SECRET)
        assert not verify(raw, expected, "another secret")
        notice = json.loads(raw)["approval"]
        assert set(notice) == {"id", "action", "title", "preview", "account", "requested", "expires_at", "url"}
        assert notice["id"] == asked.json()["approval"]["id"] and notice["title"] == "Revoke API key"
        assert notice["account"]["email"] == "user1@sandbox.local"
        assert notice["requested"]["surface"] == "gateway" and notice["requested"]["at"].endswith("Z")
        assert [item["id"] for item in notice["preview"]] == [made["id"]]
        page = gw.get(notice["url"].replace("http://testserver", ""))
        assert page.status_code == 200 and "Approve: Revoke API key" in page.text
    link = notice["url"].rsplit("/", 1)[1]
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]  # not the test's own client
    logged = "".join(r.getMessage() + repr(vars(r)) for r in server_side)
    assert notice["id"] in logged and link not in logged


def test_a_webhook_that_never_takes_the_notice_fails_the_call_at_once(sandbox):
    down = Receiver(status=500)
    try:
        target = parse_targets([down.url], secret=SECRET)[0]
        target.backoff = 0.01
        with gateway(sandbox, [target]) as gw:
            started = time.monotonic()
            answer = gw.post("/actions/revoke_api_key", headers={"X-API-Key": sandbox.api_key}, json={"id": 1})
            assert answer.status_code == 503 and answer.json()["error"]["type"] == "nobody_to_ask"
            assert time.monotonic() - started < 10
    finally:
        down.close()
    assert len(down.received) == 3  # three tries, then the caller is told


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("root_path", ["", "/gw"], ids=["at-the-root", "behind-a-path-prefix"])
def test_uvicorns_access_log_never_shows_a_link_and_a_path_cannot_forge_a_line(sb, receiver, tmp_path, root_path):
    """``uvicorn --factory ...:app_from_env`` (its access log on, as by default) with a webhook target.

    With ``--root-path /gw`` (a proxy that strips ``/gw``), uvicorn logs ``/gw/approve/<secret>``: the
    secret is hidden there too, and the page's cookie is set for the path the browser sees."""
    port = _free_port()
    env = {**os.environ, "GEN_BASE_URL": sb.base_url, "GEN_NODES_STORE": f"sqlite:///{tmp_path}/gw.db",
           "GEN_NODES_CONFIRMATION": "approval", "GEN_NODES_APPROVAL_NOTIFY": receiver.url,
           "GEN_NODES_NOTIFY_SECRET": SECRET}
    log_path = tmp_path / "uvicorn.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "gen_nodes.surfaces.gateway.app:app_from_env",
                                 "--host", "127.0.0.1", "--port", str(port), "--root-path", root_path,
                                 "--log-level", "debug"], stdout=log, stderr=log, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/openapi.json", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
                time.sleep(0.2)
        _, key = sb.create_user()
        asked = requests.post(f"{base}/actions/revoke_api_key", headers={"X-API-Key": key}, json={"id": 1},
                              timeout=30)
        assert asked.status_code == 202, asked.text
        url = json.loads(receiver.received[-1][0])["approval"]["url"]
        secret = url.rsplit("/", 1)[1]
        assert url == f"{base}{root_path}/approve/{secret}"
        url = f"{base}/approve/{secret}"  # what the proxy forwards: the prefix stripped
        opened = requests.get(url, timeout=10)
        assert opened.status_code == 200 and f"Path={root_path}/approve/{secret};" in opened.headers["set-cookie"]
        forged = requests.get(f"{base}/approve/x%0AFAKE%20LINE%20approved", timeout=10)
        assert forged.status_code == 404
        fields = "&".join(f"f{i}=1" for i in range(12))
        crowded = requests.post(url, data=fields, headers={"content-type": "application/x-www-form-urlencoded"},
                                timeout=10)
        assert crowded.status_code == 400 and "text/html" in crowded.headers["content-type"]
    finally:
        proc.terminate()
        proc.wait(15)
    written = log_path.read_text()
    assert f"GET {root_path}/approve/<link>" in written  # the access log is on, and hides the link
    assert secret not in written
    assert not re.search(r"^FAKE LINE", written, re.M)


def test_a_logged_value_is_one_escaped_line_and_an_approval_path_is_hidden():
    import io

    from gen_nodes.net.logs import SafeLines

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SafeLines())
    logger = logging.getLogger("gen_nodes.test_safe_lines")
    logger.addHandler(handler)
    try:
        logger.error("unexpected %s while serving %s", "ValueError", "/x\n2026-01-01 INFO forged: approved")
        logger.error("serving %s", "/approve/s3cr3t-link-value\r\nmore")
        logger.error('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/gw/approve/s3cr3t-link-value?x=1", "1.1", 200)
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == ["unexpected ValueError while serving /x\\n2026-01-01 INFO forged: approved",
                     "serving /approve/<link>\\r\\nmore",  # the link hidden, the rest on one line
                     '127.0.0.1:5 - "GET /gw/approve/<link>?x=1 HTTP/1.1" 200']


def test_the_readmes_signature_check_accepts_a_real_notice_and_refuses_a_changed_one(sandbox, receiver):
    from doc_support import snippet

    namespace: dict = {}
    exec(snippet("The gateway's approval mode"), namespace)
    with gateway(sandbox, parse_targets([receiver.url], secret=SECRET)) as gw:
        gw.post("/actions/revoke_api_key", headers={"X-API-Key": sandbox.api_key}, json={"id": 1})
    (raw, headers), = receiver.received
    header = headers[SIGNATURE_HEADER.lower()]
    assert namespace["signed"](raw, header, SECRET)
    assert not namespace["signed"](raw + b" ", header, SECRET) and not namespace["signed"](raw, header, "guess")


def test_app_from_env_with_a_webhook_and_no_secret_stops_uvicorn_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GEN_NODES_NOTIFY_SECRET"}
    env.update(GEN_NODES_CONFIRMATION="approval", GEN_NODES_APPROVAL_NOTIFY="stderr,https://hooks.example/t0k3n",
               GEN_NODES_STORE=f"sqlite:///{tmp_path}/gw.db")
    done = subprocess.run([sys.executable, "-m", "uvicorn", "--factory", "gen_nodes.surfaces.gateway.app:app_from_env",
                           "--port", str(_free_port())], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "GEN_NODES_NOTIFY_SECRET" in lines[0] and "t0k3n" not in lines[0], done.stderr


class SlowDrip:
    """A webhook receiver on loopback that answers one header line every ``every`` seconds, for
    ``lasting`` seconds: each read is quick, the answer never ends."""

    def __init__(self, every: float = 0.3, lasting: float = 3.0) -> None:
        import threading

        self.every, self.lasting = every, lasting
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(4)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hook"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            ends = time.monotonic() + self.lasting
            try:
                while time.monotonic() < ends:
                    conn.sendall(b"X-Drip: 1\r\n")
                    time.sleep(self.every)
            except OSError:
                pass

    def close(self) -> None:
        self._sock.close()
        self._thread.join(self.lasting + 5)


def test_a_webhook_that_drips_its_answer_is_given_up_at_the_overall_deadline():
    from gen_nodes.safety.notify import Notice, WebhookTarget

    drip = SlowDrip()
    try:
        target = WebhookTarget(drip.url, SECRET, timeout=1.0, attempts=1)
        notice = Notice(approval_id="a" * 16, action="revoke_api_key", title="Revoke API key", preview=None,
                        account=None, requested={"surface": "gateway"}, expires_at="2026-12-06T07:05:00Z")
        started = time.monotonic()
        assert target.deliver(notice) is False
        assert time.monotonic() - started < 2.0  # one attempt of 1 s in all, not 3 s of drip
    finally:
        drip.close()


@pytest.mark.parametrize("blank", ["", " ", "\t\n"])
def test_a_blank_notify_secret_is_refused(blank):
    from gen_nodes.core.errors import InvalidSetting
    from gen_nodes.safety.notify import check_targets

    env = {"GEN_NODES_NOTIFY_SECRET": blank}
    with pytest.raises(InvalidSetting, match="GEN_NODES_NOTIFY_SECRET"):
        parse_targets(["https://hooks.example/t"], env=env)
    with pytest.raises(InvalidSetting, match="GEN_NODES_NOTIFY_SECRET"):
        check_targets(["https://hooks.example/t"], env=env)
    signed = parse_targets(["https://hooks.example/t"], env={"GEN_NODES_NOTIFY_SECRET": f" {SECRET}\n"})[0]
    assert signed._secret == SECRET.encode()  # stripped: the receiver's copy has no stray newline


# -- start-up refusals and the shared page key (found by the reader of the whole change) ----------


def test_a_webhook_url_with_a_port_that_is_not_a_number_is_a_one_line_setting_error():
    from gen_nodes.core.errors import InvalidSetting
    from gen_nodes.safety.notify import check_targets

    with pytest.raises(InvalidSetting) as info:
        check_targets(["https://hooks.example:abc/gen?token=t0ps3cret"], secret="s3cret")
    message = str(info.value)
    assert "\n" not in message and "https://hooks.example" in message and "t0ps3cret" not in message


def test_an_unknown_confirmation_is_a_setting_error_the_servers_print_in_one_line(monkeypatch):
    from gen_nodes.core.errors import InvalidSetting
    from gen_nodes.core.spec import confirmation
    from gen_nodes.surfaces.gateway.app import app_from_env
    with pytest.raises(InvalidSetting):
        confirmation("bogus")
    # app_from_env installs its log filters on the process's handlers (pytest's too): not here.
    monkeypatch.setattr("gen_nodes.net.logs.install_log_filters", lambda: None)
    monkeypatch.setenv("GEN_NODES_CONFIRMATION", "bogus")
    with pytest.raises(SystemExit) as info:  # app_from_env prints the one line and exits, no traceback
        app_from_env()
    assert "\n" not in str(info.value.code) and "bogus" in str(info.value.code)


def test_every_process_with_the_same_state_secret_serves_the_same_page_key(monkeypatch):
    from gen_nodes.web.approval_page import shared_page_secret

    monkeypatch.setenv("GEN_NODES_STATE_SECRET", "current-key,older-key")
    rotated = shared_page_secret()
    monkeypatch.setenv("GEN_NODES_STATE_SECRET", "current-key")
    assert rotated is not None and shared_page_secret() == rotated  # a rotation list keeps the first key
    monkeypatch.setenv("GEN_NODES_STATE_SECRET", "another-key")
    assert shared_page_secret() != rotated
    monkeypatch.delenv("GEN_NODES_STATE_SECRET")
    assert shared_page_secret() is None
