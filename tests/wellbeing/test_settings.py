"""Invalid environments stop the process at start with one clear line naming the variable."""

import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from config.celery import session_group_file

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.production",
    "SECRET_KEY": "x7$k2!pQ9zR4mW8nB3vC6yT1uH5jL0fD2gS7aE4rK9wX3qZ8pM6nV1bN5cY0tJ2uF",
    "DATABASE_URL": "postgres://pulse@127.0.0.1:5432/pulse",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "pulse.example.com",
}


def start(env_overrides: dict[str, str | None], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    for key, value in env_overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    command = args or ("-c", "import django; django.setup()")
    return subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def assert_refused(result: subprocess.CompletedProcess, variable: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("Pulse configuration")]
    assert len(lines) >= 1, result.stderr
    assert variable in lines[0]


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_essential_variable(variable):
    result = start({**PRODUCTION_ENV, variable: None})
    assert_refused(result, variable)


def test_malformed_database_url_is_refused():
    result = start({**PRODUCTION_ENV, "DATABASE_URL": "not-a-url"})
    assert_refused(result, "DATABASE_URL")


def test_k_below_three_is_refused_at_start():
    result = start({"DJANGO_SETTINGS_MODULE": "config.settings.local", "PULSE_DEFAULT_K": "2"})
    assert_refused(result, "PULSE_DEFAULT_K")


def test_non_numeric_k_is_refused_at_start():
    result = start({"DJANGO_SETTINGS_MODULE": "config.settings.local", "PULSE_DEFAULT_K": "five"})
    assert_refused(result, "PULSE_DEFAULT_K")


def test_unknown_timezone_is_refused_at_start():
    result = start(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "PULSE_DEFAULT_TIMEZONE": "Mars/Base"}
    )
    assert_refused(result, "PULSE_DEFAULT_TIMEZONE")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_LEVEL", "verbose"),
        # psycopg refuses such a pool at the first query, i.e. in every request
        ("DATABASE_POOL_MIN", "20"),
        # links in e-mails start with it
        ("SITE_URL", "pulse.example.com"),
        ("CSRF_TRUSTED_ORIGINS", "pulse.example.com"),
    ],
)
def test_an_invalid_value_stops_the_process_with_one_line_naming_it(variable, value):
    result = start({**PRODUCTION_ENV, variable: value})
    assert_refused(result, variable)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [line for line in lines if line.startswith("Pulse configuration error:")]
    assert len(lines) == 1, result.stderr


def test_valid_values_of_the_checked_variables_are_taken():
    result = start(
        {
            **PRODUCTION_ENV,
            "LOG_LEVEL": "warning",
            "PULSE_TOKEN_GUESS_RATE": "50/5m",
            "DATABASE_POOL_MIN": "4",
            "DATABASE_POOL_MAX": "4",
            "SITE_URL": "https://pulse.example.com/",
            "CSRF_TRUSTED_ORIGINS": "https://pulse.example.com, https://*.example.org:8443",
        },
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.LOG_LEVEL, s.PULSE_TOKEN_GUESS_RATE, s.SITE_URL, s.CSRF_TRUSTED_ORIGINS)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "WARNING",
        "50/5m",
        "https://pulse.example.com",
        "['https://pulse.example.com',",
        "'https://*.example.org:8443']",
    ]


