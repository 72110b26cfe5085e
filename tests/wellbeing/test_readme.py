"""The README's configuration table and .env.example agree with what the settings read."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Read by the settings of the running service (test.py reads only what the tests need).
SETTINGS = ["config/settings/base.py", "config/settings/local.py", "config/settings/production.py"]
# Not Django settings, documented in the same table.
OUTSIDE_SETTINGS = {"DJANGO_SETTINGS_MODULE", "PULSE_HOST", "PULSE_PORT", "POSTGRES_PASSWORD"}


def documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def read_by_settings() -> set[str]:
    names: set[str] = set()
    for path in SETTINGS:
        text = (ROOT / path).read_text()
        names.update(
            re.findall(r"config_env\.(?!ConfigurationError)\w+\(\s*\"([A-Z][A-Z0-9_]+)\"", text)
        )
    return names


def test_every_variable_the_settings_read_is_documented_and_nothing_else():
    missing = read_by_settings() - documented()
    stale = documented() - read_by_settings() - OUTSIDE_SETTINGS
    assert not missing, f"read by config/settings but not in the README's table: {missing}"
    assert not stale, f"in the README's table but read nowhere: {stale}"


def test_the_variables_outside_the_settings_are_read_where_the_table_says():
    assert re.search(r'"PULSE_HOST"', (ROOT / "pulse").read_text())
    assert re.search(r'"PULSE_PORT"', (ROOT / "pulse").read_text())
    assert "${POSTGRES_PASSWORD" in (ROOT / "docker-compose.yml").read_text()


def test_env_example_sets_only_documented_variables():
    keys = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))
    assert keys - documented() == set()
