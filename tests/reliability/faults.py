"""Real servers and processes the fault tests start, stop and kill on 127.0.0.1.

- ``RedisServer``: a dedicated ``redis-server`` on a port of its own (never the shared 6379).
- ``PostgresCluster``: a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``) under /tmp.
- ``Gunicorn``: the WSGI app served by gunicorn against a chosen database.
- ``database_url()``: the URL of the pytest database, for worker and web subprocesses.

Ports come from 18100-18199 (reserved for these tests).  Every start waits for readiness by
polling the real server, with a bound; nothing sleeps for time to pass.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PORT_RANGE = range(18100, 18200)
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def port_in_range(*, avoid: set[int] | None = None) -> int:
    """A free port in 18100-18199 (the range these tests may use)."""
    for port in PORT_RANGE:
        if avoid and port in avoid:
            continue
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18100-18199")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "it") -> float:
    """Poll real progress until ``predicate()`` holds; returns the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def database_url() -> str:
    """The pytest database (``test_<name>``) as a URL for subprocesses."""
    from django.db import connection

    settings = connection.settings_dict
    user = settings.get("USER") or "root"
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings['NAME']}"


# --- Redis ---------------------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    workdir: Path
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=(self.workdir / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_until(lambda: port_open(self.port), timeout=10, what="redis-server to listen")

    def stop(self) -> None:
        """Stop abruptly (SIGKILL): an outage, not a maintenance shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        wait_until(lambda: not port_open(self.port), timeout=5, what="redis-server to go away")


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, started; stopped (killed) at teardown."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary for a broker of its own")
    server = RedisServer(port=port_in_range(), workdir=tmp_path)
    server.start()
    yield server
    server.stop()


# --- PostgreSQL ----------------------------------------------------------------------------


@dataclass
class PostgresCluster:
    """A throwaway cluster owned by the ``postgres`` OS user when the tests run as root
    (``initdb`` refuses root)."""

    port: int
    datadir: Path
    run_as: str | None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.datadir.parent / "postgres.log"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        if self.run_as:
            command = ["su", self.run_as, "-s", "/bin/sh", "-c", " ".join(command)]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)

    def init(self) -> None:
        self._run(PG_BIN / "initdb", "-D", self.datadir, "-U", "root", "--auth=trust", "-E", "UTF8")

    def start(self) -> None:
        self._run(
            PG_BIN / "pg_ctl",
            "-D",
            self.datadir,
            "-l",
            self.log,
            "-w",
            "-o",
            f"'-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off'",
            "start",
        )

    def stop(self) -> None:
        self._run(PG_BIN / "pg_ctl", "-D", self.datadir, "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return port_open(self.port)

    def url(self, name: str) -> str:
        return f"postgres://root@127.0.0.1:{self.port}/{name}"


@pytest.fixture
def throwaway_postgres():
    """Init and start a cluster on a port of its own; stopped and deleted at teardown."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"needs the PostgreSQL 15 server binaries in {PG_BIN}")
    run_as = "postgres" if os.geteuid() == 0 else None
    parent = Path(tempfile.mkdtemp(prefix="pg-faults-"))
    datadir = parent / "data"
    if run_as:
        shutil.chown(parent, user=run_as)
    cluster = PostgresCluster(port=port_in_range(), datadir=datadir, run_as=run_as)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()
        shutil.rmtree(parent, ignore_errors=True)


# --- Web server ----------------------------------------------------------------------------


@dataclass
class Gunicorn:
    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def gunicorn(tmp_path):
    """Factory: serve ``config.wsgi`` (test settings) against ``database_url``."""
    started: list[Gunicorn] = []

    def start(*, database_url: str, workers: int = 2, threads: int = 4, env=None) -> Gunicorn:
        port = port_in_range()
        log_path = tmp_path / f"gunicorn-{port}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
            ],
            cwd=REPO,
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": database_url,
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
            },
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = Gunicorn(process, port, log_path)
        started.append(server)
        wait_until(
            lambda: port_open(port) or process.poll() is not None,
            timeout=30,
            what="gunicorn to listen",
        )
        assert process.poll() is None, f"gunicorn exited:\n{server.log()[-3000:]}"
        return server

    yield start
    for server in started:
        server.stop()
