"""Check-in writes: questions and surveys, schedules, the tick, opening and closing cycles,
one-time links, anonymous submission and the unlinkable release.

What this module must never do: store anything that ties an answer to a person (no user, no
invitation, no token, no time next to answers), log a token, an answer or an address, or let a
batch smaller than k leave the pending store while more answers can still come (DESIGN.md §4).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from time import perf_counter, sleep
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Q
from django.urls import reverse as url_reverse
from django.utils import timezone

from wellbeing.bulk import gc_paused, rows_copy, rows_copy_new
from wellbeing.errors import ServiceError, validation_fields
from wellbeing.ids import ordered_uuid
from wellbeing.models import Organisation, Team, User
from wellbeing.selectors import team_subtree_ids

from . import rotation, scheduling
from .models import (
    COMMENT_MAX_LENGTH,
    Cycle,
    Invitation,
    InvitationToken,
    PendingAnswer,
    Question,
    Response,
    Schedule,
    SupportResource,
    Survey,
    SurveyItem,
)
from .selectors import opening_members, stored_participation
from .tokens import checkin_link, token_hash, token_matches, token_minter, token_selector

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from wellbeing.analytics import CycleScores, Roster, TeamCycleInput

logger = logging.getLogger("pulse.checkins")

OPEN_CHUNK_SIZE = 2000
# A chunk that finds the cycle row held waits this long before its task re-queues the opening.
OPEN_BUSY_PAUSE_SECONDS = 0.2
MESSAGE_BATCH_SIZE = 2000
# Invitation and reminder deliveries are spread over this many seconds after the opening time.
DELIVERY_JITTER_SECONDS = 900
# How many past periods one tick looks back over when beat has been down.
CATCH_UP_LIMIT = 60
_INTEGER = re.compile(r"^[+-]?\d{1,9}$")


# --- Questions --------------------------------------------------------------------------------

QUESTION_EDITABLE_FIELDS = (
    "text",
    "dimension",
    "kind",
    "scale_min",
    "scale_max",
    "scale_labels",
    "reverse",
    "higher_is_worse",
    "required",
    "audience",
    "translations",
    "source",
    "licence",
)


def _full_clean(obj: Any, *, exclude: Sequence[str] = ()) -> None:
    from django.core.exceptions import ValidationError

    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise ServiceError(
            "invalid", "Please correct the highlighted fields.", fields=validation_fields(exc)
        ) from exc


def question_create(
    *,
    organisation: Organisation,
    key: str,
    text: str,
    dimension: str = "",
    kind: str = Question.Kind.SCALE,
    scale_min: int | None = None,
    scale_max: int | None = None,
    scale_labels: Sequence[str] = (),
    reverse: bool = False,
    higher_is_worse: bool = True,
    required: bool = False,
    audience: str = Question.Audience.ALL,
    translations: dict | None = None,
    source: str = "",
    licence: str = "",
) -> Question:
    question = Question(
        organisation=organisation,
        key=key,
        version=1,
        text=text,
        dimension=dimension,
        kind=kind,
        scale_min=scale_min,
        scale_max=scale_max,
        scale_labels=list(scale_labels),
        reverse=reverse,
        higher_is_worse=higher_is_worse,
        required=required,
        audience=audience,
        translations=translations or {},
        source=source,
        licence=licence,
    )
    _full_clean(question, exclude=["replaces", "organisation"])
    if Question.objects.filter(organisation=organisation, key=key).exists():
        raise ServiceError("invalid", "A question with this key exists.", fields={"key": ["taken"]})
    question.save()
    return question


def question_has_answers(*, question: Question) -> bool:
    key = str(question.pk)
    return (
        Response.objects.filter(answers__has_key=key).exists()
        or PendingAnswer.objects.filter(answers__has_key=key).exists()
    )


def question_update(*, question: Question, **changes: Any) -> Question:
    """Edit a question.  One that has answers (or sits in a published survey) is never edited
    in place: a new version is created and returned, and the old one stops being current."""
    unknown = set(changes) - set(QUESTION_EDITABLE_FIELDS)
    if unknown:
        raise ServiceError(
            "invalid", "Unknown fields.", fields={name: ["unknown field"] for name in unknown}
        )
    if question.organisation_id is None:
        raise ServiceError("read_only", "Library questions cannot be changed.", status=403)
    with transaction.atomic():
        question = Question.objects.select_for_update().get(pk=question.pk)
        if _is_superseded(question):
            raise ServiceError("invalid", "Only the current version of a question can be edited.")
        frozen = (
            question_has_answers(question=question)
            or question.survey_items.filter(survey__is_published=True).exists()
        )
        if not frozen:
            for name, value in changes.items():
                setattr(question, name, value)
            _full_clean(question, exclude=["replaces", "organisation"])
            question.save()
            return question
        new = Question(
            organisation_id=question.organisation_id,
            key=question.key,
            version=question.version + 1,
            replaces=question,
            **{name: getattr(question, name) for name in QUESTION_EDITABLE_FIELDS},
        )
        for name, value in changes.items():
            setattr(new, name, value)
        _full_clean(new, exclude=["replaces", "organisation"])
        new.save()
        Question.objects.filter(pk=question.pk).update(is_current=False)
        return new


def _is_superseded(question: Question) -> bool:
    return Question.objects.filter(replaces=question).exists()


# --- Surveys ----------------------------------------------------------------------------------


def _survey_question_check(
    *, organisation: Organisation, question_ids: Sequence[int], items_per_person: int
) -> list[Question]:
    ids = list(question_ids)
    if not ids:
        raise ServiceError(
            "invalid", "A survey needs questions.", fields={"question_ids": ["empty"]}
        )
    if len(set(ids)) != len(ids):
        raise ServiceError(
            "invalid", "A question appears twice.", fields={"question_ids": ["duplicate"]}
        )
    found = {
        q.pk: q
        for q in Question.objects.filter(pk__in=ids, is_current=True).filter(
            organisation__isnull=True
        )
        | Question.objects.filter(pk__in=ids, is_current=True, organisation=organisation)
    }
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise ServiceError(
            "invalid",
            "Some questions do not exist or are not current.",
            fields={"question_ids": [f"unknown: {', '.join(missing)}"]},
        )
    questions = [found[i] for i in ids]
    if sum(1 for q in questions if q.kind == Question.Kind.TEXT) > 1:
        raise ServiceError(
            "invalid", "At most one free-text question.", fields={"question_ids": ["two texts"]}
        )
    dimensions = {q.dimension for q in questions if q.kind == Question.Kind.SCALE}
    if len(dimensions) > items_per_person:
        raise ServiceError(
            "invalid",
            "Every dimension must be measured each cycle: raise the items per person.",
            fields={"items_per_person": [f"at least {len(dimensions)}"]},
        )
    return questions


def survey_create(
    *,
    organisation: Organisation,
    name: str,
    question_ids: Sequence[int],
    items_per_person: int = 8,
    description: str = "",
) -> Survey:
    questions = _survey_question_check(
        organisation=organisation, question_ids=question_ids, items_per_person=items_per_person
    )
    with transaction.atomic():
        key = f"survey-{uuid.uuid4().hex[:12]}"
        survey = Survey.objects.create(
            organisation=organisation,
            key=key,
            name=name,
            description=description,
            items_per_person=items_per_person,
        )
        SurveyItem.objects.bulk_create(
            SurveyItem(survey=survey, question=q, position=i) for i, q in enumerate(questions)
        )
    return survey


def survey_publish(*, survey: Survey) -> Survey:
    Survey.objects.filter(pk=survey.pk).update(is_published=True)
    survey.refresh_from_db()
    return survey


def survey_update(
    *,
    survey: Survey,
    name: str | None = None,
    description: str | None = None,
    question_ids: Sequence[int] | None = None,
    items_per_person: int | None = None,
) -> Survey:
    """Edit a draft in place; a published survey gets a new published version instead, and the
    schedules that used it move to the new version (past cycles keep the old one)."""
    if survey.organisation_id is None:
        raise ServiceError("read_only", "Library surveys cannot be changed.", status=403)
    organisation = survey.organisation
    assert organisation is not None
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if not survey.is_current:
            raise ServiceError("invalid", "Only the current version of a survey can be edited.")
        ids = (
            list(question_ids)
            if question_ids is not None
            else list(survey.items.order_by("position").values_list("question_id", flat=True))
        )
        per_person = items_per_person if items_per_person is not None else survey.items_per_person
        questions = _survey_question_check(
            organisation=organisation, question_ids=ids, items_per_person=per_person
        )
        if not survey.is_published:
            survey.name = name if name is not None else survey.name
            survey.description = description if description is not None else survey.description
            survey.items_per_person = per_person
            survey.save()
            survey.items.all().delete()
            target = survey
        else:
            target = Survey.objects.create(
                organisation=organisation,
                key=survey.key,
                version=survey.version + 1,
                replaces=survey,
                name=name if name is not None else survey.name,
                description=description if description is not None else survey.description,
                translations=survey.translations,
                items_per_person=per_person,
                is_published=True,
            )
            Survey.objects.filter(pk=survey.pk).update(is_current=False)
            Schedule.objects.filter(survey=survey).update(survey=target)
        SurveyItem.objects.bulk_create(
            SurveyItem(survey=target, question=q, position=i) for i, q in enumerate(questions)
        )
    return target


# --- Schedules --------------------------------------------------------------------------------

SCHEDULE_FIELDS = (
    "name",
    "survey",
    "cadence",
    "weekday",
    "local_time",
    "timezone",
    "open_hours",
    "reminder_offsets",
    "start_date",
    "end_date",
    "paused",
)


def _schedule_validate(schedule: Schedule, team_ids: Sequence[int] | None) -> None:
    _full_clean(schedule, exclude=["organisation", "survey"])
    survey = schedule.survey
    if survey.organisation_id not in (None, schedule.organisation_id):
        raise ServiceError("invalid", "Unknown survey.", fields={"survey": ["unknown"]})
    if not survey.is_published:
        raise ServiceError("invalid", "Publish the survey first.", fields={"survey": ["draft"]})
    if team_ids is not None:
        ids = set(team_ids)
        found = set(
            Team.objects.filter(pk__in=ids, organisation_id=schedule.organisation_id).values_list(
                "pk", flat=True
            )
        )
        if not ids or found != ids:
            raise ServiceError(
                "invalid", "Choose teams of this organisation.", fields={"team_ids": ["unknown"]}
            )
    elif schedule.pk is not None:
        ids = set(schedule.teams.values_list("pk", flat=True))
    else:
        return
    _schedule_overlap_refuse(schedule, ids)


def _schedule_overlap_refuse(schedule: Schedule, team_ids: set[int]) -> None:
    """A team takes part in one schedule at a time.  Two schedules over the same people would
    publish two figures of a group for the same week, and their difference is the people only
    one of them covers (a group the guard would hide)."""
    organisation = schedule.organisation
    mine = team_subtree_ids(organisation=organisation, roots=team_ids)
    others = Schedule.objects.filter(organisation=organisation).exclude(pk=schedule.pk)
    if schedule.end_date is not None:
        others = others.filter(start_date__lte=schedule.end_date)
    others = others.filter(Q(end_date__isnull=True) | Q(end_date__gte=schedule.start_date))
    for other in others.prefetch_related("teams").order_by("name"):
        theirs = team_subtree_ids(
            organisation=organisation, roots=[team.pk for team in other.teams.all()]
        )
        shared = Team.objects.filter(pk__in=mine & theirs).order_by("name").first()
        if shared is not None:
            message = (
                f"{shared.name} is already checked in by the schedule {other.name}: a team"
                " takes part in one schedule at a time."
            )
            raise ServiceError("invalid", message, fields={"team_ids": [message]})


def schedule_create(
    *,
    organisation: Organisation,
    name: str,
    survey: Survey,
    team_ids: Sequence[int],
    start_date: date,
    cadence: str = Schedule.Cadence.WEEKLY,
    weekday: int = 0,
    local_time: time = time(9, 0),
    timezone: str = "",
    open_hours: int = 96,
    reminder_offsets: Sequence[int] = (24, 72),
    end_date: date | None = None,
    paused: bool = False,
) -> Schedule:
    schedule = Schedule(
        organisation=organisation,
        name=name,
        survey=survey,
        cadence=cadence,
        weekday=weekday,
        local_time=local_time,
        timezone=timezone,
        open_hours=open_hours,
        reminder_offsets=list(reminder_offsets),
        start_date=start_date,
        end_date=end_date,
        paused=paused,
    )
    _schedule_validate(schedule, team_ids)
    with transaction.atomic():
        schedule.save()
        schedule.teams.set(team_ids)
    return schedule


def schedule_update(
    *, schedule: Schedule, team_ids: Sequence[int] | None = None, **changes: Any
) -> Schedule:
    unknown = set(changes) - set(SCHEDULE_FIELDS)
    if unknown:
        raise ServiceError(
            "invalid", "Unknown fields.", fields={name: ["unknown field"] for name in unknown}
        )
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
        for name, value in changes.items():
            setattr(schedule, name, list(value) if name == "reminder_offsets" else value)
        _schedule_validate(schedule, team_ids)
        schedule.save()
        if team_ids is not None:
            schedule.teams.set(team_ids)
    return schedule


def support_resource_create(
    *,
    organisation: Organisation,
    title: str,
    description: str = "",
    url: str = "",
    phone: str = "",
    order: int = 0,
) -> SupportResource:
    resource = SupportResource(
        organisation=organisation,
        title=title,
        description=description,
        url=url,
        phone=phone,
        order=order,
    )
    _full_clean(resource, exclude=["organisation"])
    resource.save()
    return resource


# --- The tick ---------------------------------------------------------------------------------


@dataclass
class TickReport:
    opened: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    closing: list[int] = field(default_factory=list)
    reminders: int = 0
    releasing: int = 0


def tick_run(*, now: datetime | None = None) -> TickReport:
    """Open every due cycle, record fully missed windows, send due reminders, close ended
    cycles.  Safe to run concurrently and repeatedly: schedules are claimed with
    ``SKIP LOCKED`` and ``(schedule, period_start)`` is unique."""
    now = now or timezone.now()
    report = TickReport()
    # One schedule or cycle that fails (bad data, a bug) is logged and left for the next tick;
    # it must not hold back every other organisation's check-ins.  Each step runs in its own
    # transaction, so what failed is rolled back whole (its on_commit hooks with it).
    for schedule_id in Schedule.objects.filter(paused=False).values_list("pk", flat=True):
        try:
            caught_up = _schedule_catch_up(schedule_id=schedule_id, now=now)
        except Exception:
            logger.exception("event=schedule_catch_up_failed schedule=%s", schedule_id)
            continue
        report.opened += caught_up.opened
        report.missed += caught_up.missed

    open_cycles = Cycle.objects.filter(state=Cycle.State.OPEN)
    for cycle in open_cycles.filter(closes_at__gt=now, opened_fully=True).select_related(
        "schedule"
    ):
        try:
            report.reminders += reminders_enqueue_due(cycle=cycle, now=now)
        except Exception as exc:
            # The type only: a database error's detail could quote a token row.
            logger.error(
                "event=reminders_failed cycle=%s error=%s", cycle.public_id, type(exc).__name__
            )
    from . import tasks

    # Openings interrupted by a lost task are picked up again (the chunk claims the cycle row).
    for cycle_id in open_cycles.filter(opened_fully=False, closes_at__gt=now).values_list(
        "pk", flat=True
    ):
        if cycle_id not in report.opened:
            transaction.on_commit(partial(tasks.enqueue, tasks.cycle_open_chunk_task, cycle_id))
    # Batches of k or more whose release task was lost (broker down at submit) go out now.
    for cycle_id, team_id in (
        PendingAnswer.objects.filter(cycle__state=Cycle.State.OPEN, cycle__closes_at__gt=now)
        .values("cycle_id", "team_id")
        .annotate(waiting=Count("pk"))
        .filter(waiting__gte=F("cycle__organisation__anonymity_threshold"))
        .values_list("cycle_id", "team_id")
    ):
        report.releasing += 1
        transaction.on_commit(partial(tasks.enqueue, tasks.pending_release_task, cycle_id, team_id))
    for cycle_id in open_cycles.filter(closes_at__lte=now).values_list("pk", flat=True):
        report.closing.append(cycle_id)
        transaction.on_commit(partial(tasks.enqueue, tasks.cycle_close_task, cycle_id))
    logger.info(
        "event=tick opened=%d missed=%d closing=%d reminders=%d",
        len(report.opened),
        len(report.missed),
        len(report.closing),
        report.reminders,
    )
    return report


def _schedule_catch_up(*, schedule_id: int, now: datetime) -> TickReport:
    """Open (or record as missed) one schedule's due periods, in one transaction; returns what
    it opened and missed."""
    from . import tasks

    report = TickReport()
    with transaction.atomic():
        schedule = (
            Schedule.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("organisation")
            .filter(pk=schedule_id, paused=False)
            .first()
        )
        if schedule is None:  # another tick holds it, or it was paused meanwhile
            return report
        last = schedule.cycles.order_by("-period_start").first()
        if last is not None:
            after = last.opens_at
        else:
            # Never open (or record as missed) a period whose window closed before the
            # schedule existed.
            after = schedule.created_at - timedelta(hours=schedule.open_hours)
        rule = scheduling.Rule.of(schedule)
        due = list(
            scheduling.periods(rule, opening_after=after, opening_until=now, limit=CATCH_UP_LIMIT)
        )
        for period in due:
            state = Cycle.State.MISSED if period.closes_at <= now else Cycle.State.OPEN
            try:
                with transaction.atomic():
                    cycle = Cycle.objects.create(
                        organisation=schedule.organisation,
                        schedule=schedule,
                        survey_id=schedule.survey_id,
                        period_start=period.period_start,
                        index=period.index,
                        opens_at=period.opens_at,
                        closes_at=period.closes_at,
                        state=state,
                        team_ids=(
                            sorted(_schedule_team_ids(schedule))
                            if state == Cycle.State.OPEN
                            else []
                        ),
                    )
            except IntegrityError:  # the unique (schedule, period_start) backstop
                continue
            if state == Cycle.State.MISSED:
                report.missed.append(cycle.pk)
                logger.warning(
                    "event=cycle_missed schedule=%s period=%s", schedule.pk, period.period_start
                )
            else:
                report.opened.append(cycle.pk)
                logger.info(
                    "event=cycle_opened schedule=%s period=%s cycle=%s",
                    schedule.pk,
                    period.period_start,
                    cycle.public_id,
                )
                transaction.on_commit(partial(tasks.enqueue, tasks.cycle_open_chunk_task, cycle.pk))
    return report


def _schedule_team_ids(schedule: Schedule) -> set[int]:
    """The active teams a cycle of ``schedule`` checks in: its teams and their sub-teams, but
    not a sub-team that another running schedule names (one moved in since the schedules were
    set up, ``_schedule_overlap_refuse``): that one stays with its own schedule, so no one is
    checked in twice in a week."""
    organisation = schedule.organisation
    roots = set(schedule.teams.filter(is_active=True).values_list("pk", flat=True))
    subtree = team_subtree_ids(organisation=organisation, roots=roots)
    today = timezone.localdate()
    claimed = (
        Schedule.teams.through.objects.filter(
            schedule__organisation=organisation,
            schedule__paused=False,
            team_id__in=subtree - roots,
        )
        .exclude(schedule=schedule)
        .filter(Q(schedule__end_date__isnull=True) | Q(schedule__end_date__gte=today))
        .values_list("team_id", flat=True)
    )
    subtree -= team_subtree_ids(organisation=organisation, roots=claimed)
    return set(Team.objects.filter(pk__in=subtree, is_active=True).values_list("pk", flat=True))


# --- Opening a cycle --------------------------------------------------------------------------


def _rotation_items(
    survey_id: int,
) -> tuple[list[rotation.RotationItem], list[rotation.RotationItem]]:
    """Rating items for (everyone, customer-facing teams), in survey order."""
    rows = (
        SurveyItem.objects.filter(survey_id=survey_id, question__kind=Question.Kind.SCALE)
        .order_by("position")
        .values_list("question_id", "question__dimension", "question__audience")
    )
    everyone: list[rotation.RotationItem] = []
    customer_facing: list[rotation.RotationItem] = []
    for question_id, dimension, audience in rows:
        item = rotation.RotationItem(question_id=question_id, dimension=dimension)
        customer_facing.append(item)
        if audience == Question.Audience.ALL:
            everyone.append(item)
    return everyone, customer_facing


_INVITATION_COLUMNS = [
    "public_id", "cycle_id", "user_id", "team_id", "question_ids", "rotation_offset", "answered",
]  # fmt: skip


def cycle_open_chunk(*, cycle: Cycle, chunk_size: int = OPEN_CHUNK_SIZE) -> bool:
    """Invite the next ``chunk_size`` members (by user id) and enqueue their invitation
    messages, in one transaction.  Returns True while members remain.  Concurrent calls for the
    same cycle do not overlap: the cycle row is claimed with SKIP LOCKED."""
    from notifications.services import OutgoingMessage, messages_enqueue_bulk

    with transaction.atomic():
        # Only the cycle row is claimed ("of": the joined organisation and survey rows stay free;
        # an insert anywhere in the organisation holds a key-share lock on its row), and with
        # the strength an update of non-key columns needs.
        locked = (
            Cycle.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("organisation", "survey")
            .filter(pk=cycle.pk)
            .first()
        )
        if locked is None:
            # Held by a submit's share lock or another chunk for a moment: the opening must not
            # end here.  Members remain unless the cycle is already fully opened or ended.
            still_opening = Cycle.objects.filter(
                pk=cycle.pk, state=Cycle.State.OPEN, opened_fully=False
            ).exists()
            if still_opening:
                sleep(OPEN_BUSY_PAUSE_SECONDS)  # no hot loop against a long chunk
            return still_opening
        if locked.state != Cycle.State.OPEN or locked.opened_fully:
            return False
        cycle = locked
        # One more than a chunk: whether members remain is known now, so the last chunk marks
        # the cycle fully opened itself (no trailing empty task queued behind the deliveries).
        members = opening_members(
            cycle=cycle, after_user_id=cycle.open_cursor, limit=chunk_size + 1
        )
        more = len(members) > chunk_size
        del members[chunk_size:]
        if not members:
            Cycle.objects.filter(pk=cycle.pk).update(opened_fully=True)
            logger.info(
                "event=cycle_open_done cycle=%s invited=%d", cycle.public_id, cycle.invited_count
            )
            return False
        items_all, items_cf = _rotation_items(cycle.survey_id)
        cap = cycle.survey.items_per_person
        periods = {
            False: rotation.rotation_period(items_all, cap),
            True: rotation.rotation_period(items_cf, cap),
        }
        # Per chunk, not per person: the question set of each (audience, offset), the keyed
        # token hasher and the message context.
        selections: dict[tuple[bool, int], list[int]] = {}
        mint = token_minter()
        context = _message_context(cycle)
        invitations: list[tuple[Any, ...]] = []  # _INVITATION_COLUMNS
        tokens: dict[int, tuple[uuid.UUID, str]] = {}  # user id -> their link's selector, hash
        messages = []
        for user_id, team_id, cf in members:
            offset = secrets.randbelow(periods[cf])
            question_ids = selections.get((cf, offset))
            if question_ids is None:
                question_ids = selections[(cf, offset)] = rotation.rotation_select(
                    items_cf if cf else items_all, cap=cap, cycle_index=cycle.index, offset=offset
                )
            public_id = ordered_uuid()
            invitations.append((public_id, cycle.pk, user_id, team_id, question_ids, offset, False))
            token, selector, hashed = mint()
            tokens[user_id] = (selector, hashed)
            messages.append(
                OutgoingMessage(
                    organisation_id=cycle.organisation_id,
                    kind="invitation",
                    recipient_id=user_id,
                    template="invitation",
                    context=context,
                    idempotency_key=f"inv:{public_id}",
                    sensitive_context={"url": checkin_link(token)},
                    channel=None,
                    not_before=cycle.opens_at,
                    jitter_seconds=DELIVERY_JITTER_SECONDS,
                )
            )
        ids = rows_copy_new(Invitation, _INVITATION_COLUMNS, invitations, json_columns=(4,))
        rows_copy(
            InvitationToken,
            ["selector", "token_hash", "invitation_id", "used"],
            [(*tokens[user_id], pk, False) for (user_id, *_), pk in zip(members, ids, strict=True)],
        )
        messages_enqueue_bulk(messages, new_keys=True)  # keyed by the new invitations' ids
        Cycle.objects.filter(pk=cycle.pk).update(
            open_cursor=members[-1][0],
            invited_count=F("invited_count") + len(invitations),
            opened_fully=not more,
        )
        logger.info(
            "event=cycle_open_chunk cycle=%s invited=%d more=%s",
            cycle.public_id,
            len(invitations),
            more,
        )
        if not more:
            logger.info(
                "event=cycle_open_done cycle=%s invited=%d",
                cycle.public_id,
                cycle.invited_count + len(invitations),
            )
        return more


def cycle_open_all(*, cycle: Cycle, chunk_size: int = OPEN_CHUNK_SIZE) -> None:
    """Open a cycle completely in this process (management commands, demo, tests)."""
    while cycle_open_chunk(cycle=cycle, chunk_size=chunk_size):
        pass
    # A no-op now that a chunk knows whether members remain; kept for cycles opened part-way
    # by an older worker, whose last full chunk left ``opened_fully`` unset.
    cycle_open_chunk(cycle=cycle, chunk_size=chunk_size)


def _message_context(cycle: Cycle) -> dict[str, Any]:
    return {
        "cycle": str(cycle.public_id),
        "survey": cycle.survey.name,
        "organisation": cycle.organisation.name,
        "closes_at": cycle.closes_at.isoformat(),
        # The templates say "open until <date>" in the organisation's own calendar.
        "closes_on": cycle.closes_at.astimezone(cycle.organisation.tz).date().isoformat(),
    }


def _flag_alert_context(change: Any) -> dict[str, Any]:
    """A flag change's message context: the flag's own (``FlagChange.context``), what the close
    adds, and the keys the ``flag_alert`` templates show (notifications/README.md): the flag's
    label, its first suggested step and the absolute address of the evidence (the button)."""
    context = dict(change.context)
    actions = context.get("suggested_actions") or []
    link_path = context.get("link_path") or ""
    return {
        **context,
        "flag_id": change.flag_id,
        "team_id": change.team_id,
        "flag_kind": change.kind,
        "change": change.change,
        "severity": change.severity,
        "flag_label": context.get("kind_label", ""),
        "suggested_action": actions[0] if actions and change.change != "resolved" else "",
        "url": f"{settings.SITE_URL}{link_path}" if link_path else "",
    }


def _summary_participation(participation: dict[str, int | float | None]) -> str:
    """The participation for the summary's text, "81/124 (65 %)"; empty when the guard hid it."""
    invited, responded, rate = (participation[k] for k in ("invited", "responded", "rate"))
    if invited is None or responded is None or rate is None:
        return ""
    return f"{responded}/{invited} ({round(rate * 100)} %)"


