"""The employee check-in pages: link exchange, the form, thanks, my check-ins, privacy."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client

from checkins.models import Invitation, InvitationToken, PendingAnswer, Response
from checkins.selectors import invitation_questions
from checkins.services import cycle_close, support_resource_create
from checkins.views import SESSION_LIFETIME, SNAPSHOT_COOKIE
from config.celery import sessions_clear_expired
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN
from tests.factories import UserFactory

DURING = FIRST_OPEN + timedelta(hours=2)


@pytest.fixture(autouse=True)
def _during_the_window():
    with time_machine.travel(DURING, tick=False):
        yield


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters(settings):
    # Own counters per test, also when the cache is a shared Redis.
    settings.RATELIMIT_CACHE_PREFIX = f"rl-test-{uuid.uuid4().hex}:"


def link_token(invitation: Invitation) -> str:
    url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
        "url"
    ]
    return url.rstrip("/").rsplit("/", 1)[-1]


def first_invitation(cycle) -> Invitation:
    return Invitation.objects.filter(cycle=cycle).select_related("cycle").order_by("pk").first()


def started(client: Client, invitation: Invitation):
    """Exchange the invitation's link for a session; returns the redirect response."""
    return client.post(f"/checkin/t/{link_token(invitation)}/")


def form_data(invitation: Invitation, **overrides) -> dict[str, str]:
    data = {
        f"q{q.pk}": str(q.scale_min)
        for q in invitation_questions(invitation=invitation)
        if q.is_scale
    }
    data.update(overrides)
    return data


def assert_private(response) -> None:
    assert "no-store" in response["Cache-Control"]


# --- the link ---------------------------------------------------------------------------------


def test_opening_a_link_shows_a_start_button_without_using_the_link(client, cycle):
    invitation = first_invitation(cycle)
    token = link_token(invitation)

    response = client.get(f"/checkin/t/{token}/")

    assert response.status_code == 200
    assert b"Start check-in" in response.content
    assert response["Referrer-Policy"] == "no-referrer"
    assert_private(response)
    assert token.encode() not in response.content
    assert not InvitationToken.objects.filter(invitation=invitation, used=True).exists()


def test_starting_uses_the_link_and_redirects_to_a_token_free_address(client, cycle):
    invitation = first_invitation(cycle)
    token = link_token(invitation)
    client.get("/checkin/privacy/")
    session_before = client.session.session_key

    response = client.post(f"/checkin/t/{token}/")

    assert response.status_code == 302
    assert response["Location"] == "/checkin/answer/"
    assert token not in response["Location"]
    assert response["Referrer-Policy"] == "no-referrer"
    assert_private(response)
    assert InvitationToken.objects.filter(invitation=invitation, used=True).count() == 1
    assert client.session.session_key != session_before  # rotated: no session fixation


def test_the_session_holds_the_invitation_public_id_not_the_token(client, cycle):
    invitation = first_invitation(cycle)
    token = link_token(invitation)

    started(client, invitation)

    stored = dict(client.session)
    assert token not in repr(stored)
    assert stored["pulse_checkin"]["invitation"] == str(invitation.public_id)


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_unknown_link_gets_a_kind_404(client, cycle, method):
    response = getattr(client, method)("/checkin/t/" + "x" * 43 + "/")

    assert response.status_code == 404
    assert b"This link does not work" in response.content
    assert response["Referrer-Policy"] == "no-referrer"


def test_a_used_link_gets_a_kind_409(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)

    response = Client().get(f"/checkin/t/{link_token(invitation)}/")

    assert response.status_code == 409
    assert b"already been used" in response.content


def test_reopening_a_used_link_in_the_same_browser_offers_to_continue(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)

    response = client.get(f"/checkin/t/{link_token(invitation)}/")

    assert response.status_code == 409
    assert b'href="/checkin/answer/"' in response.content


def test_a_link_of_a_closed_cycle_gets_a_kind_410(client, cycle):
    invitation = first_invitation(cycle)
    token = link_token(invitation)
    with time_machine.travel(cycle.closes_at + timedelta(minutes=1), tick=False):
        cycle_close(cycle=cycle)

        response = client.get(f"/checkin/t/{token}/")

    assert response.status_code == 410
    assert b"has closed" in response.content


