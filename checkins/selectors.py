"""Check-in reads for pages, the API and the admin.

Never returns answers of individual people; counts of respondents are withheld below k."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count, Model, Q, QuerySet
from django.utils import timezone

from wellbeing.models import Organisation, User

from .models import (
    Cycle,
    Invitation,
    Question,
    Response,
    Schedule,
    SupportResource,
    Survey,
    SurveyItem,
)

# --- Check-in hot path: whole rows through prebuilt SQL ---------------------------------------
#
# The link flow reads the same shapes on every form request.  Compiling them through the ORM
# each time (select_related over three tables) costs several times the query itself, so the
# statements below are built once per database vendor from the models' own metadata and the
# rows are turned into ordinary, fully loaded model instances with the fields' own converters.


class _Columns:
    """Every concrete column of ``model`` under ``alias``, and how to make an instance of a row
    slice (``Model.from_db`` after the same value converters the ORM applies)."""

    def __init__(self, model: type[Model], alias: str, *, defer: Sequence[str] = ()) -> None:
        quote = connection.ops.quote_name
        # ``defer``: columns left out (deferred on the instance, loaded if ever touched)
        fields = [f for f in model._meta.concrete_fields if f.name not in defer]
        self.model = model
        self.width = len(fields)
        self.attnames = [f.attname for f in fields]
        self.sql = ", ".join(f"{alias}.{quote(str(f.column))}" for f in fields)
        self.converters: list[tuple[int, list[Callable[..., Any]], Any]] = []
        for index, field in enumerate(fields):
            col = field.get_col(alias)
            found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
            if found:
                self.converters.append((index, found, col))

    def make(self, row: Sequence[Any], start: int) -> Any:
        values = list(row[start : start + self.width])
        for index, converters, col in self.converters:
            for converter in converters:
                values[index] = converter(values[index], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


_PREBUILT: dict[str, dict[str, Any]] = {}
_SURVEY_STAMP_FIELDS = ("is_published", "created_at")
_PREPARED_CURSOR_CLASS: list[type] = []


def prepared_cursor() -> Any:
    """A cursor for the check-in's few fixed hot statements.  On PostgreSQL they are prepared
    (server-side binding, ``prepare=True``): planned once per pooled connection instead of on
    every request, where planning the joins cost several times executing them.  Needs a direct
    connection or a pooler that keeps prepared statements (the psycopg pool does).  Queries
    are logged and counted as through ``connection.cursor()``."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    if not _PREPARED_CURSOR_CLASS:
        from django.db.backends.postgresql.base import ServerBindingCursor

        class PreparedCursor(ServerBindingCursor):
            def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                kwargs["prepare"] = True
                return super().execute(query, params, **kwargs)

        _PREPARED_CURSOR_CLASS.append(PreparedCursor)
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's preparing off (None), which ignores ``prepare=True`` too.  A
        # threshold no statement reaches keeps automatic preparing off (Django's own cursors
        # bind client-side and never prepare) and lets these explicit ones be prepared.
        raw.prepare_threshold = 2**31
    with connection.wrap_database_errors:
        return connection._prepare_cursor(  # type: ignore[attr-defined]
            _PREPARED_CURSOR_CLASS[0](raw)
        )


