"""No secret in any log record, exception or repr; the created token is still reachable as data.

The two secrets: the API key sent as ``X-API-Key`` and the ``token`` of a key just created.
Logs are captured at DEBUG for every logger (root, ``gen_nodes``, ``urllib3`` and the
sandbox serving in this process) while real requests go over loopback.
"""

from __future__ import annotations

import json
import logging
import os
import pprint
import socket
import stat
import traceback
from contextlib import contextmanager
from typing import Iterator

import pytest

import gen_nodes
from gen_nodes.client.http import GenClient
from gen_nodes.core.errors import (
    AuthenticationError,
    ConnectionFailed,
    GenError,
    InvalidInput,
    OutcomeUnknown,
    RateLimited,
    ServerError,
)
from gen_nodes.core.redact import Secret, mask
from gen_nodes.safety.secret_delivery import deliver

from client_support import FAST_RETRY

LOGGERS = ["", "gen_nodes", "gen_nodes.http", "gen_nodes.core.engine", "gen_nodes.sandbox", "urllib3",
           "urllib3.connectionpool", "requests"]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        """Everything a record could show: formatted line with traceback, raw msg, args, extras."""
        out = []
        for record in self.records:
            out.append(self.format(record))
            out.append(str(record.msg))
            out.append(repr(record.args))
            out.append(repr(vars(record)))
            if record.args:
                out.extend(str(arg) for arg in (record.args if isinstance(record.args, tuple) else [record.args]))
        return out


@contextmanager
def all_logs_at_debug() -> Iterator[Capture]:
    capture = Capture()
    saved = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        for name in LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
        yield capture
    finally:
        root.removeHandler(capture)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def assert_absent(texts: list[str], *secrets: str) -> None:
    for secret in secrets:
        assert secret
        leaks = [t for t in texts if secret in t]
        assert leaks == [], f"secret leaked into {leaks[:3]!r}"


def error_views(error: BaseException) -> list[str]:
    views = [repr(error), str(error), "".join(traceback.format_exception(error))]
    if isinstance(error, GenError):
        views += [json.dumps(error.to_dict(), default=str), repr(error.to_dict()), error.message, error.hint,
                  repr(vars(error))]
    return views


def test_create_logs_nothing_secret_and_output_repr_is_masked(sandbox, registry):
    log = logging.getLogger("user.app")
    with all_logs_at_debug() as capture:
        with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY) as client:
            output = registry.run("create_api_key", {"name": "ci", "expires_in": "30d"}, client=client)
            token = str(output["token"])
            # Use the new token as a key, with a retry on the way, so it crosses the header path too.
            sandbox.inject_fault(429, headers={"Retry-After": "0"})
            with GenClient(api_key=token, base_url=sandbox.base_url, retry=FAST_RETRY) as second:
                assert registry.run("get_me", client=second)["id"] == sandbox.user["id"]
                client_views = [repr(client), str(client), repr(second), str(second), f"{second!r}"]
            listed = registry.run("list_api_keys", client=client)
            # A careless app that logs the whole output still leaks nothing.
            log.debug("created %s", output)
            log.info("created %r", output)
            log.info(f"created {output}")
            log.debug("listed %s", listed)

    names = {r.name for r in capture.records}
    assert "gen_nodes.http" in names and "urllib3.connectionpool" in names and "gen_nodes.sandbox" in names
    assert any("retrying GET /me" in r.getMessage() for r in capture.records)
    assert len(capture.records) >= 8
    assert_absent(capture.texts(), sandbox.api_key, token)

    assert token.startswith("gen_pat_") and len(token) == 48
    for view in client_views:
        assert mask(sandbox.api_key) in view or mask(token) in view
    assert_absent(client_views, sandbox.api_key, token)

    views = [repr(output), str(output), f"{output}", pprint.pformat(output), repr(output["token"]),
             repr([output]), repr(listed)]
    assert_absent(views, token)
    assert repr(output["token"]) == repr(mask(token))
    assert isinstance(output["token"], Secret)

    # The user still gets the secret, once, as data.
    assert token in json.dumps(output)
    assert json.loads(json.dumps(output))["token"] == token
    assert output["token"] == token and str(output["token"]) == token