def test_gunicorn_stops_on_an_invalid_value_instead_of_restarting_workers():
    """The web container runs gunicorn, which starts a new worker whenever one exits: a
    configuration error must stop it, with the one line, not loop."""
    result = start(
        {**PRODUCTION_ENV, "EMAIL_USE_TLS": "maybe"},
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind=127.0.0.1:0",
        "--workers=1",
        "--logger-class=config.log_redaction.RedactingGunicornLogger",
    )
    assert result.returncode != 0
    assert result.stderr.count("Pulse configuration error: EMAIL_USE_TLS") == 1, result.stderr


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("-m", "celery", "-A", "config", "--quiet", "worker", "--pool=solo"),
        ("-m", "celery", "-A", "config", "--quiet", "beat", "--schedule=/nonexistent/beat"),
        ("-m", "gunicorn", "config.wsgi:application", "--bind=127.0.0.1:0", "--workers=1"),
    ],
    ids=["setup", "worker", "beat", "gunicorn"],
)
def test_an_email_backend_that_does_not_import_stops_every_process_at_start(command):
    """Not at the first delivery, in the worker, hours later: each process stops at start."""
    typo = "django.core.mail.backends.smpt.EmailBackend"
    result = start({**PRODUCTION_ENV, "EMAIL_BACKEND": typo}, *command)
    assert_refused(result, "EMAIL_BACKEND")
    [line] = [line for line in result.stderr.splitlines() if "Pulse configuration" in line]
    assert line == (
        "Pulse configuration error: EMAIL_BACKEND: cannot import "
        "'django.core.mail.backends.smpt.EmailBackend' "
        "(No module named 'django.core.mail.backends.smpt')"
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("django.core.mail.backends.smtp.EmailBackendd", 'does not define a "EmailBackendd"'),
        ("smtp", "doesn't look like a module path"),
    ],
)
def test_an_email_backend_naming_no_class_is_refused_at_start(value, problem):
    result = start({"DJANGO_SETTINGS_MODULE": "config.settings.local", "EMAIL_BACKEND": value})
    assert_refused(result, "EMAIL_BACKEND")
    assert problem in result.stderr


@pytest.mark.parametrize(
    ("value", "taken"),
    [
        ("django.core.mail.backends.console.EmailBackend", "console"),
        ("", "smtp"),  # an empty variable means the default, as for the other settings
    ],
)
def test_an_email_backend_that_imports_is_taken(value, taken):
    result = start(
        {**PRODUCTION_ENV, "EMAIL_BACKEND": value},
        "-c",
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.EMAIL_BACKEND)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"django.core.mail.backends.{taken}.EmailBackend"


def test_weak_production_secret_key_is_refused():
    result = start({**PRODUCTION_ENV, "SECRET_KEY": "short"})
    assert_refused(result, "SECRET_KEY")


# The secrets .env.example holds (every variable whose name says it is one).
EXAMPLE_SECRETS = ["SECRET_KEY", "PULSE_TOKEN_HMAC_KEY", "POSTGRES_PASSWORD", "EMAIL_HOST_PASSWORD"]


def env_example() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), re.M))