def _prebuilt() -> dict[str, Any]:
    built = _PREBUILT.get(connection.vendor)
    if built is None:
        quote = connection.ops.quote_name
        invitation = _Columns(Invitation, "i")
        # A cycle's targeted team ids run to thousands in a large organisation (tens of KB
        # of JSON, on every row of the joined statement); the check-in pages never read them.
        cycle = _Columns(Cycle, "c", defer=("team_ids",))
        organisation = _Columns(Organisation, "o")
        question = _Columns(Question, "q")
        # What identifies a survey's content: whether it is published, and when it was made.
        stamp_defer = [
            f.name for f in Survey._meta.concrete_fields if f.name not in _SURVEY_STAMP_FIELDS
        ]
        stamp = _Columns(Survey, "sv", defer=stamp_defer)
        # Only identifiers from the models' metadata are formatted in; values are parameters.
        built = {
            "invitation": invitation,
            "cycle": cycle,
            "organisation": organisation,
            "question": question,
            "stamp": stamp,
            # The invitation, its cycle and organisation, the person's language, and what
            # identifies the survey's content (``_survey_stamp``).
            "invitation_sql": (
                f"SELECT {invitation.sql}, {cycle.sql}, {organisation.sql}"  # noqa: S608
                f", u.{quote('language')}, {stamp.sql}"
                f" FROM {quote(Invitation._meta.db_table)} i"
                f" JOIN {quote(Cycle._meta.db_table)} c ON c.id = i.{quote('cycle_id')}"
                f" JOIN {quote(Organisation._meta.db_table)} o"
                f" ON o.id = c.{quote('organisation_id')}"
                f" JOIN {quote(User._meta.db_table)} u ON u.id = i.{quote('user_id')}"
                f" JOIN {quote(Survey._meta.db_table)} sv ON sv.id = c.{quote('survey_id')}"
                f" WHERE i.{quote('public_id')} = %s"
            ),
            # Every item of a survey in order, with the survey's stamp on each row.
            "survey_items_sql": (
                f"SELECT {question.sql}, {stamp.sql}"  # noqa: S608
                f" FROM {quote(SurveyItem._meta.db_table)} s"
                f" JOIN {quote(Question._meta.db_table)} q ON q.id = s.{quote('question_id')}"
                f" JOIN {quote(Survey._meta.db_table)} sv ON sv.id = s.{quote('survey_id')}"
                f" WHERE s.{quote('survey_id')} = %s"
                f" ORDER BY s.{quote('position')}, s.id"
            ),
        }
        _PREBUILT[connection.vendor] = built
    return built


def _shown_questions(invitation: Invitation, loaded: Sequence[Question]) -> list[Question]:
    """``loaded`` (the survey's shown items and its free-text question, in survey order) as
    the form shows them: the shown items, then the comment question if comments are on."""
    shown = {int(q) for q in invitation.question_ids}
    questions = [q for q in loaded if q.pk in shown]
    if not invitation.answered and invitation.cycle.organisation.comments_enabled:
        comment = next((q for q in loaded if q.kind == Question.Kind.TEXT), None)
        if comment is not None:
            questions.append(comment)
    return questions


# --- A published survey's questions, kept per process -------------------------------------------
#
# A published survey never changes (edits make a new version, see ``question_update`` and the
# admin), so its ordered questions are read once per process and survey and then served from
# memory: the form's requests read only the invitation's row.  Unpublished surveys are always
# read afresh.  The survey's creation time goes into the key with its id, so a reused id (a test
# database rolled back) can never be served another survey's questions.  The instances are
# shared between requests and must be treated as read-only.

_SURVEY_ITEMS: OrderedDict[tuple[str, int, object], tuple[Question, ...]] = OrderedDict()
_SURVEY_ITEMS_MAX = 256
_SURVEY_ITEMS_LOCK = threading.Lock()


def survey_questions(
    survey_id: int, *, stamp: tuple[bool, object] | None = None
) -> tuple[Question, ...]:
    """Every question of the survey in survey order.  ``stamp`` (is_published, created_at), when
    the caller read it with the invitation, lets a published survey come from memory."""
    alias = connection.alias
    if stamp is not None and stamp[0]:
        cached = _kept_survey_questions(survey_id, stamp[1])
        if cached is not None:
            return cached
    built = _prebuilt()
    question_cols: _Columns = built["question"]
    with prepared_cursor() as cursor:
        cursor.execute(built["survey_items_sql"], [survey_id])
        rows = cursor.fetchall()
    questions = tuple(question_cols.make(row, 0) for row in rows)
    found = _survey_stamp(rows[0], question_cols.width) if rows else None
    if found is not None and found[0]:  # published: immutable from now on
        key = (alias, survey_id, found[1])
        with _SURVEY_ITEMS_LOCK:
            _SURVEY_ITEMS[key] = questions
            while len(_SURVEY_ITEMS) > _SURVEY_ITEMS_MAX:
                _SURVEY_ITEMS.popitem(last=False)
    return questions


def _kept_survey_questions(survey_id: int, created_at: object) -> tuple[Question, ...] | None:
    """A published survey's questions if this process keeps them, else None."""
    key = (connection.alias, survey_id, created_at)
    with _SURVEY_ITEMS_LOCK:
        cached = _SURVEY_ITEMS.get(key)
        if cached is not None:
            _SURVEY_ITEMS.move_to_end(key)
        return cached


