"""Single sign-on with OpenID Connect: the provider vouches for an e-mail address, Pulse signs
in the active person of an organisation who has it.

mozilla-django-oidc does the protocol (Authorization Code flow with PKCE and a nonce, the ID
token's signature checked against the provider's keys); this module decides who may come in.
Nobody is created: people come from the admins' import, and an address the provider has not
verified, or that no active person has, is turned back to the sign-in page with the same words
whatever the reason, so the page tells nobody which addresses have an account.

Never logged: the code, the state, tokens, claims or the e-mail address (the callback's query
string is redacted from access logs by ``config.log_redaction``).
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationRequestView

from .accounts import can_sign_in
from .models import User

logger = logging.getLogger("pulse.sso")

# The session of a signed-in person records this backend (it loads the user and drops a
# deactivated one); the OIDC backend itself is not in AUTHENTICATION_BACKENDS, so a password
# sign-in can never wander into a token exchange.
SESSION_BACKEND = "django.contrib.auth.backends.ModelBackend"


def sso_enabled() -> bool:
    return bool(getattr(settings, "PULSE_SSO_ENABLED", False))


def refused_message() -> str:
    return _(
        "Your organisation has not given this account access to Pulse. "
        "Please ask your Pulse administrator, or sign in with your e-mail and password."
    )


class PulseOIDCBackend(OIDCAuthenticationBackend):
    """The provider's verified e-mail claim, matched case-insensitively to an active person."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        email = claims.get("email")
        # Providers that say whether they checked the address must say they did (some send the
        # boolean as a string); an unverified address could be anyone's.
        verified = claims.get("email_verified", True)
        return isinstance(email, str) and "@" in email and verified in (True, "true", "True")

    def filter_users_by_claims(self, claims: dict[str, Any]):  # noqa: ANN201 - a QuerySet
        email = (claims.get("email") or "").strip()
        # ``can_sign_in``, asked of the database: active and in an organisation
        return User.objects.filter(email__iexact=email, is_active=True, organisation__isnull=False)

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return "the provider's account"  # the library logs this: never the address

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        payload = super().verify_token(token, **kwargs)
        # The library leaves the audience unchecked: an ID token must be meant for this client.
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token audience is not this client")
        return payload

    def raise_token_response_error(self, response: requests.Response) -> None:
        # The library's message quotes the provider's answer; keep it out of error reports.
        if response.status_code != 200:
            raise requests.HTTPError(
                f"token endpoint answered {response.status_code}", response=response
            )


class SignInView(auth_views.LoginView):
    """Django's sign-in page, with the single sign-on button when it is configured."""

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_enabled"] = sso_enabled()
        context["sso_provider_name"] = getattr(settings, "PULSE_SSO_PROVIDER_NAME", "")
        return context


class SSOStartView(OIDCAuthenticationRequestView):
    """Sends the browser to the provider (state, nonce and PKCE verifier kept in the session;
    ``next`` kept only if it is an address on this site)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The library reads its settings here; without single sign-on there are none to read.
        if sso_enabled():
            super().__init__(*args, **kwargs)
        else:
            View.__init__(self, *args, **kwargs)

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404
        return super().get(request)


class SSOCallbackView(View):
    """The provider sends the browser back here with ``code`` and ``state``."""

    http_method_names = ["get"]

    def get(self, request: HttpRequest) -> HttpResponse:
        if not sso_enabled():
            raise Http404
        states = request.session.get("oidc_states")
        state = request.GET.get("state", "")
        if not isinstance(states, dict) or state not in states:
            # Not a sign-in this browser started (or one already finished): start again.
            logger.info("event=sso_refused reason=unknown_state")
            return self.refused(request, refused_message())
        # One use only: the state, nonce and verifier go before the code is exchanged.
        pending = states.pop(state)
        request.session["oidc_states"] = states
        next_url = request.session.pop("oidc_login_next", None)
        if request.GET.get("error") or not request.GET.get("code"):
            logger.info("event=sso_refused reason=provider_error")
            return self.refused(request, refused_message())

        try:
            person = PulseOIDCBackend().authenticate(
                request, nonce=pending.get("nonce"), code_verifier=pending.get("code_verifier")
            )
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError) as exc:
            logger.warning("event=sso_failed reason=%s", type(exc).__name__)
            person = None
        if person is None or not can_sign_in(person):
            logger.info("event=sso_refused reason=no_access")
            return self.refused(request, refused_message())

        # The provider proved who this is, so a password lock-out is no guessing to stop; but a
        # person locked out on this address stays out until it ends, whichever way they come.
        if not AxesProxyHandler.is_allowed(request, {"username": person.email}):
            logger.info("event=sso_refused reason=locked_out user=%s", person.public_id)
            return self.refused(
                request, _("Too many failed sign-ins. Please try again in a few minutes.")
            )
        auth.login(request, person, backend=SESSION_BACKEND)
        logger.info("event=sso_signed_in user=%s", person.public_id)
        return HttpResponseRedirect(next_url or resolve_url(settings.LOGIN_REDIRECT_URL))

    @staticmethod
    def refused(request: HttpRequest, message: str) -> HttpResponse:
        messages.error(request, message)
        return HttpResponseRedirect(reverse("login"))
