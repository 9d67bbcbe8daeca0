"""The sandbox's bind, its private file and its body limit: a non-loopback bind only by explicit
opt-in with named hosts, a DNS-rebinding guard, bootstrap-key never through a link and always 0600,
and no chunk size that slips past the 1 MB limit."""

from __future__ import annotations

import os
import socket
import stat

import pytest
import requests

from gen_nodes.core.errors import GenError, InvalidInput
from gen_nodes.sandbox import Sandbox
from gen_nodes.sandbox import persistent


def test_a_non_loopback_host_is_refused_without_opt_in():
    with pytest.raises(InvalidInput) as caught:
        Sandbox(host="0.0.0.0")
    assert "--allow-remote" in caught.value.hint


def test_opting_in_needs_the_allowed_host_names():
    with pytest.raises(InvalidInput) as caught:
        Sandbox(host="0.0.0.0", allow_remote=True)
    assert "--allowed-host" in caught.value.hint


def test_a_foreign_host_header_is_refused(sandbox):
    url = sandbox.base_url + "/me"
    evil = requests.get(url, headers={"X-API-Key": sandbox.api_key, "Host": "evil.example"}, timeout=5)
    assert evil.status_code == 421
    assert requests.get(url, headers={"X-API-Key": sandbox.api_key}, timeout=5).status_code == 200


def test_named_hosts_are_admitted():
    with Sandbox(allowed_hosts=["gen-sandbox.test:*"]) as sb:
        answer = requests.get(sb.base_url + "/me", timeout=5,
                              headers={"X-API-Key": sb.api_key, "Host": f"gen-sandbox.test:{sb.port}"})
        assert answer.status_code == 200


def raw_request(sandbox: Sandbox, head: str, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as sock:
        sock.sendall(head.encode() + body)
        return sock.recv(65536)


@pytest.mark.parametrize("size", [b"-1", b"-FFFFFF", b"0x10", b"+10", b" ", b"zz", b"1" * 40])
def test_a_chunk_size_that_is_not_plain_hex_is_refused(sandbox, size):
    head = (f"POST /v1/persisted_tokens HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\n"
            f"X-API-Key: {sandbox.api_key}\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = raw_request(sandbox, head, size + b"\r\n" + b"x" * 64 + b"\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") or answer.startswith(b"HTTP/1.1 413"), answer[:80]


def test_chunks_adding_up_past_the_limit_are_refused(sandbox):
    head = (f"POST /v1/persisted_tokens HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\n"
            f"X-API-Key: {sandbox.api_key}\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"80000\r\n" + b" " * 0x80000 + b"\r\n"
    answer = raw_request(sandbox, head, chunk * 3 + b"0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 413")


def test_chunked_bodies_within_the_limit_still_work(sandbox):
    head = (f"POST /v1/persisted_tokens HTTP/1.1\r\nHost: 127.0.0.1:{sandbox.port}\r\n"
            f"X-API-Key: {sandbox.api_key}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    body = b'{"name": "chunked"}'
    answer = raw_request(sandbox, head, f"{len(body):x};ext=1\r\n".encode() + body + b"\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 201")


# -- bootstrap-key ------------------------------------------------------------------------------


@pytest.fixture
def state(tmp_path, monkeypatch):
    folder = tmp_path / "sandbox-state"
    monkeypatch.setenv("GEN_NODES_SANDBOX_DIR", str(folder))
    folder.mkdir(mode=0o700)
    return folder


def test_a_planted_symlink_is_replaced_not_followed(state, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, state / persistent.KEY_FILE)
    with persistent.running() as sb:
        key = sb.api_key
    assert victim.read_text() == "precious\n"
    path = state / persistent.KEY_FILE
    assert not path.is_symlink() and path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_key_file_is_made_private(state):
    with persistent.running() as sb:
        key = sb.api_key
    path = state / persistent.KEY_FILE
    os.chmod(path, 0o644)
    with persistent.running() as sb:
        assert sb.api_key == key  # the kept key is reused ...
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # ... and its file is private again


def test_a_symlinked_key_is_not_read(state, tmp_path):
    with persistent.running() as sb:
        key = sb.api_key
    elsewhere = tmp_path / "elsewhere"
    (state / persistent.KEY_FILE).rename(elsewhere)
    os.symlink(elsewhere, state / persistent.KEY_FILE)
    with persistent.running() as sb:
        assert sb.api_key != key
    assert elsewhere.read_text().strip() == key


# -- clear messages instead of tracebacks --------------------------------------------------------


def test_a_port_in_use_is_a_clear_error(sandbox):
    with pytest.raises(GenError) as caught:
        Sandbox(port=sandbox.port).bind()
    assert "already in use" in caught.value.message


@pytest.mark.parametrize("port", [99999, -1])
def test_a_port_out_of_range_is_a_clear_error(port):
    with pytest.raises(GenError, match="out of range"):
        Sandbox(port=port).bind()


def test_a_database_that_cannot_be_opened_is_a_clear_error(tmp_path):
    with pytest.raises(GenError) as caught:
        Sandbox(db_path=str(tmp_path / "missing" / "dir" / "x.db"))
    assert "x.db" in caught.value.message
