"""Trend detection and the flag life cycle, driven through the close-job entry point."""

from __future__ import annotations

import importlib.util
import json
import random

import pytest
from django.core.management import call_command

from tests.analytics.helpers import fixed_input, period, record, run_history, team_input
from tests.factories import OrganisationFactory, TeamFactory, TeamLeadFactory, UserFactory
from wellbeing.errors import ServiceError
from wellbeing.flags import flag_acknowledge, flag_dismiss
from wellbeing.models import Flag, FlagEvent, FlagSettings

pytestmark = pytest.mark.django_db

HIGH, LOW = [70.0] * 6, [40.0] * 6


def _drifting_history(organisation, *, cycles=26, drift_from=14, seed=7):
    """A customer-facing team whose stress and client burnout climb; a stable team beside it."""
    rising = TeamFactory(organisation=organisation, name="Support Tier 1", customer_facing=True)
    stable = TeamFactory(organisation=organisation, name="Support Tier 2", customer_facing=True)
    rng = random.Random(seed)

    def make(i):
        up = max(0, i - drift_from)
        return [
            team_input(
                rising,
                rng=rng,
                means={"stress": 38 + 3.0 * up, "client_burnout": 33 + 2.5 * up, "wellbeing": 40},
            ),
            team_input(
                stable,
                rng=rng,
                means={"stress": 38, "client_burnout": 33, "wellbeing": 40},
            ),
        ]

    changes = run_history(organisation, cycles, make)
    return rising, stable, [c for batch in changes for c in batch]


def test_rising_customer_facing_team_raises_empathy_risk_and_stable_team_none():
    # given 26 weekly cycles in which one support team's stress and client burnout drift up
    organisation = OrganisationFactory(anonymity_threshold=5)
    rising, stable, changes = _drifting_history(organisation)
    # then the rising team has an open empathy-risk flag with published evidence
    flag = Flag.objects.get(team=rising, kind=Flag.Kind.EMPATHY_RISK)
    assert flag.state == Flag.State.OPEN
    assert flag.severity in (Flag.Severity.WARNING, Flag.Severity.CRITICAL)
    assert flag.evidence["cycles"] and all(c["index"] is not None for c in flag.evidence["cycles"])
    assert flag.evidence["client_burnout"]["cycles"]
    assert "customer-facing" in flag.explanation
    assert any("wellness check-in" in a for a in flag.suggested_actions)
    assert any(c.kind == "empathy_risk" and c.change == "opened" for c in changes)
    # and the stable team has no flag of any kind
    assert not Flag.objects.filter(team=stable).exists()


@pytest.mark.skipif(
    importlib.util.find_spec("checkins.demo") is None,
    reason="the demo check-in history (checkins/demo.py) is not there yet",
)
def test_demo_seed_flags_support_tier_1_for_empathy_risk():
    # given the seeded demo organisation with months of history
    call_command("seed_demo")
    # then its rising customer-facing team carries the headline flag
    assert Flag.objects.filter(
        team__name="Support Tier 1", kind=Flag.Kind.EMPATHY_RISK, state__in=["open", "acknowledged"]
    ).exists()
    # and a stable team does not
    assert not Flag.objects.filter(
        team__name="Support Tier 2", kind=Flag.Kind.EMPATHY_RISK
    ).exists()


def _org_with_lead():
    organisation = OrganisationFactory(anonymity_threshold=5)
    FlagSettings.objects.create(
        organisation=organisation,
        high_stress_level=60,
        high_stress_consecutive=2,
        resolve_after_cycles=3,
    )
    department = TeamFactory(organisation=organisation, name="Service")
    team = TeamFactory(organisation=organisation, parent=department, name="Desk")
    lead = TeamLeadFactory(team=team).user
    head = TeamLeadFactory(team=department).user
    return organisation, department, team, lead, head


def _high_stress(team):
    return Flag.objects.get(team=team, kind=Flag.Kind.HIGH_STRESS)