def reminders_enqueue_due(*, cycle: Cycle, now: datetime) -> int:
    """Remind everyone who has not answered yet, once per due offset.  When beat was down and
    several offsets are due at once, only one reminder goes out.  The reminder carries a fresh
    one-time link and says nothing about who else has answered."""
    from notifications.services import OutgoingMessage, messages_enqueue_bulk

    with transaction.atomic():
        locked = (
            Cycle.objects.select_for_update(skip_locked=True, of=("self",), no_key=True)
            .select_related("schedule", "organisation", "survey")
            .filter(pk=cycle.pk, state=Cycle.State.OPEN, opened_fully=True)
            .first()
        )
        if locked is None or now >= locked.closes_at:
            return 0
        cycle = locked
        sent = set(cycle.reminders_sent)
        due = [
            h
            for h in cycle.schedule.reminder_offsets
            if h not in sent and cycle.opens_at + timedelta(hours=h) <= now
        ]
        if not due:
            return 0
        offset = max(due)
        count = 0
        pending = (
            Invitation.objects.filter(cycle=cycle, answered=False)
            .order_by("pk")
            .values_list("pk", "public_id", "user_id")
        )
        batch: list[tuple[int, uuid.UUID, int]] = []

        def flush() -> None:
            tokens: list[InvitationToken] = []
            messages = []
            mint = token_minter()
            for invitation_id, public_id, user_id in batch:
                token, selector, hashed = mint()
                tokens.append(
                    InvitationToken(
                        invitation_id=invitation_id, selector=selector, token_hash=hashed
                    )
                )
                messages.append(
                    OutgoingMessage(
                        organisation_id=cycle.organisation_id,
                        kind="reminder",
                        recipient_id=user_id,
                        template="reminder",
                        context=_message_context(cycle),
                        idempotency_key=f"rem:{cycle.public_id}:{public_id}:{offset}",
                        sensitive_context={"url": checkin_link(token)},
                        channel=None,
                        not_before=now,
                        jitter_seconds=DELIVERY_JITTER_SECONDS,
                    )
                )
            InvitationToken.objects.bulk_create(tokens)
            messages_enqueue_bulk(messages)
            batch.clear()

        for row in pending.iterator(chunk_size=MESSAGE_BATCH_SIZE):
            batch.append(row)
            count += 1
            if len(batch) >= MESSAGE_BATCH_SIZE:
                flush()
        if batch:
            flush()
        Cycle.objects.filter(pk=cycle.pk).update(reminders_sent=sorted(sent | set(due)))
        logger.info("event=reminders cycle=%s offset_h=%d count=%d", cycle.public_id, offset, count)
        return count


