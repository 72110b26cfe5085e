"""One-time links: 256 random bits, stored only as a keyed hash, single use, dead with the cycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings

from checkins import services
from checkins.models import Invitation, InvitationToken
from checkins.tokens import checkin_link, token_hash, token_minter, token_new
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN
from wellbeing.errors import ServiceError


def link_token(invitation: Invitation) -> str:
    url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
        "url"
    ]
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_tokens_have_at_least_128_bits_and_are_stored_only_as_hmac():
    token, hashed = token_new()
    assert len(token) >= 43  # 32 bytes urlsafe-base64
    assert hashed == token_hash(token) and len(hashed) == 64 and token not in hashed
    with override_settings(PULSE_TOKEN_HMAC_KEY="another-key"):
        assert token_hash(token) != hashed  # keyed: a DB copy alone cannot test guesses


def test_bulk_minted_tokens_hash_exactly_like_single_ones_and_are_distinct():
    mint = token_minter()
    pairs = [mint() for _ in range(50)]
    assert all(hashed == token_hash(token) for token, hashed in pairs)
    assert len({token for token, _ in pairs}) == 50
    with override_settings(PULSE_TOKEN_HMAC_KEY="another-key"):
        token, hashed = token_minter()()
        assert hashed == token_hash(token)


def test_the_link_is_built_on_site_url():
    with override_settings(SITE_URL="https://pulse.example"):
        assert checkin_link("abc") == "https://pulse.example/checkin/t/abc/"


def test_no_plain_token_is_stored_in_check_in_tables(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    token = link_token(invitation)
    stored = list(InvitationToken.objects.values_list("token_hash", flat=True))
    assert token not in stored and token_hash(token) in stored


def test_a_link_resolves_once_then_reports_used(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    token = link_token(invitation)
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        assert services.invitation_from_token(token=token, consume=False) == invitation
        assert services.invitation_from_token(token=token) == invitation
        with pytest.raises(ServiceError) as err:
            services.invitation_from_token(token=token)
    assert err.value.code == "used" and err.value.status == 409


@pytest.mark.parametrize("token", ["", "short", "x" * 43, "y" * 500])
def test_unknown_links_are_refused(cycle, token):
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=FIRST_OPEN + timedelta(hours=1))
    assert err.value.code == "unknown"


def test_a_link_expires_with_the_cycle_window(cycle):
    token = link_token(Invitation.objects.filter(cycle=cycle).first())
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=cycle.closes_at)
    assert err.value.code == "expired"


def test_a_link_of_a_closed_cycle_is_refused(cycle):
    token = link_token(Invitation.objects.filter(cycle=cycle).first())
    services.cycle_close(cycle=cycle, now=cycle.closes_at)
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=FIRST_OPEN + timedelta(hours=1))
    assert err.value.code == "closed"


def test_a_link_of_an_answered_invitation_reports_used(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    token = link_token(invitation)
    Invitation.objects.filter(pk=invitation.pk).update(answered=True)
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=FIRST_OPEN + timedelta(hours=1))
    assert err.value.code == "used"


def test_signed_in_people_find_their_invitation(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    now = FIRST_OPEN + timedelta(hours=1)
    assert services.invitation_for_user(user=invitation.user, cycle=cycle, now=now) == invitation
    Invitation.objects.filter(pk=invitation.pk).update(answered=True)
    with pytest.raises(ServiceError) as err:
        services.invitation_for_user(user=invitation.user, cycle=cycle, now=now)
    assert err.value.code == "already_received"