def test_a_cycle_closed_late_leaves_the_flags_of_teams_with_later_figures_alone():
    # given two desks above the level in cycle 0, and cycle 2 stored already for one of them
    organisation, _, team, _, _ = _org_with_lead()
    other = TeamFactory(organisation=organisation, name="Counter")
    record(organisation, 0, [fixed_input(team, stress=HIGH), fixed_input(other, stress=HIGH)])
    record(organisation, 2, [fixed_input(team, stress=LOW)])
    assert not Flag.objects.exists()
    # when cycle 1 closes late, above the level for both
    changes = record(
        organisation, 1, [fixed_input(team, stress=HIGH), fixed_input(other, stress=HIGH)]
    )
    # then the flags already moved on past cycle 1 for the desk (cycle 2 is stored), so only
    # the desk without later figures gets its flag
    assert {(c.team_id, c.kind) for c in changes} == {(other.pk, "high_stress")}
    assert not Flag.objects.filter(team=team).exists()


def test_high_stress_opens_only_after_consecutive_cycles_and_alerts_leads_and_admins():
    # given a desk under a department, both with leads, and an admin
    organisation, department, team, lead, head = _org_with_lead()
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    outsider = TeamLeadFactory(team=TeamFactory(organisation=organisation)).user
    # when stress is above 60 once
    first = record(organisation, 0, [fixed_input(team, stress=HIGH)])
    # then nothing opens yet
    assert first == [] and not Flag.objects.exists()
    # when it is above 60 a second time
    changes = record(organisation, 1, [fixed_input(team, stress=HIGH)])
    # then a high-stress flag opens for the desk (the department's rollup is the same people)
    opened = [c for c in changes if c.kind == "high_stress" and c.team_id == team.pk]
    assert len(opened) == 1
    change = opened[0]
    assert change.change == "opened" and change.severity == "warning"
    assert set(change.recipient_ids) == {lead.pk, head.pk, admin.pk}
    assert outsider.pk not in change.recipient_ids
    flag = _high_stress(team)
    assert change.idempotency_key.startswith(f"flag:{flag.pk}:opened:")
    assert change.context["link_path"] == f"/dashboards/teams/{team.public_id}/"
    assert change.context["team_name"] == "Desk"
    assert flag.evidence["threshold"] == 60 and flag.evidence["statistic"] == 70.0


def test_flag_life_cycle_acknowledge_resolve_with_hysteresis_reopen_and_escalate():
    organisation, _, team, lead, _ = _org_with_lead()
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    record(organisation, 1, [fixed_input(team, stress=HIGH)])
    flag = _high_stress(team)
    # when the lead acknowledges it with the action taken
    flag_acknowledge(flag=flag, user=lead, action_taken="Talked with the team; paused project X")
    flag.refresh_from_db()
    assert flag.state == Flag.State.ACKNOWLEDGED and flag.acknowledged_by == lead
    # when stress is back down for two cycles, then up once (not enough to fire), then down
    record(organisation, 2, [fixed_input(team, stress=LOW)])
    record(organisation, 3, [fixed_input(team, stress=LOW)])
    record(organisation, 4, [fixed_input(team, stress=HIGH)])
    flag.refresh_from_db()
    # then the single high cycle restarts the count: no flicker, still acknowledged
    assert flag.state == Flag.State.ACKNOWLEDGED and flag.in_control_streak == 0
    record(organisation, 5, [fixed_input(team, stress=LOW)])
    record(organisation, 6, [fixed_input(team, stress=LOW)])
    flag.refresh_from_db()
    assert flag.state == Flag.State.ACKNOWLEDGED and flag.in_control_streak == 2
    changes = record(organisation, 7, [fixed_input(team, stress=LOW)])
    # then after three cycles in control it resolves itself
    flag.refresh_from_db()
    assert flag.state == Flag.State.RESOLVED and flag.resolved_at is not None
    assert [c.change for c in changes if c.flag_id == flag.pk] == ["resolved"]
    # when it comes back two weeks later
    record(organisation, 8, [fixed_input(team, stress=HIGH)])
    changes = record(organisation, 9, [fixed_input(team, stress=HIGH)])
    # then the same flag reopens instead of a duplicate
    assert Flag.objects.filter(team=team, kind="high_stress").count() == 1
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN
    assert [c.change for c in changes if c.flag_id == flag.pk] == ["reopened"]
    # when stress climbs far above the level
    changes = record(organisation, 10, [fixed_input(team, stress=[85.0] * 6)])
    # then the flag escalates to critical
    flag.refresh_from_db()
    assert flag.severity == Flag.Severity.CRITICAL
    assert [c.change for c in changes if c.flag_id == flag.pk] == ["escalated"]
    assert list(flag.events.values_list("kind", flat=True)) == [
        "opened",
        "acknowledged",
        "resolved",
        "reopened",
        "escalated",
    ]