def test_failing_calls_log_and_raise_nothing_secret(sandbox, registry, tmp_path):
    wrong_key = "gen_pat_" + "W" * 40
    errors: list[BaseException] = []
    with all_logs_at_debug() as capture:
        with GenClient(api_key=sandbox.api_key, base_url=sandbox.base_url, retry=FAST_RETRY) as client:
            output = registry.run("create_api_key", {"name": "ci"}, client=client)
            token = str(output["token"])

            # 401 with a wrong key, and with a revoked one (the created token).
            for key in (wrong_key, token):
                with GenClient(api_key=key, base_url=sandbox.base_url, retry=FAST_RETRY) as bad:
                    if key == token:
                        registry.run("revoke_api_key", {"id": output["id"]}, client=client)
                    with pytest.raises(AuthenticationError) as caught:
                        registry.run("get_me", client=bad)
                    errors.append(caught.value)

            # Unknown outcome of a create whose answer was dropped: the orphan is listed.
            sandbox.inject_fault(drop=True, after=True, method="POST", path="/persisted_tokens")
            with pytest.raises(OutcomeUnknown) as caught:
                registry.run("create_api_key", {"name": "orphan"}, client=client)
            assert [c["name"] for c in caught.value.details["candidates"]] == ["orphan"]
            errors.append(caught.value)

            sandbox.inject_fault(503, method="POST", body="<html><h1>503</h1></html>")
            with pytest.raises(OutcomeUnknown) as caught:
                registry.run("create_api_key", {"name": "x"}, client=client)
            errors.append(caught.value)

            sandbox.inject_fault(503, times=5, body={"error": "down", "error_code": "unavailable"})
            with pytest.raises(ServerError) as caught:
                registry.run("list_api_keys", client=client)
            errors.append(caught.value)

            sandbox.inject_fault(429, times=5, headers={"Retry-After": "0"})
            with pytest.raises(RateLimited) as caught:
                registry.run("get_me", client=client)
            errors.append(caught.value)

            with pytest.raises(InvalidInput) as caught:
                registry.run("create_api_key", {"name": "", "token": token}, client=client)
            errors.append(caught.value)

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        with GenClient(api_key=sandbox.api_key, base_url=dead, retry=FAST_RETRY) as offline:
            with pytest.raises(ConnectionFailed) as caught:
                registry.run("create_api_key", {"name": "never"}, client=offline)
            errors.append(caught.value)

        # An app logging each failure with its traceback.
        for error in errors:
            logging.getLogger("user.app").exception("call failed", exc_info=error)

    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError", "AuthenticationError", "OutcomeUnknown", "OutcomeUnknown", "ServerError",
        "RateLimited", "InvalidInput", "ConnectionFailed"]
    assert sum(1 for r in capture.records if r.levelno >= logging.INFO and r.name == "gen_nodes.http") >= 4
    assert_absent(capture.texts(), sandbox.api_key, token, wrong_key)
    for error in errors:
        assert_absent(error_views(error), sandbox.api_key, token, wrong_key)


def test_cli_style_error_json_has_no_secret(sandbox):
    key = "gen_pat_" + "Q" * 40
    with pytest.raises(AuthenticationError) as caught:
        gen_nodes.run("get_me", api_key=key, base_url=sandbox.base_url)
    text = json.dumps({"error": caught.value.to_dict()}, default=str)
    assert '"type": "authentication"' in text and "401" in text
    assert key not in text


def test_client_repr_masks_the_key_and_shows_no_key_when_missing(monkeypatch):
    monkeypatch.delenv("GEN_API_KEY", raising=False)
    key = "gen_pat_" + "abcd" * 10
    client = GenClient(api_key=key, base_url="http://127.0.0.1:9/v1")
    assert repr(client) == "GenClient(base_url='http://127.0.0.1:9/v1', api_key='gen_pat_…abcd')"
    assert key not in str(client) and key not in repr(vars(client))
    assert repr(GenClient(base_url="http://127.0.0.1:9/v1")).endswith("api_key=None)")


@pytest.mark.parametrize("secret", ["gen_pat_" + "z" * 40, "ref_" + "y" * 30, "gen_abc", "short", "x" * 64])
def test_mask_never_reveals_more_than_prefix_and_last_four(secret):
    shown = mask(secret)
    assert secret not in shown
    assert "…" in shown
    assert len(shown.replace("…", "")) <= secret[:10].rfind("_") + 1 + 4


@pytest.mark.parametrize("policy", ["mask", "file"])
def test_a_nested_token_is_withheld_too(policy, tmp_path):
    secret = "gen_pat_" + "n" * 40
    out = deliver({"persisted_token": {"id": 7, "token": secret}, "items": [{"token": secret}]},
                  policy, tmp_path / "secrets")
    assert secret not in repr(out) and secret not in str(out)
    assert out["persisted_token"]["token"] == mask(secret)
    if policy == "file":
        assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
        saved = out["persisted_token"]["token_file"]
        assert open(saved).read().strip() == secret and "gen-api-key-7-" in saved


def test_the_file_policy_leaves_an_existing_folder_as_it_was_and_sanitises_the_id(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    out = deliver({"id": "../../etc/x", "token": "gen_pat_" + "f" * 40}, "file", folder)
    path = out["token_file"]
    assert os.path.dirname(path) == str(folder)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_reveal_still_masks_the_secret_in_reprs():
    secret = "gen_pat_" + "r" * 40
    out = deliver({"id": 1, "token": secret}, "reveal")
    assert out["token"] == secret and secret not in repr(out)


def test_mask_keeps_only_a_documented_prefix():
    assert mask("gen_pat_" + "a" * 30 + "WXYZ") == "gen_pat_…WXYZ"
    assert mask("ref_" + "a" * 30 + "WXYZ") == "ref_…WXYZ"
    assert mask("Ab3_xY9_kQ" + "a" * 30 + "WXYZ") == "…WXYZ"


def test_the_servers_log_filter_keeps_a_logged_output_masked(caplog):
    """SafeLines (on every server's handlers) once rebuilt a mapping argument as a plain dict of
    strings, so ``log.debug("created %s", output)`` printed the token its masked repr hides."""
    import logging

    from gen_nodes.core.redact import masked_copy  # noqa: F401  (the masking the repr relies on)
    from gen_nodes.net.logs import SafeLines

    class Output(dict):
        def __repr__(self) -> str:
            return repr({k: ("***" if k == "token" else v) for k, v in self.items()})

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "created %s",
                               (Output(id=2, token="gen_pat_" + "x" * 40),), None)
    SafeLines().filter(record)
    assert "gen_pat_" not in record.getMessage() and "***" in record.getMessage()
    named = logging.LogRecord("t", logging.INFO, __file__, 1, "path %(path)s", ({"path": "/a\nb"},), None)
    SafeLines().filter(named)
    assert named.getMessage() == "path /a\\nb"
