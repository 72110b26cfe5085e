"""One-time check-in link tokens.

A token is a selector and a secret, written one after the other in URL-safe base64:

- the selector (22 characters) is a time-ordered UUID (``wellbeing.ids.ordered_uuid``) that
  finds the token's row.  Its unique index grows at its right edge, so an opening that mints
  100,000 tokens touches a few index pages rather than most of a random-keyed index (and,
  after each checkpoint, does not log most of it again as full-page images).  It tells no
  more than when the link was made, which its e-mail tells anyway;
- the secret (43 characters) is ``secrets.token_urlsafe(32)``: 256 random bits.

The database stores the selector and HMAC-SHA256(whole token) under
``settings.PULSE_TOKEN_HMAC_KEY``, compared in constant time after the row is found, so a copy
of the database (or a backup) cannot be turned into working links, and the hash cannot be
brute-forced without the key.  The plain token exists only in the outbox message's
``sensitive_context`` until the message is sent.  Never log a token.

Tokens minted before selectors existed are the bare secret (43 characters) and are found by
their hash (``InvitationToken``'s partial unique index on rows without a selector); they die
with their cycle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from wellbeing.ids import ordered_uuid

TOKEN_BYTES = 32  # the secret: 256 bits; the design asks for at least 128
SELECTOR_CHARS = 22  # 16 bytes of URL-safe base64 without padding
TOKEN_CHARS = SELECTOR_CHARS + 43

Minted = tuple[str, uuid.UUID, str]  # the token, its selector, its keyed hash


def _key() -> bytes:
    key = settings.PULSE_TOKEN_HMAC_KEY or settings.SECRET_KEY
    if not key:
        raise ImproperlyConfigured("PULSE_TOKEN_HMAC_KEY (or SECRET_KEY) must be set")
    return key.encode("utf-8")


def token_hash(token: str) -> str:
    return hmac.new(_key(), token.encode("utf-8"), hashlib.sha256).hexdigest()


def token_matches(token: str, hashed: str) -> bool:
    """Whether ``token`` is the one ``hashed`` was made from (constant time)."""
    return hmac.compare_digest(token_hash(token), hashed)


def _selector_text(selector: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(selector.bytes).decode("ascii").rstrip("=")


def token_selector(token: str) -> uuid.UUID | None:
    """The selector a token starts with; None for a token without one (malformed, or minted
    before selectors existed)."""
    if len(token) != TOKEN_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(token[:SELECTOR_CHARS] + "==")
    except (binascii.Error, ValueError):
        return None
    # Another spelling of the same 16 bytes finds the row but not the hash of the whole token.
    return uuid.UUID(bytes=raw) if len(raw) == 16 else None


def token_minter() -> Callable[[], Minted]:
    """Mints tokens: the key is read and the HMAC keyed once, and each token hashed on a copy
    of that keyed object (the same hashes as ``token_hash``, no per-token key set-up)."""
    keyed = hmac.new(_key(), digestmod=hashlib.sha256)

    def mint() -> Minted:
        selector = ordered_uuid()
        token = _selector_text(selector) + secrets.token_urlsafe(TOKEN_BYTES)
        mac = keyed.copy()
        mac.update(token.encode("utf-8"))
        return token, selector, mac.hexdigest()

    return mint


def token_new() -> Minted:
    """One fresh token, its selector and its keyed hash."""
    return token_minter()()


def checkin_link(token: str) -> str:
    return f"{settings.SITE_URL}/checkin/t/{token}/"
