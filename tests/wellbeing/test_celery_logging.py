"""Worker and beat log like the web: key=value lines, every one through the token-redacting
filter (``config.celery.logging_from_django_settings``), not in Celery's own format."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tests.notifications.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
KEY_VALUE = re.compile(r"^ts=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} level=[A-Z]+ logger=\S+ ")
# Celery's default worker_log_format: "[%(asctime)s: %(levelname)s/%(processName)s] ..."
CELERY_FORMAT = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+: [A-Z]+/\w+\]")


def test_a_real_worker_logs_key_value_lines_and_redacts_a_link_in_a_task_line(
    redis_url, celery_broker, celery_worker, tmp_path
):
    # given a real worker on its own queue (nothing else on the shared Redis reaches it)
    queue = f"log-format-{uuid.uuid4().hex[:8]}"
    worker = celery_worker(
        database_url=f"sqlite:///{tmp_path / 'worker.sqlite3'}",
        broker_url=redis_url,
        # with Celery's --loglevel, which without the project's receiver would have Celery
        # log at that level in its own format
        options=(f"--queues={queue}", "--loglevel=INFO"),
    )
    wait_until(lambda: " ready." in worker.log(), timeout=60, what="the worker to be ready")
    # when a task returns links with tokens in them, which Celery logs with the task's success
    tokens = [secrets.token_urlsafe(24) for _ in range(3)]
    links = (
        f"https://pulse.example.com/checkin/t/{tokens[0]}/",
        f"https://pulse.example.com/unsubscribe/{tokens[1]}/",
        f"https://pulse.example.com/checkin/?token={tokens[2]}",
    )
    celery_broker(redis_url)
    from config.celery import app

    app.send_task("celery.accumulate", args=links, queue=queue)
    wait_until(
        lambda: "celery.accumulate" in worker.log() and "succeeded in" in worker.log(),
        timeout=30,
        what="the task to run",
    )
    log = worker.log()
    lines = log.splitlines()
    # then Celery's own lines are key=value lines through the project's handler
    [ready] = [line for line in lines if line.endswith(" ready.")]
    [succeeded] = [line for line in lines if "succeeded in" in line]
    assert KEY_VALUE.match(ready) and "logger=celery." in ready, ready
    assert KEY_VALUE.match(succeeded) and "logger=celery." in succeeded, succeeded
    assert not [line for line in lines if CELERY_FORMAT.match(line)], log
    # and every line from the moment it is ready (where tasks run) is one
    assert all(KEY_VALUE.match(line) for line in lines[lines.index(ready) :]), log
    # and the tokens are redacted
    assert not [token for token in tokens if token in log], log
    assert succeeded.count("[redacted]") == 3, succeeded


def beat_command(schedule: Path) -> list[str]:
    """docker-compose.yml's beat command, with its schedule file in the test's folder."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["beat"]["command"]
    return [
        "--schedule=" + str(schedule) if arg.startswith("--schedule") else arg for arg in command
    ]


def test_beat_run_as_in_docker_compose_writes_only_key_value_lines(tmp_path):
    # given beat started with the compose file's command (in-memory broker of the test settings)
    log_path = tmp_path / "beat.log"
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", LOG_LEVEL="INFO")
    env.update(PYTHONUNBUFFERED="1", PULSE_TEST_BROKER_URL="memory://")
    command = beat_command(tmp_path / "celerybeat-schedule")
    assert command[:2] == ["celery", "-A"]
    with log_path.open("wb") as log:
        beat = subprocess.Popen(
            [sys.executable, "-m", *command],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # when it has started
        wait_until(
            lambda: "beat: Starting" in log_path.read_text() or beat.poll() is not None,
            timeout=30,
            what="beat to start",
        )
    finally:
        beat.terminate()
        beat.wait(timeout=20)
    # then everything it wrote is a key=value line, its own start among them
    lines = log_path.read_text().splitlines()
    assert any("logger=celery.beat beat: Starting" in line for line in lines), lines
    assert lines and all(KEY_VALUE.match(line) for line in lines), lines


def test_what_a_task_prints_becomes_a_redacted_key_value_line():
    # given the worker's logging set up by the project's receiver (Celery redirects the standard
    # streams into a logger only when it configures logging itself)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", LOG_LEVEL="INFO")
    script = (
        "import django; django.setup()\n"
        "from config.celery import logging_from_django_settings\n"
        "logging_from_django_settings()\n"
        # when something prints a link with a token
        "print('fetching https://pulse.example.com/checkin/t/Zq8-secret-token/')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then it is logged (to standard error, like every line) with the token redacted
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    [line] = [line for line in result.stderr.splitlines() if "fetching" in line]
    assert KEY_VALUE.match(line) and "logger=celery.redirected" in line, line
    assert line.endswith("fetching https://pulse.example.com/checkin/t/[redacted]/")
