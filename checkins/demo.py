"""Months of weekly check-in history for the demo organisation (``wellbeing.demo`` makes it).

Each past week goes through the real path with a bulk shortcut where the real path is per
person: a ``Cycle`` row like the tick makes, invitations in bulk (rotation included, no links
or messages — nobody is e-mailed about the past), answers into the pending store, the shuffled
release, and ``cycle_close`` (aggregates, trend detection, flags).  About 70 % of people answer,
with person-level and weekly noise.  "Support Tier 1" drifts: its stress and customer-related
burnout climb over the last nine weeks, which the detector should flag as an empathy risk.

The close writes its messages to the outbox as it always does (flag alerts, the admins'
summary, the leads' digests), but months of backdated mail is not what a demo should send: the
messages of every week but the latest are cancelled in the close's own transaction
(``cycle_close(cancel_messages_reason=...)``, so a running worker never sees them waiting) and
stay in the outbox as ``cancelled`` with ``HISTORY_NOT_SENT`` as the reason, where an admin can
still read them.  The latest week's are left to send: one realistic batch, which ``./pulse run``
delivers to ``.pulse/outbox-mail``.  A later run that adds newer weeks cancels what is still
waiting from the weeks before them.

Idempotent: weeks whose cycle is closed are skipped; an interrupted week is redone.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from wellbeing.models import Organisation, Team
from wellbeing.selectors import team_members_on, team_subtree_ids

from . import rotation, scheduling
from .library import library_install
from .models import (
    Cycle,
    Invitation,
    PendingAnswer,
    Question,
    Schedule,
    SupportResource,
    Survey,
    SurveyItem,
)
from .services import (
    cycle_close,
    cycle_messages_cancel_pending,
    pending_release,
    support_resource_create,
)

DEMO_SCHEDULE_NAME = "Weekly pulse"
# Some respondents write a comment (the demo organisation has comments on); what they write
# follows how strained they are that week.
COMMENT_SHARE = 0.25
CALM_COMMENTS = (
    "Good week: the team covered for each other when the queue spiked.",
    "The new rota works well for me.",
    "More time for training would help.",
    "Thanks for the flexible start times.",
    "Our one-to-ones have been really useful lately.",
    "The knowledge base is out of date in places.",
)
STRAINED_COMMENTS = (
    "Too many escalations this week and no time to recover between calls.",
    "Customers have been angrier since the price change; it wears you down.",
    "We need more people on the phones at peak times.",
    "I skipped lunch most days to keep the queue down.",
    "Hard to stay patient with callers when the backlog never shrinks.",
    "Targets went up again but the tools are just as slow.",
)
# Why the messages about every demo week but the latest are in the outbox as cancelled.
HISTORY_NOT_SENT = "demo history: not sent for a past check-in"
DRIFTING_TEAM = "Support Tier 1"
DRIFT_WEEKS = 9
PARTICIPATION = 0.70


def _weekly_pulse() -> Survey:
    library_install(version=1, question_model=Question, survey_model=Survey, item_model=SurveyItem)
    return Survey.objects.get(organisation__isnull=True, key="weekly-pulse", is_current=True)


def _value_for(question: Question, badness: float) -> int:
    """The answer whose 0-100 index (100 = worst) is nearest ``badness`` * 100."""
    assert question.scale_min is not None and question.scale_max is not None
    b = min(max(badness, 0.0), 1.0)
    # raw is the position on the printed scale (0 = first label); see wellbeing.stats.scoring
    raw = b if question.reverse == (not question.higher_is_worse) else 1.0 - b
    return question.scale_min + round(raw * (question.scale_max - question.scale_min))


#: Shown after each check-in; fictional, like the rest of the demo.
DEMO_SUPPORT = [
    {
        "title": "Employee Assistance Programme",
        "description": "Free, confidential counselling by phone or video, day and night. "
        "Your employer never learns who called.",
        "url": "https://eap.example.com/northwind",
        "phone": "+44 800 000 0000",
    },
    {
        "title": "Occupational health team",
        "description": "Talk to a nurse or doctor about workload, sleep or stress at work.",
        "url": "https://intranet.example.com/occupational-health",
    },
]


def history_seed(
    *,
    organisation: Organisation,
    weeks: int = 26,
    seed: int = 7,
    progress: Callable[[str], None] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    if weeks < 0:
        raise ValueError(f"weeks must be 0 or more, got {weeks}")
    say = progress or (lambda message: None)
    now = now or timezone.now()
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    # comments from a generator of their own, so the answers are the same with or without them
    comment_rng = random.Random(seed + 1)  # noqa: S311 - reproducible demo data
    survey = _weekly_pulse()
    roots = list(Team.objects.filter(organisation=organisation, parent__isnull=True))
    if not roots:
        raise ValueError("seed the organisation (teams and people) first")

    tz = organisation.tz
    rule = scheduling.Rule(
        cadence=Schedule.Cadence.WEEKLY,
        weekday=0,
        local_time=time(9, 0),
        tz=tz,
        open_hours=96,
        start_date=(now - timedelta(weeks=weeks + 2)).astimezone(tz).date(),
        end_date=None,
    )
    past = [
        p
        for p in scheduling.periods(
            rule, opening_after=now - timedelta(weeks=weeks + 2), opening_until=now
        )
        if p.closes_at <= now
    ]
    past = past[-weeks:] if weeks else []  # past[-0:] would be all of it
    if not past:
        return {"cycles": 0, "skipped": 0, "invitations": 0, "responses": 0}

    schedule = Schedule.objects.filter(organisation=organisation, name=DEMO_SCHEDULE_NAME).first()
    if schedule is None:
        schedule = Schedule.objects.create(
            organisation=organisation,
            name=DEMO_SCHEDULE_NAME,
            survey=survey,
            weekday=0,
            local_time=time(9, 0),
            open_hours=96,
            reminder_offsets=[48],
            start_date=past[0].period_start,
        )
        schedule.teams.set(roots)
        # As if it had existed all along, so the tick does not look further back.
        Schedule.objects.filter(pk=schedule.pk).update(
            created_at=past[0].opens_at - timedelta(days=1)
        )
    if not SupportResource.objects.filter(organisation=organisation).exists():
        for order, resource in enumerate(DEMO_SUPPORT):
            support_resource_create(organisation=organisation, order=order, **resource)
    team_ids = sorted(team_subtree_ids(organisation=organisation, roots=[t.pk for t in roots]))
    teams = {t.pk: t for t in Team.objects.filter(pk__in=team_ids)}
    drifting = {t.pk for t in teams.values() if t.name == DRIFTING_TEAM}

    questions = {
        item.question_id: item.question
        for item in SurveyItem.objects.filter(survey=survey).select_related("question")
    }
    items_all: list[rotation.RotationItem] = []
    items_cf: list[rotation.RotationItem] = []
    for item in SurveyItem.objects.filter(survey=survey, question__kind="scale").order_by(
        "position"
    ):
        q = questions[item.question_id]
        r = rotation.RotationItem(question_id=q.pk, dimension=q.dimension)
        items_cf.append(r)
        if q.audience == Question.Audience.ALL:
            items_all.append(r)
    cap = survey.items_per_person
    periods_of = {
        False: rotation.rotation_period(items_all, cap),
        True: rotation.rotation_period(items_cf, cap),
    }

    # Stable traits: each team's usual strain, each person's offset and willingness to answer.
    team_base = {tid: rng.uniform(0.22, 0.42) for tid in team_ids}
    person_trait: dict[int, tuple[float, float]] = {}

    created = skipped = invitations_total = responses_total = 0
    earlier: list[Cycle] = []  # the weeks an earlier run closed
    for number, period in enumerate(past):
        existing = Cycle.objects.filter(schedule=schedule, period_start=period.period_start).first()
        if existing is not None and existing.state in (Cycle.State.CLOSED, Cycle.State.MISSED):
            skipped += 1
            earlier.append(existing)
            continue
        weeks_left = len(past) - 1 - number  # 0 for the most recent week
        with transaction.atomic():
            if existing is not None:  # an interrupted earlier run: redo the week
                existing.delete()
            cycle = Cycle.objects.create(
                organisation=organisation,
                schedule=schedule,
                survey=survey,
                period_start=period.period_start,
                index=period.index,
                opens_at=period.opens_at,
                closes_at=period.closes_at,
                state=Cycle.State.OPEN,
                team_ids=team_ids,
                opened_fully=True,
            )
            members: dict[int, int] = {}
            for user_id, team_id in (
                team_members_on(team_ids=team_ids, day=period.period_start)
                .filter(user__organisation=organisation)
                .order_by("user_id", "-started_on", "team_id")
                .values_list("user_id", "team_id")
            ):
                members.setdefault(user_id, team_id)
            invitations: list[Invitation] = []
            pending: list[PendingAnswer] = []
            week_noise = {tid: rng.gauss(0, 0.03) for tid in team_ids}
            for user_id, team_id in members.items():
                cf = teams[team_id].customer_facing
                shown = rotation.rotation_select(
                    items_cf if cf else items_all,
                    cap=cap,
                    cycle_index=period.index,
                    offset=rng.randrange(periods_of[cf]),
                )
                trait = person_trait.setdefault(
                    user_id,
                    (rng.gauss(0, 0.08), rng.uniform(PARTICIPATION - 0.25, PARTICIPATION + 0.25)),
                )
                answered = rng.random() < trait[1]  # mean 0.70
                invitations.append(
                    Invitation(
                        cycle=cycle,
                        user_id=user_id,
                        team_id=team_id,
                        answered=answered,
                        question_ids=[] if answered else shown,
                        rotation_offset=None,
                    )
                )
                if not answered:
                    continue
                strain = team_base[team_id] + trait[0] + week_noise[team_id]
                climb = 0.0
                if team_id in drifting and weeks_left < DRIFT_WEEKS:
                    climb = 0.055 * (DRIFT_WEEKS - weeks_left)
                answers: dict[str, int] = {}
                for qid in shown:
                    q = questions[qid]
                    badness = strain + rng.gauss(0, 0.12)
                    if q.dimension in ("stress", "client_burnout"):
                        badness += climb
                    elif q.dimension in ("burnout", "wellbeing", "recovery"):
                        badness += climb * 0.4
                    answers[str(qid)] = _value_for(q, badness)
                comment = ""
                if organisation.comments_enabled and comment_rng.random() < COMMENT_SHARE:
                    pool = STRAINED_COMMENTS if strain + climb > 0.5 else CALM_COMMENTS
                    comment = comment_rng.choice(pool)
                pending.append(
                    PendingAnswer(
                        id=uuid.uuid4(),
                        cycle=cycle,
                        team_id=team_id,
                        answers=answers,
                        comment=comment,
                    )
                )
            Invitation.objects.bulk_create(invitations, batch_size=1000)
            PendingAnswer.objects.bulk_create(pending, batch_size=1000)
            Cycle.objects.filter(pk=cycle.pk).update(invited_count=len(invitations))
        pending_release(cycle=cycle, force=True)
        cycle_close(
            cycle=cycle,
            now=period.closes_at + timedelta(minutes=1),
            # nobody is e-mailed about the past: only the latest week's messages go
            cancel_messages_reason=HISTORY_NOT_SENT if weeks_left else None,
        )
        created += 1
        invitations_total += len(invitations)
        responses_total += len(pending)
        say(
            f"week {number + 1}/{len(past)} {period.period_start}: "
            f"{len(pending)}/{len(invitations)} answered"
        )
    if created:
        # Newer weeks were added: what an earlier run left waiting is about the past now.
        cycle_messages_cancel_pending(
            cycles=[cycle for cycle in earlier if cycle.period_start < past[-1].period_start],
            reason=HISTORY_NOT_SENT,
        )
    summary = {
        "cycles": created,
        "skipped": skipped,
        "invitations": invitations_total,
        "responses": responses_total,
        "csat_values": customer_metrics_seed(organisation=organisation, seed=seed, now=now),
    }
    say(
        f"check-in history: {created} weeks added, {skipped} already there, "
        f"{responses_total} responses from {invitations_total} invitations; "
        "only the latest week's messages are left to send"
    )
    return summary


CSAT_LAG_WEEKS = 2
CSAT_PER_STRESS_POINT = -0.3


def customer_metrics_seed(*, organisation: Organisation, seed: int = 7, now: datetime) -> int:
    """Weekly CSAT (% satisfied) for the customer-facing teams without sub-teams, computed from
    each team's *published* stress two weeks earlier, so Support Tier 1's CSAT dips a couple of
    weeks after its stress climbs.  Goes through the real import (validated, idempotent).
    Returns the number of new or changed values."""
    from wellbeing.customer_metrics import (
        MetricRow,
        customer_metric_values_import,
        published_index_by_week,
        week_monday,
        week_number,
    )
    from wellbeing.models import CycleResult

    rng = random.Random(seed + 1)  # noqa: S311 - reproducible demo data, not security
    teams = list(
        Team.objects.filter(organisation=organisation, customer_facing=True, children__isnull=True)
        .distinct()
        .order_by("name")
    )
    if not teams:
        return 0
    stress = published_index_by_week(
        organisation=organisation, team_ids=[t.pk for t in teams], dimension="stress"
    )
    weeks = sorted(
        {
            week_monday(day)
            for day in CycleResult.objects.filter(organisation=organisation).values_list(
                "period_start", flat=True
            )
        }
    )
    rows: list[MetricRow] = []
    for team in teams:
        series = stress.get(team.pk, {})
        if not series:
            continue
        usual = sum(series.values()) / len(series)
        level = rng.uniform(84.0, 91.0)
        for monday in weeks:
            earlier = series.get(week_number(monday) - CSAT_LAG_WEEKS, usual)
            value = level + CSAT_PER_STRESS_POINT * (earlier - usual) + rng.gauss(0, 0.8)
            rows.append(
                MetricRow(
                    row=len(rows) + 1,
                    metric="csat",
                    team=str(team.public_id),
                    week_start=monday,
                    value=round(min(100.0, max(0.0, value)), 1),
                )
            )
    if not rows:
        return 0
    result = customer_metric_values_import(
        organisation=organisation,
        rows=rows,
        actor=None,
        today=now.astimezone(organisation.tz).date(),
        source="demo",
    )
    return result.counts["value_create"] + result.counts["value_update"]
