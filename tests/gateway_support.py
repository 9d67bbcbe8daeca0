"""A real ``gen-nodes serve`` process for the tests, and a look at the sandbox's keys by name.

    with GatewayProcess("--base-url", sb.base_url, log=tmp_path / "gw.log") as gw:
        requests.post(gw.url + "/actions/get_me", headers={"X-API-Key": key})
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests

from gen_nodes.sandbox import Sandbox

SERVE = [sys.executable, "-m", "gen_nodes.surfaces.cli", "serve"]  # the real `gen-nodes serve` command
START_TIMEOUT = 60


class GatewayProcess:
    """One ``gen-nodes serve --port 0`` process; its stderr (debug log) goes to ``log``."""

    def __init__(self, *args: str, log: Path, env: dict[str, str] | None = None, command: list[str] = SERVE) -> None:
        self.log = log
        self._stderr = open(log, "ab")
        self.proc = subprocess.Popen([*command, "--port", "0", "--log-level", "debug", *args],
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                     env={**os.environ, **(env or {})})
        line = _read_line(self.proc, START_TIMEOUT)
        if not line:
            self.stop()
            raise RuntimeError(f"gen-nodes serve did not start; its log:\n{log.read_text()[-3000:]}")
        self.first_line = line
        self.url = json.loads(line)["url"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else ""


def keys_named(sb: Sandbox, key: str, name: str) -> list[dict[str, Any]]:
    listed = requests.get(f"{sb.base_url}/persisted_tokens", headers={"X-API-Key": key}, timeout=10).json()
    listed = listed.get("api_keys", listed) if isinstance(listed, dict) else listed
    return [item for item in listed if item["name"] == name]
