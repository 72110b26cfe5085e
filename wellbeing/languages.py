"""Which language a person reads Pulse in: the one they chose on their preferences, else their
organisation's (set by its admins).  Pages, check-ins and messages all follow this one rule;
only someone outside an organisation (signed out, or an operator) gets the browser's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from .models import Organisation, User


def supported_language(code: str | None) -> str | None:
    """``code`` as one of ``settings.LANGUAGES`` ("de-DE" and "de_at" read as "de"), or
    ``None`` when Pulse is not translated into it."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in {c for c, _name in settings.LANGUAGES} else None


def reading_language(user: User | None, organisation: Organisation | None) -> str:
    """The person's own choice, else the organisation's language, else ``LANGUAGE_CODE``."""
    for candidate in (getattr(user, "language", ""), getattr(organisation, "locale", "")):
        found = supported_language(candidate)
        if found:
            return found
    return settings.LANGUAGE_CODE
