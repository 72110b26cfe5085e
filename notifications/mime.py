"""The outbox's e-mail as bytes, written directly instead of through ``email.generator``.

Django builds an ``EmailMultiAlternatives`` into a tree of ``email.mime`` objects and
serialises it with ``BytesGenerator``: header folding through ``email.header.Header``, a boundary
checked by a regular expression compiled per message, address parsing for every address.  For
the one shape the outbox sends — ``multipart/alternative`` of a UTF-8 text and a UTF-8 HTML
part, the same headers in the same order — that cost as much per message as the SMTP exchange.

``email_bytes`` writes exactly the bytes Django's SMTP backend would put on the wire for such a
message (``tests/notifications/test_mime.py`` compares them byte for byte with the same boundary,
``Date`` and ``Message-ID``) and returns ``None`` whenever the message leaves the common case —
a non-ASCII or unusual address, a body line longer than RFC 5322 allows, a header that would
need encoding or folding we do not reproduce — so the caller builds it the Django way then.
"""

from __future__ import annotations

import random
import re
import sys
from email.policy import compat32
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail.message import (  # type: ignore[attr-defined]
    DNS_NAME,
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    sanitize_address,
)

from .rendering import RenderedMessage

# A dot-atom address with ASCII labels: Django's ``sanitize_address`` returns these unchanged.
_SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
)
_NEWLINES = re.compile(r"\r\n|\r|\n")
_SPLIT_CHARS = re.compile(r"[\s;,]")  # where email.header.Header may fold a line
_FOLD = compat32.clone(linesep="\r\n")
# email.generator's boundary: 15 "=", the random number zero-padded to the width of
# sys.maxsize, "==".
_BOUNDARY_WIDTH = len(repr(sys.maxsize - 1))


def _boundary() -> str:
    return f"==============={random.randrange(sys.maxsize):0{_BOUNDARY_WIDTH}d}=="


_MAX_LINE = 78  # compat32's max_line_length: shorter ASCII headers are written as they are


def _header(name: str, value: str, cache: dict[tuple[str, str], str] | None = None) -> str:
    """One header as compat32's folding writes it, CRLF-terminated."""
    line = f"{name}: {value}"
    if len(line) <= _MAX_LINE and value.isascii() and "\n" not in value and "\r" not in value:
        return line + "\r\n"
    if value.isascii() and not _SPLIT_CHARS.search(value) and len(value) + 1 <= 998:
        # One long word (a URL): compat32 moves it whole to a continuation line.
        return f"{name}: \r\n {value}\r\n"
    key = (name, value)
    if cache is not None and key in cache:
        return cache[key]
    folded = _FOLD.fold(name, value)
    if cache is not None:
        if len(cache) > 512:
            cache.clear()
        cache[key] = folded
    return folded


def _body(text: str) -> tuple[bytes, str] | None:
    """The part's bytes and transfer encoding as Django's ``SafeMIMEText`` with UTF-8 writes
    them, or ``None`` for a body it would encode as quoted-printable (or cannot encode)."""
    try:
        data = _NEWLINES.sub("\r\n", text).encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(data) > RFC5322_EMAIL_LINE_LENGTH_LIMIT and any(
        len(line) > RFC5322_EMAIL_LINE_LENGTH_LIMIT for line in data.split(b"\r\n")
    ):
        return None
    return data, ("7bit" if data.isascii() else "8bit")


class EmailWriter:
    """Writes outbox e-mails; one per delivery batch so the constant headers (From, Subject
    encodings) are folded once."""

    def __init__(self) -> None:
        self.from_email: str = str(settings.DEFAULT_FROM_EMAIL)
        self.envelope_from = sanitize_address(self.from_email, settings.DEFAULT_CHARSET)
        self._localtime = settings.EMAIL_USE_LOCALTIME
        self._cache: dict[tuple[str, str], str] = {}
        self._from_line = self._header_encoded("From", self.from_email)
        self._subjects: dict[str, str] = {}

    def _header_encoded(self, name: str, value: str) -> str:
        # Django's forbid_multi_line_headers, then the generator's fold.
        from django.core.mail.message import forbid_multi_line_headers

        name, value = forbid_multi_line_headers(name, value, settings.DEFAULT_CHARSET)
        return _header(name, str(value), self._cache)

    def message(
        self,
        *,
        to: str,
        rendered: RenderedMessage,
        boundary: str | None = None,
        date: str | None = None,
        message_id: str | None = None,
    ) -> tuple[str, str, bytes] | None:
        """``(envelope from, envelope recipient, message bytes)`` for the SMTP ``sendmail``, or
        ``None`` when this message needs Django's full builder.  ``boundary``, ``date`` and
        ``message_id`` are for comparing with Django's output; by default they are fresh."""
        if settings.DEFAULT_CHARSET.lower() != "utf-8" or self._localtime:
            return None
        if not _SIMPLE_ADDRESS.fullmatch(to) or not rendered.text:
            return None  # (Django leaves an empty text part out)
        text = _body(rendered.text)
        html = _body(rendered.html)
        if text is None or html is None:
            return None
        subject_line = self._subjects.get(rendered.subject)
        if subject_line is None:
            if "\n" in rendered.subject or "\r" in rendered.subject:
                return None  # Django refuses it (BadHeaderError); let it say so
            if len(self._subjects) > 512:
                self._subjects.clear()
            subject_line = self._subjects[rendered.subject] = self._header_encoded(
                "Subject", rendered.subject
            )
        if boundary is None:
            boundary = _boundary()
        marker = "--" + boundary
        while marker in rendered.text or marker in rendered.html:
            # The generator would also pick another one (it checks whole lines only; a
            # substring check is stricter and as valid).
            boundary = _boundary()
            marker = "--" + boundary
        parts = [
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n',
            "MIME-Version: 1.0\r\n",
            subject_line,
            self._from_line,
            _header("To", to),
            _header("Date", date or formatdate()),
            _header("Message-ID", message_id or make_msgid(domain=DNS_NAME)),
        ]
        if rendered.unsubscribe_url:
            url = rendered.unsubscribe_url
            if not url.isascii() or "\n" in url or "\r" in url:
                return None
            parts.append(_header("List-Unsubscribe", f"<{url}>", None))
            parts.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        head = "".join(parts).encode("ascii")
        inner = f"\r\n{marker}\r\n".encode("ascii")
        data = b"".join(
            (
                head,
                b"\r\n",
                marker.encode("ascii"),
                b'\r\nContent-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
                b"Content-Transfer-Encoding: ",
                text[1].encode("ascii"),
                b"\r\n\r\n",
                text[0],
                inner,
                b'Content-Type: text/html; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
                b"Content-Transfer-Encoding: ",
                html[1].encode("ascii"),
                b"\r\n\r\n",
                html[0],
                f"\r\n{marker}--\r\n".encode("ascii"),
            )
        )
        return self.envelope_from, to, data