def test_an_expired_link_gets_a_kind_410(client, cycle):
    invitation = first_invitation(cycle)
    with time_machine.travel(cycle.closes_at + timedelta(minutes=1), tick=False):
        response = client.get(f"/checkin/t/{link_token(invitation)}/")

    assert response.status_code == 410


def test_tokens_never_reach_the_logs(client, cycle, caplog):
    invitation = first_invitation(cycle)
    token = link_token(invitation)
    caplog.set_level(logging.DEBUG)

    client.get(f"/checkin/t/{token}/")
    client.post(f"/checkin/t/{token}/")
    client.post(f"/checkin/t/{token}/")
    client.post("/checkin/answer/", form_data(invitation))

    assert token not in caplog.text
    assert all(token not in str(r.args) for r in caplog.records)


def test_guessing_links_is_rate_limited_per_client(client, cycle, settings):
    settings.PULSE_TOKEN_GUESS_RATE = "3/m"
    for attempt in range(3):
        assert client.get(f"/checkin/t/{'g' * 40}{attempt:03d}/").status_code == 404

    response = client.get(f"/checkin/t/{'g' * 43}/")

    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert response["Retry-After"] == "60"
    other_client = Client(REMOTE_ADDR="10.1.2.3")
    assert other_client.get(f"/checkin/t/{'h' * 43}/").status_code == 404


def test_real_links_do_not_count_against_the_guess_limit(client, cycle, settings):
    settings.PULSE_TOKEN_GUESS_RATE = "2/m"
    for invitation in Invitation.objects.filter(cycle=cycle)[:4]:
        assert client.get(f"/checkin/t/{link_token(invitation)}/").status_code == 200


# --- the form ---------------------------------------------------------------------------------


def test_the_form_shows_each_item_as_a_labelled_radio_group(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)

    response = client.get("/checkin/answer/")

    assert response.status_code == 200
    assert_private(response)
    html = response.content.decode()
    questions = [q for q in invitation_questions(invitation=invitation) if q.is_scale]
    assert html.count("<fieldset") == len(questions)
    assert html.count("<legend") == len(questions)
    for question in questions:
        assert question.text_in("en") in html
        assert f'id="q{question.pk}-{question.scale_min}"' in html
        assert f'for="q{question.pk}-{question.scale_min}"' in html
    assert "Prefer not to say" in html
    assert 'href="/checkin/privacy/"' in html
    assert '<html lang="en">' in html