def as_docker_compose_passes(dotenv: dict[str, str]) -> dict[str, str]:
    """The environment docker compose gives the app's containers with this .env: its values,
    then the compose file's (DATABASE_URL built from POSTGRES_PASSWORD)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = dict(dotenv)
    for name, value in compose["services"]["web"]["environment"].items():
        env[name] = re.sub(r"\$\{(\w+)[^}]*\}", lambda match: dotenv[match[1]], str(value))
    return env


def filled_in() -> dict[str, str]:
    """.env.example as a deployer should leave it: each secret replaced by a random one."""
    return {**env_example(), **{name: secrets.token_urlsafe(50) for name in EXAMPLE_SECRETS}}


def test_the_list_of_example_secrets_is_every_secret_in_env_example():
    names = {name for name in env_example() if re.search(r"KEY|PASSWORD|SECRET|TOKEN", name)}
    assert names == set(EXAMPLE_SECRETS)


def test_env_example_copied_unchanged_is_refused_in_one_line_naming_each_placeholder():
    result = start(as_docker_compose_passes(env_example()))
    assert_refused(result, "SECRET_KEY")
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert all(name in line for name in EXAMPLE_SECRETS), line
    assert "placeholder from .env.example" in line


@pytest.mark.parametrize("name", EXAMPLE_SECRETS)
def test_each_placeholder_secret_of_env_example_is_refused(name):
    result = start(as_docker_compose_passes({**filled_in(), name: env_example()[name]}))
    assert_refused(result, name)
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert [other for other in EXAMPLE_SECRETS if other in line] == [name], line


def test_env_example_filled_in_with_real_secrets_starts():
    result = start(
        as_docker_compose_passes(filled_in()),
        "-c",
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.DATABASES['default']['HOST'], settings.ALLOWED_HOSTS)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "db ['pulse.example.com']"


def test_secret_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(PRODUCTION_ENV["SECRET_KEY"] + "\n")
    result = start(
        {**PRODUCTION_ENV, "SECRET_KEY": None, "SECRET_KEY_FILE": str(secret_file)},
        "-c",
        "import django; django.setup(); from django.conf import settings; "
        f"print(settings.SECRET_KEY == {PRODUCTION_ENV['SECRET_KEY']!r})",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_production_passes_the_deploy_check_with_no_warnings():
    result = start(PRODUCTION_ENV, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_worker_niceness_outside_0_to_19_is_refused_at_start():
    result = start({**PRODUCTION_ENV, "PULSE_WORKER_NICENESS": "25"})
    assert_refused(result, "PULSE_WORKER_NICENESS")


@pytest.mark.parametrize(
    ("enabled", "own", "applies"),
    [("1", "/autogroup-85 nice 0\n", True), ("1", "", False), ("0", "/autogroup-85 nice 0\n", False),
     (None, None, False)],
    ids=["session group", "default group", "autogroup off", "no autogroup"],
)  # fmt: skip
def test_the_session_group_is_lowered_only_where_the_session_has_one_of_its_own(
    tmp_path, enabled, own, applies
):
    """A process whose session has no group of its own (the default group, whose file reads
    empty) is scheduled with everything else in it: the worker leaves that group alone."""
    if enabled is not None:
        (tmp_path / "sys/kernel").mkdir(parents=True)
        (tmp_path / "sys/kernel/sched_autogroup_enabled").write_text(f"{enabled}\n")
        (tmp_path / "self").mkdir()
        (tmp_path / "self/autogroup").write_text(own)
    found = session_group_file(tmp_path)
    assert found == (tmp_path / "self/autogroup" if applies else None)


def autogroup_niceness(pid: int | str) -> int:
    return int(Path(f"/proc/{pid}/autogroup").read_text().split("nice")[1])


@pytest.mark.skipif(not hasattr(os, "nice"), reason="Unix process priorities")
@pytest.mark.parametrize("own_session", [True, False], ids=["own session", "shared session"])
def test_a_real_worker_runs_every_thread_at_the_configured_lower_priority(tmp_path, own_session):
    """The niceness is added as the worker starts: every thread it has once it is ready runs
    at the lower priority (later threads inherit it); the tests' own process does not change.
    Where Linux schedules sessions as groups (autogroup), a worker leading its own session
    lowers its group too; one started in another's session leaves that session's group."""
    log_path = tmp_path / "worker.log"
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "PULSE_TEST_BROKER_URL"}
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", PULSE_WORKER_NICENESS="7")
    own = os.nice(0)
    own_group = autogroup_niceness("self") if session_group_file() is not None else None
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
             "--concurrency=3", "--without-heartbeat", "--without-gossip", "--without-mingle",
             "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=own_session,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log_path.read_text(errors="replace"):
            assert worker.poll() is None, log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, "the worker did not become ready"
            time.sleep(0.1)
        tasks = list(Path(f"/proc/{worker.pid}/task").iterdir())
        niceness = {int((t / "stat").read_text().rsplit(")", 1)[1].split()[16]) for t in tasks}
        assert len(tasks) > 1 and niceness == {own + 7}
        if session_group_file(pid=worker.pid) is None:
            group = "none"
        elif own_session:
            # lowered, unless the kernel refuses the change (some sandboxes): then it is said so
            group = "unchanged" if "session_group=unchanged" in log_path.read_text() else "lowered"
            assert autogroup_niceness(worker.pid) == (0 if group == "unchanged" else own + 7)
        else:
            group = "shared"
            assert autogroup_niceness(worker.pid) == own_group
        assert f"event=worker_priority niceness={own + 7} session_group={group}" in (
            log_path.read_text()
        )
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    assert os.nice(0) == own
    if own_group is not None:
        assert autogroup_niceness("self") == own_group


@pytest.mark.parametrize("value", ["3 per hour", "0/h", "3/w"])
def test_a_malformed_rate_is_refused_at_start(value):
    result = start(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "PULSE_SIGN_IN_LINK_RATE": value}
    )
    assert_refused(result, "PULSE_SIGN_IN_LINK_RATE")


@pytest.mark.django_db
def test_the_database_checks_warn_of_nothing():
    """``migrate`` runs these at every ``./pulse run``: on SQLite a warning there is one the
    settings explain (W039) or a real problem."""
    from django.core.management import call_command

    call_command("check", databases=["default"], fail_level="WARNING")


SSO_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.local",
    "OIDC_CLIENT_ID": "pulse",
    "OIDC_CLIENT_SECRET": "a-real-client-secret",
    "OIDC_AUTHORIZATION_ENDPOINT": "https://idp.example.com/oauth2/v1/authorize",
    "OIDC_TOKEN_ENDPOINT": "https://idp.example.com/oauth2/v1/token",
    "OIDC_USERINFO_ENDPOINT": "https://idp.example.com/oauth2/v1/userinfo",
    "OIDC_JWKS_ENDPOINT": "https://idp.example.com/oauth2/v1/keys",
    "OIDC_PROVIDER_NAME": "Okta",
}
SSO_CHECK = (
    "-c",
    "import django; django.setup(); from django.conf import settings; "
    "print(settings.PULSE_SSO_ENABLED, settings.OIDC_RP_SIGN_ALGO)",
)


def test_single_sign_on_is_off_without_its_variables():
    result = start({"DJANGO_SETTINGS_MODULE": "config.settings.local"}, *SSO_CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "RS256"]


def test_single_sign_on_is_on_with_all_its_variables():
    result = start(SSO_ENV, *SSO_CHECK)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "RS256"]


@pytest.mark.parametrize(
    "missing", ["OIDC_CLIENT_SECRET", "OIDC_TOKEN_ENDPOINT", "OIDC_JWKS_ENDPOINT"]
)
def test_partial_single_sign_on_configuration_is_refused_in_one_line(missing):
    result = start({**SSO_ENV, missing: None})
    assert_refused(result, missing)
    assert len([ln for ln in result.stderr.splitlines() if ln.strip()]) == 1, result.stderr


def test_a_provider_name_alone_is_refused():
    result = start(
        {"DJANGO_SETTINGS_MODULE": "config.settings.local", "OIDC_PROVIDER_NAME": "Okta"}
    )
    assert_refused(result, "OIDC_CLIENT_ID")


def test_a_provider_endpoint_over_plain_http_elsewhere_is_refused():
    result = start({**SSO_ENV, "OIDC_TOKEN_ENDPOINT": "http://idp.example.com/token"})
    assert_refused(result, "OIDC_TOKEN_ENDPOINT")


def test_an_unknown_signing_algorithm_is_refused():
    result = start({**SSO_ENV, "OIDC_SIGN_ALGORITHM": "none"})
    assert_refused(result, "OIDC_SIGN_ALGORITHM")


def test_production_refuses_the_example_client_secret():
    result = start(
        {
            **PRODUCTION_ENV,
            **SSO_ENV,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "OIDC_CLIENT_SECRET": "change-me-to-the-client-secret",
        }
    )
    assert_refused(result, "OIDC_CLIENT_SECRET")
