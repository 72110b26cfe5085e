"""A whole check-in, from the invitation e-mail to the closed cycle, with every logger at DEBUG:
no record carries a token, an answer, a comment or an e-mail address."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from checkins import services as checkin_services
from checkins.forms import field_name_for
from checkins.models import InvitationToken, Response
from checkins.selectors import invitation_questions
from checkins.tokens import SELECTOR_CHARS, token_hash, token_selector
from notifications.models import Kind, Message
from notifications.services import outbox_deliver_due
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory, team_with_members
from wellbeing.models import Membership

COMMENT = "my boss shouts at me 7f3a9c"
LINK = re.compile(r"/checkin/t/([^/\s\"<]+)/")


@pytest.fixture
def every_logger_at_debug(caplog, settings):
    """As if the operator ran with LOG_LEVEL=DEBUG: every logger at DEBUG except those the
    LOGGING setting pins on purpose (they are part of what is being tested)."""
    pinned = set(settings.LOGGING.get("loggers", {}))
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        if name not in pinned and not any(name.startswith(p + ".") for p in pinned):
            caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_pinned_loggers_stay_above_debug(settings):
    # django.template at DEBUG dumps whole template contexts (one-time links included)
    assert logging.getLogger("django.template").getEffectiveLevel() > logging.DEBUG


def record_texts(records) -> list[str]:
    texts = []
    for record in records:
        texts.append(record.getMessage())
        texts.append(repr(record.args))
        texts.append(repr({k: v for k, v in vars(record).items() if k not in {"msg", "args"}}))
    return texts


def test_a_whole_checkin_logs_no_token_answer_or_email(client, db, every_logger_at_debug):
    caplog = every_logger_at_debug
    # given an organisation with comments on and a team of six
    organisation = OrganisationFactory(anonymity_threshold=5, comments_enabled=True)
    team = team_with_members(organisation=organisation, size=6, name="Care Desk")
    survey = ensure_library()
    emails = list(Membership.objects.filter(team=team).values_list("user__email", flat=True))
    schedule = make_schedule(organisation=organisation, teams=[team], survey=survey)
    answers_sent: list[dict[str, str]] = []
    tokens: list[str] = []
    with time_machine.travel(FIRST_OPEN, tick=False) as traveller:
        # when the cycle opens and the invitation e-mails go out through the outbox
        cycle = open_cycle(schedule, at=FIRST_OPEN)
        traveller.shift(timedelta(hours=1))
        ids = list(Message.objects.filter(kind=Kind.INVITATION).values_list("pk", flat=True))
        outbox_deliver_due(message_ids=ids)
        assert len(mail.outbox) == 6
        for sent in mail.outbox:
            tokens.append(LINK.search(sent.body).group(1))
        # and each person exchanges their link and answers through the form
        for token in tokens:
            client.cookies.clear()
            assert client.post(f"/checkin/t/{token}/").status_code == 302
            invitation = InvitationToken.objects.get(token_hash=token_hash(token)).invitation
            questions = invitation_questions(invitation=invitation)
            form = {field_name_for(q): str(q.scale_max) for q in questions if q.is_scale}
            form["comment"] = COMMENT
            form["comment_confirmed"] = "on"
            response = client.post(reverse("checkins:answer"), form)
            assert response.status_code == 302, response.content.decode()[:2000]
            answers_sent.append(form)
    # and the cycle releases and closes
    checkin_services.pending_release(cycle=cycle, force=True)
    assert checkin_services.cycle_close(cycle=cycle, now=cycle.closes_at)
    assert Response.objects.filter(cycle=cycle).count() == 6
    # then no log record holds any of it
    texts = record_texts(caplog.records)
    assert len(texts) > 10, "the flow should have logged something"
    selectors = [token[:SELECTOR_CHARS] for token in tokens]
    selectors += [str(token_selector(token)) for token in tokens]
    secrets = [*tokens, *selectors, *emails, *(e.split("@")[0] for e in emails), COMMENT]
    for form in answers_sent:
        scale_only = {k: v for k, v in form.items() if k.startswith("q")}
        secrets += [json.dumps(scale_only), repr(scale_only)]
    leaks = [(s, t[:200]) for s in secrets for t in texts if s in t]
    assert leaks == []
