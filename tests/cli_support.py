"""Running the ``gen-nodes`` command line as a real subprocess, for the tests of what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stop_process(proc: subprocess.Popen) -> None:
    """Stop a server started with ``stdout=PIPE``: terminate, kill after 10 s, close its stdout."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()


def gen_nodes_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m gen_nodes.surfaces.cli ARGS`` from the repository root, stdin closed; ``env`` replaces the environment."""
    return subprocess.run([sys.executable, "-m", "gen_nodes.surfaces.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