def checkin_with_questions(*, public_id: object) -> tuple[Invitation, list[Question]] | None:
    """``invitation_for_checkin`` and ``invitation_questions`` together: the form's hot path,
    one round trip once the survey's questions are in memory."""
    found = _invitation_with_stamp(public_id)
    if found is None:
        return None
    invitation, stamp = found
    questions = survey_questions(invitation.cycle.survey_id, stamp=stamp)
    return invitation, _shown_questions(invitation, questions)


def _invitation_from_row(row: Sequence[Any]) -> tuple[Invitation, tuple[bool, object]]:
    """The invitation with its cycle, organisation and the person's language from an
    ``invitation_sql`` row, and its survey's stamp (is_published, created_at)."""
    built = _prebuilt()
    invitation_cols: _Columns = built["invitation"]
    cycle_cols: _Columns = built["cycle"]
    organisation_cols: _Columns = built["organisation"]
    invitation = invitation_cols.make(row, 0)
    start = invitation_cols.width
    cycle = cycle_cols.make(row, start)
    start += cycle_cols.width
    cycle.organisation = organisation_cols.make(row, start)
    start += organisation_cols.width
    invitation.cycle = cycle
    invitation.user = User.from_db(
        connection.alias, ["id", "language"], [invitation.user_id, row[start] or ""]
    )
    return invitation, _survey_stamp(row, start + 1)


def _survey_stamp(row: Sequence[Any], start: int) -> tuple[bool, object]:
    """(is_published, created_at) of the survey columns starting at ``start``."""
    survey = _prebuilt()["stamp"].make(row, start)
    return survey.is_published, survey.created_at


def _invitation_with_stamp(public_id: object) -> tuple[Invitation, tuple[bool, object]] | None:
    try:
        key = uuid.UUID(str(public_id))
    except ValueError:
        return None
    built = _prebuilt()
    prepared = Invitation._meta.get_field("public_id").get_db_prep_value(key, connection)
    with prepared_cursor() as cursor:
        cursor.execute(built["invitation_sql"], [prepared])
        row = cursor.fetchone()
    return None if row is None else _invitation_from_row(row)


def checkin_snapshot(invitation: Invitation) -> dict[str, Any] | None:
    """What a submit needs of an invitation whose survey is published, as JSON-ready values,
    for the check-in's session when its link is used (None for a draft survey).  Nothing in it
    changes while the invitation is open except what the submit statement re-checks."""
    cycle = invitation.cycle
    survey = cycle.survey
    if not survey.is_published or invitation.answered:
        return None
    return {
        "id": invitation.pk,
        "team": invitation.team_id,
        "shown": [int(q) for q in invitation.question_ids],
        "cycle": cycle.pk,
        "cycle_public": str(cycle.public_id),
        "organisation": cycle.organisation_id,
        "comments": cycle.organisation.comments_enabled,
        "survey": survey.pk,
        "survey_created": survey.created_at.isoformat(),
    }


def checkin_from_snapshot(snapshot: object) -> tuple[Invitation, list[Question]] | None:
    """The invitation of a ``checkin_snapshot`` and the questions its form shows, without
    reading its row; only for ``checkin_submit_quick``, whose statement re-checks what may have
    changed.  None when the snapshot is not one (e.g. a session from an older release) or the
    survey's questions are not in this process's memory."""
    if not isinstance(snapshot, dict):
        return None
    try:
        cycle = Cycle(
            pk=int(snapshot["cycle"]),
            public_id=uuid.UUID(str(snapshot["cycle_public"])),
            organisation_id=int(snapshot["organisation"]),
            survey_id=int(snapshot["survey"]),
        )
        cycle.organisation = Organisation(
            pk=cycle.organisation_id, comments_enabled=bool(snapshot["comments"])
        )
        invitation = Invitation(
            pk=int(snapshot["id"]),
            cycle=cycle,
            team_id=int(snapshot["team"]),
            question_ids=[int(q) for q in snapshot["shown"]],
            answered=False,
        )
        created_at = datetime.fromisoformat(str(snapshot["survey_created"]))
    except (KeyError, TypeError, ValueError):
        return None
    # Only questions already kept for exactly that survey: a miss (another process, or an id
    # reused by another survey) goes the invitation's way, which reads and keeps them.
    questions = _kept_survey_questions(cycle.survey_id, created_at)
    if questions is None:
        return None
    return invitation, _shown_questions(invitation, questions)


def invitation_for_checkin(*, public_id: object) -> Invitation | None:
    """The invitation with its cycle and organisation loaded (one query), for the check-in
    pages.  ``invitation.user`` carries only the person's language (all the pages need)."""
    found = _invitation_with_stamp(public_id)
    return None if found is None else found[0]