def test_suppressed_cycles_neither_fire_nor_count_toward_resolution():
    organisation, _, team, _, _ = _org_with_lead()
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    record(organisation, 1, [fixed_input(team, stress=HIGH)])
    flag = _high_stress(team)
    # when only three people answer for several cycles (below k = 5)
    for i in range(2, 7):
        record(organisation, i, [fixed_input(team, stress=[10.0] * 3)])
    # then the flag stays open: nothing below k is evidence either way
    flag.refresh_from_db()
    assert flag.state == Flag.State.OPEN and flag.in_control_streak == 0
    assert all(c["index"] == 70.0 for c in flag.evidence["cycles"])


def test_only_leads_of_the_team_or_an_ancestor_and_admins_may_acknowledge():
    organisation, department, team, lead, head = _org_with_lead()
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    record(organisation, 1, [fixed_input(team, stress=HIGH)])
    flag = _high_stress(team)
    other_lead = TeamLeadFactory(team=TeamFactory(organisation=organisation)).user
    employee = UserFactory(organisation=organisation)
    # then people who cannot see the team get "not found"
    for person in (other_lead, employee):
        with pytest.raises(ServiceError) as error:
            flag_acknowledge(flag=flag, user=person, action_taken="x")
        assert error.value.status == 404
    # and an empty action is refused
    with pytest.raises(ServiceError) as error:
        flag_acknowledge(flag=flag, user=head, action_taken="  ")
    assert error.value.code == "invalid"
    # and the department's lead may acknowledge
    flag_acknowledge(flag=flag, user=head, action_taken="Moved two people from back office")
    assert FlagEvent.objects.get(flag=flag, kind="acknowledged").actor == head
    # and acknowledging twice is a conflict
    with pytest.raises(ServiceError) as error:
        flag_acknowledge(flag=flag, user=lead, action_taken="again")
    assert error.value.status == 409


def test_dismissed_flag_needs_a_reason_and_mutes_the_same_episode():
    organisation, _, team, lead, _ = _org_with_lead()
    record(organisation, 0, [fixed_input(team, stress=HIGH)])
    record(organisation, 1, [fixed_input(team, stress=HIGH)])
    flag = _high_stress(team)
    with pytest.raises(ServiceError):
        flag_dismiss(flag=flag, user=lead, reason="")
    # when the lead dismisses it with a reason
    flag_dismiss(flag=flag, user=lead, reason="Seasonal peak we planned for")
    flag.refresh_from_db()
    assert flag.state == Flag.State.DISMISSED and flag.dismissed_reason
    # then while the same episode continues no new flag opens
    assert record(organisation, 2, [fixed_input(team, stress=HIGH)]) == []
    assert Flag.objects.filter(team=team, kind="high_stress").count() == 1
    # when the team was back in control and the problem returns, a new flag opens
    record(organisation, 3, [fixed_input(team, stress=LOW)])
    record(organisation, 4, [fixed_input(team, stress=HIGH)])
    changes = record(organisation, 5, [fixed_input(team, stress=HIGH)])
    assert Flag.objects.filter(team=team, kind="high_stress").count() == 2
    assert any(c.change == "opened" and c.kind == "high_stress" for c in changes)


def test_one_teams_failing_detection_does_not_stop_the_others(monkeypatch, caplog):
    # given two teams and a detector that breaks on one of them
    organisation, _, team, _, _ = _org_with_lead()
    other = TeamFactory(organisation=organisation, name="Other")
    import wellbeing.flags as flags_module

    real = flags_module._evaluate_high_stress

    def broken_for_one(stress, settings):
        if stress.latest == 71.0:
            raise RuntimeError("boom")
        return real(stress, settings)

    monkeypatch.setattr(flags_module, "_evaluate_high_stress", broken_for_one)
    for i in range(2):
        record(
            organisation,
            i,
            [fixed_input(team, stress=[71.0] * 6), fixed_input(other, stress=HIGH)],
        )
    # then the other team still gets its flag, and the failure is logged without figures
    assert Flag.objects.filter(team=other, kind="high_stress").exists()
    assert not Flag.objects.filter(team=team, kind="high_stress").exists()
    assert "RuntimeError" in caplog.text and "71.0" not in caplog.text


