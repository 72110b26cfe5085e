"""Keep tokens out of every log line.

A one-time check-in link carries its token in the path (``/checkin/t/<token>/``) on the first
request only, an e-mail's unsubscribe link its signed token (``/unsubscribe/<token>/``), and a
sign-in link its password-reset token (``/accounts/reset/<uid>/<token>/``), and the single
sign-on callback its one-time ``code`` and ``state`` (``/accounts/oidc/callback/?code=...``,
with ``session_state`` from some providers); access logs,
Django's request logs and error reports must never keep any of them.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger as GunicornLogger

TOKEN_PATH = re.compile(r"(/checkin/t/|/unsubscribe/|/accounts/reset/[^/\s\"?]+/)[^/\s\"?]+")
QUERY_TOKEN = re.compile(r"(\b(?:token|t|code|state|session_state)=)[^&\s\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    return QUERY_TOKEN.sub(r"\1[redacted]", TOKEN_PATH.sub(r"\1[redacted]", text))


class RedactTokensFilter(logging.Filter):
    """A logging filter that rewrites the formatted message with tokens removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = ()
        return True


class RedactingGunicornLogger(GunicornLogger):
    """Gunicorn logger that never writes a token: in the access log's fields, and in its error
    log (a failed request is reported with its address)."""

    def setup(self, cfg) -> None:  # noqa: ANN001 - gunicorn's signature
        super().setup(cfg)
        if not any(isinstance(f, RedactTokensFilter) for f in self.error_log.filters):
            self.error_log.addFilter(RedactTokensFilter())

    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001 - gunicorn's signature
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "{raw_uri}e", "f"):
            if key in atoms and isinstance(atoms[key], str):
                atoms[key] = redact(atoms[key])
        return atoms
