"""Single sign-on at Pulse's edge, without a provider: the button, the start of the flow, and a
callback that no sign-in of this browser started (the full flow: test_sso_provider.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from wellbeing.sso import PulseOIDCBackend

PROVIDER = "https://idp.example.test"


@pytest.fixture
def sso(settings):
    settings.PULSE_SSO_ENABLED = True
    settings.PULSE_SSO_PROVIDER_NAME = "Okta"
    settings.OIDC_RP_CLIENT_ID = "pulse"
    settings.OIDC_RP_CLIENT_SECRET = "s3cret"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{PROVIDER}/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{PROVIDER}/token"
    settings.OIDC_OP_USER_ENDPOINT = f"{PROVIDER}/userinfo"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{PROVIDER}/keys"
    settings.OIDC_RP_SIGN_ALGO = "RS256"


def test_sign_in_page_has_no_single_sign_on_button_when_it_is_not_configured(client, db):
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in page
    assert "/accounts/oidc/start/" not in page
    assert 'name="password"' in page


def test_sign_in_page_offers_the_provider_beside_the_password(client, db, sso):
    page = client.get("/accounts/login/?next=/notifications/").content.decode()
    assert "Sign in with Okta" in page
    assert 'href="/accounts/oidc/start/?next=/notifications/"' in page
    assert 'name="password"' in page


def test_sign_in_page_names_the_organisations_account_without_a_provider_name(
    client, db, sso, settings
):
    settings.PULSE_SSO_PROVIDER_NAME = ""
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with your organisation's account" in page


@pytest.mark.parametrize("path", ["/accounts/oidc/start/", "/accounts/oidc/callback/"])
def test_single_sign_on_addresses_do_not_exist_when_it_is_not_configured(client, db, path):
    assert client.get(path).status_code == 404


def test_start_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(client, db, sso):
    response = client.get("/accounts/oidc/start/?next=/notifications/")
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{PROVIDER}/authorize"
    query = parse_qs(location.query)
    assert query["client_id"] == ["pulse"]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["openid email"]
    assert query["redirect_uri"] == ["http://testserver/accounts/oidc/callback/"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0] and query["nonce"][0]
    assert query["state"][0] in client.session["oidc_states"]
    assert client.session["oidc_login_next"] == "/notifications/"


def test_start_keeps_no_address_of_another_site_to_return_to(client, db, sso):
    client.get("/accounts/oidc/start/?next=https://elsewhere.example/")
    assert client.session["oidc_login_next"] is None


def test_a_callback_this_browser_did_not_start_is_refused_without_asking_the_provider(
    client, db, sso
):
    # no request reaches the provider's address (it does not exist): refused before that
    response = client.get("/accounts/oidc/callback/?code=abc&state=forged", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "has not given this account access to Pulse" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_state_is_used_once(client, db, sso):
    start = client.get("/accounts/oidc/start/")
    state = parse_qs(urlsplit(start["Location"]).query)["state"][0]
    # the provider answers with an error (the person cancelled): the state is spent
    client.get(f"/accounts/oidc/callback/?error=access_denied&state={state}")
    assert state not in client.session["oidc_states"]


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({"email": "a@example.test", "email_verified": True}, True),
        ({"email": "a@example.test", "email_verified": "true"}, True),
        ({"email": "a@example.test"}, True),  # a provider that does not say
        ({"email": "a@example.test", "email_verified": False}, False),
        ({"email": "a@example.test", "email_verified": "false"}, False),
        ({"email_verified": True}, False),
        ({"email": "", "email_verified": True}, False),
    ],
)
def test_claims_need_an_address_the_provider_has_not_called_unverified(sso, claims, accepted):
    assert PulseOIDCBackend().verify_claims(claims) is accepted
