"""The test command on a machine that lacks what it needs: one line saying what to install or free.

A pytest run in a subprocess, with a PATH that has neither redis-server nor apt-get, shows
what a newcomer sees; the n8n install is refused before it starts on a disk without room.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import n8n_support
from setup_needs import MissingNeed

TESTS = Path(__file__).resolve().parent


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
    [line] = [line for line in out.splitlines() if "redis-server, which is not on PATH" in line]
    assert "there is no apt-get here" in line and "apt-get install -y redis-server" in line, line
    assert "Traceback" not in out and "FileNotFoundError" not in out and "redis_support.py:" not in out, out


def test_an_n8n_install_without_room_on_the_disk_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("GEN_NODES_N8N_CACHE", str(tmp_path / "cache"))
    room = shutil.disk_usage(tmp_path).free / 1e9
    monkeypatch.setattr(n8n_support, "INSTALL_GIGABYTES", room + 1000)  # more than this disk has
    with pytest.raises(MissingNeed) as info:
        n8n_support.ensure_installed("0.0.0-never-installed")
    message = str(info.value)
    assert "\n" not in message and "GB free under" in message and "GEN_NODES_N8N_CACHE" in message, message
    assert not (tmp_path / "cache").exists(), "nothing was started"
