"""A real ``redis-server`` on loopback for the tests that share state across processes.

The session fixture ``redis_url`` installs Debian's ``redis-server`` when it is missing
(the test command sets up what it needs on a fresh machine: that takes root and apt-get,
and without them the test fails with one line saying what to install), starts one server on a
free loopback port with no persistence, and stops it at the end. Each test that uses
``redis_db`` gets a flushed database.

    def test_two_processes(redis_url): ...        # "redis://127.0.0.1:<port>/0"
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from setup_needs import MissingNeed, need_root, or_fail

APT_LOCK_WAIT = "600"


def apt_binary(package: str, binary: str, *, why: str = "") -> str:
    """The path of ``binary``, installing Debian's ``package`` with apt-get if it is missing (we run
    as root in CI). Raises :class:`MissingNeed` (one line saying what to install) where it cannot."""
    found = shutil.which(binary)
    if found:
        return found
    otherwise = f"install Debian's {package} (`sudo apt-get install -y {package}`), or any {binary} on PATH"
    if shutil.which("apt-get") is None:
        raise MissingNeed(f"{why}The tests need {binary}, which is not on PATH, and there is no apt-get here to "
                          f"install it: {otherwise}")
    need_root(f"Installing {package} with apt-get", otherwise=otherwise)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    lock = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT}"]
    install = ["apt-get", "install", "-y", "--no-install-recommends", *lock, package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", *lock, "update"], env=env, capture_output=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise MissingNeed(f"{why}`apt-get install {package}` failed (exit {done.returncode}: {last}); "
                              f"{otherwise}")
    found = shutil.which(binary) or f"/usr/bin/{binary}"
    if not os.path.exists(found):
        raise MissingNeed(f"apt-get installed {package} but {binary} is not on PATH: add /usr/bin to PATH")
    return found


def redis_server_binary() -> str:
    """The path of ``redis-server``, installed with apt-get if missing."""
    return apt_binary("redis-server", "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis() -> tuple[subprocess.Popen, str]:
    """Start a private redis-server on loopback; returns the process and its URL."""
    binary = redis_server_binary()
    for _ in range(5):
        port = _free_port()
        workdir = tempfile.mkdtemp(prefix="gen-nodes-redis-")
        proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
             "--dir", workdir, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(port):
                return proc, f"redis://127.0.0.1:{port}/0"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise RuntimeError("redis-server did not start on loopback")


@pytest.fixture(scope="session")
def redis_url():
    proc, url = or_fail(start_redis)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def redis_db(redis_url):
    """``redis_url`` with its database emptied before the test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url
