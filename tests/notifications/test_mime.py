"""The directly written e-mail bytes are exactly what Django's SMTP backend would send."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notifications.mime import EmailWriter
from notifications.rendering import RenderedMessage
from notifications.services import email_build

UNSUBSCRIBE = (
    "http://localhost:8000/notifications/unsubscribe/"
    "0123456789abcdef0123456789abcdef:AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab/"
)


def rendered(
    subject="Your check-in is open",
    text="Hello\n\nAnswer by Friday.",
    html=None,
    unsubscribe_url=UNSUBSCRIBE,
):
    return RenderedMessage(
        subject=subject,
        text=text,
        html=html if html is not None else "<p>Hello &amp; welcome</p>\n",
        chat_text="",
        button_label="Start",
        button_url="https://pulse.example/t/1",
        unsubscribe_url=unsubscribe_url,
    )


def django_bytes(to: str, message: RenderedMessage) -> bytes:
    return email_build(to=to, rendered=message).message().as_bytes(linesep="\r\n")


def direct_bytes_like(django: bytes, to: str, message: RenderedMessage) -> bytes | None:
    boundary = re.search(rb'boundary="([^"]+)"', django).group(1).decode()
    date = re.search(rb"\r\nDate: ([^\r]+)\r\n", django).group(1).decode()
    message_id = re.search(rb"\r\nMessage-ID: ([^\r]+)\r\n", django).group(1).decode()
    built = EmailWriter().message(
        to=to, rendered=message, boundary=boundary, date=date, message_id=message_id
    )
    return None if built is None else built[2]


@pytest.mark.parametrize(
    "message",
    [
        rendered(),
        rendered(subject="Votre point hebdomadaire est ouvert — répondez avant vendredi"),
        rendered(subject="A" * 120),
        rendered(subject="word " * 30),
        rendered(text="Grüße\r\nzeile zwei\rdrei\n", html="<p>é</p>"),
        rendered(text="ends with newlines\n\n", html=""),
        *(rendered(unsubscribe_url="https://x.test/" + "u" * n) for n in (20, 45, 60, 61, 62, 200)),
        rendered(unsubscribe_url="https://x.test/a,b;c?" + "u" * 90),
        rendered(unsubscribe_url=""),
    ],
)
def test_direct_email_bytes_equal_djangos(message):
    # given a rendered message, when written directly and by Django's generator with the same
    # boundary, Date and Message-ID, then the bytes are identical
    django = django_bytes("person@example.test", message)
    assert direct_bytes_like(django, "person@example.test", message) == django


def test_envelope_is_djangos_sanitised_sender_and_the_plain_recipient(settings):
    settings.DEFAULT_FROM_EMAIL = "Pulse Team <pulse@example.test>"
    built = EmailWriter().message(to="a.b+c@example.test", rendered=rendered())
    assert built is not None
    assert built[:2] == ("Pulse Team <pulse@example.test>", "a.b+c@example.test")
    assert b"\r\nFrom: Pulse Team <pulse@example.test>\r\n" in built[2]


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("jörg@example.test", rendered()),  # non-ASCII address: Django's sanitising
        ("Name <x@example.test>", rendered()),
        ("x@example.test", rendered(text="x" * 1200)),  # quoted-printable body
        ("x@example.test", rendered(subject="line\nbreak")),
        (
            "x@example.test",
            rendered(text=""),
        ),  # Django sends the HTML part alone  # Django raises BadHeaderError
    ],
)
def test_unusual_messages_are_left_to_django(to, message):
    assert EmailWriter().message(to=to, rendered=message) is None


@settings(max_examples=60, deadline=None)
@given(
    subject=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=90).map(
        lambda s: " ".join(s.split())
    ),
    text=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
    html=st.text(st.characters(blacklist_categories=("Cs",)), max_size=300),
    local=st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,40}[a-z0-9]", fullmatch=True),
)
def test_direct_email_bytes_equal_djangos_for_any_text(subject, text, html, local):
    to = f"{local}@example.test"
    message = rendered(subject=subject, text=text, html=html)
    django = django_bytes(to, message)
    direct = direct_bytes_like(django, to, message)
    assert direct is None or direct == django