# --- Links ------------------------------------------------------------------------------------


def _check_cycle_accepting(cycle: Cycle, now: datetime) -> None:
    if cycle.state in (Cycle.State.CLOSED, Cycle.State.MISSED):
        raise ServiceError("closed", "This check-in has closed.", status=410)
    if cycle.state != Cycle.State.OPEN or now < cycle.opens_at:
        raise ServiceError("unknown", "This check-in is not open.", status=404)
    if now >= cycle.closes_at:
        raise ServiceError("expired", "This check-in has ended.", status=410)


def invitation_from_token(
    *, token: str, consume: bool = True, now: datetime | None = None
) -> Invitation:
    """The invitation behind a one-time link.  ``consume`` uses the link up (single use)."""
    now = now or timezone.now()
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise ServiceError("unknown", "This link is not valid.", status=404)
    rows = InvitationToken.objects.select_related(
        "invitation",
        "invitation__cycle",
        "invitation__cycle__organisation",
        "invitation__cycle__survey",  # for the form's snapshot (``checkin_snapshot``)
    )
    selector = token_selector(token)
    if selector is None:  # minted before selectors existed, or not a token at all
        row = rows.filter(selector__isnull=True, token_hash=token_hash(token)).first()
    else:
        row = rows.filter(selector=selector).first()
        if row is not None and not token_matches(token, row.token_hash):
            row = None
    if row is None:
        raise ServiceError("unknown", "This link is not valid.", status=404)
    invitation = row.invitation
    _check_cycle_accepting(invitation.cycle, now)
    if invitation.answered or row.used:
        raise ServiceError("used", "This link has already been used.", status=409)
    if consume:
        claimed = InvitationToken.objects.filter(pk=row.pk, used=False).update(used=True)
        if claimed == 0:
            raise ServiceError("used", "This link has already been used.", status=409)
    return invitation


