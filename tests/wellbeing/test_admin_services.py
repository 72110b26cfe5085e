"""The Django admin changes teams, people, memberships and leads through the services: a rule
the product enforces is refused here too, with the error on the form; a valid change is applied
and audited with the operator as the actor; nothing crosses organisations."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from tests.factories import (
    MembershipFactory,
    OrganisationFactory,
    TeamFactory,
    TeamLeadFactory,
    UserFactory,
)
from wellbeing.models import (
    AuditEntry,
    FlagSettings,
    Membership,
    Organisation,
    Team,
    TeamLead,
    User,
)

PASSWORD = "x-very-long-pw-4711"


@dataclass
class World:
    operator: User
    organisation: Organisation
    admin: User
    employee: User
    membership: Membership
    cx: Team
    support: Team
    billing: Team
    other_person: User
    other_team: Team


@pytest.fixture
def world(db) -> World:
    operator = User.objects.create_superuser(email="operator@example.test", password=PASSWORD)
    organisation = OrganisationFactory(name="Acme", slug="acme")
    admin = UserFactory(organisation=organisation, is_org_admin=True, full_name="Ada Admin")
    cx = TeamFactory(organisation=organisation, name="Customer Care")
    support = TeamFactory(organisation=organisation, name="Frontline", parent=cx)
    billing = TeamFactory(organisation=organisation, name="Billing")
    membership = MembershipFactory(team=support, started_on=date(2024, 1, 1))
    other = OrganisationFactory(name="Globex", slug="globex")
    return World(
        operator=operator,
        organisation=organisation,
        admin=admin,
        employee=membership.user,
        membership=membership,
        cx=cx,
        support=support,
        billing=billing,
        other_person=UserFactory(organisation=other, full_name="Gus Globex"),
        other_team=TeamFactory(organisation=other, name="Globex Ops"),
    )


@pytest.fixture
def operator(client, world):
    client.force_login(world.operator)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action))


def rows(prefix: str, forms: list[dict], *, initial: int) -> dict[str, object]:
    data: dict[str, object] = {
        f"{prefix}-TOTAL_FORMS": len(forms),
        f"{prefix}-INITIAL_FORMS": initial,
    }
    for i, form in enumerate(forms):
        data.update({f"{prefix}-{i}-{name}": value for name, value in form.items()})
    return data


def team_form(team: Team, *, leads: list[dict] | None = None, **changes) -> dict[str, object]:
    existing = [{"id": lead.pk, "user": lead.user_id} for lead in team.leads.order_by("pk")]
    data = {
        "name": team.name,
        "parent": team.parent_id or "",
        "customer_facing": "on" if team.customer_facing else "",
        "is_active": "on" if team.is_active else "",
    }
    data.update(changes)
    return data | rows("leads", existing + (leads or []), initial=len(existing))


def person_form(
    person: User, *, memberships: list[dict] | None = None, **changes
) -> dict[str, object]:
    existing = [
        {
            "id": m.pk,
            "team": m.team_id,
            "started_on": m.started_on.isoformat(),
            "ended_on": m.ended_on.isoformat() if m.ended_on else "",
        }
        for m in person.memberships.order_by("pk")
    ]
    for i, change in enumerate(memberships or []):
        if i < len(existing) and "id" not in change:
            existing[i].update(change)
        else:
            existing.append(change)
    data = {
        "email": person.email,
        "full_name": person.full_name,
        "organisation": person.organisation_id or "",
        "timezone": person.timezone,
        "language": person.language,
        "is_org_admin": "on" if person.is_org_admin else "",
        "is_active": "on" if person.is_active else "",
    }
    data.update(changes)
    initial = person.memberships.count()
    data |= rows("memberships", existing, initial=initial)
    # the browser also sends each row's start as first shown (a field with a default)
    for i, m in enumerate(person.memberships.order_by("pk")):
        data[f"initial-memberships-{i}-started_on"] = m.started_on.isoformat()
    return data


def change_url(obj) -> str:
    return reverse(f"admin:wellbeing_{obj._meta.model_name}_change", args=[obj.pk])


# --- Teams ----------------------------------------------------------------------------------


def test_moving_a_team_under_its_own_subteam_is_refused_on_the_form(operator, world):
    response = operator.post(change_url(world.cx), team_form(world.cx, parent=world.support.pk))
    assert response.status_code == 200
    assert "cannot be moved under itself or one of its sub-teams" in text(response)
    world.cx.refresh_from_db()
    assert world.cx.parent is None
    assert not entries("team.move")


def test_moving_a_team_next_to_a_namesake_is_refused_on_the_form(operator, world):
    # given a second "Billing", inside Customer Care
    namesake = TeamFactory(organisation=world.organisation, name="Billing", parent=world.cx)
    # when the operator moves it to the top level, next to the first one
    response = operator.post(change_url(namesake), team_form(namesake, parent=""))
    # then the service's refusal is on the form and nothing moved
    assert response.status_code == 200
    assert "A team named “Billing” already exists at the top level." in text(response)
    namesake.refresh_from_db()
    assert namesake.parent == world.cx
    assert not entries("team.move")


def test_a_parent_team_from_another_organisation_is_refused(operator, world):
    response = operator.post(
        change_url(world.billing), team_form(world.billing, parent=world.other_team.pk)
    )
    assert response.status_code == 200
    assert "The parent team belongs to another organisation." in text(response)
    world.billing.refresh_from_db()
    assert world.billing.parent is None


def test_renaming_to_a_sibling_name_in_another_case_is_refused_and_nothing_is_kept(operator, world):
    # a rename and a move in one save: the refused rename leaves the move undone too
    response = operator.post(
        change_url(world.billing),
        team_form(world.billing, name="customer care", customer_facing="on"),
    )
    assert response.status_code == 200
    assert "already exists at the top level" in text(response)
    world.billing.refresh_from_db()
    assert (world.billing.name, world.billing.customer_facing) == ("Billing", False)
    assert not AuditEntry.objects.exists()


def test_a_move_and_a_rename_are_applied_and_audited_with_the_operator_as_actor(operator, world):
    response = operator.post(
        change_url(world.billing),
        team_form(world.billing, name="Billing & Refunds", parent=world.cx.pk),
    )
    assert response.status_code == 302
    world.billing.refresh_from_db()
    assert (world.billing.name, world.billing.parent) == ("Billing & Refunds", world.cx)
    [update], [move] = entries("team.update"), entries("team.move")
    assert update.actor == world.operator and update.organisation == world.organisation
    assert update.after == {"name": "Billing & Refunds"}
    assert move.actor == world.operator
    assert (move.before, move.after) == ({"parent": None}, {"parent": "Customer Care"})


def test_adding_a_team_goes_through_the_service_and_is_audited(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_team_add"),
        {"organisation": world.organisation.pk, "name": "Escalations", "parent": world.cx.pk}
        | rows("leads", [{"user": world.employee.pk}], initial=0),
    )
    assert response.status_code == 302
    team = Team.objects.get(name="Escalations")
    assert team.parent == world.cx and team.is_active
    assert TeamLead.objects.filter(team=team, user=world.employee).exists()
    [created] = entries("team.create")
    assert created.actor == world.operator and created.after["parent"] == "Customer Care"
    assert entries("lead.add")[0].actor == world.operator


def test_a_new_team_under_another_organisations_team_is_refused(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_team_add"),
        {"organisation": world.organisation.pk, "name": "Sneaky", "parent": world.other_team.pk}
        | rows("leads", [], initial=0),
    )
    assert response.status_code == 200
    assert "The parent team belongs to another organisation." in text(response)
    assert not Team.objects.filter(name="Sneaky").exists()


def test_deactivating_a_team_is_audited(operator, world):
    response = operator.post(change_url(world.billing), team_form(world.billing, is_active=""))
    assert response.status_code == 302
    world.billing.refresh_from_db()
    assert not world.billing.is_active
    [entry] = entries("team.update")
    assert (entry.before, entry.after) == ({"is_active": True}, {"is_active": False})
    assert entry.actor == world.operator


def test_a_teams_organisation_cannot_be_changed(operator, world):
    page = operator.get(change_url(world.billing)).content.decode()
    assert 'name="organisation"' not in page
    operator.post(
        change_url(world.billing),
        team_form(world.billing, organisation=world.other_team.organisation_id),
    )
    world.billing.refresh_from_db()
    assert world.billing.organisation == world.organisation


def test_teams_are_deactivated_not_deleted(operator, world):
    # no delete link and no bulk delete
    delete_link = f"/team/{world.billing.pk}/delete/"
    assert delete_link not in operator.get(change_url(world.billing)).content.decode()
    changelist = operator.get(reverse("admin:wellbeing_team_changelist")).content.decode()
    assert 'value="delete_selected"' not in changelist
    # and a delete request says why and deletes nothing
    url = reverse("admin:wellbeing_team_delete", args=[world.billing.pk])
    response = operator.post(url, {"post": "yes"}, follow=True)
    assert "Teams are deactivated, not deleted" in text(response)
    assert Team.objects.filter(pk=world.billing.pk).exists()


# --- Leads ----------------------------------------------------------------------------------


def test_a_lead_from_another_organisation_is_refused_on_the_inline_row(operator, world):
    response = operator.post(
        change_url(world.billing),
        team_form(world.billing, leads=[{"user": world.other_person.pk}]),
    )
    assert response.status_code == 200
    assert "A lead must belong to the team's organisation." in text(response)
    assert not TeamLead.objects.filter(team=world.billing).exists()
    assert not entries("lead.add")


def test_leads_added_and_removed_on_the_team_page_are_audited(operator, world):
    # added
    operator.post(
        change_url(world.billing), team_form(world.billing, leads=[{"user": world.admin.pk}])
    )
    lead = TeamLead.objects.get(team=world.billing)
    assert lead.user == world.admin
    # removed
    form = team_form(world.billing)
    form["leads-0-DELETE"] = "on"
    assert operator.post(change_url(world.billing), form).status_code == 302
    assert not TeamLead.objects.filter(team=world.billing).exists()
    assert [(e.action, e.actor) for e in AuditEntry.objects.order_by("id")] == [
        ("lead.add", world.operator),
        ("lead.remove", world.operator),
    ]


def test_a_leads_person_cannot_be_swapped_in_place(operator, world):
    TeamLeadFactory(team=world.billing, user=world.admin)
    form = team_form(world.billing)
    form["leads-0-user"] = world.employee.pk
    response = operator.post(change_url(world.billing), form)
    assert response.status_code == 200
    assert "remove this lead and add another" in text(response)
    assert TeamLead.objects.get(team=world.billing).user == world.admin


def test_the_lead_pages_add_through_the_service_and_refuse_other_organisations(operator, world):
    add = reverse("admin:wellbeing_teamlead_add")
    refused = operator.post(add, {"user": world.other_person.pk, "team": world.billing.pk})
    assert refused.status_code == 200
    assert "A lead must belong to the team's organisation." in text(refused)
    assert operator.post(add, {"user": world.admin.pk, "team": world.billing.pk}).status_code == 302
    assert entries("lead.add")[0].actor == world.operator


def test_deleting_leads_in_the_admin_is_audited(operator, world):
    one = TeamLeadFactory(team=world.billing, user=world.admin)
    two = TeamLeadFactory(team=world.support, user=world.admin)
    operator.post(reverse("admin:wellbeing_teamlead_delete", args=[one.pk]), {"post": "yes"})
    operator.post(
        reverse("admin:wellbeing_teamlead_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"},
    )
    assert not TeamLead.objects.exists()
    assert [e.actor for e in entries("lead.remove")] == [world.operator, world.operator]


# --- Memberships ----------------------------------------------------------------------------


def test_a_membership_in_another_organisations_team_is_refused(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_membership_add"),
        {"user": world.employee.pk, "team": world.other_team.pk, "started_on": "2025-01-06"},
    )
    assert response.status_code == 200
    assert "A person can only join teams of their own organisation." in text(response)
    assert not Membership.objects.filter(team=world.other_team).exists()


def test_a_membership_added_in_the_admin_is_audited(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_membership_add"),
        {"user": world.employee.pk, "team": world.billing.pk, "started_on": "2025-01-06"},
    )
    assert response.status_code == 302
    assert Membership.objects.filter(user=world.employee, team=world.billing).exists()
    [entry] = entries("membership.start")
    assert entry.actor == world.operator
    assert entry.after == {"team": "Billing", "start": "2025-01-06"}


def test_ending_a_membership_is_audited_and_an_end_before_the_start_is_refused(operator, world):
    url = change_url(world.membership)
    refused = operator.post(url, {"started_on": "2024-01-01", "ended_on": "2023-12-31"})
    assert refused.status_code == 200
    assert "A membership cannot end before it starts." in text(refused)
    assert operator.post(url, {"started_on": "2024-01-01", "ended_on": "2025-03-31"}).status_code
    world.membership.refresh_from_db()
    assert world.membership.ended_on == date(2025, 3, 31)
    [entry] = entries("membership.end")
    assert entry.actor == world.operator
    assert entry.before == {"team": "Customer Care / Frontline", "ended_on": None}


def test_a_memberships_team_is_read_only_and_memberships_are_not_deleted(operator, world):
    url = change_url(world.membership)
    page = operator.get(url).content.decode()
    assert 'name="team"' not in page
    assert f"/membership/{world.membership.pk}/delete/" not in page
    operator.post(url, {"team": world.billing.pk, "started_on": "2024-01-01", "ended_on": ""})
    world.membership.refresh_from_db()
    assert world.membership.team == world.support
    delete = reverse("admin:wellbeing_membership_delete", args=[world.membership.pk])
    response = operator.post(delete, {"post": "yes"}, follow=True)
    assert "Memberships are ended, not deleted" in text(response)
    assert Membership.objects.filter(pk=world.membership.pk).exists()


def test_moving_someone_on_their_page_ends_one_membership_and_starts_another(operator, world):
    # given the person's page: end the membership in Frontline, add one in Billing
    form = person_form(
        world.employee,
        memberships=[
            {"ended_on": "2025-01-05"},
            {"team": world.billing.pk, "started_on": "2025-01-06", "ended_on": ""},
        ],
    )
    response = operator.post(change_url(world.employee), form)
    assert response.status_code == 302
    memberships = list(world.employee.memberships.order_by("started_on"))
    assert [(m.team, m.ended_on) for m in memberships] == [
        (world.support, date(2025, 1, 5)),
        (world.billing, None),
    ]
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "membership.end",
        "membership.start",
    ]
    assert {e.actor for e in AuditEntry.objects.all()} == {world.operator}


def test_on_the_persons_page_a_team_of_another_organisation_is_refused_on_its_row(operator, world):
    form = person_form(
        world.employee,
        memberships=[{}, {"team": world.other_team.pk, "started_on": "2025-01-06"}],
    )
    response = operator.post(change_url(world.employee), form)
    assert response.status_code == 200
    assert "A person can only join teams of their own organisation." in text(response)
    assert world.employee.memberships.count() == 1


def test_on_the_persons_page_a_memberships_team_cannot_be_swapped(operator, world):
    form = person_form(world.employee, memberships=[{"team": world.billing.pk}])
    response = operator.post(change_url(world.employee), form)
    assert response.status_code == 200
    assert "end this membership and add one in the new team" in text(response)
    world.membership.refresh_from_db()
    assert world.membership.team == world.support


# --- People ---------------------------------------------------------------------------------


def test_unticking_active_deactivates_as_the_people_page_does(operator, world):
    response = operator.post(change_url(world.employee), person_form(world.employee, is_active=""))
    assert response.status_code == 302
    world.employee.refresh_from_db()
    world.membership.refresh_from_db()
    assert not world.employee.is_active and world.membership.ended_on is not None
    [entry] = entries("person.deactivate")
    assert entry.actor == world.operator and entry.organisation == world.organisation


def test_the_only_admin_cannot_be_deactivated_or_demoted(operator, world):
    for change in ({"is_active": ""}, {"is_org_admin": ""}):
        response = operator.post(change_url(world.admin), person_form(world.admin, **change))
        assert response.status_code == 200
        assert "the organisation's only admin" in text(response)
    world.admin.refresh_from_db()
    assert world.admin.is_active and world.admin.is_org_admin
    assert not AuditEntry.objects.exists()


def test_making_someone_admin_and_reactivating_them_are_audited(operator, world):
    world.employee.is_active = False
    world.employee.save()
    form = person_form(world.employee, is_active="on", is_org_admin="on")
    assert operator.post(change_url(world.employee), form).status_code == 302
    world.employee.refresh_from_db()
    assert world.employee.is_active and world.employee.is_org_admin
    [update], [reactivate] = entries("person.update"), entries("person.reactivate")
    assert update.after == {"is_org_admin": True} and update.actor == world.operator
    assert reactivate.actor == world.operator


def test_an_e_mail_taken_in_another_case_is_refused(operator, world):
    response = operator.post(
        change_url(world.employee),
        person_form(world.employee, email=world.other_person.email.upper()),
    )
    assert response.status_code == 200
    assert "already exists" in text(response)


def test_a_person_in_teams_cannot_move_to_another_organisation(operator, world):
    form = person_form(world.employee, organisation=world.other_team.organisation_id)
    response = operator.post(change_url(world.employee), form)
    assert response.status_code == 200
    assert "their memberships and lead roles stay in that organisation" in text(response)
    world.employee.refresh_from_db()
    assert world.employee.organisation == world.organisation


def test_an_operator_puts_a_new_account_in_an_organisation_as_its_admin(operator, world):
    # the README's first steps: a user without organisation becomes an organisation admin
    newcomer = User.objects.create_user(email="newcomer@example.test", password=PASSWORD)
    form = person_form(newcomer, organisation=world.organisation.pk, is_org_admin="on")
    assert operator.post(change_url(newcomer), form).status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.organisation == world.organisation and newcomer.is_org_admin
    assert [e.action for e in AuditEntry.objects.order_by("id")] == [
        "person.join",
        "person.update",
    ]


def test_adding_a_person_goes_through_the_service_and_keeps_the_password(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_user_add"),
        {
            "email": "Neu@Acme.test",
            "organisation": world.organisation.pk,
            "password1": PASSWORD,
            "password2": PASSWORD,
        }
        | rows("memberships", [], initial=0),
    )
    assert response.status_code == 302
    person = User.objects.get(email="neu@acme.test")
    assert person.organisation == world.organisation and person.check_password(PASSWORD)
    [entry] = entries("person.create")
    assert entry.actor == world.operator


def test_adding_a_person_whose_e_mail_differs_only_in_case_is_refused(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_user_add"),
        {
            "email": world.employee.email.upper(),
            "organisation": world.organisation.pk,
            "password1": PASSWORD,
            "password2": PASSWORD,
        }
        | rows("memberships", [], initial=0),
    )
    assert response.status_code == 200
    assert "already exists" in text(response)
    assert User.objects.filter(email__iexact=world.employee.email).count() == 1


def test_an_invalid_language_is_refused(operator, world):
    form = person_form(world.employee, language="xx")
    response = operator.post(change_url(world.employee), form)
    assert response.status_code == 200
    assert "Select a valid choice. xx is not one of the available choices." in text(response)
    world.employee.refresh_from_db()
    assert world.employee.language == ""


def test_deleting_a_person_erases_them_and_audits_it_without_their_name(operator, world):
    name = world.employee.full_name
    operator.post(change_url(world.employee), person_form(world.employee, full_name="Renamed"))
    url = reverse("admin:wellbeing_user_delete", args=[world.employee.pk])
    response = operator.post(url, {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not User.objects.filter(pk=world.employee.pk).exists()
    [entry] = entries("person.erase")
    assert entry.actor == world.operator
    # no admin history keeps their name (the change made before, nor the deletion)
    reprs = list(LogEntry.objects.values_list("object_repr", flat=True))
    assert name not in reprs and "Renamed" not in reprs


def test_deleting_the_only_admin_is_refused_with_the_reason(operator, world):
    url = reverse("admin:wellbeing_user_delete", args=[world.admin.pk])
    response = operator.post(url, {"post": "yes"}, follow=True)
    assert "the organisation's only admin" in text(response)
    assert User.objects.filter(pk=world.admin.pk).exists()


def test_people_are_deactivated_in_bulk_not_deleted_in_bulk(operator, world):
    changelist = reverse("admin:wellbeing_user_changelist")
    assert 'value="delete_selected"' not in operator.get(changelist).content.decode()
    second = MembershipFactory(team=world.billing).user
    response = operator.post(
        changelist,
        {"action": "deactivate_selected", "_selected_action": [world.employee.pk, second.pk]},
        follow=True,
    )
    assert "2 people deactivated." in text(response)
    assert not User.objects.filter(pk__in=[world.employee.pk, second.pk], is_active=True).exists()
    assert len(entries("person.deactivate")) == 2


def test_a_bulk_deactivation_that_meets_the_only_admin_changes_nobody(operator, world):
    response = operator.post(
        reverse("admin:wellbeing_user_changelist"),
        {"action": "deactivate_selected", "_selected_action": [world.employee.pk, world.admin.pk]},
        follow=True,
    )
    assert "Nobody was deactivated." in text(response)
    assert User.objects.filter(pk__in=[world.employee.pk, world.admin.pk], is_active=True).count()
    assert not entries("person.deactivate")


# --- Organisation thresholds and flag settings ------------------------------------------------


def test_organisation_thresholds_changed_in_the_admin_are_audited(operator, world):
    organisation = world.organisation
    form = {
        "name": organisation.name,
        "slug": organisation.slug,
        "timezone": organisation.timezone,
        "locale": organisation.locale,
        "anonymity_threshold": 7,
        "comment_threshold": 9,
    }
    assert operator.post(change_url(organisation), form).status_code == 302
    organisation.refresh_from_db()
    assert (organisation.anonymity_threshold, organisation.comment_threshold) == (7, 9)
    [entry] = entries("organisation.thresholds")
    assert entry.actor == world.operator and entry.after["anonymity_threshold"] == 7


def test_organisation_language_and_timezone_changed_in_the_admin_are_audited(operator, world):
    organisation = world.organisation
    form = {
        "name": organisation.name,
        "slug": organisation.slug,
        "timezone": "America/Chicago",
        "locale": "de",
        "anonymity_threshold": organisation.anonymity_threshold,
        "comment_threshold": organisation.comment_threshold,
    }
    assert operator.post(change_url(organisation), form).status_code == 302
    organisation.refresh_from_db()
    assert (organisation.locale, organisation.timezone) == ("de", "America/Chicago")
    [entry] = entries("organisation.settings")
    assert entry.actor == world.operator
    assert entry.after == {"locale": "de", "timezone": "America/Chicago"}
    assert not entries("organisation.thresholds")


def test_flag_settings_changed_in_the_admin_are_audited(operator, world):
    form = {
        "organisation": world.organisation.pk,
        "high_stress_level": 70,
        "high_stress_consecutive": 2,
        "client_burnout_level": 50,
        "resolve_after_cycles": 3,
        "reopen_within_days": 56,
    }
    response = operator.post(reverse("admin:wellbeing_flagsettings_add"), form)
    assert response.status_code == 302
    assert FlagSettings.objects.get(organisation=world.organisation).high_stress_level == 70
    [entry] = entries("flags.thresholds")
    assert entry.actor == world.operator and entry.after == {"high_stress_level": 70}


def test_the_admin_pages_render(operator, world):
    lead = TeamLeadFactory(team=world.billing, user=world.admin)
    settings = FlagSettings.objects.create(organisation=world.organisation)
    pages = (
        [
            reverse(f"admin:wellbeing_{model}_{view}")
            for model in ("organisation", "user", "team", "membership", "teamlead", "flagsettings")
            for view in ("changelist", "add")
        ]
        + [
            change_url(obj)
            for obj in (world.organisation, world.employee, world.support, world.membership, lead)
        ]
        + [
            change_url(settings),
            reverse("admin:wellbeing_user_delete", args=[world.employee.pk]),
            reverse("admin:wellbeing_teamlead_delete", args=[lead.pk]),
        ]
    )
    for page in pages:
        assert operator.get(page).status_code == 200, page
