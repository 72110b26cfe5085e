"""Every URL × every role: who may use it, and nobody sees another organisation's names.

The routes come from walking the resolver, so a new URL fails ``test_every_url_has_an_expectation``
until it is added to ``EXPECTED`` below with its access rule.
"""

from __future__ import annotations

import pytest

from tests.factories import OrganisationFactory, TeamLeadFactory, UserFactory, team_with_members
from tests.security.urlwalk import routes

ROLES = ["anonymous", "employee", "lead_a", "lead_b", "admin_1", "admin_2"]

# Access rules: which roles are allowed; everyone else must be refused (302 to login for the
# anonymous, or 401/403/404).  Team-scoped routes are called with team A's public id.
PUBLIC = set(ROLES)
SIGNED_IN = set(ROLES) - {"anonymous"}
ADMINS = {"admin_1", "admin_2"}  # organisation-scoped lists: each admin sees their own
LEADS_AND_ADMINS = {"lead_a", "lead_b", "admin_1", "admin_2"}
TEAM_A_READERS = {"lead_a", "admin_1"}
TEAM_A_MEMBERS_AND_READERS = {"employee", "lead_a", "admin_1"}
ORG_1_ADMIN = {"admin_1"}
ORG_1_PEOPLE = {"employee", "lead_a", "lead_b", "admin_1"}
# Needs an object this test does not create (flag, schedule, ...) or a one-time token: only
# "anonymous is refused and nothing crashes" is checked; the owning app's tests cover the rest.
NOT_ANONYMOUS_ONLY = "not-anonymous-only"
TOKEN_ROUTE = "token"
# Signing out is not access control (and would sign the test's user out mid-walk).
UNCHECKED = "unchecked"

EXPECTED: dict[str, tuple[str, object]] = {
    "healthz": ("get", PUBLIC),
    "readyz": ("get", PUBLIC),
    "login": ("get", PUBLIC),
    "password_reset": ("get", PUBLIC),
    "password_reset_done": ("get", PUBLIC),
    "password_reset_confirm": ("get", TOKEN_ROUTE),
    "password_reset_complete": ("get", PUBLIC),
    "logout": ("post", UNCHECKED),
    # Single sign-on: not found unless configured; with a provider in tests/wellbeing/test_sso*.py
    "oidc_start": ("get", UNCHECKED),
    "oidc_callback": ("get", TOKEN_ROUTE),
    "api-schema": ("get", PUBLIC),
    "api-docs": ("get", PUBLIC),
    "api-root": ("get", SIGNED_IN),
    "team-trend": ("get", TEAM_A_READERS),
    "team-comments": ("get", TEAM_A_READERS),
    "heatmap": ("get", SIGNED_IN),
    "customer-metric-values": ("post", ADMINS),
    "customer-impact": ("get", ADMINS),
    "organisation-list": ("get", SIGNED_IN),
    "organisation-detail": ("get", ORG_1_PEOPLE),
    "team-list": ("get", SIGNED_IN),
    "team-detail": ("get", TEAM_A_READERS),
    "flag-list": ("get", SIGNED_IN),
    "flag-detail": ("get", NOT_ANONYMOUS_ONLY),
    "flag-acknowledge": ("post", NOT_ANONYMOUS_ONLY),
    "flag-dismiss": ("post", NOT_ANONYMOUS_ONLY),
    "checkin-submit": ("post", TOKEN_ROUTE),
    "question-list": ("get", ADMINS),
    "question-detail": ("get", NOT_ANONYMOUS_ONLY),
    "survey-list": ("get", ADMINS),
    "survey-detail": ("get", NOT_ANONYMOUS_ONLY),
    "survey-publish": ("post", NOT_ANONYMOUS_ONLY),
    "schedule-list": ("get", ADMINS),
    "schedule-detail": ("get", NOT_ANONYMOUS_ONLY),
    "support-resource-list": ("get", ADMINS),
    "support-resource-detail": ("get", NOT_ANONYMOUS_ONLY),
    "cycle-list": ("get", LEADS_AND_ADMINS),
    "cycle-detail": ("get", NOT_ANONYMOUS_ONLY),
    "checkins:token": ("get", TOKEN_ROUTE),
    "checkins:answer": ("get", TOKEN_ROUTE),
    "checkins:answer_cycle": ("get", NOT_ANONYMOUS_ONLY),
    "checkins:thanks": ("get", PUBLIC),
    "checkins:mine": ("get", SIGNED_IN),
    "checkins:privacy": ("get", PUBLIC),
    "dashboards:landing": ("get", SIGNED_IN),
    "dashboards:organisation": ("get", ADMINS),
    "dashboards:organisation-export": ("get", ADMINS),
    "dashboards:team": ("get", TEAM_A_READERS),
    "dashboards:team-export": ("get", TEAM_A_READERS),
    "dashboards:flag-acknowledge": ("post", NOT_ANONYMOUS_ONLY),
    "dashboards:flag-dismiss": ("post", NOT_ANONYMOUS_ONLY),
    "dashboards:you-said-we-did": ("get", TEAM_A_MEMBERS_AND_READERS),
    "notifications:preferences": ("get", SIGNED_IN),
    "notifications:unsubscribe": ("get", TOKEN_ROUTE),
    "manage_checkins:questions": ("get", ADMINS),
    "manage_checkins:question": ("get", NOT_ANONYMOUS_ONLY),
    "manage_checkins:surveys": ("get", ADMINS),
    "manage_checkins:survey": ("get", NOT_ANONYMOUS_ONLY),
    "manage_checkins:survey_publish": ("post", NOT_ANONYMOUS_ONLY),
    "manage_checkins:schedules": ("get", ADMINS),
    "manage_checkins:schedule": ("get", NOT_ANONYMOUS_ONLY),
    "manage_checkins:schedule_pause": ("post", NOT_ANONYMOUS_ONLY),
    "manage_checkins:support": ("get", ADMINS),
    "manage_checkins:channels": ("get", ADMINS),
    "manage:overview": ("get", ADMINS),
    "manage:teams": ("get", ADMINS),
    "manage:team": ("get", ORG_1_ADMIN),
    "manage:team_lead_remove": ("post", NOT_ANONYMOUS_ONLY),
    "manage:people": ("get", ADMINS),
    "manage:person_deactivate": ("post", NOT_ANONYMOUS_ONLY),
    "manage:person_sign_in_link": ("post", NOT_ANONYMOUS_ONLY),
    "manage:people_import": ("get", ADMINS),
    "manage:people_import_confirm": ("post", NOT_ANONYMOUS_ONLY),
    "manage:thresholds": ("get", ADMINS),
    "manage:flag_settings": ("get", ADMINS),
    "manage:audit": ("get", ADMINS),
    "manage:metrics": ("get", ADMINS),
    "manage:metrics_confirm": ("post", NOT_ANONYMOUS_ONLY),
    "home": ("get", SIGNED_IN),
}