def invitation_for_user(*, user: User, cycle: Cycle, now: datetime | None = None) -> Invitation:
    now = now or timezone.now()
    invitation = (
        Invitation.objects.select_related("cycle", "cycle__organisation")
        .filter(user=user, cycle=cycle)
        .first()
    )
    if invitation is None:
        raise ServiceError("unknown", "You were not invited to this check-in.", status=404)
    _check_cycle_accepting(invitation.cycle, now)
    if invitation.answered:
        raise ServiceError("already_received", "We already have your answers.", status=409)
    return invitation


# --- Submitting -------------------------------------------------------------------------------


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


def _answers_validate(
    *,
    invitation: Invitation,
    answers: object,
    comment: str | None,
    loaded: Sequence[Question] | None = None,
    comment_allowed: bool | None = None,
) -> tuple[dict[str, int], str]:
    """Clean answers and comment, or ``ServiceError("invalid")`` naming every problem.
    ``comment_allowed`` skips the look-up of the comment question when the caller checks it."""
    from .selectors import invitation_comment_question

    errors: dict[str, list[str]] = defaultdict(list)
    shown = [int(q) for q in invitation.question_ids]
    # The caller's questions (the form's) when they cover every shown id; else read them.
    questions = {q.pk: q for q in loaded or () if q.pk in set(shown)}
    if loaded is None or len(questions) != len(set(shown)):
        questions = {q.pk: q for q in Question.objects.filter(pk__in=shown)}
    clean: dict[str, int] = {}
    seen: set[int] = set()
    if not isinstance(answers, dict):
        errors["answers"].append("Answers must be a mapping of question to value.")
        answers = {}
    assert isinstance(answers, dict)
    for raw_key, raw_value in answers.items():
        qid = _as_int(raw_key)
        label = str(raw_key)[:40]
        if qid is None:
            errors[label].append("Unknown question.")
            continue
        if qid in seen:
            errors[str(qid)].append("Answered more than once.")
            continue
        seen.add(qid)
        question = questions.get(qid)
        if question is None:
            errors[str(qid)].append("This question is not part of your check-in.")
            continue
        if raw_value is None or raw_value == "":
            continue
        value = _as_int(raw_value)
        if value is None:
            errors[str(qid)].append("Choose one of the options (a whole number).")
            continue
        assert question.scale_min is not None and question.scale_max is not None
        if not question.scale_min <= value <= question.scale_max:
            errors[str(qid)].append(
                f"Choose a value from {question.scale_min} to {question.scale_max}."
            )
            continue
        clean[str(qid)] = value
    for qid in shown:
        question = questions.get(qid)
        missing = question is not None and question.required and str(qid) not in clean
        if missing and str(qid) not in errors:
            errors[str(qid)].append("This question needs an answer.")
    text = (comment or "").strip()
    if text:
        if comment_allowed is None:
            comment_allowed = invitation_comment_question(invitation=invitation) is not None
        if not comment_allowed:
            errors["comment"].append("Comments are not enabled for this check-in.")
        elif len(text) > COMMENT_MAX_LENGTH:
            errors["comment"].append(
                f"Please keep the comment under {COMMENT_MAX_LENGTH} characters."
            )
    if errors:
        raise ServiceError(
            "invalid", "Some answers need another look.", fields=dict(errors), status=400
        )
    return clean, text


