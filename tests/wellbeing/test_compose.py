"""The compose file cannot run here (no Docker engine); check it refers to real things."""

import importlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return command if isinstance(command, list) else command.split()


def test_every_service_the_app_needs_is_there(compose):
    assert set(compose["services"]) >= {"db", "redis", "migrate", "web", "worker", "beat"}
    assert compose["services"]["db"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


def test_web_runs_gunicorn_on_the_real_wsgi_application(compose):
    command = command_of(compose["services"]["web"])
    assert command[0] == "gunicorn"
    module, attribute = command[1].split(":")
    assert hasattr(importlib.import_module(module), attribute)
    logger_class = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--logger-class"))
    module_name, class_name = logger_class.rsplit(".", 1)
    assert hasattr(importlib.import_module(module_name), class_name)


def test_worker_and_beat_use_the_real_celery_app(compose):
    for name in ("worker", "beat"):
        command = command_of(compose["services"][name])
        assert command[:3] == ["celery", "-A", "config"]
        # --quiet: no banner, only log lines (tests/wellbeing/test_celery_logging.py)
        assert command[3:5] == ["--quiet", name]
    from config.celery import app

    assert app.main == "pulse"


def test_the_worker_yields_the_cpu_to_the_web_server(compose):
    # in a container the worker's niceness counts only among its own threads
    services = compose["services"]
    assert services["worker"]["cpu_shares"] < services["web"].get("cpu_shares", 1024)


def test_exactly_one_beat(compose):
    beats = [
        name
        for name, service in compose["services"].items()
        if "command" in service and "beat" in command_of(service)
    ]
    assert beats == ["beat"]
    assert compose["services"]["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_migrate_runs_first_and_others_wait_for_it(compose):
    assert command_of(compose["services"]["migrate"])[-2:] == ["migrate", "--no-input"]
    for name in ("web", "worker", "beat"):
        depends = compose["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert compose["services"]["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_web_health_check_passes_against_the_production_settings(compose, tmp_path):
    """The web service's own command and health check, run here: gunicorn with the production
    settings and the public host name in ALLOWED_HOSTS, checked by the container's address."""
    web = compose["services"]["web"]
    port = free_port()
    command = [
        arg.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for arg in command_of(web)
    ]  # the same gunicorn command line, on a free port of this machine
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DJANGO_SETTINGS_MODULE=web["environment"]["DJANGO_SETTINGS_MODULE"],
        SECRET_KEY="x7$k2!pQ9zR4mW8nB3vC6yT1uH5jL0fD2gS7aE4rK9wX3qZ8pM6nV1bN5cY0tJ2uF",
        DATABASE_URL=f"sqlite:///{tmp_path / 'health.sqlite3'}",
        REDIS_URL="redis://127.0.0.1:1/0",  # not used: the broker below answers instead
        CELERY_BROKER_URL="memory://",
        ALLOWED_HOSTS="pulse.example.com",
        PULSE_DATA_DIR=str(tmp_path),
    )
    check = web["healthcheck"]["test"]
    assert check[0] == "CMD"
    check = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in check[1:]]
    check[0] = sys.executable if check[0] == "python" else check[0]
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            result = subprocess.run(check, cwd=ROOT, capture_output=True, timeout=30)
            if result.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(0.5)
        assert result.returncode == 0, (tmp_path / "gunicorn.log").read_text()[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_health_checks_exist(compose):
    for name in ("db", "redis", "web", "worker"):
        assert "healthcheck" in compose["services"][name], name
    assert "/readyz" in " ".join(compose["services"]["web"]["healthcheck"]["test"])


def test_app_services_use_production_settings_and_real_servers(compose):
    for name in ("migrate", "web", "worker", "beat"):
        env = compose["services"][name]["environment"]
        assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
        importlib.import_module("config.settings.base")
        assert env["DATABASE_URL"].startswith("postgres://")
        assert "@db:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"


def test_env_example_sets_what_production_requires():
    text = (ROOT / ".env.example").read_text()
    keys = set(re.findall(r"^([A-Z_]+)=", text, flags=re.MULTILINE))
    assert {"SECRET_KEY", "ALLOWED_HOSTS", "POSTGRES_PASSWORD"} <= keys


def test_dockerfile_copies_every_app():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("config", "wellbeing", "checkins", "notifications", "templates", "static"):
        assert f"COPY {package} " in dockerfile
