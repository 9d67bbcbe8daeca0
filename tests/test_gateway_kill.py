"""A rotation through a ``gen-nodes serve`` process that is SIGKILLed between the create and the revoke.

The sandbox holds the rotation's revoke; while it does, the gateway process is killed, as an
out-of-memory killer or a lost machine would. A new process on the same store gets the same call
with the same ``Idempotency-Key`` and finishes it from the per-step records: 200 ``succeeded``,
one new key (one create request at the sandbox), the old key revoked.
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")

import requests  # noqa: E402

from gen_nodes.sandbox import Sandbox  # noqa: E402
from gateway_support import GatewayProcess  # noqa: E402


def rotate(url: str, key: str, key_id: int, idem: str) -> requests.Response:
    return requests.post(f"{url}/actions/rotate_api_key", json={"id": key_id}, timeout=60,
                         headers={"X-API-Key": key, "Idempotency-Key": idem})


def wait_until(found, what: str, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def test_a_rotation_killed_between_create_and_revoke_finishes_on_a_restarted_gateway(sandbox: Sandbox, tmp_path: Path):
    old = sandbox.store.create_key(sandbox.user["id"], "gateway-rotated", expires_in=5 * 86400)[0]
    revoke = f"/persisted_tokens/{old['id']}/revoke"
    sandbox.inject_fault(method="DELETE", path=revoke, delay=30)  # the first revoke hangs: the kill comes first
    options = ("--base-url", sandbox.base_url, "--store", f"sqlite:///{tmp_path / 'gateway.db'}")
    idem = secrets.token_hex(8)
    first = GatewayProcess(*options, log=tmp_path / "first.log")
    lost: list[BaseException] = []
    try:
        call = threading.Thread(target=lambda: _expect_no_answer(first.url, sandbox.api_key, old["id"], idem, lost))
        call.start()
        wait_until(lambda: sandbox.requests_seen("DELETE", revoke), "no revoke began")
        first.proc.kill()  # SIGKILL: no cleanup, no answer
        call.join(30)
    finally:
        first.stop()
    assert lost and isinstance(lost[0], requests.ConnectionError)  # the caller heard nothing
    assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 1

    second = GatewayProcess(*options, log=tmp_path / "second.log")
    try:
        answer = rotate(second.url, sandbox.api_key, old["id"], idem)
        replays = [rotate(second.url, sandbox.api_key, old["id"], idem) for _ in range(2)]
    finally:
        second.stop()
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded" and body["revoked"] == {"id": old["id"], "revoked": True}
    assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 1  # one new key, never a second
    assert len(sandbox.requests_seen("DELETE", revoke)) == 2  # the dead call's (held) and the repeat's
    keys = {k["id"]: k["status"] for k in sandbox.store.list_keys(sandbox.user["id"]) if k["name"] == old["name"]}
    assert keys == {old["id"]: "revoked", body["new_key"]["id"]: "active"}
    # The repeat delivers the new secret (the dead call never did); as for any create, one replay
    # delivers it once more (its answer may be lost too), later ones only its masked form.
    token = body["new_key"]["token"]
    assert sandbox.store.authenticate(token, touch=False) is not None
    assert [r.json()["new_key"]["token"] == token for r in replays] == [True, False]
    assert replays[1].json()["new_key"]["token"] == "gen_pat_…" + token[-4:]
    assert len(sandbox.requests_seen("POST", "/persisted_tokens")) == 1
    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert token not in logs and sandbox.api_key not in logs


def _expect_no_answer(url: str, key: str, key_id: int, idem: str, lost: list[BaseException]) -> None:
    try:
        rotate(url, key, key_id, idem)
    except requests.RequestException as exc:
        lost.append(exc)
