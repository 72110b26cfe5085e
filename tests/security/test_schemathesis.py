"""Schemathesis against the OpenAPI schema the app serves: every operation, as each role (org
admin, team lead, employee), with generated valid and invalid requests sent in-process to the
Django WSGI application.  No response may be a server error, and every response must match the
schema (documented status code, content type, body).

Bounded: ``EXAMPLES`` per operation, mode and role (no shrinking; every failure is collected and
reported at the end) and a per-request Hypothesis deadline, so the file stays well under three
minutes on two cores while sending over a thousand requests.
"""

from __future__ import annotations

import io
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from checkins.models import Cycle, Question, Schedule, SupportResource, Survey
from wellbeing.demo import DEMO_ADMIN_EMAIL, DEMO_EMPLOYEE_EMAIL, DEMO_LEAD_EMAIL
from wellbeing.models import Flag, Organisation, Team, User

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.core.failures import Failure, FailureGroup  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

ROLES = {"admin": DEMO_ADMIN_EMAIL, "lead": DEMO_LEAD_EMAIL, "employee": DEMO_EMPLOYEE_EMAIL}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 6  # per operation, generation mode and role; with real ids as well as random ones
MIN_REQUESTS = 1000
DEADLINE = timedelta(seconds=5)  # per request; a slower one is a finding in itself


@pytest.fixture
def in_process_wsgi():
    """Django's WSGI handler closes "old" connections around each request, which would close the
    test's transaction; the test client switches that off the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield get_wsgi_application()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def demo(db) -> Organisation:
    """The demo organisation with four weeks of history: teams, people, leads, a published
    survey, a schedule, closed cycles with stored aggregates."""
    call_command("seed_demo", "--weeks", "4", stdout=io.StringIO())
    organisation = Organisation.objects.get(slug="northwind")
    # Four calm weeks open no flag; give the lead's teams and one other team open ones, so
    # acknowledging and dismissing (and doing it twice) are exercised too.
    lead_teams = list(Team.objects.filter(leads__user__email=DEMO_LEAD_EMAIL))
    other = (
        Team.objects.filter(organisation=organisation)
        .exclude(leads__user__email=DEMO_LEAD_EMAIL)
        .first()
    )
    period = timezone.localdate() - timedelta(days=7)
    for team in [*lead_teams, other]:
        for kind in (Flag.Kind.HIGH_STRESS, Flag.Kind.PARTICIPATION_DROP):
            Flag.objects.create(
                organisation=organisation,
                team=team,
                kind=kind,
                severity=Flag.Severity.WARNING,
                opened_at=timezone.now(),
                first_cycle_period=period,
                last_cycle_period=period,
                last_evaluated_period=period,
                explanation="Stress above the level set for three cycles in a row.",
            )
    return organisation


def real_path_parameters(organisation: Organisation) -> dict[str, list[str]]:
    """Identifiers of objects that exist, so generated requests reach more than the 404 path."""
    return {
        "public_id": [
            *(str(t.public_id) for t in Team.objects.filter(organisation=organisation)[:4]),
            *(str(c.public_id) for c in Cycle.objects.filter(organisation=organisation)[:3]),
            *(str(s.public_id) for s in Schedule.objects.filter(organisation=organisation)[:2]),
            *(str(f.public_id) for f in Flag.objects.filter(organisation=organisation)),
            str(organisation.public_id),
        ],
        "id": [
            *(str(q.pk) for q in Question.objects.all()[:4]),
            *(str(r.pk) for r in SupportResource.objects.filter(organisation=organisation)[:2]),
        ],
        "key": [str(s.key) for s in Survey.objects.all()[:3]],
    }


def describe(failure: Failure) -> str:
    return f"{failure.title}: {failure.message}".replace("\n", " ")[:400]


def strategies_for(operation: Any, known: dict[str, list[str]]) -> list[Any]:
    """Valid and invalid requests; for operations on one object, also valid requests naming
    objects that exist."""
    names = [p.name for p in operation.path_parameters]
    strategies = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        strategies.append(operation.as_strategy(generation_mode=mode))
    if names and all(known.get(name) for name in names):
        strategies.append(
            st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names}).flatmap(
                lambda fixed: operation.as_strategy(path_parameters=fixed)
            )
        )
    return strategies


def fuzz(
    operation: Any,
    role: str,
    headers: dict[str, str],
    known: dict[str, list[str]],
    sent: Counter[str],
    statuses: Counter[int],
    findings: dict[tuple[str, str, str], str],
) -> None:
    strategies = strategies_for(operation, known)

    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=DEADLINE,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def call(case: Any) -> None:
        # On PostgreSQL a database error aborts the test's transaction and would turn every
        # later answer into a 500: each request runs in a savepoint, undone after a 5xx.
        savepoint = transaction.savepoint()
        # A real server always sets the client address (the link-guess limiter keys on it).
        response = case.call(headers=headers, environ_base={"REMOTE_ADDR": "127.0.0.1"})
        if response.status_code >= 500:
            transaction.savepoint_rollback(savepoint)
        else:
            transaction.savepoint_commit(savepoint)
        sent[role] += 1
        statuses[response.status_code] += 1
        if response.status_code < 300:
            sent[f"{role} 2xx"] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Failure, FailureGroup) as exc:
            failures = exc.exceptions if isinstance(exc, FailureGroup) else (exc,)
            for failure in failures:
                findings.setdefault(
                    (role, operation.label, failure.title),
                    f"{describe(failure)} [{response.status_code}] "
                    f"{case.as_curl_command(headers=headers)[:300]}",
                )

    call()


def test_api_answers_every_role_within_its_schema(demo, in_process_wsgi):
    # given the schema served by the app and a token for each role
    schema = schemathesis.openapi.from_wsgi("/api/schema/", in_process_wsgi)
    operations = [result.ok() for result in schema.get_all_operations()]
    known = real_path_parameters(demo)
    tokens = {
        role: Token.objects.get_or_create(user=User.objects.get(email=email))[0].key
        for role, email in ROLES.items()
    }
    sent: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    findings: dict[tuple[str, str, str], str] = {}

    # when every operation is called with generated requests as each role
    for role, token in tokens.items():
        headers = {"Authorization": f"Token {token}"}
        for operation in operations:
            fuzz(operation, role, headers, known, sent, statuses, findings)

    # then there were enough requests, no server error and no response outside the schema
    report = "\n".join(f"{r} {op} — {detail}" for (r, op, _), detail in sorted(findings.items()))
    print(f"requests per role: {dict(sent)}; statuses: {dict(sorted(statuses.items()))}")
    assert not findings, f"{len(findings)} findings:\n{report}"
    assert sum(sent[role] for role in ROLES) >= MIN_REQUESTS, dict(sent)
    assert all(sent[f"{role} 2xx"] for role in ROLES), dict(sent)  # not just refusals