REFUSED = {401, 403, 404}


@pytest.fixture
def world(db):
    org_1 = OrganisationFactory(name="Orgone Ltd")
    org_2 = OrganisationFactory(name="Orgtwo Inc")
    team_a = team_with_members(organisation=org_1, size=6, name="Alphateam")
    team_b = team_with_members(organisation=org_1, size=6, name="Bravoteam")
    team_with_members(organisation=org_2, size=6, name="Charlieteam")
    users = {
        "anonymous": None,
        "employee": team_a.memberships.first().user,
        "lead_a": TeamLeadFactory(team=team_a).user,
        "lead_b": TeamLeadFactory(team=team_b).user,
        "admin_1": UserFactory(organisation=org_1, is_org_admin=True),
        "admin_2": UserFactory(organisation=org_2, is_org_admin=True),
    }
    values = {
        "public_id": str(team_a.public_id),
        "cycle_id": str(team_a.public_id),
        "flag_id": str(team_a.public_id),
        "user_id": str(users["lead_a"].public_id),
        "pk": "999999",
        "key": "no-such-key",
    }
    overrides = {"organisation-detail": {"public_id": str(org_1.public_id)}}
    return users, values, overrides


def test_every_url_has_an_expectation():
    missing = sorted(r.name for r in routes() if r.name not in EXPECTED)
    assert missing == [], f"add these URL names to EXPECTED in {__name__}: {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_what_the_matrix_says(client, world, role):
    users, values, overrides = world
    foreign = {"Orgtwo Inc", "Charlieteam"} if role != "admin_2" else {"Orgone Ltd", "Alphateam"}
    problems = []
    for route in routes():
        method, rule = EXPECTED.get(route.name, ("get", None))
        if rule is None or rule in (TOKEN_ROUTE, UNCHECKED):
            continue
        path = route.path({**values, **overrides.get(route.name, {})})
        assert path is not None, f"{route.name}: give the test a value for {route.kwargs}"
        if users[role] is not None:
            client.force_login(users[role])  # a POST route may have ended the session
        accept = "application/json" if path.startswith("/api/") else "text/html"
        response = getattr(client, method)(path, HTTP_ACCEPT=accept)
        status = response.status_code
        refused = status in REFUSED or (
            role == "anonymous" and status == 302 and "/accounts/login/" in response["Location"]
        )
        if status >= 500:
            problems.append(f"{route.name}: {status}")
        elif rule == NOT_ANONYMOUS_ONLY:
            if role == "anonymous" and not refused:
                problems.append(f"{route.name}: anonymous got {status}")
        elif role in rule and refused:
            problems.append(f"{route.name}: {role} refused with {status}")
        elif role not in rule and not refused:
            problems.append(f"{route.name}: {role} allowed with {status}")
        body = b"" if response.streaming else response.content
        for name in foreign:
            if name.encode() in body:
                problems.append(f"{route.name}: {role} saw {name!r}")
    assert problems == []
