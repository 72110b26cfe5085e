"""POST /api/customer-metrics/ (helpdesk exports) and GET /api/customer-metrics/impact/."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token

from tests.impact.conftest import CYCLES, build_world, week
from wellbeing.models import CustomerMetricValue

URL = "/api/customer-metrics/"


def post(client, body, *, token=None, query=""):
    extra = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    return client.post(URL + query, data=json.dumps(body), content_type="application/json", **extra)


def items(teams, value=80.0, weeks=range(3)):
    return [
        {
            "metric": "csat",
            "team": str(t.public_id),
            "week_start": week(i).isoformat(),
            "value": value,
        }
        for t in teams
        for i in weeks
    ]


@pytest.fixture
def admin_token(bare_world):
    _org, _teams, _lead, admin = bare_world
    return Token.objects.create(user=admin).key


def test_an_admin_token_posts_weekly_values_and_a_repeat_changes_nothing(
    client, bare_world, admin_token
):
    _org, teams, _lead, _admin = bare_world
    first = post(client, items(teams), token=admin_token)
    assert first.status_code == 200, first.content
    assert first.json()["counts"]["value_create"] == 15
    again = post(client, items(teams), token=admin_token)
    assert again.json()["counts"] == {
        "metric_create": 0,
        "value_create": 0,
        "value_update": 0,
        "unchanged": 15,
    }
    assert CustomerMetricValue.objects.count() == 15


def test_team_paths_and_wrapped_bodies_are_accepted(client, bare_world, admin_token):
    body = {
        "values": [
            {
                "metric": "fcr",
                "team": "Customer Success",
                "week_start": week(2).isoformat(),
                "value": "70.5",
            }
        ]
    }
    response = post(client, body, token=admin_token)
    assert response.status_code == 200, response.content
    assert CustomerMetricValue.objects.get().value == 70.5


def test_dry_run_reports_the_counts_and_writes_nothing(client, bare_world, admin_token):
    _org, teams, _lead, _admin = bare_world
    response = post(client, items(teams), token=admin_token, query="?dry_run=1")
    assert response.status_code == 200
    assert response.json()["applied"] is False and response.json()["counts"]["value_create"] == 15
    assert not CustomerMetricValue.objects.exists()


def test_personal_data_fields_are_refused_with_a_clear_error(client, bare_world, admin_token):
    _org, teams, _lead, _admin = bare_world
    body = items(teams[:1], weeks=[0])
    body[0]["agent_email"] = "sam@example.com"
    response = post(client, body, token=admin_token)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "personal data" in " ".join(error["fields"]["row 1"])
    assert "sam@example.com" not in response.content.decode()
    assert not CustomerMetricValue.objects.exists()


def test_one_bad_item_refuses_the_whole_batch(client, bare_world, admin_token):
    _org, teams, _lead, _admin = bare_world
    body = items(teams[:1], weeks=[0, 1, 2])
    body[1]["value"] = "n/a"
    body[2]["team"] = "Nowhere"
    response = post(client, body, token=admin_token)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert set(fields) == {"row 2", "row 3"}
    assert "Not a number" in fields["row 2"][0] and "Unknown team" in fields["row 3"][0]
    assert not CustomerMetricValue.objects.exists()


def test_an_integer_beyond_any_float_is_not_a_number_like_an_infinite_one(
    client, bare_world, admin_token
):
    _org, teams, _lead, _admin = bare_world
    body = items(teams[:1], weeks=[0, 1])
    body[0]["value"] = int("9" * 400)
    response = post(client, body, token=admin_token)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields == {"row 1": ["value: Not a number."]}
    assert not CustomerMetricValue.objects.exists()


def test_leads_members_and_foreign_admins_cannot_post(client, bare_world):
    from tests.factories import OrganisationFactory, UserFactory

    _org, teams, lead, _admin = bare_world
    for user in (lead, teams[0].memberships.first().user):
        token = Token.objects.create(user=user).key
        assert post(client, items(teams), token=token).status_code == 403
    stranger = UserFactory(organisation=OrganisationFactory(), is_org_admin=True)
    token = Token.objects.create(user=stranger).key
    response = post(client, items(teams), token=token)
    assert response.status_code == 400  # their organisation has no such teams
    assert not CustomerMetricValue.objects.exists()
    assert post(client, items(teams)).status_code in (401, 403)


def test_impact_endpoint_gives_the_headline_and_every_lag(client, world):
    _org, _teams, _lead, admin = world
    client.force_login(admin)
    body = client.get("/api/customer-metrics/impact/").json()
    stress = next(r for r in body["results"] if r["dimension"] == "stress")
    assert stress["association"] is True and stress["headline"]["lag_weeks"] == 2
    assert [lag["lag_weeks"] for lag in stress["lags"]] == [0, 1, 2, 3, 4]
    assert "not proof of cause" in stress["note"]


# --- the OpenAPI schema describes what these views answer ----------------------------------


def strict(node):
    """The served OpenAPI 3.0 schema as JSON Schema that also refuses undocumented keys:
    ``nullable`` becomes a null alternative, an object allows only the properties it names (a
    free-form object names none, so it documents nothing these answers hold)."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items() if key != "nullable"}
    if out.get("type") == "object":
        out["additionalProperties"] = False
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def response_schema(client, path, method):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"][path][method]
    body = operation["responses"]["200"]["content"]["application/json"]["schema"]
    return {**strict(body), "components": strict(schema["components"])}


def request_schema(client, path, method):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    body = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return {**strict(body), "components": strict(schema["components"])}


def test_the_schema_describes_the_values_posted_and_the_answers(client, world):
    from jsonschema import validate

    _org, teams, _lead, admin = world
    client.force_login(admin)
    answer = response_schema(client, URL, "post")
    request = request_schema(client, URL, "post")
    # given the two documented request shapes, a list and a wrapped dry run
    plain = items(teams[:1], value=81.5, weeks=[5])
    wrapped = {"values": items(teams[:1], value=82.5, weeks=[6]), "dry_run": True}
    validate(plain, request)
    validate(wrapped, request)
    # then a dry run's answer and an applied one match the documented answer
    dry = post(client, wrapped)
    assert dry.status_code == 200 and dry.json()["applied"] is False
    validate(dry.json(), answer)
    applied = post(client, plain, query="?dry_run=0")
    assert applied.status_code == 200 and applied.json()["applied"] is True
    validate(applied.json(), answer)


def test_the_schema_describes_the_impact_answer_with_and_without_enough_data(client, world):
    from jsonschema import validate

    org, _teams, _lead, admin = world
    client.force_login(admin)
    schema = response_schema(client, "/api/customer-metrics/impact/", "get")
    body = client.get("/api/customer-metrics/impact/").json()
    assert any(r["headline"] for r in body["results"])
    validate(body, schema)
    # and an organisation with too little data (no headline, no slopes)
    other = build_world()
    client.force_login(other[3])
    CustomerMetricValue.objects.filter(team__organisation=other[0]).exclude(
        week_start__gte=week(CYCLES - 2)
    ).delete()
    thin = client.get("/api/customer-metrics/impact/").json()
    assert thin["results"] and not any(r["enough_data"] for r in thin["results"])
    validate(thin, schema)