def test_required_items_offer_no_prefer_not_to_say(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    required = [q for q in invitation_questions(invitation=invitation) if q.required]
    assert required, "the weekly pulse has a required stress item"

    html = client.get("/checkin/answer/").content.decode()

    assert f'id="q{required[0].pk}-na"' not in html


def test_answering_stores_the_answers_once_and_thanks_with_support_resources(client, cycle):
    support_resource_create(
        organisation=cycle.organisation,
        title="Employee assistance line",
        description="Free, confidential, 24/7.",
        phone="0800 123 456",
    )
    invitation = first_invitation(cycle)
    started(client, invitation)

    response = client.post("/checkin/answer/", form_data(invitation))

    assert response.status_code == 302
    assert response["Location"] == "/checkin/thanks/"
    invitation.refresh_from_db()
    assert invitation.answered
    assert PendingAnswer.objects.count() + Response.objects.count() == 1
    thanks = client.get("/checkin/thanks/")
    assert thanks.status_code == 200
    assert b"Employee assistance line" in thanks.content
    assert b'href="tel:0800123456"' in thanks.content


@pytest.mark.parametrize("path", ["snapshot", "full form"])
def test_the_session_row_never_holds_the_questions_a_person_was_shown(client, cycle, path):
    """That rotation would pick their response out of the team's: it travels in the person's
    own browser (a signed cookie the submit deletes), never in the session's row."""
    support_resource_create(organisation=cycle.organisation, title="Employee assistance line")
    invitation = first_invitation(cycle)
    shown = [int(q) for q in invitation.question_ids]
    started(client, invitation)
    if path == "full form":  # without the cookie the submit takes the form's full path
        del client.cookies[SNAPSHOT_COOKIE]

    def session_row() -> dict:
        return Session.objects.get(session_key=client.session.session_key).get_decoded()

    assert "form" not in session_row()["pulse_checkin"]
    assert repr(shown)[1:-1] not in repr(session_row())

    response = client.post("/checkin/answer/", form_data(invitation))

    assert response.status_code == 302
    assert response.cookies[SNAPSHOT_COOKIE]["max-age"] == 0  # deleted in the browser
    assert repr(shown)[1:-1] not in repr(session_row())
    thanks = client.get("/checkin/thanks/")
    assert b"Employee assistance line" in thanks.content


def test_expired_sessions_are_swept_by_the_beat_task(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    key = client.session.session_key
    Client().get("/checkin/privacy/")

    with time_machine.travel(DURING + SESSION_LIFETIME + timedelta(minutes=1), tick=False):
        sessions_clear_expired()

    assert not Session.objects.filter(session_key=key).exists()


def test_prefer_not_to_say_and_skipped_items_are_left_out(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    optional = [
        q for q in invitation_questions(invitation=invitation) if q.is_scale and not q.required
    ]
    data = form_data(invitation, **{f"q{optional[0].pk}": "na"})
    del data[f"q{optional[1].pk}"]

    response = client.post("/checkin/answer/", data)

    assert response.status_code == 302
    answers = PendingAnswer.objects.get().answers
    assert str(optional[0].pk) not in answers and str(optional[1].pk) not in answers


@pytest.mark.parametrize("bad_value", ["99", "-1", "lots", "2.5", ""])
def test_a_bad_value_shows_the_form_again_naming_the_item_and_stores_nothing(
    client, cycle, bad_value
):
    invitation = first_invitation(cycle)
    started(client, invitation)
    required = next(q for q in invitation_questions(invitation=invitation) if q.required)
    data = form_data(invitation, **{f"q{required.pk}": bad_value})

    response = client.post("/checkin/answer/", data)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="error-summary"' in html
    assert f'id="q{required.pk}-error"' in html
    assert f'href="#q{required.pk}-{required.scale_min}"' in html
    invitation.refresh_from_db()
    assert not invitation.answered
    assert PendingAnswer.objects.count() == 0 and Response.objects.count() == 0


def test_the_form_keeps_valid_choices_when_shown_again(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    questions = [q for q in invitation_questions(invitation=invitation) if q.is_scale]
    required = next(q for q in questions if q.required)
    other = next(q for q in questions if not q.required)
    data = form_data(invitation, **{f"q{required.pk}": "", f"q{other.pk}": str(other.scale_max)})

    html = client.post("/checkin/answer/", data).content.decode()

    assert f'id="q{other.pk}-{other.scale_max}" value="{other.scale_max}" checked' in html


def test_a_second_submit_gets_the_already_received_page(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    data = form_data(invitation)
    client.post("/checkin/answer/", data)

    response = client.post("/checkin/answer/", data)

    assert response.status_code == 409
    assert b"We already have your answers" in response.content
    assert PendingAnswer.objects.count() + Response.objects.count() == 1


def test_the_form_without_a_started_check_in_explains_the_timeout(client, cycle):
    response = client.get("/checkin/answer/")

    assert response.status_code == 403
    assert b"timed out" in response.content


def test_a_started_check_in_ends_after_two_hours(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)

    with time_machine.travel(DURING + timedelta(hours=2, minutes=1), tick=False):
        response = client.get("/checkin/answer/")

    assert response.status_code == 403


def test_an_oversized_post_is_refused_with_413_and_nothing_stored(client, cycle):
    invitation = first_invitation(cycle)
    started(client, invitation)
    data = form_data(invitation, padding="x" * 70_000)

    response = client.post("/checkin/answer/", data)

    assert response.status_code == 413
    assert PendingAnswer.objects.count() == 0


def test_a_wrong_csrf_token_gets_a_friendly_403_and_nothing_stored(cycle):
    client = Client(enforce_csrf_checks=True)
    invitation = first_invitation(cycle)
    client.post(f"/checkin/t/{link_token(invitation)}/")  # exempt: the token is the proof

    response = client.post(
        "/checkin/answer/", form_data(invitation, csrfmiddlewaretoken="forged" * 6)
    )

    assert response.status_code == 403
    assert b"Please try again" in response.content
    assert PendingAnswer.objects.count() == 0


def test_the_form_is_shown_in_the_persons_language(client, cycle):
    invitation = first_invitation(cycle)
    invitation.user.language = "de"
    invitation.user.save(update_fields=["language"])
    started(client, invitation)

    html = client.get("/checkin/answer/").content.decode()

    assert '<html lang="de">' in html
    question = next(q for q in invitation_questions(invitation=invitation) if q.is_scale)
    assert question.text_in("de") in html
    assert "Keine Angabe" in html  # "Prefer not to say"
    assert "Antworten senden" in html


# --- comments ---------------------------------------------------------------------------------


@pytest.fixture
def comments_on(cycle):
    organisation = cycle.organisation
    organisation.comments_enabled = True
    organisation.save(update_fields=["comments_enabled"])
    return cycle


def test_a_comment_is_warned_about_and_needs_confirmation(client, comments_on):
    invitation = first_invitation(comments_on)
    started(client, invitation)
    html = client.get("/checkin/answer/").content.decode()
    assert 'id="comment-warning"' in html and 'aria-describedby="comment-warning' in html

    response = client.post("/checkin/answer/", form_data(invitation, comment="Too many tickets"))

    assert response.status_code == 400
    assert b"confirm" in response.content
    assert PendingAnswer.objects.count() == 0


def test_a_confirmed_comment_is_stored(client, comments_on):
    invitation = first_invitation(comments_on)
    started(client, invitation)

    response = client.post(
        "/checkin/answer/",
        form_data(invitation, comment="Too many tickets", comment_confirmed="on"),
    )

    assert response.status_code == 302
    assert PendingAnswer.objects.get().comment == "Too many tickets"


def test_an_overlong_comment_is_refused_and_nothing_stored(client, comments_on):
    invitation = first_invitation(comments_on)
    started(client, invitation)

    response = client.post(
        "/checkin/answer/",
        form_data(invitation, comment="a" * 1001, comment_confirmed="on"),
    )

    assert response.status_code == 400
    assert b'id="comment-error"' in response.content
    assert PendingAnswer.objects.count() == 0


# --- signed in --------------------------------------------------------------------------------


def test_my_check_ins_lists_open_invitations_and_answers_from_there(client, cycle):
    invitation = first_invitation(cycle)
    client.force_login(invitation.user)

    page = client.get("/checkin/mine/")
    assert page.status_code == 200
    url = f"/checkin/cycle/{cycle.public_id}/"
    assert url.encode() in page.content

    response = client.post(url, form_data(invitation))

    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.answered
    page = client.get("/checkin/mine/")
    assert url.encode() not in page.content
    assert b"Answered" in page.content


def test_my_check_ins_needs_a_sign_in(client, db):
    response = client.get("/checkin/mine/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_someone_not_invited_cannot_answer_a_cycle(client, cycle):
    client.force_login(UserFactory(organisation=cycle.organisation))

    response = client.get(f"/checkin/cycle/{cycle.public_id}/")

    assert response.status_code == 404


def test_a_cycle_of_another_organisation_is_not_found(client, cycle):
    client.force_login(UserFactory())

    response = client.get(f"/checkin/cycle/{cycle.public_id}/")

    assert response.status_code == 404


# --- privacy ----------------------------------------------------------------------------------


def test_the_privacy_page_is_public_and_names_the_threshold(client, db, settings):
    response = client.get("/checkin/privacy/")

    assert response.status_code == 200
    assert f"at least {settings.PULSE_DEFAULT_ANONYMITY_THRESHOLD} people".encode() in (
        response.content
    )


def test_the_privacy_page_shows_the_organisations_threshold_when_signed_in(client, db):
    user = UserFactory()
    user.organisation.anonymity_threshold = 7
    user.organisation.comment_threshold = 9
    user.organisation.save()
    client.force_login(user)

    html = client.get("/checkin/privacy/").content.decode()

    assert "at least 7 people" in html and "at least 9 people" in html


def test_a_broken_link_page_follows_the_browser_language(client, db):
    response = client.get("/checkin/t/" + "x" * 43 + "/", HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")

    assert response.status_code == 404
    assert "Dieser Link funktioniert nicht" in response.content.decode()
    assert response["Content-Language"] == "de"


def test_the_privacy_page_is_translated_and_names_the_retention(client, db, settings):
    settings.PULSE_RESPONSE_RETENTION_DAYS = 400
    user = UserFactory(language="de")
    client.force_login(user)

    html = client.get("/checkin/privacy/").content.decode()

    assert "Was wir über Sie speichern" in html
    assert "400 Tage" in html
