"""The admin shows configuration and counts, never answers or token hashes."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from checkins.models import Invitation, InvitationToken, PendingAnswer, Question, Response
from wellbeing.models import User


@pytest.fixture
def operator_client(client, db):
    user = User.objects.create_superuser(email="operator@example.test", password="x-very-long-pw")
    client.force_login(user)
    return client


def test_answers_and_tokens_have_no_admin():
    for model in (Response, PendingAnswer, InvitationToken):
        assert not admin.site.is_registered(model)


@pytest.mark.parametrize(
    "model", ["question", "survey", "schedule", "cycle", "invitation", "supportresource"]
)
def test_changelists_render(operator_client, cycle, model):
    response = operator_client.get(reverse(f"admin:checkins_{model}_changelist"))
    assert response.status_code == 200


def test_invitation_page_shows_no_token_hash(operator_client, cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    page = operator_client.get(reverse("admin:checkins_invitation_change", args=[invitation.pk]))
    assert page.status_code == 200
    for token in InvitationToken.objects.filter(invitation=invitation):
        assert token.token_hash not in page.content.decode()


def test_cycle_list_hides_participation_below_k(operator_client, cycle):
    page = operator_client.get(reverse("admin:checkins_cycle_changelist")).content.decode()
    assert "fewer than 5" in page


def test_library_questions_are_read_only(operator_client, weekly_pulse):
    question = Question.objects.filter(organisation__isnull=True).first()
    page = operator_client.get(reverse("admin:checkins_question_change", args=[question.pk]))
    assert page.status_code == 200
    assert 'name="text"' not in page.content.decode()