def invitation_questions(*, invitation: Invitation) -> list[Question]:
    """The rating items this person is shown (their rotation), in survey order, then the
    free-text question when comments are enabled for the organisation."""
    return _shown_questions(invitation, survey_questions(invitation.cycle.survey_id))


def invitation_comment_question(*, invitation: Invitation) -> Question | None:
    cycle = invitation.cycle
    if not cycle.organisation.comments_enabled:
        return None
    item = (
        SurveyItem.objects.filter(survey_id=cycle.survey_id, question__kind=Question.Kind.TEXT)
        .select_related("question")
        .first()
    )
    return item.question if item else None


def invitations_open_for_user(*, user: User, now: datetime | None = None) -> QuerySet[Invitation]:
    now = now or timezone.now()
    return (
        Invitation.objects.filter(
            user=user,
            answered=False,
            cycle__state=Cycle.State.OPEN,
            cycle__opens_at__lte=now,
            cycle__closes_at__gt=now,
        )
        .select_related("cycle", "cycle__survey", "cycle__organisation")
        .order_by("cycle__closes_at")
    )


def support_resources_for(*, organisation: Organisation) -> QuerySet[SupportResource]:
    return SupportResource.objects.filter(organisation=organisation).order_by("order", "title")


def questions_available(*, organisation: Organisation) -> QuerySet[Question]:
    return Question.objects.filter(
        Q(organisation__isnull=True) | Q(organisation=organisation), is_current=True
    ).order_by("dimension", "key")


def surveys_available(*, organisation: Organisation) -> QuerySet[Survey]:
    return Survey.objects.filter(
        Q(organisation__isnull=True) | Q(organisation=organisation),
        is_current=True,
        is_published=True,
    ).order_by("name")


def schedule_snapshot(schedule: Schedule) -> dict[str, Any]:
    """A schedule's settings as its audit entries record them."""
    return {
        "name": schedule.name,
        "survey": str(schedule.survey),
        "cadence": schedule.cadence,
        "weekday": schedule.weekday,
        "local_time": schedule.local_time,
        "timezone": schedule.timezone,
        "open_hours": schedule.open_hours,
        "reminder_offsets": list(schedule.reminder_offsets),
        "start_date": schedule.start_date,
        "end_date": schedule.end_date,
        "paused": schedule.paused,
        "teams": sorted(t.name for t in schedule.teams.all()),
    }


def cycle_participation(
    *, cycle: Cycle, team_ids: Collection[int] | None = None
) -> dict[str, int | float | None]:
    """Invited and responded counts of a cycle as the anonymity guard lets them out;
    ``responded`` and ``rate`` are None when withheld.

    ``team_ids`` None (admins): the whole cycle.  Once closed, its organisation row as stored
    at close; while open, the live count when the guard would publish that row for the
    current per-team counts (never a total beside which a hidden team's count is the
    difference).  ``team_ids`` given (a lead's teams): once closed, the stored rows of the top
    teams among them that the cycle covered, summed when all are published; while open,
    nothing, as a count moving with each submit would tell a lead when their people answer."""
    if cycle.state == Cycle.State.CLOSED:
        return stored_participation(cycle=cycle, team_ids=team_ids)
    invitations = Invitation.objects.filter(cycle=cycle)
    if team_ids is not None:
        invitations = invitations.filter(team_id__in=team_ids)
    invited = invitations.count()
    if team_ids is None:
        live = _live_participation(cycle=cycle, invited=invited)
        if live is not None:
            return live
    return {"invited": invited, "responded": None, "rate": None}


def stored_participation(
    *, cycle: Cycle, team_ids: Collection[int] | None = None
) -> dict[str, int | float | None]:
    """``cycle_participation`` from the rows its close stored (the close's own summary reads
    them before the cycle is marked closed)."""
    from wellbeing.analytics_selectors import primary_participation
    from wellbeing.models import Scope, Team, TeamParticipation

    rows = TeamParticipation.objects.filter(result__cycle_key=cycle.public_id)
    if team_ids is None:
        chosen = list(rows.filter(team__isnull=True))
    else:
        tops = [
            pk
            for pk, parent_id in Team.objects.filter(pk__in=team_ids).values_list("pk", "parent_id")
            if parent_id not in team_ids
        ]
        chosen = list(
            primary_participation(
                rows.filter(team_id__in=tops, scope__in=[Scope.TEAM, Scope.SUBTREE])
            ).values()
        )
    invited = sum(row.invited for row in chosen)
    if not chosen or not all(row.published for row in chosen):
        return {"invited": invited, "responded": None, "rate": None}
    responded = sum(row.responded or 0 for row in chosen)
    return {"invited": invited, "responded": responded, "rate": _rate(responded, invited)}


