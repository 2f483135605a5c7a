#!/usr/bin/env python3
"""Start a throw-away PostgreSQL on a free loopback port in a temp dir (tests, benchmarks).

Uses the machine's binaries (``pg_config --bindir``, or /usr/lib/postgresql/*/bin).
initdb and pg_ctl refuse to run as root, so as root they run through
``runuser -u postgres`` on a data dir that user owns.

    python scripts/pgserver.py            # start, print the SQLAlchemy URL, wait for Ctrl-C or SIGTERM

``max_connections`` is PostgreSQL's default, 100, unless asked otherwise: the tests and the
benchmarks run against what a stock server allows (the pools' defaults must fit in it).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def find_bindir() -> Path:
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists():
            return Path(c)
    raise RuntimeError(
        "PostgreSQL server binaries not found (initdb, pg_ctl). "
        "Install them with: apt-get install -y postgresql"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PG_DEFAULT_MAX_CONNECTIONS = 100  # postgresql.conf's default max_connections


class PgServer:
    """A private PostgreSQL cluster; ``url`` is a SQLAlchemy psycopg URL to its database."""

    def __init__(self, max_connections: int = PG_DEFAULT_MAX_CONNECTIONS) -> None:
        self.max_connections = max_connections
        self.bindir = find_bindir()
        self.tmp = Path(tempfile.mkdtemp(prefix="dialer-pg-"))
        self.datadir = self.tmp / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else (os.environ.get("USER") or "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def start(self) -> PgServer:
        if self.as_root:
            shutil.chown(self.tmp, "postgres", "postgres")
        os.chmod(self.tmp, 0o700)
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust",
            "-U", "postgres", "-E", "UTF8", "--no-locale",
        )
        self._pg_start()
        return self

    def restart(self, down_s: float = 0.0) -> None:
        """Stop the server (fast: sessions are cut, as a crash or an upgrade cuts them), stay down
        ``down_s`` seconds, start it again on the same port and data."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)
        time.sleep(down_s)
        self._pg_start()

    def _pg_start(self) -> None:
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.tmp} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            f"-c max_connections={self.max_connections} -c shared_buffers=128MB"
        )
        res = self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-o", opts,
            "-l", str(self.log_path), "-w", "-t", "60", "start", check=False,
        )
        if res.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {res.stderr}\n{log}")
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start listening in 30 s")

    @property
    def log_path(self) -> Path:
        """The server's log (``pg_ctl -l``): every ERROR, with its statement, lands here."""
        return self.tmp / "log"

    def log_since(self, offset: int) -> str:
        """What the server logged after ``offset`` (a size of ``log_path`` read before)."""
        with self.log_path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def stop(self) -> None:
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w",
            "stop", check=False,
        )
        # The cluster holds every test database by now (GBs, ~100k files): deleting it took 30-70 s
        # at the end of a full test run on a busy disk. Nothing waits for it: delete it detached.
        try:
            subprocess.Popen(["rm", "-rf", "--", str(self.tmp)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            shutil.rmtree(self.tmp, ignore_errors=True)


class PgBouncer:
    """Debian's pgbouncer in front of a PgServer (``pool_mode`` transaction by default, as a site
    that pools its connections runs it); ``url(name)`` reaches database ``name`` through it.
    pgbouncer refuses to run as root: as root it runs as ``postgres``, as the cluster does."""

    def __init__(self, server: PgServer, pool_mode: str = "transaction", pool_size: int = 20) -> None:
        self.server = server
        self.binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.dir = server.tmp / f"pgbouncer-{pool_mode}"
        self.port = free_port()
        self.pool_mode, self.pool_size = pool_mode, pool_size
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return Path(shutil.which("pgbouncer") or "/usr/sbin/pgbouncer").exists()

    def start(self) -> PgBouncer:
        self.dir.mkdir()
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "pgbouncer.ini").write_text(f"""[databases]
* = host=127.0.0.1 port={self.server.port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir / "userlist.txt"}
pool_mode = {self.pool_mode}
default_pool_size = {self.pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits,options
logfile = {self.dir / "pgbouncer.log"}
""")
        if self.server.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
            for f in self.dir.iterdir():
                shutil.chown(f, "postgres", "postgres")
        cmd = [self.binary, str(self.dir / "pgbouncer.ini")]
        if self.server.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.proc.stderr.read().decode(errors='replace')}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("pgbouncer did not start listening in 15 s")

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print("usage: " + __doc__.strip().splitlines()[-1].strip())
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    # Ctrl-C, and SIGTERM/SIGINT from `kill` (a background job starts with SIGINT ignored): stop the
    # cluster on the way out instead of leaving a postgres running on its temp dir
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    pg = PgServer().start()
    try:
        print(pg.url, flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        pg.stop()
        sys.exit(0)
