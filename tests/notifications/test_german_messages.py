"""A German-speaking recipient gets the invitation in German (subject, text, HTML and button)."""

from __future__ import annotations

import pytest

from notifications.models import Message
from notifications.rendering import TemplateSet, render_message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_invitation_for_a_german_recipient_is_rendered_in_german(organisation):
    # given an invitation for someone whose language is German
    person = UserFactory(organisation=organisation, full_name="Jana Weber", language="de")
    message = Message(
        organisation=organisation,
        kind="invitation",
        template="invitation",
        recipient=person,
        context={"closes_on": "2026-12-04"},
        sensitive_context={"url": "https://p.test/t/1"},
        idempotency_key="inv-de-1",
    )

    # when it is rendered for e-mail and for chat
    rendered = render_message(
        message, unsubscribe_url="https://p.test/u/1", templates=TemplateSet(), chat=True
    )

    # then subject, body and button are German, with the placeholders filled in
    assert rendered.subject == f"Ihr Check-in bei {organisation.name} ist geöffnet"
    assert rendered.button_label == "Check-in starten"
    assert ">Check-in starten</a>" in rendered.html
    assert "Ein kurzer, anonymer Check-in wartet auf Sie." in rendered.text
    assert "Er ist bis 2026-12-04 geöffnet." in rendered.text
    assert "Er ist bis 2026-12-04 geöffnet." in rendered.chat_text
    assert "Erinnerungen und Zusammenfassungen abbestellen" in rendered.html
    # and no English is left over
    for english in ("check-in is open", "Start the check-in", "waiting for you", "stays open"):
        assert english not in rendered.subject + rendered.text + rendered.html + rendered.chat_text
