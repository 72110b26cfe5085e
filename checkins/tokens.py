"""One-time check-in link tokens.

A token is ``secrets.token_urlsafe(32)`` (256 random bits).  The database stores only
HMAC-SHA256(token) under ``settings.PULSE_TOKEN_HMAC_KEY``, so a copy of the database (or a
backup) cannot be turned into working links, and the hash cannot be brute-forced without the
key.  The plain token exists only in the outbox message's ``sensitive_context`` until the
message is sent.  Never log a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TOKEN_BYTES = 32  # 256 bits; the design asks for at least 128


def _key() -> bytes:
    key = settings.PULSE_TOKEN_HMAC_KEY or settings.SECRET_KEY
    if not key:
        raise ImproperlyConfigured("PULSE_TOKEN_HMAC_KEY (or SECRET_KEY) must be set")
    return key.encode("utf-8")


def token_hash(token: str) -> str:
    return hmac.new(_key(), token.encode("utf-8"), hashlib.sha256).hexdigest()


def token_new() -> tuple[str, str]:
    """A fresh token and its keyed hash."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_hash(token)


def token_minter() -> Callable[[], tuple[str, str]]:
    """``token_new`` for many tokens: the key is read and the HMAC keyed once, and each token
    hashed on a copy of that keyed object (same hashes, no per-token key set-up)."""
    keyed = hmac.new(_key(), digestmod=hashlib.sha256)

    def mint() -> tuple[str, str]:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        mac = keyed.copy()
        mac.update(token.encode("utf-8"))
        return token, mac.hexdigest()

    return mint


def checkin_link(token: str) -> str:
    return f"{settings.SITE_URL}/checkin/t/{token}/"
