"""The test command on a machine that lacks what it needs: one line saying what to install or free.

A pytest run in a subprocess, with a PATH that lacks redis-server, Chromium or a working
apt-get, shows what a newcomer sees; apt-get without root and an n8n install on a disk without
room are refused before they start. (No npm at all is refused the same way: ``n8n_support``.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import n8n_support
import redis_support
from setup_needs import MissingNeed

TESTS = Path(__file__).resolve().parent


def said(out: str, needle: str) -> str:
    """The one line of ``out`` that says ``needle`` (pytest's summary repeats it: with ``CI`` set,
    in full, so its ``FAILED``/``ERROR`` lines are not counted)."""
    [line] = [line for line in out.splitlines() if needle in line and not line.startswith(("FAILED ", "ERROR "))]
    return line


def test_redis_without_redis_server_or_apt_get_fails_in_one_line_saying_what_to_install(tmp_path):
    (tmp_path / "test_uses_redis.py").write_text(
        "from redis_support import redis_url  # noqa: F401\n\n\ndef test_uses_redis(redis_url):\n    pass\n")
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    env = {**os.environ, "PATH": str(empty_path), "PYTHONPATH": str(TESTS)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_uses_redis.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    line = said(out, "redis-server, which is not on PATH")
    assert "there is no apt-get here" in line and "apt-get install -y redis-server" in line, line
    assert "Traceback" not in out and "FileNotFoundError" not in out and "redis_support.py:" not in out, out


def _pytest_with_path(tmp_path: Path, test_source: str, bin_dir: Path) -> str:
    """Run ``test_source`` in a pytest subprocess whose PATH is only ``bin_dir``; its whole output."""
    (tmp_path / "test_need.py").write_text(test_source)
    env = {**os.environ, "PATH": str(bin_dir), "PYTHONPATH": str(TESTS)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_need.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "_support.py:" not in out, out
    return out


def _script(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def test_the_browser_without_chromium_or_apt_get_fails_in_one_line_saying_what_to_install(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = _pytest_with_path(tmp_path, "from browser_support import chromium  # noqa: F401\n\n\n"
                            "def test_page(chromium):\n    pass\n", bin_dir)
    line = said(out, "chromium, which is not on PATH")
    assert "apt-get install -y chromium" in line, line


@pytest.mark.skipif(os.geteuid() != 0, reason="the apt-get step is reached only as root")
def test_a_failing_apt_get_is_one_line_with_its_last_words(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "apt-get", "echo 'E: Unable to locate package redis-server' >&2; exit 100")
    out = _pytest_with_path(tmp_path, "from redis_support import redis_url  # noqa: F401\n\n\n"
                            "def test_uses_redis(redis_url):\n    pass\n", bin_dir)
    line = said(out, "`apt-get install redis-server` failed")
    assert "exit 100" in line and "Unable to locate package" in line, line


def test_apt_get_without_root_is_one_line_saying_so(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _script(bin_dir, "apt-get", "echo apt-get must not run >&2; exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # a user's own machine, without sudo
    with pytest.raises(MissingNeed) as info:
        redis_support.redis_server_binary()
    line = str(info.value)
    assert "\n" not in line and "needs root" in line and "uid 1000" in line, line
    assert "Installing redis-server with apt-get" in line and "apt-get install -y redis-server" in line, line


def test_an_n8n_install_without_room_on_the_disk_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("GEN_NODES_N8N_CACHE", str(tmp_path / "cache"))
    room = shutil.disk_usage(tmp_path).free / 1e9
    monkeypatch.setattr(n8n_support, "INSTALL_GIGABYTES", room + 1000)  # more than this disk has
    with pytest.raises(MissingNeed) as info:
        n8n_support.ensure_installed("0.0.0-never-installed")
    message = str(info.value)
    assert "\n" not in message and "GB free under" in message and "GEN_NODES_N8N_CACHE" in message, message
    assert not (tmp_path / "cache").exists(), "nothing was started"