def _cycle_window_for_submit(
    cycle_id: int,
) -> tuple[str, datetime, datetime, int, bool] | None:
    """The cycle's state and window and its organisation's k and comment switch, read fresh in
    one query.  On PostgreSQL with a share lock on the cycle: closing takes it exclusively
    first, so no answer can land in the pending store after the close has released it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.state, c.opens_at, c.closes_at, o.anonymity_threshold,"
                " o.comments_enabled FROM checkins_cycle c"
                " JOIN wellbeing_organisation o ON o.id = c.organisation_id"
                " WHERE c.id = %s FOR SHARE OF c",
                [cycle_id],
            )
            row = cursor.fetchone()
        return (row[0], row[1], row[2], row[3], row[4]) if row else None
    return (
        Cycle.objects.filter(pk=cycle_id)
        .values_list(
            "state",
            "opens_at",
            "closes_at",
            "organisation__anonymity_threshold",
            "organisation__comments_enabled",
        )
        .first()
    )


#: One statement, so one transaction (PostgreSQL): share-lock the cycle and read its state and
#: window and the organisation's k; claim the invitation if it is unanswered and the cycle takes
#: answers (comments only when enabled); park the answers for the claimant's team; count that
#: team's pending answers.  Nothing is claimed or stored unless all of it holds.  The claim's
#: condition on ``answered`` is on the updated row itself, so PostgreSQL re-checks it after
#: waiting for a concurrent claim of the same invitation (exactly one wins).
_SUBMIT_SQL = """
WITH cycle AS (
    SELECT c.state, c.opens_at, c.closes_at, o.anonymity_threshold, o.comments_enabled
    FROM checkins_cycle c JOIN wellbeing_organisation o ON o.id = c.organisation_id
    WHERE c.id = %(cycle)s FOR SHARE OF c
), claimed AS (
    UPDATE checkins_invitation
    SET answered = true, question_ids = '[]'::jsonb, rotation_offset = NULL
    WHERE id = %(invitation)s AND NOT answered AND EXISTS (
        SELECT 1 FROM cycle WHERE state = %(open)s AND opens_at <= %(now)s AND closes_at > %(now)s
        AND (comments_enabled OR NOT %(has_comment)s)
    )
    RETURNING id
), stored AS (
    INSERT INTO checkins_pendinganswer (id, cycle_id, team_id, answers, comment)
    SELECT %(id)s, %(cycle)s, %(team)s, %(answers)s::jsonb, %(comment)s FROM claimed
    RETURNING id
)
SELECT (SELECT count(*) FROM stored),
    (SELECT count(*) FROM checkins_pendinganswer WHERE cycle_id = %(cycle)s AND team_id = %(team)s),
    (SELECT anonymity_threshold FROM cycle)
