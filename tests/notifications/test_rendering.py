"""A batch renders each (template, language, shared context) once as a skeleton; every message
rendered from it is exactly what a full render gives."""

from __future__ import annotations

import pytest

from notifications.models import Message
from notifications.rendering import TemplateSet, render_message
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CASES = [
    ("invitation", {"closes_on": "Friday <14> & co"}, {"url": 'https://p.test/t/1?a=1&b="2"'}),
    ("reminder", {"closes_on": "Friday"}, {"url": "https://p.test/t/2"}),
    ("reminder", {}, {}),
    (
        "flag_alert",
        {"team_name": "Ops & <Sales>", "explanation": "x", "url": "https://p.test/f"},
        {},
    ),
    (
        "digest",
        {
            "teams": [
                {
                    "name": "a < b",
                    "path": "Ops & co / a < b",
                    "shown": True,
                    "stress": 61,
                    "participation": 74,
                    "open_flags": 2,
                },
                {
                    "name": "c",
                    "shown": False,
                    "stress": None,
                    "participation": None,
                    "open_flags": 0,
                },
            ],
            "period": "May",
            "url": "https://p.test/d",
        },
        {},
    ),
    ("digest", {"teams": [], "period": "May"}, {}),
    ("cycle_summary", {"team_name": "T", "participation": "80%", "lines": [], "url": "u"}, {}),
]


@pytest.mark.parametrize(("template", "context", "sensitive"), CASES)
@pytest.mark.parametrize("chat", [False, True])
def test_skeleton_rendering_equals_full_rendering(organisation, template, context, sensitive, chat):
    # given people with plain, missing (the address then), HTML-special and non-ASCII names in two languages
    people = [
        UserFactory(organisation=organisation, full_name=name, language=language)
        for language in ("en", "de")
        for name in ("Ann", "", "Bob&<i>\"Eve\"</i>'x' Smith", "Zoë", "Ann")
    ]
    shared = TemplateSet()
    for index, person in enumerate(people):
        message = Message(
            organisation=organisation,
            kind=template,
            template=template,
            recipient=person,
            context=context,
            sensitive_context={k: f"{v}/{index}" for k, v in sensitive.items()} or None,
            idempotency_key=f"k{index}",
        )
        unsubscribe = f"https://p.test/u/{index}&x" if index % 3 else ""
        # when rendered with the batch's shared skeletons and on its own
        batched = render_message(message, unsubscribe_url=unsubscribe, templates=shared, chat=chat)
        alone = render_message(
            message, unsubscribe_url=unsubscribe, templates=TemplateSet(), chat=chat
        )
        # then both are the same
        assert batched == alone
    assert any(entry is not None for entry in shared.skeletons.values())


def test_a_digest_team_is_named_by_its_path_or_by_its_name_in_digests_written_before_paths(
    organisation,
):
    lead = UserFactory(organisation=organisation)
    team = {"shown": False, "stress": None, "participation": None, "open_flags": 0}
    teams = [{**team, "name": "Nights", "path": "Care / Nights"}, {**team, "name": "Billing"}]
    message = Message(
        organisation=organisation,
        kind="digest",
        template="digest",
        recipient=lead,
        context={"teams": teams, "period": "2026-05-04"},
        idempotency_key="k",
    )
    text = render_message(message).text
    assert "- Care / Nights: too few answers to show results" in text
    assert "- Billing: too few answers to show results" in text
