"""A private PostgreSQL server on loopback, for the tests whose outside system needs one (n8n in queue mode).

n8n's queue mode needs one database that its main process and every worker share, and
SQLite's file is not one several processes should share (n8n warns "Scaling mode is not
officially supported with sqlite. Please use PostgreSQL instead."). The test starts its own
server from Debian's ``postgresql`` binaries (``initdb`` + ``postgres``) in a temporary folder,
on a free loopback port with a random password, and stops it and removes the folder at the
end; no system service is used or started.

    with PostgresServer.start() as pg:       # pg.env: libpq's PG* variables; pg.dump(): pg_dump's text
        ...

The binaries are found on PATH or under ``/usr/lib/postgresql/<version>/bin``; when there are
none, Debian's ``postgresql`` is installed with apt-get as ``redis_support`` does for
``redis-server`` (root only; otherwise the test fails with one line saying what to install).
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user the
Debian package creates.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from redis_support import apt_binary
from setup_needs import MissingNeed

DATABASE = "n8n"
SUPERUSER = "gen_tests"


def postgres_bin_dir() -> Path:
    """The folder holding ``initdb``, ``postgres`` and ``pg_dump``; installs Debian's postgresql if none is."""
    found = _installed_bin_dir()
    if found is None:
        apt_binary("postgresql", "pg_ctlcluster", why="n8n in queue mode needs a PostgreSQL server. ")
        found = _installed_bin_dir()
    if found is None:
        raise MissingNeed("apt-get installed postgresql but no initdb is under /usr/lib/postgresql/*/bin: "
                          "put a PostgreSQL server's bin folder on PATH")
    return found


def _installed_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


def _server_user() -> pwd.struct_passwd | None:
    """Who the server runs as: None (this user) unless we are root, which PostgreSQL refuses."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise MissingNeed("PostgreSQL refuses to run as root and there is no `postgres` user to run it as: "
                          "install Debian's postgresql (it creates one) or run the tests as another user") from None


def _new_folder(user: pwd.struct_passwd | None) -> Path:
    """A new temporary folder; for another user, under a parent it may pass through (TMPDIR may be private)."""
    folder = Path(tempfile.mkdtemp(prefix="gen-nodes-postgres-"))
    if user is None or all(parent.stat().st_mode & 0o001 for parent in folder.parents):
        return folder
    folder.rmdir()
    return Path(tempfile.mkdtemp(prefix="gen-nodes-postgres-", dir="/tmp"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PostgresServer:
    """A running ``postgres`` on 127.0.0.1:``port`` whose data folder is ``data_dir``."""

    bin_dir: Path
    folder: Path
    port: int
    password: str = field(repr=False)
    process: subprocess.Popen | None = None

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def env(self) -> dict[str, str]:
        """libpq's variables for the server's database (for psql and pg_dump)."""
        return {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(self.port), "PGUSER": SUPERUSER,
                "PGPASSWORD": self.password, "PGDATABASE": DATABASE}

    @classmethod
    def start(cls, timeout: float = 60) -> "PostgresServer":
        """initdb a fresh cluster in a temporary folder, start it on loopback, create the database."""
        bin_dir, user = postgres_bin_dir(), _server_user()
        folder = _new_folder(user)
        server = cls(bin_dir, folder, _free_port(), secrets.token_urlsafe(24))
        try:
            server._init(user)
            server._launch(user)
            server._wait_ready(timeout)
            server.psql(f"CREATE DATABASE {DATABASE}", database="postgres")
        except BaseException:
            server.stop()
            raise
        return server

    def _as(self, user: pwd.struct_passwd | None) -> dict:
        return {} if user is None else {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def _init(self, user: pwd.struct_passwd | None) -> None:
        password_file = self.folder / "password"
        password_file.write_text(self.password)
        if user is not None:
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            os.chown(password_file, user.pw_uid, user.pw_gid)
        password_file.chmod(0o600)
        done = subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
             f"--pwfile={password_file}", "--encoding=UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120, **self._as(user))
        password_file.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")

    def _launch(self, user: pwd.struct_passwd | None) -> None:
        log = open(self.folder / "postgres.log", "wb")
        with log:
            # No unix socket (its default folder belongs to the system service); TCP on loopback only.
            self.process = subprocess.Popen(
                [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=", "-c", "fsync=off",
                 "-c", "max_connections=100"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as(user))

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited {self.process.returncode}:\n{self.log_tail()}")
            probe = subprocess.run([str(self.bin_dir / "pg_isready"), "-q"], env=self.env, timeout=10)
            if probe.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections in {timeout}s:\n{self.log_tail()}")

    def log_tail(self) -> str:
        path = self.folder / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    def psql(self, sql: str, *, database: str = DATABASE) -> str:
        """Run ``sql`` with psql; returns its unaligned, tuples-only output."""
        done = subprocess.run([str(self.bin_dir / "psql"), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                               "-d", database, "-c", sql], env=self.env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed (exit {done.returncode}): {done.stderr[-2000:]}")
        return done.stdout

    def dump(self) -> bytes:
        """``pg_dump`` of the database: every row that is there now, as SQL text."""
        done = subprocess.run([str(self.bin_dir / "pg_dump"), "--no-owner", DATABASE],
                              env=self.env, capture_output=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"pg_dump failed (exit {done.returncode}): {done.stderr[-2000:]!r}")
        return done.stdout

    def stop(self) -> None:
        """Stop the server (a fast shutdown) and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # "fast" shutdown: SIGTERM's "smart" one waits for clients
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
