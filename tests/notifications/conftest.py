"""Real servers on 127.0.0.1 for notification tests (reusable by other apps' tests).

- ``smtp_server``: an aiosmtpd SMTP server on an ephemeral port, collecting messages in memory;
  it can refuse recipients with a chosen reply and hold a chosen RCPT until released (to kill a
  worker at a known point).
- ``smtp_settings``: points Django's SMTP e-mail backend at it.
- ``webhook_server``: a threaded ``http.server`` standing in for Slack and Teams incoming
  webhooks, answering 200/400/500 or never answering (timeout).
- ``celery_worker``: starts real ``celery -A config --quiet worker --pool=solo`` subprocesses.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- SMTP --------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]


@dataclass
class SMTPCapture:
    """What the server received, plus knobs for faults."""

    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    sessions: int = 0
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # address -> e.g. "550 ..."
    hold_rcpt_number: int | None = None  # hold the n-th RCPT (1-based) until released
    rcpt_count: int = 0
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self) -> list[str]:
        with self.lock:
            return [mail.to for mail in self.received]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


class _Handler:
    def __init__(self, capture: SMTPCapture) -> None:
        self.capture = capture

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.capture.lock:
            self.capture.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        capture = self.capture
        with capture.lock:
            capture.rcpt_count += 1
            number = capture.rcpt_count
        if capture.hold_rcpt_number is not None and number == capture.hold_rcpt_number:
            capture.holding.set()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, capture.release.wait, 60)
            return "451 4.3.0 held by the test, try again later"
        reply = capture.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.capture.lock:
            self.capture.received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), parsed)  # type: ignore[arg-type]
            )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SMTPCapture]:
    capture = SMTPCapture()
    handler = _Handler(capture)
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        data_size_limit=10 * 1024 * 1024,
    )
    controller.start()
    capture.port = port
    try:
        yield capture
    finally:
        capture.release.set()
        controller.stop()


@pytest.fixture
def smtp_settings(settings, smtp_server: SMTPCapture) -> SMTPCapture:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    return smtp_server


# --- Webhooks ----------------------------------------------------------------------------------


@dataclass
class WebhookCapture:
    base_url: str = ""
    status: int = 200
    body: str = "ok"
    hang: bool = False  # never answer until the test ends (client times out)
    requests: list[tuple[str, dict]] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/services/T000/B000/secret") -> str:
        return f"{self.base_url}{path}"


@pytest.fixture
def webhook_server(settings) -> Iterator[WebhookCapture]:
    capture = WebhookCapture()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", "0"))
            payload = json.loads(self.rfile.read(length) or b"{}")
            capture.requests.append((self.path, payload))
            if capture.hang:
                capture.released.wait(30)
                return
            body = capture.body.encode()
            self.send_response(capture.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # keep test output clean
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    capture.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.PULSE_WEBHOOK_ALLOW_LOCALHOST = True
    settings.PULSE_WEBHOOK_TIMEOUT_SECONDS = 0.5
    try:
        yield capture
    finally:
        capture.released.set()
        server.shutdown()
        server.server_close()


# --- Celery broker and worker processes --------------------------------------------------------


@pytest.fixture
def celery_broker():
    """Point this process's Celery app at a broker URL for the test (publishing opens a fresh
    connection each time, so no pool has to be reset)."""
    from config.celery import app

    original = app.conf.broker_url

    def use(url: str) -> None:
        app.conf.broker_url = url

    yield use
    app.conf.broker_url = original


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def celery_worker(tmp_path):
    """Factory starting real worker subprocesses against the test database; all are stopped at
    teardown."""
    started: list[WorkerProcess] = []

    def start(
        *,
        database_url: str,
        broker_url: str,
        smtp_port: int | None = None,
        name: str = "w",
        options: tuple[str, ...] = (),
    ) -> WorkerProcess:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url,
            "PULSE_TEST_BROKER_URL": broker_url,
            # the tests wait for INFO lines ("ready.", "succeeded"); the worker logs at LOG_LEVEL
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        if smtp_port is not None:
            env["PULSE_TEST_EMAIL_PORT"] = str(smtp_port)
        log_path = tmp_path / f"worker-{name}-{len(started)}.log"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "--quiet",  # no banner, as in docker-compose.yml: only log lines
                "worker",
                "--pool=solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                f"--hostname={name}{len(started)}@%h",
                *options,
            ],
            cwd=REPO,
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
        )
        worker = WorkerProcess(process, log_path)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(
    predicate, *, timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll a real process's progress (not a clock): fail with a message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
