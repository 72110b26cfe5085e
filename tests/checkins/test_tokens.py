"""One-time links: a time-ordered selector and 256 random bits, stored only as the selector and a
keyed hash, single use, dead with the cycle."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import override_settings

from checkins import services
from checkins.models import Invitation, InvitationToken
from checkins.tokens import (
    SELECTOR_CHARS,
    TOKEN_CHARS,
    checkin_link,
    token_hash,
    token_matches,
    token_minter,
    token_new,
    token_selector,
)
from notifications.models import Message
from tests.checkins.conftest import FIRST_OPEN
from wellbeing.errors import ServiceError


def link_token(invitation: Invitation) -> str:
    url = Message.objects.get(idempotency_key=f"inv:{invitation.public_id}").sensitive_context[
        "url"
    ]
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_tokens_have_at_least_128_random_bits_and_are_stored_only_as_hmac():
    token, selector, hashed = token_new()
    # a selector (16 bytes) then a secret of 32 random bytes, both URL-safe
    assert len(token) == TOKEN_CHARS == 22 + 43 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert token_selector(token) == selector and selector.version == 7
    assert hashed == token_hash(token) and len(hashed) == 64 and token not in hashed
    other = token[:-1] + ("B" if token.endswith("A") else "A")
    assert token_matches(token, hashed) and not token_matches(other, hashed)
    with override_settings(PULSE_TOKEN_HMAC_KEY="another-key"):
        assert token_hash(token) != hashed  # keyed: a DB copy alone cannot test guesses


def test_bulk_minted_tokens_hash_exactly_like_single_ones_and_their_selectors_increase():
    mint = token_minter()
    minted = [mint() for _ in range(50)]
    assert all(hashed == token_hash(token) for token, _, hashed in minted)
    assert all(token_selector(token) == selector for token, selector, _ in minted)
    assert len({token[SELECTOR_CHARS:] for token, _, _ in minted}) == 50  # distinct secrets
    selectors = [selector for _, selector, _ in minted]
    assert selectors == sorted(selectors) and len(set(selectors)) == 50
    with override_settings(PULSE_TOKEN_HMAC_KEY="another-key"):
        token, _, hashed = token_minter()()
        assert hashed == token_hash(token)


@pytest.mark.parametrize(
    "token",
    ["", "x" * 43, "x" * 64, "x" * 66, "!" * 22 + "x" * 43, "é" * 22 + "x" * 43],
)
def test_what_is_not_a_selector_and_a_secret_has_no_selector(token):
    assert token_selector(token) is None


def test_the_link_is_built_on_site_url():
    with override_settings(SITE_URL="https://pulse.example"):
        assert checkin_link("abc") == "https://pulse.example/checkin/t/abc/"


def test_only_the_selector_and_a_keyed_hash_of_a_link_are_stored(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).first()
    token = link_token(invitation)
    row = InvitationToken.objects.get(selector=token_selector(token))
    assert row.invitation == invitation and row.token_hash == token_hash(token)
    stored = repr(list(InvitationToken.objects.values_list()))
    assert token not in stored and token[SELECTOR_CHARS:] not in stored


def test_an_opening_stores_its_tokens_in_selector_order(cycle):
    selectors = list(
        InvitationToken.objects.filter(invitation__cycle=cycle)
        .order_by("pk")
        .values_list("selector", flat=True)
    )
    assert len(selectors) == Invitation.objects.filter(cycle=cycle).count() > 1
    assert selectors == sorted(selectors)


def test_a_link_with_a_known_selector_and_another_secret_is_unknown(cycle):
    token = link_token(Invitation.objects.filter(cycle=cycle).first())
    forged = token[:SELECTOR_CHARS] + token_new()[0][SELECTOR_CHARS:]
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=forged, now=FIRST_OPEN + timedelta(hours=1))
    assert err.value.code == "unknown"
    assert not InvitationToken.objects.filter(used=True).exists()


def test_a_link_minted_before_selectors_still_resolves_once(cycle):
    invitation = Invitation.objects.filter(cycle=cycle).last()
    token = secrets.token_urlsafe(32)  # the earlier form: the secret alone
    InvitationToken.objects.create(invitation=invitation, token_hash=token_hash(token))
    now = FIRST_OPEN + timedelta(hours=1)
    assert services.invitation_from_token(token=token, now=now) == invitation
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=now)
    assert err.value.code == "used"


def test_a_selector_row_is_not_found_by_its_hash_alone(cycle):
    """A 43-character guess is looked up among rows without a selector only."""
    invitation = Invitation.objects.filter(cycle=cycle).first()
    token = secrets.token_urlsafe(32)
    InvitationToken.objects.create(
        invitation=invitation, selector=token_new()[1], token_hash=token_hash(token)
    )
    with pytest.raises(ServiceError) as err:
        services.invitation_from_token(token=token, now=FIRST_OPEN + timedelta(hours=1))
    assert err.value.code == "unknown"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's index definitions")
def test_only_rows_without_a_selector_are_indexed_by_hash(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'checkins_invitationtoken'"
        )
        definitions = [row[0] for row in cursor.fetchall()]
    by_hash = [d for d in definitions if "(token_hash)" in d]
    assert len(by_hash) == 1 and "WHERE (selector IS NULL)" in by_hash[0]
    assert any("UNIQUE INDEX" in d and "(selector)" in d for d in definitions)


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
