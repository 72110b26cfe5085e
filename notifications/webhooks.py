"""Slack and Microsoft Teams incoming-webhook URLs: validation and masking.

Webhook URLs are bearer secrets.  They are validated against the vendors' hosts (https only)
and never written to logs or error messages; the admin shows them masked.  Plain
``http://127.0.0.1:<port>`` is accepted only with ``DEBUG`` or ``PULSE_WEBHOOK_ALLOW_LOCALHOST``
(the test suite stands up a local webhook server).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

SLACK_HOSTS = ("hooks.slack.com",)
TEAMS_HOST_SUFFIXES = (".webhook.office.com", ".logic.azure.com")


def _localhost_allowed() -> bool:
    return bool(settings.DEBUG or getattr(settings, "PULSE_WEBHOOK_ALLOW_LOCALHOST", False))


def _is_local_test_url(parts) -> bool:
    return parts.scheme == "http" and parts.hostname == "127.0.0.1" and _localhost_allowed()


def _parse(value: str):
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValidationError(_("This is not a valid URL."), code="invalid")
    return parts


def validate_slack_webhook_url(value: str) -> None:
    parts = _parse(value)
    if _is_local_test_url(parts):
        return
    if parts.scheme != "https" or parts.hostname not in SLACK_HOSTS:
        raise ValidationError(
            _("A Slack webhook must be an https://hooks.slack.com/... URL."), code="slack_host"
        )


def validate_teams_webhook_url(value: str) -> None:
    parts = _parse(value)
    if _is_local_test_url(parts):
        return
    host = parts.hostname or ""
    if parts.scheme != "https" or not host.endswith(TEAMS_HOST_SUFFIXES):
        raise ValidationError(
            _(
                "A Teams webhook must be an https URL on *.webhook.office.com "
                "or *.logic.azure.com (Workflows)."
            ),
            code="teams_host",
        )


def mask_url(value: str) -> str:
    """``https://hooks.slack.com/services/T000/B000/XXXX`` -> ``https://hooks.slack.com/…XXXX``
    with only the last four characters kept."""
    if not value:
        return ""
    parts = urlsplit(value)
    tail = value[-4:] if len(value) > 12 else ""
    return f"{parts.scheme}://{parts.netloc}/…{tail}"
