"""Rate limits for one-time link guesses, per client address (django-ratelimit over the cache).

Only *failed* lookups (unknown tokens) count: a whole office behind one address opening its
real links on Monday morning is never slowed down, while someone trying tokens is stopped after
``PULSE_TOKEN_GUESS_RATE`` misses.  Links carry 256 random bits, so the limit protects the
database from load rather than the tokens from being found.  Behind a proxy, set
``PULSE_TRUSTED_PROXY_COUNT`` so the real client address is used (``config.security.client_ip``).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from config.security import rate_usage

GROUP = "checkins.token_guess"


def _usage(request: HttpRequest, *, increment: bool) -> dict | None:
    return rate_usage(
        request, group=GROUP, key="ip", rate=settings.PULSE_TOKEN_GUESS_RATE, increment=increment
    )


def token_guesses_exhausted(request: HttpRequest) -> bool:
    """True when this client has used up its failed guesses for the current window."""
    usage = _usage(request, increment=False)
    return usage is not None and usage["count"] >= usage["limit"]


def token_guess_failed(request: HttpRequest) -> None:
    """Count one failed guess against this client."""
    _usage(request, increment=True)