def _live_participation(*, cycle: Cycle, invited: int) -> dict[str, int | float | None] | None:
    from wellbeing.aggregation import organisation_count_publishable
    from wellbeing.analytics_selectors import team_tree

    counts = dict(
        Invitation.objects.filter(cycle=cycle)
        .values("team_id")
        .annotate(answered=Count("pk", filter=Q(answered=True)))
        .values_list("team_id", "answered")
    )
    k = cycle.organisation.anonymity_threshold
    tree = team_tree(organisation=cycle.organisation)
    if not invited or not organisation_count_publishable(tree=tree, counts=counts, k=k):
        return None
    responded = sum(counts.values())
    return {"invited": invited, "responded": responded, "rate": _rate(responded, invited)}


def _rate(responded: int, invited: int) -> float:
    return round(min(1.0, responded / max(invited, 1)), 3)


def cycle_response_count(*, cycle: Cycle) -> int:
    """Released responses (admin counts only)."""
    return Response.objects.filter(cycle=cycle).count()


# --- Opening a cycle ----------------------------------------------------------------------------


def opening_members(*, cycle: Cycle, after_user_id: int, limit: int) -> list[tuple[int, int, bool]]:
    """The next ``limit`` people to invite (user id above ``after_user_id``, ascending) as
    (user id, team id, customer-facing): active people of the cycle's organisation with a
    membership in one of its teams on its period start; a person in several of them is invited
    once, for the most recently started membership (then the lowest team id).

    On PostgreSQL one statement walking the people by id, with the team ids as a single array
    parameter (a large organisation targets thousands of teams: an ``IN`` list would be
    thousands of parameters, twice per chunk, and a scan of every targeted membership per chunk
    would make the whole opening quadratic); elsewhere the ORM."""
    from wellbeing.models import Membership, Team
    from wellbeing.selectors import team_members_on

    day = cycle.period_start
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                # People in id order, each with their latest membership among the cycle's
                # teams: two index lookups per person, whatever the cycle's size.  The team ids
                # go as the column's own type: against a smallint[] (psycopg's choice for small
                # ids) PostgreSQL walks the whole array per membership instead of hashing it
                # (62 ms against 24 ms per chunk of 2,000 people in 8,010 teams).
                "SELECT u.id, m.team_id, m.customer_facing"  # noqa: S608
                f" FROM {quote(User._meta.db_table)} u"
                " JOIN LATERAL (SELECT mm.team_id, t.customer_facing"
                f" FROM {quote(Membership._meta.db_table)} mm"
                f" JOIN {quote(Team._meta.db_table)} t ON t.id = mm.team_id"
                " WHERE mm.user_id = u.id AND mm.team_id = ANY(%s::bigint[]) AND mm.started_on <= %s"
                " AND (mm.ended_on IS NULL OR mm.ended_on >= %s)"
                " ORDER BY mm.started_on DESC, mm.team_id LIMIT 1) m ON true"
                " WHERE u.organisation_id = %s AND u.is_active AND u.id > %s"
                " ORDER BY u.id LIMIT %s",
                [list(cycle.team_ids), day, day, cycle.organisation_id, after_user_id, limit],
            )
            return [(int(u), int(t), bool(cf)) for u, t, cf in cursor.fetchall()]
    members = team_members_on(team_ids=cycle.team_ids, day=day).filter(
        user__organisation_id=cycle.organisation_id, user_id__gt=after_user_id
    )
    user_ids = list(
        members.order_by("user_id").values_list("user_id", flat=True).distinct()[:limit]
    )
    team_of: dict[int, int] = {}
    for user_id, team_id in (
        members.filter(user_id__in=user_ids)
        .order_by("user_id", "-started_on", "team_id")
        .values_list("user_id", "team_id")
    ):
        team_of.setdefault(user_id, team_id)
    customer_facing = set(
        Team.objects.filter(pk__in=set(team_of.values()), customer_facing=True).values_list(
            "pk", flat=True
        )
    )
    return [(u, team_of[u], team_of[u] in customer_facing) for u in user_ids]
