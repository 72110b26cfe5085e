"""Signing in: a person sets (or resets) their password from a one-time link sent by e-mail.

People imported into Pulse have no password: leads and admins choose one with the same link a
forgotten password uses, asked for on the sign-in page or sent by an admin from the people
page (``sign_in_link_send_for``, audited).  The link is Django's password-reset link (it stops working once the password changes or
after ``PASSWORD_RESET_TIMEOUT``); it goes through the notifications outbox like every other
e-mail, in the outbox's erased-after-sending ``sensitive_context``, and is never logged
(``config.log_redaction``).

The request page says the same thing whether or not an account exists, and says it before
looking the address up (the lookup and the link follow once the answer has gone out, so its
timing tells nothing either); asking too often (per address, per account) quietly sends nothing
more, so the page neither tells who has an account nor serves to flood someone's inbox.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse, reverse_lazy
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from config.security import client_ip, rate_usage

from .errors import ServiceError
from .models import User

logger = logging.getLogger("pulse.accounts")

RATE_GROUP = "accounts.sign_in_link"


def can_sign_in(user: User) -> bool:
    """Active and in an organisation (operators set their password with ``manage.py
    changepassword``); ``SignInLinkForm.get_users`` asks the same of the database."""
    return user.is_active and user.organisation_id is not None


def sign_in_link_url(user: User) -> str:
    """The one-time link at which ``user`` chooses a password (valid until it is used, the
    password changes, or ``PASSWORD_RESET_TIMEOUT`` passes)."""
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return f"{settings.SITE_URL}{path}"


def sign_in_link_send(*, user: User) -> bool:
    """Put a sign-in link for ``user`` in the outbox, in the caller's transaction.  False (and
    nothing queued) for a person who cannot sign in (``can_sign_in``)."""
    from notifications.models import Kind
    from notifications.services import OutgoingMessage, message_enqueue

    if not can_sign_in(user):
        return False
    assert user.organisation_id is not None  # can_sign_in
    message_enqueue(
        OutgoingMessage(
            organisation_id=user.organisation_id,
            kind=Kind.ACCOUNT,
            recipient_id=user.pk,
            template="account",
            context={},
            sensitive_context={"url": sign_in_link_url(user)},
            idempotency_key=f"account:{user.public_id}:sign-in:{uuid.uuid4()}",
        )
    )
    logger.info("event=sign_in_link_queued user=%s", user.public_id)
    return True


@transaction.atomic
def sign_in_link_send_for(*, person: User, actor: User) -> None:
    """An admin sends ``person`` a sign-in link (e.g. a newly named lead), recorded in the
    organisation's audit log; ``ServiceError`` when the person cannot sign in."""
    from .audit import audit_record

    if person.organisation is None or not sign_in_link_send(user=person):
        raise ServiceError("invalid", f"{person} is deactivated and cannot sign in.")
    audit_record(
        organisation=person.organisation,
        actor=actor,
        action="person.sign_in_link",
        target=person,
        before=None,
        after={"sent_to": person.email},
    )


def _within_rate(request: HttpRequest, *, key: str | None, rate: str) -> bool:
    """Count one request against ``key`` (None: the client's address); False once its rate is
    used up.  A cache that is down lets the request through (a link still only reaches the
    account's own inbox)."""
    usage = rate_usage(
        request,
        group=RATE_GROUP,
        key="ip" if key is None else (lambda _group, _request: key),
        rate=rate,
        increment=True,
    )
    return usage is None or not usage["should_limit"]


class SignInLinkForm(PasswordResetForm):
    """Django's password-reset form, sending through the outbox, for every active person of an
    organisation (also those who never had a password)."""

    def get_users(self, email: str):  # noqa: ANN201 - Django's signature
        return User.objects.filter(
            email__iexact=email, is_active=True, organisation__isnull=False
        ).iterator()

    def save(self, *, request: HttpRequest | None = None, **kwargs) -> None:  # type: ignore[override]
        email = self.cleaned_data["email"]
        for user in self.get_users(email):
            if request is not None and not _within_rate(
                request, key=f"user:{user.public_id}", rate=settings.PULSE_SIGN_IN_LINK_RATE
            ):
                logger.info("event=sign_in_link_rate_limited user=%s", user.public_id)
                continue
            sign_in_link_send(user=user)


class _RedirectThenSend(HttpResponseRedirect):
    """The answer to a request for a link, which looks the address up and queues the link only
    once it has gone out (the server closes a response after sending it), so its timing cannot
    tell whether the address has an account."""

    def __init__(self, url: str, *, send: Callable[[], None]) -> None:
        super().__init__(url)
        self._send = send

    def close(self) -> None:
        try:
            self._send()
        except Exception as exc:  # the answer is sent already; never the address in the log
            logger.error("event=sign_in_link_failed error=%s", type(exc).__name__)
        finally:
            super().close()


class SignInLinkRequestView(auth_views.PasswordResetView):
    form_class = SignInLinkForm
    template_name = "registration/password_reset_form.html"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        if not _within_rate(
            self.request,
            key=None,
            rate=settings.PULSE_SIGN_IN_LINK_ADDRESS_RATE,
        ):
            # The same answer as a sent link: the page must not tell who has an account.
            logger.info("event=sign_in_link_address_rate_limited")
            return HttpResponseRedirect(self.get_success_url())
        request = self.request
        return _RedirectThenSend(self.get_success_url(), send=lambda: form.save(request=request))


class SignInLinkConfirmView(auth_views.PasswordResetConfirmView):
    """Django's page behind the link, for a person who can still sign in: a link sent before
    the person was deactivated (or left every organisation) no longer works.  Choosing the
    password ends this browser's sign-in lockout for the account (django-axes counts failures
    per account and client address): the link proved the inbox, and the person who forgot
    the password is the one who was locked out guessing it."""

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        response = super().form_valid(form)
        AxesProxyHandler.reset_attempts(
            ip_address=client_ip(self.request), username=form.user.get_username()
        )
        return response

    def get_user(self, uidb64: str) -> User | None:  # type: ignore[override]
        user = super().get_user(uidb64)
        return user if user is not None and can_sign_in(user) else None