"""


def _submit_in_one_statement(
    *, invitation: Invitation, clean: dict[str, int], text: str
) -> tuple[int, int] | None:
    """(pending answers of the team including this one, k) if stored; None if anything was
    refused (nothing changed then: the checked path names the reason)."""
    from .selectors import prepared_cursor

    with prepared_cursor() as cursor:
        cursor.execute(
            _SUBMIT_SQL,
            {
                "cycle": invitation.cycle_id,
                "invitation": invitation.pk,
                "team": invitation.team_id,
                "open": Cycle.State.OPEN.value,
                "now": timezone.now(),
                "has_comment": bool(text),
                "id": uuid.uuid4(),
                "answers": json.dumps(clean),
                "comment": text,
            },
        )
        stored, waiting, k = cursor.fetchone()
    if not stored:
        return None
    return waiting + stored, k


def _queue_release(cycle_id: int, team_id: int, *, waiting: int, k: int) -> None:
    """Queue the team's release when this answer completes a batch of k.

    Only the answers that make the waiting count a multiple of k queue it, not every answer
    past k: while the worker is behind, a busy team would otherwise queue one task (a broker
    round trip in the request) per answer, all but one of them finding nothing to move.  A
    multiple skipped by concurrent submits (each counts only committed answers) or a task lost
    with the broker is picked up by the tick within a minute; when a release happens does not
    matter to anyone, only that no batch is smaller than k."""
    from . import tasks

    if waiting >= k and waiting % k == 0:
        transaction.on_commit(partial(tasks.enqueue, tasks.pending_release_task, cycle_id, team_id))


def checkin_submit(
    *,
    invitation: Invitation,
    answers: dict[int, int | None],
    comment: str | None,
    questions: Sequence[Question] | None = None,
) -> None:
    """Record that the person answered and park the answers, unlinked, in the pending store.

    Exactly once: the invitation is claimed with a conditional UPDATE; a second submit (in
    sequence or concurrently) stores nothing and gets ``already_received``.  Everything is
    checked against fresh rows in one transaction, and refusals are named in this order:
    already answered, the cycle accepting answers, the answers themselves; any refusal rolls
    the claim back.  The caller's invitation (with its cycle) is used as loaded -- no second
    read of it; so are ``questions`` (e.g. the form's, from ``invitation_questions``) if they
    cover it.

    On PostgreSQL, answers that pass the checks go in as one statement
    (``checkin_submit_quick``); anything else, and every refusal, takes the checked path below,
    which names the reason."""
    if checkin_submit_quick(
        invitation=invitation, answers=answers, comment=comment, questions=questions
    ):
        return
    _checkin_submit_checked(
        invitation=invitation, answers=answers, comment=comment, questions=questions
    )


def checkin_submit_quick(
    *,
    invitation: Invitation,
    answers: dict[int, int | None],
    comment: str | None,
    questions: Sequence[Question] | None = None,
) -> bool:
    """``checkin_submit``'s one-statement path alone (``_SUBMIT_SQL``): True when the answers
    were stored.  False when they were not, with nothing changed: not PostgreSQL, answers the
    checked path must name a problem with, or a refusal by the statement, which re-checks
    against fresh rows everything that can change after the invitation was read (answered,
    the cycle's state and window, comments switched off).  So the invitation may come from
    the check-in's session snapshot instead of its row (``checkin_from_snapshot``)."""
    if connection.vendor != "postgresql":
        return False
    cycle = invitation.cycle
    try:
        clean, text = _answers_validate(
            invitation=invitation,
            answers=answers,
            comment=comment,
            loaded=questions,
            # The form's questions include the comment question when comments are on;
            # the statement re-checks the switch under the lock.
            comment_allowed=any(not q.is_scale for q in questions or ()) or None,
        )
    except ServiceError:
        return False  # the checked path reports it in the right order
    outcome = _submit_in_one_statement(invitation=invitation, clean=clean, text=text)
    if outcome is None:
        return False
    waiting, k = outcome
    _queue_release(cycle.pk, invitation.team_id, waiting=waiting, k=k)
    invitation.answered = True
    invitation.question_ids = []
    invitation.rotation_offset = None
    logger.info("event=checkin_received cycle=%s", cycle.public_id)
    return True


def _checkin_submit_checked(
    *,
    invitation: Invitation,
    answers: dict[int, int | None],
    comment: str | None,
    questions: Sequence[Question] | None = None,
) -> None:
    now = timezone.now()
    cycle = invitation.cycle
    with transaction.atomic():
        fresh = _cycle_window_for_submit(cycle.pk)
        # Single-table condition on purpose: a filter across the join makes Django emit
        # ``WHERE id IN (subquery)``, and PostgreSQL's re-check after waiting for a concurrent
        # update does not re-evaluate the subquery -- two submits could both win.
        claimed = Invitation.objects.filter(pk=invitation.pk, answered=False).update(
            answered=True, question_ids=[], rotation_offset=None
        )
        if claimed == 0:
            raise ServiceError("already_received", "We already have your answers.", status=409)
        if fresh is None:
            raise ServiceError("unknown", "This check-in is not open.", status=404)
        organisation = cycle.organisation
        (
            cycle.state,
            cycle.opens_at,
            cycle.closes_at,
            organisation.anonymity_threshold,
            organisation.comments_enabled,
        ) = fresh
        _check_cycle_accepting(cycle, now)
        clean, text = _answers_validate(
            invitation=invitation, answers=answers, comment=comment, loaded=questions
        )
        if timezone.now() >= cycle.closes_at:
            raise ServiceError("expired", "This check-in has ended.", status=410)
        PendingAnswer.objects.create(
            cycle_id=cycle.pk, team_id=invitation.team_id, answers=clean, comment=text
        )
        waiting = PendingAnswer.objects.filter(
            cycle_id=cycle.pk, team_id=invitation.team_id
        ).count()
        _queue_release(
            cycle.pk, invitation.team_id, waiting=waiting, k=organisation.anonymity_threshold
        )
    invitation.answered = True
    invitation.question_ids = []
    invitation.rotation_offset = None
    logger.info("event=checkin_received cycle=%s", cycle.public_id)


# --- Release ----------------------------------------------------------------------------------


def pending_release(*, cycle: Cycle, force: bool = False, team_id: int | None = None) -> int:
    """Move pending answers into ``Response`` in shuffled batches of at least k per team (any
    size when ``force``, i.e. at close).  Each team's batch is its own transaction; afterwards
    the pending table is vacuumed on PostgreSQL so deleted rows do not linger as dead tuples."""
    k = cycle.organisation.anonymity_threshold
    if force and team_id is None and connection.vendor == "postgresql":
        # At close every team's remainder goes, thousands of teams at once: one statement.
        with transaction.atomic():
            released, remixed = _release_remaining(cycle_id=cycle.pk, k=k)
    else:
        if team_id is not None:
            team_ids = [team_id]
        else:
            team_ids = sorted(
                set(PendingAnswer.objects.filter(cycle=cycle).values_list("team_id", flat=True))
            )
        released, remixed = 0, False
        for tid in team_ids:
            with transaction.atomic():
                count, mixed = _release_team(cycle_id=cycle.pk, team_id=tid, k=k, force=force)
            released += count
            remixed = remixed or mixed
    if released:
        logger.info("event=pending_released cycle=%s count=%d", cycle.public_id, released)
        # Scored now rather than at close.  The rows' earlier versions (the same answers, no
        # scores) go with the next autovacuum: unlike the rows a re-shuffle deletes, they tell
        # nothing the live rows do not.
        response_scores_store(cycle=cycle)
        _vacuum(["checkins_pendinganswer"] + (["checkins_response"] if remixed else []))
    return released


def _release_team(*, cycle_id: int, team_id: int, k: int, force: bool) -> tuple[int, bool]:
    pending = list(
        PendingAnswer.objects.select_for_update()
        .filter(cycle_id=cycle_id, team_id=team_id)
        .values_list("pk", "answers", "comment")
    )
    if not pending or (len(pending) < k and not force):
        return 0, False
    batch = [(answers, comment) for _, answers, comment in pending]
    mixed = False
    if len(pending) < k:
        # A final batch smaller than k would be linkable by elimination (who answered since
        # the last release is known from participation): re-shuffle it together with this
        # team's already released responses for the cycle.
        earlier = list(
            Response.objects.select_for_update()
            .filter(cycle_id=cycle_id, team_id=team_id)
            .values_list("pk", "answers", "comment")
        )
        if earlier:
            Response.objects.filter(pk__in=[pk for pk, _, _ in earlier]).delete()
            batch.extend((answers, comment) for _, answers, comment in earlier)
            mixed = True
    secrets.SystemRandom().shuffle(batch)
    Response.objects.bulk_create(
        Response(id=uuid.uuid4(), cycle_id=cycle_id, team_id=team_id, answers=a, comment=c)
        for a, c in batch
    )
    PendingAnswer.objects.filter(pk__in=[pk for pk, _, _ in pending]).delete()
    return len(pending), mixed


# ``_release_team(force=True)`` for every team of a cycle in one statement (PostgreSQL): all
# pending answers move to ``Response``; a team whose remainder is smaller than k has its earlier
# released responses of the cycle moved with it, so the last few cannot be told apart.  The rows
# are written in the order of fresh random UUIDs (gen_random_uuid draws from the server's strong
# random source), with new ids, all in one transaction.
_RELEASE_REMAINING_SQL = """
WITH pending AS (
    DELETE FROM checkins_pendinganswer WHERE cycle_id = %(cycle)s
    RETURNING team_id, answers, comment
), small AS (
    SELECT team_id FROM pending GROUP BY team_id HAVING count(*) < %(k)s
), earlier AS (
    DELETE FROM checkins_response r USING small
    WHERE r.cycle_id = %(cycle)s AND r.team_id = small.team_id
    RETURNING r.team_id, r.answers, r.comment
), moved AS (
    INSERT INTO checkins_response (id, cycle_id, team_id, answers, comment)
    SELECT gen_random_uuid(), %(cycle)s, team_id, answers, comment
    FROM (
        SELECT team_id, answers, comment FROM pending
        UNION ALL
        SELECT team_id, answers, comment FROM earlier
    ) AS batch
    ORDER BY gen_random_uuid()
    RETURNING 1
)
SELECT (SELECT count(*) FROM pending), (SELECT count(*) FROM earlier), (SELECT count(*) FROM moved)
"""


def _release_remaining(*, cycle_id: int, k: int) -> tuple[int, bool]:
    with connection.cursor() as cursor:
        cursor.execute(_RELEASE_REMAINING_SQL, {"cycle": cycle_id, "k": k})
        released, remixed, _moved = cursor.fetchone()
    return int(released), bool(remixed)


def _vacuum(tables: Iterable[str]) -> None:
    if connection.vendor != "postgresql":
        return
    if connection.in_atomic_block:
        logger.info("event=pending_vacuum status=skipped reason=inside_transaction")
        return
    for table in tables:
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {connection.ops.quote_name(table)}")
        except Exception as exc:  # best effort: the release itself has committed
            logger.warning(
                "event=pending_vacuum status=failed table=%s error=%s", table, type(exc).__name__
            )
        else:
            logger.info("event=pending_vacuum status=done table=%s", table)


# --- Closing ----------------------------------------------------------------------------------

# Seconds spent by the last ``cycle_close`` in this process on its analytic part: ``inputs``
# (counts and per-respondent indices), ``record`` (aggregates, guard, detection, flags) and
# their sum ``analytic``.  Read by the benchmark; nothing in the product depends on it.
CLOSE_PHASES: dict[str, float] = {}


def cycle_scores(*, cycle: Cycle) -> dict[int, dict[str, list[float]]]:
    """team id -> dimension -> one 0-100 index per respondent (from released responses)."""
    from wellbeing.stats.scoring import respondent_index

    meta: dict[str, tuple[str, Any]] = {}
    for question in Question.objects.filter(
        survey_items__survey_id=cycle.survey_id, kind=Question.Kind.SCALE
    ):
        meta[str(question.pk)] = (question.dimension, question.item_scale())
    scores: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for team_id, answers in (
        Response.objects.filter(cycle=cycle).values_list("team_id", "answers").iterator()
    ):
        per_dimension: dict[str, list[tuple[float | None, Any]]] = defaultdict(list)
        for key, value in answers.items():
            if key in meta:
                dimension, scale = meta[key]
                per_dimension[dimension].append((value, scale))
        for dimension, pairs in per_dimension.items():
            index = respondent_index(pairs)
            if index is not None:
                scores[team_id][dimension].append(index)
    return {tid: dict(d) for tid, d in scores.items()}


def _scale_questions(survey_id: int) -> list[tuple[Any, ...]]:
    """The survey's rating items as ``_scores_sql`` takes them."""
    return list(
        Question.objects.filter(
            survey_items__survey_id=survey_id, kind=Question.Kind.SCALE
        ).values_list("pk", "dimension", "scale_min", "scale_max", "reverse", "higher_is_worse")
    )


def _scores_sql(questions: Sequence[tuple[Any, ...]]) -> tuple[Any, Any, list[str]]:
    """How PostgreSQL scores one response ``r`` of a survey with these rating items: its answers
    read once as a record of float8 columns (JSON null = skipped; a numeric string is read as
    its number, as ``is_number`` does; anything else makes the statement fail), each item's
    0-100 index with the float operations of ``item_to_index``, per dimension the mean of its
    answered items (NaN when none was answered), and how many answers lie outside their scale
    (NaN and infinities included).  Returns (the FROM items that read ``r.answers``, the
    packed value: that count then one float per dimension, the dimensions in their order)."""
    from psycopg import sql

    by_dimension: dict[str, list[int]] = defaultdict(list)
    index_columns, odd = [], []
    for i, (pk, dimension, minimum, maximum, reverse, higher_is_worse) in enumerate(questions):
        v = sql.SQL("j.{}").format(sql.Identifier(str(pk)))
        low, high = sql.Literal(float(minimum)), sql.Literal(float(maximum))
        fraction = sql.SQL("(({v} - {low}) / {span})").format(
            v=v, low=low, span=sql.Literal(float(maximum) - float(minimum))
        )
        if reverse:
            fraction = sql.SQL("(1.0::float8 - {})").format(fraction)
        if not higher_is_worse:
            fraction = sql.SQL("(1.0::float8 - {})").format(fraction)
        index_columns.append(
            sql.SQL("100.0::float8 * {} AS {}").format(fraction, sql.Identifier(f"x{i}"))
        )
        odd.append(
            sql.SQL("coalesce(({v} < {low} OR {v} > {high})::int, 0)").format(
                v=v, low=low, high=high
            )
        )
        by_dimension[dimension].append(i)
    dimensions = sorted(by_dimension)
    means = []
    for dimension in dimensions:
        items = by_dimension[dimension]
        total = sql.SQL(" + ").join(
            sql.SQL("coalesce(x.{}, 0.0::float8)").format(sql.Identifier(f"x{i}")) for i in items
        )
        count = sql.SQL(" + ").join(
            sql.SQL("(x.{} IS NOT NULL)::int").format(sql.Identifier(f"x{i}")) for i in items
        )
        means.append(
            sql.SQL(
                " || float8send(coalesce(({total}) / nullif({count}, 0), 'NaN'::float8))"
            ).format(total=total, count=count)
        )
    sources = sql.SQL(
        "jsonb_to_record(r.answers) AS j({record}) CROSS JOIN LATERAL (SELECT {indices}) x"
    ).format(
        record=sql.SQL(", ").join(
            sql.SQL("{} float8").format(sql.Identifier(str(q[0]))) for q in questions
        ),
        indices=sql.SQL(", ").join(index_columns),
    )
    packed = sql.SQL("int4send({odd}){means}").format(
        odd=sql.SQL(" + ").join(odd), means=sql.SQL("").join(means)
    )
    return sources, packed, dimensions


def _scores_statement(questions: Sequence[tuple[Any, ...]]) -> tuple[Any, list[str]]:
    """One pass over the cycle's responses (parameters: the cycle id, twice), one packed row per
    response (``wellbeing.packed``: team id, then ``_scores_sql``'s value), so thousands of
    teams' indices arrive as one array, not as a Python number each: the value stored when the
    response was released (``response_scores_store``), else computed now.  Returns (statement,
    dimensions)."""
    from psycopg import sql

    sources, packed, dimensions = _scores_sql(questions)
    width = 4 + 8 * len(dimensions)
    # A stored value of another layout (never written by this survey's items) reads as one odd
    # answer, which sends the whole cycle to the Python scoring.  The two halves split on NULL
    # alone, so PostgreSQL's estimate of each (from the column's null fraction) holds.
    statement = sql.SQL(
        "SELECT int8send(r.team_id::int8) || CASE WHEN octet_length(r.scores) = {width} "
        "THEN r.scores ELSE int4send(1) || decode(repeat('00', {floats}), 'hex') END AS packed "
        "FROM checkins_response r WHERE r.cycle_id = %s AND r.scores IS NOT NULL "
        "UNION ALL "
        "SELECT int8send(r.team_id::int8) || {packed} AS packed "
        "FROM checkins_response r CROSS JOIN LATERAL {sources} "
        "WHERE r.cycle_id = %s AND r.scores IS NULL"
    ).format(
        width=sql.Literal(width),
        floats=sql.Literal(width - 4),
        packed=packed,
        sources=sources,
    )
    return statement, dimensions


def response_scores_store(*, cycle: Cycle) -> int:
    """Store the indices of the cycle's released responses that have none (``Response.scores``),
    so the close reads them instead of scoring every answer then; returns how many.  On
    PostgreSQL, in a savepoint: when an answer makes the scoring fail (e.g. text where a number
    is due), nothing is stored and the close scores and judges them itself, as before."""
    import psycopg
    from django.db import DatabaseError
    from psycopg import sql

    if connection.vendor != "postgresql":
        return 0
    questions = _scale_questions(cycle.survey_id)
    if not questions:
        return 0
    sources, packed, _ = _scores_sql(questions)
    # each row scored from its own answers, found through the index of unscored rows
    statement = sql.SQL(
        "UPDATE checkins_response r SET scores = (SELECT {packed} FROM {sources}) "
        "WHERE r.cycle_id = %s AND r.scores IS NULL"
    ).format(packed=packed, sources=sources)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement.as_string(cursor.connection), [cycle.pk])
            return int(cursor.rowcount)
    except (DatabaseError, psycopg.Error) as exc:
        logger.warning(
            "event=response_scores status=skipped cycle=%s error=%s",
            cycle.public_id,
            type(exc).__name__,
        )
        return 0


def _cycle_scores_sql(*, cycle: Cycle) -> tuple[CycleScores, dict[int, int]] | None:
    """``cycle_scores`` from PostgreSQL in one statement (``_scores_statement``: the indices
    stored at release, the others computed), every team's indices at once (``CycleScores``),
    with each team's count of responses; None when an answer needs the Python path's handling
    (not a number, or outside its scale) or the survey has no rating items."""
    import numpy as np
    import psycopg
    from django.db import DatabaseError

    from wellbeing.analytics import CycleScores
    from wellbeing.packed import packed_records

    questions = _scale_questions(cycle.survey_id)
    if not questions:
        return None
    statement, dimensions = _scores_statement(questions)
    record = np.dtype(
        [("team", ">i8"), ("odd", ">i4")] + [(f"d{d}", ">f8") for d in range(len(dimensions))]
    )
    try:
        with transaction.atomic():
            rows = packed_records(statement, [cycle.pk, cycle.pk], record)
    except (DatabaseError, psycopg.Error):
        return None  # e.g. a text or boolean answer: the Python path decides what it means
    if (rows["odd"] != 0).any():
        return None
    order = np.argsort(rows["team"], kind="stable")
    team = rows["team"][order].astype(np.int64)
    team_ids, owner, per_team = np.unique(team, return_inverse=True, return_counts=True)
    responded = dict(zip(team_ids.tolist(), per_team.tolist(), strict=True))
    counts, values = {}, {}
    for d, dimension in enumerate(dimensions):
        column = rows[f"d{d}"][order].astype(np.float64)
        answered = ~np.isnan(column)
        # teams in order, so each team's answered values are one slice
        counts[dimension] = np.bincount(owner[answered], minlength=team_ids.size).astype(np.int64)
        values[dimension] = column[answered]
    return CycleScores(team_ids=team_ids.astype(np.int64), counts=counts, values=values), responded


def invited_counts(*, cycle_id: int) -> dict[int, int]:
    """team id -> how many people the cycle invited there."""
    return dict(
        Invitation.objects.filter(cycle_id=cycle_id)
        .values("team_id")
        .annotate(n=Count("pk"))
        .values_list("team_id", "n")
    )


def invited_rosters(cycle_keys: Sequence[uuid.UUID]) -> dict[uuid.UUID, Roster]:
    """Who each cycle (by public id) asked: the team and the person of each of its invitations,
    as two arrays (``wellbeing.analytics.RosterSource``: the people behind a cycle's figures,
    for the over-time rule).  A cycle that does not exist is left out.  One packed read per
    cycle on PostgreSQL (a large cycle has 100,000 invitations)."""
    import numpy as np
    from psycopg import sql

    from wellbeing.packed import packed_records

    record = np.dtype([("team", ">i8"), ("user", ">i8")])
    out: dict[uuid.UUID, Roster] = {}
    for pk, key in Cycle.objects.filter(public_id__in=list(cycle_keys)).values_list(
        "pk", "public_id"
    ):
        if connection.vendor == "postgresql":
            rows = packed_records(
                sql.SQL(
                    "SELECT int8send(team_id::int8) || int8send(user_id::int8) AS packed"
                    " FROM {} WHERE cycle_id = %s"
                ).format(sql.Identifier(Invitation._meta.db_table)),
                [pk],
                record,
            )
            out[key] = (rows["team"].astype(np.int64), rows["user"].astype(np.int64))
        else:
            pairs = list(Invitation.objects.filter(cycle_id=pk).values_list("team_id", "user_id"))
            out[key] = (
                np.array([team for team, _ in pairs], dtype=np.int64),
                np.array([user for _, user in pairs], dtype=np.int64),
            )
    return out


@gc_paused()
def cycle_results_hand_over(
    *,
    cycle: Cycle,
    invited: Mapping[int, int] | Callable[[], Mapping[int, int] | None] | None = None,
) -> tuple[list[TeamCycleInput], CycleScores | None]:
    """What the close hands to wellbeing: per team the invited and responded counts, for every
    team the cycle was scheduled for or invited people in; and the per-respondent indices,
    every team's at once (``CycleScores``, on PostgreSQL) or else in each team's own
    ``scores``.  Reads released responses only; ``recompute_aggregates`` rebuilds a closed
    cycle with it.  ``invited``: ``invited_counts``, when read already, or a function giving
    them (or None) called once the answers are scored, so a read of them under way elsewhere
    does not hold the scoring back."""
    from wellbeing.analytics import TeamCycleInput

    scored = _cycle_scores_sql(cycle=cycle) if connection.vendor == "postgresql" else None
    if callable(invited):
        invited = invited()
    if invited is None:
        invited = invited_counts(cycle_id=cycle.pk)
    batch: CycleScores | None = None
    scores: Mapping[int, Mapping[str, Sequence[float]]] = {}
    if scored is not None:
        batch, responded = scored
    else:
        scores = cycle_scores(cycle=cycle)
        responded = dict(
            Response.objects.filter(cycle=cycle)
            .values("team_id")
            .annotate(n=Count("pk"))
            .values_list("team_id", "n")
        )
    team_ids = sorted(set(cycle.team_ids) | set(invited))
    teams = [
        TeamCycleInput(
            team_id=tid,
            invited=invited.get(tid, 0),
            responded=responded.get(tid, 0),
            scores=scores.get(tid, {}),
        )
        for tid in team_ids
    ]
    return teams, batch


def cycle_comments_hand_over(*, cycle: Cycle) -> dict[int, list[str]]:
    """Team id -> the cycle's released comments written there (non-empty ones only, in one
    read), for ``cycle_comments_record``: the text alone, no response id or anything else."""
    comments: dict[int, list[str]] = defaultdict(list)
    for team_id, text in (
        Response.objects.filter(cycle=cycle).exclude(comment="").values_list("team_id", "comment")
    ):
        comments[team_id].append(text)
    return dict(comments)


def cycle_close(
    *, cycle: Cycle, now: datetime | None = None, cancel_messages_reason: str | None = None
) -> bool:
    """Release what is pending, hand the per-team indices to wellbeing, send flag alerts, the
    admins' summary and the leads' digests, mark closed.  Idempotent: False when the cycle was
    not open to close.

    ``cancel_messages_reason``: the close's messages are written all the same but cancelled, with
    this reason, in its own transaction, so that no worker ever sees them waiting: for the
    demo's history, which nobody should be mailed about months later."""
    from notifications.services import (
        OutgoingMessage,
        message_cancel_pending,
        messages_enqueue_bulk,
    )
    from wellbeing.analytics import (
        cycle_comments_record,
        cycle_results_reads,
        cycle_results_record,
    )
    from wellbeing.digests import lead_digests

    now = now or timezone.now()
    # Barrier: wait for in-flight submissions (they hold a share lock on the cycle row).
    with transaction.atomic():
        barrier = Cycle.objects.select_for_update().filter(pk=cycle.pk).first()
        if barrier is None or barrier.state != Cycle.State.OPEN or now < barrier.closes_at:
            return False
    # What wellbeing will read that does not depend on the answers is read meanwhile, from the
    # release of what is pending on, on a second connection (outside a caller's transaction;
    # see ``wellbeing.close_reads``).
    with cycle_results_reads(
        organisation=barrier.organisation,
        period_start=barrier.period_start,
        # once the opening has written every invitation, the invited counts are final
        first=(
            {"invited": partial(invited_counts, cycle_id=barrier.pk)}
            if barrier.opened_fully
            else None
        ),
        # who each cycle asked (the over-time rule's rosters), this one's read ahead then too
        rosters=invited_rosters,
        cycle_key=barrier.public_id if barrier.opened_fully else None,
    ) as reads:
        pending_release(cycle=barrier, force=True)
        with transaction.atomic():
            # The cycle, its organisation and its survey, locked against another close, an import
            # or a settings change, but not against inserts that refer to them (a key-share
            # lock each): the next cycle's opening and the organisation's messages go on.
            cycle = (
                Cycle.objects.select_for_update(no_key=True)
                .select_related("organisation", "survey")
                .get(pk=cycle.pk)
            )
            if cycle.state != Cycle.State.OPEN:
                return False
            organisation = cycle.organisation
            # What arrived between the release above and this lock (usually nothing).
            pending_release(cycle=cycle, force=True)
            analytic_started = perf_counter()
            teams, scores = cycle_results_hand_over(
                cycle=cycle, invited=partial(reads.get, "invited")
            )
            inputs_done = perf_counter()
            changes = cycle_results_record(
                organisation=organisation,
                cycle_key=cycle.public_id,
                period_start=cycle.period_start,
                closed_at=now,
                teams=teams,
                reads=reads,
                scores=scores,
            )
            analytic_done = perf_counter()
            CLOSE_PHASES.clear()
            CLOSE_PHASES.update(
                inputs=inputs_done - analytic_started,
                record=analytic_done - inputs_done,
                analytic=analytic_done - analytic_started,
            )
            if organisation.comments_enabled:
                # The groups' comments through the guard at the comment threshold.
                cycle_comments_record(
                    organisation=organisation,
                    cycle_key=cycle.public_id,
                    teams=teams,
                    comments=cycle_comments_hand_over(cycle=cycle),
                    tree=reads.tree(),
                )
            messages: list[OutgoingMessage] = []

            def notify(kind: str, recipient_id: int, context: dict[str, Any], key: str) -> None:
                """A message of the close to one person (template named as the kind)."""
                messages.append(
                    OutgoingMessage(
                        organisation_id=organisation.pk,
                        kind=kind,
                        recipient_id=recipient_id,
                        template=kind,
                        context=context,
                        idempotency_key=key,
                        sensitive_context={},
                    )
                )

            for change in changes:
                for recipient_id in change.recipient_ids:
                    notify(
                        "flag_alert",
                        recipient_id,
                        _flag_alert_context(change),
                        f"{change.idempotency_key}:{recipient_id}",
                    )
            # The organisation's participation as stored just now, through the guard.
            participation = stored_participation(cycle=cycle)
            summary: dict[str, Any] = {
                **_message_context(cycle),
                "period_start": cycle.period_start.isoformat(),
                "invited": participation["invited"],
                "responded": participation["responded"],
                "participation_rate": participation["rate"],
                "flag_changes": len(changes),
                # what the cycle_summary templates show: the count and the dashboard's address
                "participation": _summary_participation(participation),
                "url": f"{settings.SITE_URL}{url_reverse('dashboards:organisation')}",
            }
            for admin_id in User.objects.filter(
                organisation=organisation, is_org_admin=True, is_active=True
            ).values_list("pk", flat=True):
                notify("cycle_summary", admin_id, summary, f"sum:{cycle.public_id}:{admin_id}")
            # Each lead's digest: their teams' results as just stored through the guard.
            dashboards = f"{settings.SITE_URL}{url_reverse('dashboards:landing')}"
            for lead_id, digest in lead_digests(
                organisation=organisation, cycle_key=cycle.public_id
            ).items():
                notify(
                    "digest",
                    lead_id,
                    {**digest, "url": dashboards},
                    f"dig:{cycle.public_id}:{lead_id}",
                )
            if messages:
                messages_enqueue_bulk(messages)
            if cancel_messages_reason:
                cycle_messages_cancel_pending(cycles=[cycle], reason=cancel_messages_reason)
            # Reminders still waiting would carry a dead link (and a token): cancel them.
            message_cancel_pending(idempotency_key_prefix=f"rem:{cycle.public_id}:")
            # Touch every invitation in one statement: clears the rotation left on unanswered ones
            # and gives all rows the same transaction id, so the order people answered in is gone
            # from live rows (old tuple versions go with the next vacuum).  On PostgreSQL every row
            # is rewritten in place, no index touched (migration 0005): 0.2 s at 100,000.
            Invitation.objects.filter(cycle=cycle).update(question_ids=[], rotation_offset=None)
            Cycle.objects.filter(pk=cycle.pk).update(state=Cycle.State.CLOSED, closed_at=now)
    logger.info(
        "event=cycle_closed cycle=%s teams=%d flag_changes=%d analytic_s=%.3f",
        cycle.public_id,
        len(teams),
        len(changes),
        CLOSE_PHASES.get("analytic", 0.0),
    )
    return True


def cycle_messages_cancel_pending(*, cycles: Sequence[Cycle], reason: str) -> int:
    """Cancel what is still waiting to be sent about these cycles (of one organisation): their
    reminders and what their close wrote (flag alerts, the admins' summary, the leads'
    digests), with ``reason`` kept on each.  Every one of those keys carries the cycle's public
    id between colons (``CONTRACT.md``; a flag alert's through ``FlagChange.idempotency_key``);
    invitations, keyed by their own id, are left alone.  One statement."""
    from notifications.services import messages_cancel_pending_by_key_part

    if not cycles:
        return 0
    organisations = {cycle.organisation_id for cycle in cycles}
    if len(organisations) != 1:
        raise ValueError("the cycles must belong to one organisation")
    return messages_cancel_pending_by_key_part(
        organisation_id=organisations.pop(),
        key_parts=[f":{cycle.public_id}:" for cycle in cycles],
        reason=reason,
    )
