"""Reading configuration from the environment, failing loudly and in one line.

Every setting comes from an environment variable (or a ``<NAME>_FILE`` path holding it, for
container secrets).  A malformed value stops the process at start with a message naming the
variable; nothing silently falls back to a default that "works".
"""

from __future__ import annotations

import os
import re
import sys
import zoneinfo
from pathlib import Path

import environ

env = environ.Env()


# The exit status of a process stopped by its configuration.  Gunicorn halts when a worker
# exits with 4 ("App failed to load") instead of starting a new worker every second with the
# same error, so the web container stops (and says why) like the worker, beat and migrate.
EXIT_STATUS = 4


class ConfigurationError(SystemExit):
    """Raised for an invalid environment; exits the process with one clear line."""

    def __init__(self, variable: str, problem: str) -> None:
        self.message = f"Pulse configuration error: {variable}: {problem}"
        # Printed here, once: a SystemExit with a status (not a text) prints nothing more.
        print(self.message, file=sys.stderr)
        super().__init__(EXIT_STATUS)

    def __str__(self) -> str:
        return self.message


def read(name: str, default: str | None = None) -> str | None:
    """Return the variable, or the content of the file named by ``<name>_FILE``."""
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ConfigurationError(f"{name}_FILE", f"cannot read {file_path!r} ({exc.strerror})")
    return os.environ.get(name, default)


def required(name: str) -> str:
    value = read(name)
    if not value:
        raise ConfigurationError(name, "is required in production and is not set")
    return value


def database(name: str, default: str | None) -> dict:
    url = read(name, default)
    if not url:
        raise ConfigurationError(name, "is not set")
    scheme = url.split(":", 1)[0]
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"} or "://" not in url:
        raise ConfigurationError(
            name, "must look like postgres://user@host:5432/db or sqlite:///path/to.db"
        )
    try:
        config = env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ConfigurationError(name, f"cannot be parsed ({exc})")
    if scheme != "sqlite" and not config.get("NAME"):
        raise ConfigurationError(name, "names no database")
    return config


def integer(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = read(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(name, f"must be a whole number, got {raw!r}")
    if minimum is not None and value < minimum:
        raise ConfigurationError(name, f"must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(name, f"must be at most {maximum}, got {value}")
    return value


_RATE = re.compile(r"^[1-9]\d*/\d*[smhd]$")


def rate(name: str, default: str) -> str:
    """A rate limit as ``<count>/<period>``: ``20/m``, ``3/h``, ``100/15m``, ``5/d``."""
    raw = (read(name) or "").strip()
    if not raw:
        return default
    if not _RATE.match(raw):
        raise ConfigurationError(name, f"must look like 20/m, 3/h or 100/15m, got {raw!r}")
    return raw


def boolean(name: str, default: bool) -> bool:
    raw = read(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigurationError(name, f"must be true or false, got {raw!r}")


def timezone_name(name: str, default: str) -> str:
    value = read(name, default) or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(name, f"unknown timezone {value!r}")
    return value


def csv_list(name: str, default: str = "") -> list[str]:
    raw = read(name, default) or ""
    return [item.strip() for item in raw.split(",") if item.strip()]


def url(name: str, default: str) -> str:
    """An absolute http(s) address without a trailing slash (links in messages start with it)."""
    value = (read(name, default) or default).strip().rstrip("/")
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        raise ConfigurationError(
            name,
            f"must be an http:// or https:// address like https://pulse.example.com, got {value!r}",
        )
    return value


def endpoint(name: str) -> str:
    """An identity provider's address: https, or http on this machine only (a test provider);
    empty when unset."""
    value = (read(name) or "").strip()
    if value and not re.fullmatch(
        r"(https://[^/\s?#]+|http://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?)(/[^\s#]*)?", value
    ):
        raise ConfigurationError(
            name,
            f"must be an https:// address like https://login.example.com/oauth2/v1/token, got {value!r}",
        )
    return value


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (read(name) or "").strip() or default
    if value not in choices:
        raise ConfigurationError(name, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def origin_list(name: str, default: str = "") -> list[str]:
    """Comma-separated origins, each with its scheme (``https://pulse.example.com``)."""
    origins = csv_list(name, default)
    for origin in origins:
        if not re.fullmatch(r"https?://[^/\s?#]+", origin):
            raise ConfigurationError(
                name,
                f"each entry must be a scheme and host like https://pulse.example.com, got {origin!r}",
            )
    return origins


def log_level(name: str, default: str) -> str:
    """A logging level name (DEBUG, INFO, WARNING, ERROR or CRITICAL; any case)."""
    value = (read(name, default) or default).strip().upper()
    if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigurationError(
            name, f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}"
        )
    return value


def dotted_path(name: str, default: str) -> str:
    """A class named by its dotted path (a backend).  Whether it imports is checked once the apps
    are loaded (``importable``, from ``wellbeing.apps``): its module may import them."""
    return (read(name) or "").strip() or default


def importable(name: str, path: str) -> None:
    """Stop unless ``path`` (the setting read from ``name``) imports: a typo would otherwise
    surface only when the backend is first used (the first e-mail, in the worker)."""
    from django.utils.module_loading import import_string

    try:
        import_string(path)
    except ImportError as exc:
        raise ConfigurationError(name, f"cannot import {path!r} ({exc})")


# How .env.example's secrets read ("change-me-to-..."): a copy deployed unchanged would run
# with secrets anyone can read in the repository (sessions and sign-in links signed with them).
_PLACEHOLDER = re.compile(r"change[-_. ]?me", re.IGNORECASE)


def placeholders_refused(secrets: dict[str, str]) -> None:
    """Stop, naming all at once, where any of ``secrets`` (variable -> value) is a placeholder."""
    left = [name for name, value in secrets.items() if value and _PLACEHOLDER.search(value)]
    if left:
        raise ConfigurationError(
            ", ".join(left), "still the placeholder from .env.example; set real, random secrets"
        )