def test_a_refused_flag_write_is_retried_team_by_team_and_stops_only_that_team(monkeypatch, caplog):
    # given two teams (and their department) high two cycles running, and a live flag for one of them written by
    # someone else after the close read the flags (a second close of the organisation, say)
    organisation, _, team, _, _ = _org_with_lead()
    other = TeamFactory(organisation=organisation, name="Other")
    import wellbeing.flags as flags_module

    real = flags_module._flags_write
    rounds = []

    def write_after_a_concurrent_flag(ctx, planned):
        rounds.append(sorted(planned))
        if {team.pk, other.pk} <= set(planned):
            Flag.objects.create(
                organisation=organisation,
                team=team,
                kind="high_stress",
                severity="watch",
                opened_at=ctx.result.closed_at,
                first_cycle_period=ctx.result.period_start,
                last_cycle_period=ctx.result.period_start,
                last_evaluated_period=ctx.result.period_start,
            )
        return real(ctx, planned)

    monkeypatch.setattr(flags_module, "_flags_write", write_after_a_concurrent_flag)
    changes = []
    for i in range(2):
        changes += record(
            organisation, i, [fixed_input(team, stress=HIGH), fixed_input(other, stress=HIGH)]
        )
    # then the database refused the duplicate live flag; the bulk write rolled back and the
    # teams were written one by one: the other team's flag, event and alert stand
    assert len(rounds) == 1 and {team.pk, other.pk} <= set(rounds[0])  # the second cycle
    opened = {c.team_id for c in changes if c.kind == "high_stress"}
    assert other.pk in opened and team.pk not in opened
    flag = Flag.objects.get(team=other, kind="high_stress")
    assert flag.events.filter(kind="opened").count() == 1
    assert Flag.objects.filter(team=team, kind="high_stress").count() == 1  # the other writer's
    assert not FlagEvent.objects.filter(flag__team=team).exists()
    assert f"team_id={team.pk} error=IntegrityError" in caplog.text


def test_flag_evidence_and_alerts_contain_no_figure_from_fewer_than_k():
    # given a team that dips below k in some cycles while its stress climbs
    organisation = OrganisationFactory(anonymity_threshold=5)
    team = TeamFactory(organisation=organisation, customer_facing=True)
    changes = []
    for i in range(20):
        stress = [97.0, 98.0, 99.0] if i % 4 == 3 else [40.0 + 2.5 * i + d for d in range(6)]
        changes += record(organisation, i, [fixed_input(team, stress=stress)])
    # then no flag's evidence or alert mentions the small cycles' figures or quotes those cycles
    text = json.dumps(
        [list(Flag.objects.values("evidence", "explanation"))] + [c.context for c in changes],
        default=str,
    )
    assert Flag.objects.filter(team=team).exists()
    for secret in ("97.0", "98.0", "99.0"):
        assert secret not in text
    hidden_periods = {period(i).isoformat() for i in range(20) if i % 4 == 3}
    for flag in Flag.objects.filter(team=team):
        quoted = {c["period_start"] for c in flag.evidence.get("cycles", [])}
        assert quoted and not (quoted & hidden_periods)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("high_stress_level", 101),
        ("client_burnout_level", 150),
        ("high_stress_consecutive", 0),
        ("resolve_after_cycles", 0),
    ],
)
def test_flag_settings_reject_levels_outside_0_100_and_counts_below_1(field, value):
    from django.core.exceptions import ValidationError

    settings = FlagSettings(organisation=OrganisationFactory(), **{field: value})
    with pytest.raises(ValidationError) as error:
        settings.full_clean()
    assert field in error.value.message_dict


def test_flag_settings_defaults_apply_without_a_saved_row():
    from wellbeing.flags import settings_for

    settings = settings_for(OrganisationFactory())
    assert (
        settings.high_stress_level,
        settings.high_stress_consecutive,
        settings.resolve_after_cycles,
    ) == (60, 2, 3)
