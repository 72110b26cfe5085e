"""The /manage/ pages: who may see them, and that every form writes through a service and is
audited."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

import pytest
import time_machine
from django.urls import reverse

from checkins import services as checkin_services
from checkins.models import Question, Schedule, SupportResource, Survey
from notifications.models import ChannelSettings, Message
from tests.checkins.conftest import ensure_library
from tests.factories import MembershipFactory, TeamFactory, UserFactory
from wellbeing import services
from wellbeing.errors import ServiceError
from wellbeing.models import AuditEntry, FlagSettings, Team, TeamLead

LIST_PAGES = [
    "manage:overview",
    "manage:teams",
    "manage:people",
    "manage:people_import",
    "manage:thresholds",
    "manage:flag_settings",
    "manage:audit",
    "manage_checkins:questions",
    "manage_checkins:surveys",
    "manage_checkins:schedules",
    "manage_checkins:support",
    "manage_checkins:channels",
]


@pytest.fixture
def configured(world):
    """A question, a survey and a schedule of Acme, so object pages exist."""
    library = ensure_library()
    question = checkin_services.question_create(
        organisation=world.organisation,
        key="tooling",
        text="Our tools let me help customers well.",
        dimension="support",
        scale_min=1,
        scale_max=5,
    )
    survey = checkin_services.survey_create(
        organisation=world.organisation,
        name="Acme pulse",
        question_ids=[question.pk],
        items_per_person=8,
    )
    schedule = checkin_services.schedule_create(
        organisation=world.organisation,
        name="Support weekly",
        survey=library,
        team_ids=[world.support.pk],
        start_date=date(2026, 3, 16),
    )
    return {"question": question, "survey": survey, "schedule": schedule}


def object_pages(world, configured) -> list[str]:
    return [
        reverse("manage:team", args=[world.support.public_id]),
        reverse("manage_checkins:question", args=[configured["question"].pk]),
        reverse("manage_checkins:survey", args=[configured["survey"].pk]),
        reverse("manage_checkins:schedule", args=[configured["schedule"].public_id]),
    ]


def all_pages(world, configured) -> list[str]:
    return [reverse(name) for name in LIST_PAGES] + object_pages(world, configured)


def test_admin_sees_every_page_without_other_organisations_names(admin_client, world, configured):
    for url in all_pages(world, configured):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert world.other_team.name not in response.content.decode(), url


@pytest.mark.parametrize("who", ["lead", "employee"])
def test_leads_and_employees_get_404_everywhere(client, world, configured, who):
    client.force_login(getattr(world, who))
    for url in all_pages(world, configured):
        response = client.get(url)
        assert response.status_code == 404, url
        assert world.support.name not in response.content.decode()


def test_anonymous_visitors_are_sent_to_login(client, world, configured):
    for url in all_pages(world, configured):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login"))


def test_admin_of_another_organisation_gets_404_for_our_objects_and_sees_none_of_our_names(
    client, world, configured
):
    client.force_login(world.other_admin)
    for url in object_pages(world, configured):
        assert client.get(url).status_code == 404, url
    for name in LIST_PAGES:
        body = client.get(reverse(name)).content.decode()
        for secret in ("Frontline Alpha", "Customer Care", "Support weekly", "Acme pulse"):
            assert secret not in body, (name, secret)


def test_posts_from_non_admins_change_nothing(client, world):
    client.force_login(world.lead)
    response = client.post(reverse("manage:teams"), {"name": "Sneaky"})
    assert response.status_code == 404
    assert not Team.objects.filter(name="Sneaky").exists()


# --- Teams ----------------------------------------------------------------------------------


def test_team_create_writes_and_audits(admin_client, world):
    response = admin_client.post(
        reverse("manage:teams"),
        {"name": "Escalations", "parent": world.support.pk, "customer_facing": "on"},
        follow=True,
    )
    assert "Team “Escalations” created." in response.content.decode()
    team = Team.objects.get(name="Escalations")
    assert team.parent == world.support and team.customer_facing
    entry = AuditEntry.objects.get(action="team.create")
    assert entry.actor == world.admin and entry.after["parent"] == "Frontline Alpha"


def test_team_create_with_a_taken_name_shows_the_error_next_to_the_form(admin_client, world):
    response = admin_client.post(reverse("manage:teams"), {"name": "Billing"})
    assert response.status_code == 200
    assert "field-errors" in response.content.decode() or "form-errors" in response.content.decode()
    assert "A team named “Billing” already exists at the top level." in response.content.decode()
    assert Team.objects.filter(name="Billing").count() == 1


def test_team_name_with_a_slash_is_refused_next_to_the_form(admin_client, world):
    response = admin_client.post(reverse("manage:teams"), {"name": "Sales/Marketing"})
    assert response.status_code == 200
    assert "A team name cannot contain “/”" in response.content.decode()
    assert not Team.objects.filter(name="Sales/Marketing").exists()


def test_team_rename_and_customer_facing_toggle_record_before_and_after(admin_client, world):
    admin_client.post(
        reverse("manage:team", args=[world.billing.public_id]),
        {"form": "edit", "name": "Billing & Refunds", "customer_facing": "on"},
    )
    world.billing.refresh_from_db()
    assert world.billing.name == "Billing & Refunds" and world.billing.customer_facing
    entry = AuditEntry.objects.get(action="team.update")
    assert entry.before == {"name": "Billing", "customer_facing": False}
    assert entry.after == {"name": "Billing & Refunds", "customer_facing": True}


def test_moving_a_team_under_its_own_subteam_is_refused_as_a_form_error(admin_client, world):
    cx = world.support.parent
    response = admin_client.post(
        reverse("manage:team", args=[cx.public_id]), {"form": "move", "parent": world.support.pk}
    )
    assert response.status_code == 200
    assert "cannot be moved under itself or one of its sub-teams" in response.content.decode()
    cx.refresh_from_db()
    assert cx.parent is None
    assert not AuditEntry.objects.filter(action="team.move").exists()


def test_moving_a_team_next_to_a_namesake_is_refused_as_a_form_error(admin_client, world):
    # given a second "Frontline Alpha", under Billing
    namesake = TeamFactory(
        organisation=world.organisation, name="Frontline Alpha", parent=world.billing
    )
    # when it is moved next to the first one, under Customer Care
    response = admin_client.post(
        reverse("manage:team", args=[namesake.public_id]),
        {"form": "move", "parent": world.support.parent.pk},
    )
    # then the form says where the name is taken and nothing moved
    assert response.status_code == 200
    assert "A team named “Frontline Alpha” already exists under “Customer Care”." in (
        response.content.decode()
    )
    namesake.refresh_from_db()
    assert namesake.parent == world.billing
    assert not AuditEntry.objects.filter(action="team.move").exists()


def test_moving_a_team_to_the_top_level_next_to_a_namesake_is_refused(admin_client, world):
    namesake = TeamFactory(organisation=world.organisation, name="Billing", parent=world.support)
    response = admin_client.post(
        reverse("manage:team", args=[namesake.public_id]), {"form": "move", "parent": ""}
    )
    assert response.status_code == 200
    assert "A team named “Billing” already exists at the top level." in response.content.decode()
    namesake.refresh_from_db()
    assert namesake.parent == world.support


def test_moving_a_team_is_audited(admin_client, world):
    admin_client.post(
        reverse("manage:team", args=[world.billing.public_id]),
        {"form": "move", "parent": world.support.parent.pk},
    )
    world.billing.refresh_from_db()
    assert world.billing.parent == world.support.parent
    entry = AuditEntry.objects.get(action="team.move")
    assert entry.before == {"parent": None} and entry.after == {"parent": "Customer Care"}


def test_leads_are_added_and_removed(admin_client, world):
    url = reverse("manage:team", args=[world.billing.public_id])
    admin_client.post(url, {"form": "lead", "user": world.employee.pk})
    assert TeamLead.objects.filter(user=world.employee, team=world.billing).exists()
    admin_client.post(
        reverse("manage:team_lead_remove", args=[world.billing.public_id, world.employee.public_id])
    )
    assert not TeamLead.objects.filter(user=world.employee, team=world.billing).exists()
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["lead.add", "lead.remove"]


def test_a_lead_from_another_organisation_cannot_be_chosen(admin_client, world):
    url = reverse("manage:team", args=[world.billing.public_id])
    response = admin_client.post(url, {"form": "lead", "user": world.other_admin.pk})
    assert response.status_code == 200
    assert not TeamLead.objects.filter(team=world.billing).exists()


# --- People ---------------------------------------------------------------------------------


def test_people_search_finds_by_name_and_email(admin_client, world):
    UserFactory(organisation=world.organisation, full_name="Zelda Quinn", email="zq@acme.test")
    body = admin_client.get(reverse("manage:people"), {"q": "zelda"}).content.decode()
    assert "zq@acme.test" in body
    assert world.employee.email not in body


def test_people_list_is_paginated(admin_client, world):
    for i in range(55):
        UserFactory(organisation=world.organisation, full_name=f"Bulk {i:02d}")
    first = admin_client.get(reverse("manage:people")).content.decode()
    assert "Page 1 of 2" in first


def test_deactivating_a_person_ends_memberships_and_audits(admin_client, world):
    admin_client.post(reverse("manage:person_deactivate", args=[world.employee.public_id]))
    world.employee.refresh_from_db()
    assert not world.employee.is_active
    assert world.employee.memberships.get().ended_on is not None
    entry = AuditEntry.objects.get(action="person.deactivate")
    assert entry.before == {"active": True} and entry.after["active"] is False


def test_admin_cannot_deactivate_themselves(admin_client, world):
    response = admin_client.post(
        reverse("manage:person_deactivate", args=[world.admin.public_id]), follow=True
    )
    world.admin.refresh_from_db()
    assert world.admin.is_active
    assert "cannot deactivate yourself" in response.content.decode()


def test_an_admin_sends_a_person_a_sign_in_link_and_it_is_audited(admin_client, world):
    # given the people page offers the link to every active person
    page = admin_client.get(reverse("manage:people")).content.decode()
    url = reverse("manage:person_sign_in_link", args=[world.employee.public_id])
    assert f'action="{url}"' in page
    # when the admin sends one
    response = admin_client.post(url, follow=True)
    # then it is in the outbox for that person, said on the page and in the audit log
    message = Message.objects.get()
    assert (message.kind, message.recipient) == ("account", world.employee)
    assert "/accounts/reset/" in message.sensitive_context["url"]
    assert f"is on its way to {world.employee.email}" in response.content.decode()
    entry = AuditEntry.objects.get(action="person.sign_in_link")
    assert entry.actor == world.admin and "reset" not in str(entry.after)


def test_no_sign_in_link_for_a_deactivated_person(admin_client, world):
    admin_client.post(reverse("manage:person_deactivate", args=[world.employee.public_id]))
    response = admin_client.post(
        reverse("manage:person_sign_in_link", args=[world.employee.public_id]), follow=True
    )
    assert "is deactivated and cannot sign in" in response.content.decode()
    assert not Message.objects.filter(kind="account").exists()
    assert not AuditEntry.objects.filter(action="person.sign_in_link").exists()


def test_a_lead_cannot_send_sign_in_links(client, world):
    client.force_login(world.lead)
    response = client.post(reverse("manage:person_sign_in_link", args=[world.employee.public_id]))
    assert response.status_code == 404
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    ("page", "post"),
    [
        ("manage:thresholds", None),
        ("manage:thresholds", {"anonymity_threshold": 2, "comment_threshold": 8}),
        ("manage:flag_settings", None),
        ("manage:flag_settings", {"high_stress_level": 101}),
        ("manage:people_import", None),
    ],
)
def test_every_description_a_field_points_to_is_on_the_page(admin_client, world, page, post):
    url = reverse(page)
    response = admin_client.get(url) if post is None else admin_client.post(url, post)
    html = response.content.decode()
    ids = re.findall(r'\sid="([^"]+)"', html)
    described = [
        ref for refs in re.findall(r'aria-describedby="([^"]+)"', html) for ref in refs.split()
    ]
    assert described, "the page should have fields with help texts or errors"
    assert [ref for ref in described if ref not in ids] == []


# --- Thresholds -----------------------------------------------------------------------------


def test_k_below_three_is_refused_next_to_the_field(admin_client, world):
    response = admin_client.post(
        reverse("manage:thresholds"), {"anonymity_threshold": 2, "comment_threshold": 8}
    )
    assert response.status_code == 200
    assert "greater than or equal to 3" in response.content.decode()
    world.organisation.refresh_from_db()
    assert world.organisation.anonymity_threshold == 5
    assert not AuditEntry.objects.exists()


def test_comment_threshold_below_k_is_refused(admin_client, world):
    response = admin_client.post(
        reverse("manage:thresholds"), {"anonymity_threshold": 7, "comment_threshold": 5}
    )
    assert "Must be at least the minimum group size k." in response.content.decode()


def test_thresholds_are_saved_and_audited(admin_client, world):
    response = admin_client.post(
        reverse("manage:thresholds"),
        {"anonymity_threshold": 6, "comment_threshold": 10, "comments_enabled": "on"},
        follow=True,
    )
    assert "Privacy thresholds saved." in response.content.decode()
    world.organisation.refresh_from_db()
    assert world.organisation.anonymity_threshold == 6 and world.organisation.comments_enabled
    entry = AuditEntry.objects.get(action="organisation.thresholds")
    assert entry.before == {
        "anonymity_threshold": 5,
        "comment_threshold": 8,
        "comments_enabled": False,
    }
    assert entry.after == {
        "anonymity_threshold": 6,
        "comment_threshold": 10,
        "comments_enabled": True,
    }


def test_flag_thresholds_are_saved_and_audited(admin_client, world):
    admin_client.post(
        reverse("manage:flag_settings"),
        {
            "high_stress_level": 70,
            "high_stress_consecutive": 3,
            "client_burnout_level": 50,
            "resolve_after_cycles": 3,
            "reopen_within_days": 56,
        },
    )
    settings = FlagSettings.objects.get(organisation=world.organisation)
    assert settings.high_stress_level == 70
    entry = AuditEntry.objects.get(action="flags.thresholds")
    assert entry.before == {"high_stress_level": 60, "high_stress_consecutive": 2}
    assert entry.after == {"high_stress_level": 70, "high_stress_consecutive": 3}


def test_flag_level_above_100_is_refused(admin_client, world):
    response = admin_client.post(
        reverse("manage:flag_settings"),
        {
            "high_stress_level": 170,
            "high_stress_consecutive": 3,
            "client_burnout_level": 50,
            "resolve_after_cycles": 3,
            "reopen_within_days": 56,
        },
    )
    assert response.status_code == 200
    assert not FlagSettings.objects.filter(organisation=world.organisation).exists()


@pytest.mark.parametrize("field", ["high_stress_consecutive", "resolve_after_cycles"])
def test_flag_cycle_counts_above_a_year_are_refused_next_to_the_field(admin_client, world, field):
    # given a count of cycles beyond a year of weekly check-ins (the close's screening holds
    # that many figures per team)
    values = {
        "high_stress_level": 60,
        "high_stress_consecutive": 2,
        "client_burnout_level": 50,
        "resolve_after_cycles": 3,
        "reopen_within_days": 56,
    }
    response = admin_client.post(reverse("manage:flag_settings"), {**values, field: 53})
    # then the form says the limit and nothing is saved
    assert response.status_code == 200
    assert "At most 52 cycles" in response.content.decode()
    assert not FlagSettings.objects.filter(organisation=world.organisation).exists()
    # while a year is still accepted
    admin_client.post(reverse("manage:flag_settings"), {**values, field: 52})
    assert getattr(FlagSettings.objects.get(organisation=world.organisation), field) == 52


def test_flag_settings_service_refuses_cycle_counts_above_a_year(world):
    with pytest.raises(ServiceError) as excinfo:
        services.flag_settings_update(
            organisation=world.organisation, actor=world.admin, high_stress_consecutive=53
        )
    assert excinfo.value.fields == {
        "high_stress_consecutive": ["At most 52 cycles (a year of weekly check-ins)."]
    }
    assert not FlagSettings.objects.filter(organisation=world.organisation).exists()


# --- Audit log ------------------------------------------------------------------------------


def test_audit_log_filters_by_action_and_paginates(admin_client, world):
    from wellbeing.audit import audit_record

    for i in range(60):
        audit_record(
            organisation=world.organisation,
            actor=world.admin,
            action="team.update",
            target=world.billing,
            before={"name": f"n{i}"},
            after={"name": f"n{i + 1}"},
        )
    audit_record(
        organisation=world.organisation, actor=None, action="people.import", target="file.csv"
    )
    page = admin_client.get(reverse("manage:audit"), {"action": "people.import"}).content.decode()
    assert "file.csv" in page and "n59" not in page
    first = admin_client.get(reverse("manage:audit")).content.decode()
    assert "Page 1 of 2" in first


def test_audit_record_refuses_answers():
    from wellbeing.audit import audit_record

    with pytest.raises(ValueError, match="never records answers"):
        audit_record(
            organisation=None,  # type: ignore[arg-type]
            actor=None,
            action="x",
            target="y",
            after={"answers": {"1": 5}},
        )


# --- Check-in configuration -----------------------------------------------------------------


def test_library_questions_are_read_only_with_source_and_licence(admin_client, world, configured):
    library_question = Question.objects.filter(organisation__isnull=True, is_current=True).first()
    body = admin_client.get(reverse("manage_checkins:questions")).content.decode()
    assert library_question.licence in body
    edit = admin_client.get(reverse("manage_checkins:question", args=[library_question.pk]))
    assert edit.status_code == 404


def _question_post(question, **changes):
    data = {
        "text": question.text,
        "kind": question.kind,
        "dimension": question.dimension,
        "scale_min": question.scale_min,
        "scale_max": question.scale_max,
        "scale_labels": "",
        "higher_is_worse": "on",
        "audience": question.audience,
        "source": "",
        "licence": "",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(("low", "high"), [(1, 30000), (-101, 5), (1, 101)])
def test_a_question_scale_beyond_what_the_api_allows_is_refused(
    admin_client, world, configured, low, high
):
    data = _question_post(configured["question"], key="wide", scale_min=low, scale_max=high)
    response = admin_client.post(reverse("manage_checkins:questions"), data)
    assert response.status_code == 200
    assert not Question.objects.filter(key="wide").exists()


def test_a_question_scale_within_the_bounds_is_created(admin_client, world, configured):
    data = _question_post(configured["question"], key="wide", scale_min=-100, scale_max=100)
    response = admin_client.post(reverse("manage_checkins:questions"), data)
    assert response.status_code == 302
    assert Question.objects.filter(key="wide").exists()


def test_editing_a_question_in_a_published_survey_creates_a_new_version(
    admin_client, world, configured
):
    question, survey = configured["question"], configured["survey"]
    checkin_services.survey_publish(survey=survey)
    url = reverse("manage_checkins:question", args=[question.pk])
    assert "Saving creates version 2" in admin_client.get(url).content.decode()
    response = admin_client.post(
        url, _question_post(question, text="Our tools help me serve customers."), follow=True
    )
    assert "became version 2" in response.content.decode()
    new = Question.objects.get(organisation=world.organisation, key="tooling", version=2)
    assert new.replaces == question
    entry = AuditEntry.objects.get(action="question.new_version")
    assert entry.before["version"] == 1 and entry.after["version"] == 2


NO_SUCH_ID = "9" * 30  # beyond any database integer


def test_survey_create_with_an_id_no_question_can_have_is_an_invalid_choice(
    admin_client, world, configured
):
    response = admin_client.post(
        reverse("manage_checkins:surveys"),
        {"name": "Huge", "items_per_person": 8, "questions": [NO_SUCH_ID]},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Survey.objects.filter(name="Huge").exists()


def test_schedule_create_with_an_id_no_team_can_have_is_an_invalid_choice(
    admin_client, world, configured
):
    response = admin_client.post(
        reverse("manage_checkins:schedules"),
        {
            "name": "Huge",
            "survey": ensure_library().pk,
            "teams": [world.billing.pk, NO_SUCH_ID],
            "cadence": "weekly",
            "weekday": 0,
            "local_time": "09:00",
            "open_hours": 96,
            "start_date": "2026-04-01",
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Schedule.objects.filter(name="Huge").exists()


def test_survey_publish_and_edit_to_a_new_version(admin_client, world, configured):
    survey = configured["survey"]
    admin_client.post(reverse("manage_checkins:survey_publish", args=[survey.pk]))
    survey.refresh_from_db()
    assert survey.is_published
    response = admin_client.post(
        reverse("manage_checkins:survey", args=[survey.pk]),
        {
            "name": "Acme pulse (revised)",
            "description": "",
            "questions": [configured["question"].pk],
            "items_per_person": 8,
        },
        follow=True,
    )
    assert "became version 2" in response.content.decode()
    assert Survey.objects.get(organisation=world.organisation, is_current=True).version == 2
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "survey.publish",
        "survey.new_version",
    ]


def test_schedule_create_with_a_draft_survey_is_refused(admin_client, world, configured):
    response = admin_client.post(
        reverse("manage_checkins:schedules"),
        {
            "name": "Draft",
            "survey": configured["survey"].pk,
            "teams": [world.billing.pk],
            "cadence": "weekly",
            "weekday": 0,
            "local_time": "09:00",
            "open_hours": 96,
            "reminder_offsets": "24",
            "start_date": "2026-04-01",
        },
    )
    assert response.status_code == 200
    assert not Schedule.objects.filter(name="Draft").exists()


def test_schedule_create_with_a_first_day_in_9999_is_refused(admin_client, world, configured):
    response = admin_client.post(
        reverse("manage_checkins:schedules"),
        {
            "name": "Far off",
            "survey": ensure_library().pk,
            "teams": [world.billing.pk],
            "cadence": "weekly",
            "weekday": 0,
            "local_time": "09:00",
            "open_hours": 96,
            "reminder_offsets": "24",
            "start_date": "9999-12-31",
        },
    )
    assert response.status_code == 200
    assert "Choose a first day from 2000-01-01" in response.content.decode()
    assert not Schedule.objects.filter(name="Far off").exists()


def test_schedule_pages_show_a_schedule_stored_with_a_first_day_in_9999(
    admin_client, world, configured
):
    schedule = configured["schedule"]
    Schedule.objects.filter(pk=schedule.pk).update(start_date=date(9999, 12, 31))
    assert admin_client.get(reverse("manage_checkins:schedules")).status_code == 200
    page = reverse("manage_checkins:schedule", args=[schedule.public_id])
    assert admin_client.get(page).status_code == 200


def test_schedule_create_writes_and_audits(admin_client, world, configured):
    library = ensure_library()
    response = admin_client.post(
        reverse("manage_checkins:schedules"),
        {
            "name": "Billing fortnightly",
            "survey": library.pk,
            "teams": [world.billing.pk],
            "cadence": "biweekly",
            "weekday": 2,
            "local_time": "10:30",
            "timezone": "Europe/London",
            "open_hours": 72,
            "reminder_offsets": "24, 48",
            "start_date": "2026-04-01",
        },
    )
    schedule = Schedule.objects.get(name="Billing fortnightly")
    assert response.status_code == 302
    assert schedule.reminder_offsets == [24, 48] and schedule.local_time == time(10, 30)
    assert AuditEntry.objects.get(action="schedule.create").after["teams"] == ["Billing"]


def test_schedule_pause_and_resume_are_audited(admin_client, world, configured):
    schedule = configured["schedule"]
    url = reverse("manage_checkins:schedule_pause", args=[schedule.public_id])
    admin_client.post(url, {"paused": "1"})
    schedule.refresh_from_db()
    assert schedule.paused
    admin_client.post(url, {"paused": "0"})
    schedule.refresh_from_db()
    assert not schedule.paused
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "schedule.pause",
        "schedule.resume",
    ]


def test_schedule_preview_shows_local_times_across_the_dst_change(admin_client, world, configured):
    # given a Monday 09:00 Europe/Berlin schedule; clocks go forward on Sunday 2026-03-29
    schedule = configured["schedule"]
    url = reverse("manage_checkins:schedule", args=[schedule.public_id])
    # when the admin looks at it on 2026-03-17
    with time_machine.travel(datetime(2026, 3, 17, 12, 0, tzinfo=UTC), tick=False):
        body = admin_client.get(url).content.decode()
    # then every opening is 09:00 on the wall clock, CET before the change and CEST after
    assert "March 23, 2026, 09:00 CET (UTC+0100)" in body
    assert "March 30, 2026, 09:00 CEST (UTC+0200)" in body
    assert "April 6, 2026, 09:00 CEST (UTC+0200)" in body


def test_support_resource_is_created_and_audited(admin_client, world):
    admin_client.post(
        reverse("manage_checkins:support"),
        {"title": "Employee assistance", "url": "https://eap.example.test", "order": 1},
    )
    assert SupportResource.objects.get(organisation=world.organisation).title == (
        "Employee assistance"
    )
    assert AuditEntry.objects.filter(action="support.create").exists()


def test_channel_webhooks_are_saved_but_never_audited_in_clear(admin_client, world):
    secret = "https://hooks.slack.com/services/T000/B000/XXXXSECRET"
    admin_client.post(
        reverse("manage_checkins:channels"),
        {"slack_enabled": "on", "slack_webhook_url": secret, "default_channel": "email"},
    )
    settings = ChannelSettings.objects.get(organisation=world.organisation)
    assert settings.slack_enabled and settings.slack_webhook_url == secret
    entry = AuditEntry.objects.get(action="channels.update")
    assert "SECRET" not in str(entry.before) + str(entry.after)
    assert entry.after["slack_webhook"] == "set"
    body = admin_client.get(reverse("manage_checkins:channels")).content.decode()
    assert "XXXXSECRET" not in body


def test_member_list_on_team_page_shows_only_that_team(admin_client, world):
    outsider = MembershipFactory(team=world.billing).user
    body = admin_client.get(reverse("manage:team", args=[world.support.public_id])).content.decode()
    members = body.split("<h2>Members</h2>", 1)[1]
    assert str(world.employee) in members and str(outsider) not in members


def test_superuser_sees_the_audit_log_in_django_admin_but_cannot_change_it(client, world):
    from wellbeing.audit import audit_record

    entry = audit_record(
        organisation=world.organisation, actor=world.admin, action="team.update", target="x"
    )
    superuser = UserFactory(organisation=None, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert client.get("/django-admin/wellbeing/auditentry/").status_code == 200
    assert client.get("/django-admin/wellbeing/auditentry/add/").status_code == 403
    client.post(f"/django-admin/wellbeing/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
