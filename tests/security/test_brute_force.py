"""Password guessing is cut off: after 5 failures for one account from one address, even the
right password is refused for the cool-off period."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory

PASSWORD = "correct-horse-battery"


@pytest.fixture
def person(db):
    return UserFactory(email="guessed@example.test", password=PASSWORD)


def login(client, email: str, password: str, ip: str = "203.0.113.7"):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_right_password_signs_in(client, person):
    response = login(client, person.email, PASSWORD)
    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(person.pk)


def test_sixth_attempt_is_refused_even_with_the_right_password(client, person):
    # given five wrong passwords from one address
    for _ in range(5):
        assert login(client, person.email, "wrong-guess").status_code in {200, 429}
    # when the right one follows
    response = login(client, person.email, PASSWORD)
    # then it is refused and no session is created
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_four_failures_do_not_lock_the_account(client, person):
    for _ in range(4):
        assert login(client, person.email, "wrong-guess").status_code == 200
    assert login(client, person.email, PASSWORD).status_code == 302


def test_lockout_ends_after_the_cool_off(client, person):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            login(client, person.email, "wrong-guess")
        assert login(client, person.email, PASSWORD).status_code == 429
        traveller.shift(timedelta(minutes=16))
        assert login(client, person.email, PASSWORD).status_code == 302


def test_lockout_is_per_address_so_the_owner_elsewhere_can_still_sign_in(client, person):
    for _ in range(6):
        login(client, person.email, "wrong-guess", ip="198.51.100.66")
    assert login(client, person.email, PASSWORD, ip="203.0.113.7").status_code == 302


def test_login_failure_logs_never_contain_the_email_address(client, person, caplog):
    with caplog.at_level(logging.DEBUG):
        for _ in range(6):
            login(client, person.email, "wrong-guess")
    assert caplog.records, "axes should log the failures"
    for record in caplog.records:
        assert person.email not in record.getMessage()
        assert "guessed" not in record.getMessage()
