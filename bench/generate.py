"""Build a benchmark organisation directly in PostgreSQL with COPY, in minutes.

    DATABASE_URL=postgres://root@127.0.0.1:5432/bench_small REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/generate.py --size small

What it writes, per organisation (``bench-<size>`` and, for the scaling benchmark, two smaller
ones ``bench-<size>-q`` and ``bench-<size>-h`` with a quarter and a half of the people):

- a team tree (divisions > departments > teams, ~13 people per team, 40 % customer-facing),
  people (unusable passwords), memberships, one lead per team and per department, one admin;
- ``weeks`` closed weekly cycles of the real library survey ("weekly-pulse"), ~65 % of people
  answering with person, team and week effects (a few customer-facing teams drift upwards in
  the last nine weeks so the detector has something to find);
- for the main organisation, the raw rows of that history: invitations (participation flag,
  rotation cleared as at close; the other organisations get these too, see below) and released
  responses with the shape ``checkin_submit`` + ``pending_release`` give them (question id ->
  value of the items the rotation showed);
- the history's aggregates and participation.  Running ``cycle_results_store`` 104 x 8,000
  times would take hours, so the rows are COPYed, computed per cycle with the same rules:
  ``wellbeing.aggregation._layout`` for the nodes, ``wellbeing.guard.publishable_nodes`` for
  suppression (per dimension, and for participation), the ``wellbeing.stats.summary`` formulas
  (mean, sample sd, Student-t interval clipped to 0-100, five buckets; vectorised with numpy,
  checked against ``summarise`` by ``tests/bench``) and ``delta_publishable`` for the change
  (membership is static here, so each group's roster is the same in every cycle); the teams
  handed over are every team, as the close hands over every team the cycle was scheduled for;
- each history result's layout (``ResultLayout``) as the close keeps it for the next close's
  over-time rule, built by ``aggregation._Rosters.layout_record`` from the same layout and the
  people invited (everyone, every week), and the invitations the next close reads to list those
  people again: for every organisation within the raw weeks (all of them at ``ci`` and
  ``small``; at ``medium`` and ``large`` the last 13, the older results' layouts then counting
  the memberships on their period start, the same people, as a close that cannot list the
  invited does);
- three open cycles the benchmarks use: ``close`` (ended, answers released in batches of k,
  the remainder pending), ``fanout`` (open, nobody invited yet) and ``submit`` (open; the
  runner adds invitations with known links to it before each run).

Not written: invitation links and outbox rows for the history (links die with their cycle and
sent mail is not read by anything measured here), flags for the history.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Size:
    name: str
    people: int
    teams: int
    weeks: int
    participation: float = 0.65
    # Raw invitations/responses for only the last ``raw_weeks`` history cycles (None: all); the
    # aggregates and layouts always cover every week.  Of the raw rows of closed cycles, only
    # the invitations are read by anything measured: the close lists who the cycles it compares
    # with asked (the over-time rule; the latest one almost always, older ones for a few cells).
    raw_weeks: int | None = None


SIZES: dict[str, Size] = {
    "ci": Size("ci", people=400, teams=32, weeks=12),
    "small": Size("small", people=2_000, teams=160, weeks=52),
    # between the two, for checking how the close grows with teams (a few minutes to generate)
    "medium": Size("medium", people=20_000, teams=1_600, weeks=52, raw_weeks=13),
    "large": Size("large", people=100_000, teams=8_000, weeks=104, raw_weeks=13),
}
# The scaling benchmark closes one cycle at three sizes: these fractions of the main one.
SCALE_FRACTIONS: dict[str, float] = {"q": 0.25, "h": 0.5}
DRIFT_WEEKS = 9
OPEN_HOURS = 96


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# --- Organisation shape -----------------------------------------------------------------------


def tree_shape(teams: int) -> tuple[int, int, int]:
    """(divisions, departments per division, teams per department) for about ``teams``."""
    leaves = max(2, round(teams * 0.985))
    divisions = max(1, min(10, round(leaves / 800)))
    departments = max(1, min(10, round(leaves / (divisions * 8))))
    per_department = max(1, round(leaves / (divisions * departments)))
    return divisions, departments, per_department


def _reserve_ids(cursor, table: str, count: int) -> int:
    """Reserve ``count`` ids of ``table``'s identity sequence; returns the first."""
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(
        "SELECT setval(%s, GREATEST((SELECT COALESCE(MAX(id), 0) FROM " + table + "), "  # noqa: S608
        "(SELECT last_value FROM " + sequence + ")) + %s)",  # noqa: S608
        [sequence, count],
    )
    last = cursor.fetchone()[0]
    return last - count + 1


def _copy(cursor, table: str, columns: Iterable[str], lines: Iterable[str]) -> int:
    """COPY tab-separated lines (caller escapes; our values hold no tab/newline/backslash)."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    count = 0
    buffer = io.StringIO()
    with cursor.cursor.copy(sql) as copy:
        for line in lines:
            buffer.write(line)
            buffer.write("\n")
            count += 1
            if count % 20_000 == 0:
                copy.write(buffer.getvalue())
                buffer = io.StringIO()
        copy.write(buffer.getvalue())
    return count


def _n(value: object) -> str:
    return "\\N" if value is None else str(value)


@dataclass
class Survey:
    survey_id: int
    cap: int
    qids: list[int]
    dimension: dict[int, str]
    scale: dict[int, tuple[int, int, bool, bool]]  # min, max, reverse, higher_is_worse
    items_all: list
    items_cf: list


def library_survey() -> Survey:
    from checkins import rotation
    from checkins.models import Survey as SurveyModel
    from checkins.models import SurveyItem

    survey = SurveyModel.objects.get(organisation__isnull=True, key="weekly-pulse", is_current=True)
    items_all, items_cf, qids = [], [], []
    dimension, scale = {}, {}
    for item in (
        SurveyItem.objects.filter(survey=survey, question__kind="scale")
        .select_related("question")
        .order_by("position")
    ):
        q = item.question
        qids.append(q.pk)
        dimension[q.pk] = q.dimension
        scale[q.pk] = (q.scale_min, q.scale_max, q.reverse, q.higher_is_worse)
        r = rotation.RotationItem(question_id=q.pk, dimension=q.dimension)
        items_cf.append(r)
        if q.audience == "all":
            items_all.append(r)
    return Survey(survey.pk, survey.items_per_person, qids, dimension, scale, items_all, items_cf)


@dataclass
class Org:
    organisation_id: int
    slug: str
    team_ids: list[int]  # all teams
    leaf_ids: np.ndarray  # leaf team id per leaf index
    leaf_cf: np.ndarray  # bool per leaf index
    user_ids: np.ndarray  # employees
    user_leaf: np.ndarray  # leaf index per employee
    admin_id: int


def _build_people(*, slug: str, people: int, teams: int, k: int, seed: int, start: date) -> Org:
    """Teams, people, memberships, leads, an admin: COPYed in one transaction."""
    from django.db import connection, transaction

    from wellbeing.models import Organisation

    rng = np.random.default_rng(seed)
    divisions, departments, per_department = tree_shape(teams)
    with transaction.atomic():
        organisation = Organisation.objects.create(
            name=f"Bench {slug}", slug=slug, timezone="UTC", anonymity_threshold=k
        )
        n_teams = divisions + divisions * departments + divisions * departments * per_department
        with connection.cursor() as cursor:
            first_team = _reserve_ids(cursor, "wellbeing_team", n_teams)
            rows: list[tuple[int, int | None, str, bool]] = []
            next_id = first_team
            leaf_ids: list[int] = []
            department_ids: list[int] = []
            for d in range(divisions):
                division_id = next_id
                next_id += 1
                rows.append((division_id, None, f"Division {d + 1}", False))
                for m in range(departments):
                    department_id = next_id
                    next_id += 1
                    department_ids.append(department_id)
                    rows.append((department_id, division_id, f"Department {d + 1}.{m + 1}", False))
                    for t in range(per_department):
                        leaf_id = next_id
                        next_id += 1
                        leaf_ids.append(leaf_id)
                        rows.append((leaf_id, department_id, f"Team {d + 1}.{m + 1}.{t + 1}", None))  # type: ignore[arg-type]
            leaf_cf = rng.random(len(leaf_ids)) < 0.4
            cf_of = dict(zip(leaf_ids, leaf_cf.tolist(), strict=True))
            _copy(
                cursor,
                "wellbeing_team",
                [
                    "id",
                    "public_id",
                    "name",
                    "customer_facing",
                    "is_active",
                    "organisation_id",
                    "parent_id",
                ],
                (
                    f"{tid}\t{uuid.uuid4()}\t{name}\t{cf_of.get(tid, False) if cf is None else cf}"
                    f"\tt\t{organisation.pk}\t{_n(parent)}"
                    for tid, parent, name, cf in rows
                ),
            )
            first_user = _reserve_ids(cursor, "wellbeing_user", people + 1)
            user_ids = np.arange(first_user, first_user + people, dtype=np.int64)
            admin_id = first_user + people
            user_leaf = rng.integers(0, len(leaf_ids), size=people)
            joined = datetime(start.year, start.month, start.day, tzinfo=UTC).isoformat()

            def users() -> Iterable[str]:
                for uid in user_ids.tolist():
                    yield (
                        f"{uid}\t!bench\t\\N\tf\t{uuid.uuid4()}\tp{uid}@{slug}.bench.test\tPerson {uid}"
                        f"\tf\t\t\tt\tf\t{joined}\t{organisation.pk}"
                    )
                yield (
                    f"{admin_id}\t!bench\t\\N\tf\t{uuid.uuid4()}\tadmin@{slug}.bench.test\tAdmin"
                    f"\tt\t\t\tt\tf\t{joined}\t{organisation.pk}"
                )

            _copy(
                cursor,
                "wellbeing_user",
                [
                    "id", "password", "last_login", "is_superuser", "public_id", "email",
                    "full_name", "is_org_admin", "timezone", "language", "is_active",
                    "is_staff", "date_joined", "organisation_id",
                ],
                users(),
            )  # fmt: skip
            first_membership = _reserve_ids(cursor, "wellbeing_membership", people)
            leaf_arr = np.asarray(leaf_ids, dtype=np.int64)
            _copy(
                cursor,
                "wellbeing_membership",
                ["id", "started_on", "ended_on", "user_id", "team_id"],
                (
                    f"{first_membership + i}\t{start.isoformat()}\t\\N\t{uid}\t{tid}"
                    for i, (uid, tid) in enumerate(
                        zip(user_ids.tolist(), leaf_arr[user_leaf].tolist(), strict=True)
                    )
                ),
            )
            # One lead per team with members (its first member) and per department.
            leads: dict[int, int] = {}
            for uid, leaf in zip(user_ids.tolist(), user_leaf.tolist(), strict=True):
                leads.setdefault(leaf_ids[leaf], uid)
            parent_of = {tid: parent for tid, parent, _, _ in rows}
            for leaf_id, uid in list(leads.items()):
                leads.setdefault(parent_of[leaf_id], uid)  # type: ignore[arg-type]
            first_lead = _reserve_ids(cursor, "wellbeing_teamlead", len(leads))
            _copy(
                cursor,
                "wellbeing_teamlead",
                ["id", "team_id", "user_id"],
                (f"{first_lead + i}\t{t}\t{u}" for i, (t, u) in enumerate(leads.items())),
            )
    return Org(
        organisation_id=organisation.pk,
        slug=slug,
        team_ids=[r[0] for r in rows],
        leaf_ids=leaf_arr,
        leaf_cf=leaf_cf,
        user_ids=user_ids,
        user_leaf=user_leaf,
        admin_id=admin_id,
    )


# --- Answers ----------------------------------------------------------------------------------


@dataclass
class CycleAnswers:
    """One cycle: who answered (employee positions), what, and their 0-100 index per dimension."""

    answered: np.ndarray  # bool per employee
    offsets: np.ndarray  # rotation offset per employee
    shown: dict[tuple[bool, int], list[int]]  # (customer facing, offset) -> question ids
    answers_json: dict[int, str]  # employee position -> answers JSON (respondents only)
    index: dict[str, np.ndarray]  # dimension -> per-employee index (NaN: not answered/asked)


class AnswerModel:
    """Person, team and week effects as in ``checkins.demo``, vectorised."""

    def __init__(self, org: Org, survey: Survey, *, participation: float, weeks: int, seed: int):
        from checkins import rotation

        self.org, self.survey, self.weeks = org, survey, weeks
        self.rng = np.random.default_rng(seed + 1)
        n_leaves = len(org.leaf_ids)
        self.team_base = self.rng.uniform(0.22, 0.42, size=n_leaves)
        people = len(org.user_ids)
        self.person_offset = self.rng.normal(0, 0.08, size=people)
        self.person_rate = np.clip(
            self.rng.uniform(participation - 0.25, participation + 0.25, size=people), 0, 1
        )
        cf_leaves = np.flatnonzero(org.leaf_cf)
        count = max(1, len(cf_leaves) // 100)
        self.drifting = np.zeros(n_leaves, dtype=bool)
        self.drifting[
            self.rng.choice(cf_leaves, size=min(count, len(cf_leaves)), replace=False)
        ] = True
        self.period = {
            False: rotation.rotation_period(survey.items_all, survey.cap),
            True: rotation.rotation_period(survey.items_cf, survey.cap),
        }

    def cycle(self, *, number: int, cycle_index: int, json_needed: bool) -> CycleAnswers:
        from checkins import rotation

        org, survey, rng = self.org, self.survey, self.rng
        people = len(org.user_ids)
        cf = org.leaf_cf[org.user_leaf]
        answered = rng.random(people) < self.person_rate
        offsets = np.where(
            cf,
            rng.integers(0, self.period[True], people),
            rng.integers(0, self.period[False], people),
        )
        week_noise = rng.normal(0, 0.03, size=len(org.leaf_ids))
        weeks_left = self.weeks - number  # the close cycle is number == weeks: weeks_left 0
        climb = 0.055 * (DRIFT_WEEKS - weeks_left) if weeks_left < DRIFT_WEEKS else 0.0
        strain = self.team_base[org.user_leaf] + self.person_offset + week_noise[org.user_leaf]
        drifting = self.drifting[org.user_leaf]
        index = {d: np.full(people, np.nan) for d in set(survey.dimension.values())}
        shown: dict[tuple[bool, int], list[int]] = {}
        answers_json: dict[int, str] = {}
        for is_cf in (False, True):
            items = survey.items_cf if is_cf else survey.items_all
            for offset in range(self.period[is_cf]):
                qids = rotation.rotation_select(
                    items, cap=survey.cap, cycle_index=cycle_index, offset=offset
                )
                shown[(is_cf, offset)] = qids
                members = np.flatnonzero((cf == is_cf) & (offsets == offset) & answered)
                if not len(members):
                    continue
                badness = strain[members, None] + rng.normal(
                    0, 0.12, size=(len(members), len(qids))
                )
                values = np.empty((len(members), len(qids)), dtype=np.int64)
                item_index = np.empty((len(members), len(qids)))
                for j, qid in enumerate(qids):
                    lo, hi, reverse, worse = survey.scale[qid]
                    dim = survey.dimension[qid]
                    b = badness[:, j].copy()
                    if dim in ("stress", "client_burnout"):
                        b = b + np.where(drifting[members], climb, 0.0)
                    elif dim in ("burnout", "wellbeing", "recovery"):
                        b = b + np.where(drifting[members], climb * 0.4, 0.0)
                    b = np.clip(b, 0.0, 1.0)
                    raw = b if reverse == (not worse) else 1.0 - b
                    values[:, j] = lo + np.rint(raw * (hi - lo)).astype(np.int64)
                    frac = (values[:, j] - lo) / (hi - lo)
                    if reverse:
                        frac = 1.0 - frac
                    if not worse:
                        frac = 1.0 - frac
                    item_index[:, j] = 100.0 * frac
                for dim in {survey.dimension[q] for q in qids}:
                    cols = [j for j, q in enumerate(qids) if survey.dimension[q] == dim]
                    index[dim][members] = item_index[:, cols].mean(axis=1)
                if json_needed:
                    keys = [f'"{q}": ' for q in qids]
                    for pos, row in zip(members.tolist(), values.tolist(), strict=True):
                        answers_json[pos] = (
                            "{"
                            + ", ".join(k + str(v) for k, v in zip(keys, row, strict=True))
                            + "}"
                        )
        return CycleAnswers(answered, offsets, shown, answers_json, index)


# --- Aggregates with the product's rules ------------------------------------------------------


class Aggregator:
    """Per-cycle aggregate and participation rows for COPY (see the module docstring)."""

    def __init__(self, org: Org, k: int):
        from scipy import sparse
        from scipy import stats as scipy_stats

        from wellbeing.aggregation import _layout, _Rollup, _Rosters
        from wellbeing.analytics_selectors import team_tree
        from wellbeing.models import Organisation

        self.org, self.k = org, k
        tree = team_tree(organisation=Organisation.objects.get(pk=org.organisation_id))
        # the teams the close hands over (``cycle_results_hand_over``): every team the cycle was
        # scheduled for, which is every team here; a parent or an empty team holds nobody
        self.inputs = {int(t) for t in org.team_ids}
        self.layout = _layout(tree, dict.fromkeys(self.inputs))  # type: ignore[arg-type]
        self.nodes = [node for node, _, _ in self.layout.rows]
        self.node_pos = {node: i for i, node in enumerate(self.nodes)}
        leaf_pos = {int(t): i for i, t in enumerate(org.leaf_ids)}
        # each node's row against the leaves its subtree holds, from the close's own rollup
        # (a parent's direct node holds no leaf: nobody is a member of a parent here)
        rollup = _Rollup(self.layout)
        pairs = [
            (self.node_pos[rollup.nodes[a]], leaf_pos[team])
            for a, d in zip(rollup.pair_node.tolist(), rollup.pair_direct.tolist(), strict=True)
            if (team := self.layout.direct[rollup.direct[d]]) in leaf_pos
        ]
        ri, ci = [r for r, _ in pairs], [c for _, c in pairs]
        self.matrix = sparse.csr_matrix(
            (np.ones(len(ri)), (ri, ci)), shape=(len(self.nodes), len(org.leaf_ids))
        )
        self.direct_leaf = {
            node: leaf_pos[team] for node, team in self.layout.direct.items() if team in leaf_pos
        }
        # The layout a close keeps with its result (``ResultLayout.nodes``) for the next close's
        # over-time rule: the same nodes, cells, parents and direct teams, with the people each
        # node had behind it, who are those the cycle invited (everyone, in their one team, every
        # week here).  Membership is static, so it is the same bytes for every history cycle.
        invited = (org.leaf_ids[org.user_leaf].astype(np.int64), org.user_ids.astype(np.int64))
        self.layout_nodes: bytes = (
            _Rosters(layout=self.layout, rollup=rollup, people=invited).layout_record().tobytes()
        )
        members_per_leaf = np.bincount(org.user_leaf, minlength=len(org.leaf_ids))
        self.roster = self.matrix @ members_per_leaf  # people per node (static membership)
        self.invited = self.roster
        max_n = len(org.user_ids) + 2
        self.t = scipy_stats.t.ppf(0.975, np.maximum(np.arange(max_n) - 1, 1))
        self.published_before: set[tuple[int, str]] = set()

    def _guard(self, leaf_counts: np.ndarray) -> set[int]:
        from wellbeing.guard import Node, publishable_nodes

        nodes = [
            Node(
                id=node,
                parent_id=parent,
                n=int(leaf_counts[self.direct_leaf[node]]) if node in self.direct_leaf else 0,
            )
            for node, parent in self.layout.parent.items()
        ]
        return publishable_nodes(nodes, k=self.k)

    def rows(self, result_id: int, answers: CycleAnswers) -> tuple[list[str], list[str]]:
        org = self.org
        leaves = len(org.leaf_ids)
        responded_leaf = np.bincount(
            org.user_leaf, weights=answers.answered.astype(float), minlength=leaves
        )
        shown = self._guard(responded_leaf)
        responded = self.matrix @ responded_leaf
        participation = []
        for i, (node, team_id, scope) in enumerate(self.layout.rows):
            invited = int(self.invited[i])
            published = node in shown
            rate = (
                (min(1.0, float(responded[i]) / invited) if invited else 1.0) if published else None
            )
            participation.append(
                f"{scope}\t{invited}\t{'t' if published else 'f'}"
                f"\t{_n(int(responded[i]) if published else None)}\t{_n(rate)}"
                f"\t{result_id}\t{_n(team_id)}"
            )
        aggregates = []
        for dimension, values in answers.index.items():
            has = ~np.isnan(values)
            if not has.any():
                continue
            v = values[has]
            leaf = org.user_leaf[has]
            n_leaf = np.bincount(leaf, minlength=leaves).astype(float)
            allowed = self._guard(n_leaf)
            n = self.matrix @ n_leaf
            s = self.matrix @ np.bincount(leaf, weights=v, minlength=leaves)
            q = self.matrix @ np.bincount(leaf, weights=v * v, minlength=leaves)
            bucket = np.minimum((v // 20).astype(np.int64), 4)
            dist = self.matrix @ np.bincount(leaf * 5 + bucket, minlength=leaves * 5).reshape(
                leaves, 5
            )
            for i, (node, team_id, scope) in enumerate(self.layout.rows):
                count = int(n[i])
                if node not in allowed or count == 0:
                    aggregates.append(
                        f"{scope}\t{dimension}\tf\tf\t{_HIDDEN_FIGURES}\t{result_id}\t{_n(team_id)}"
                    )
                    continue
                mean = float(s[i] / count)
                if count == 1:
                    sd, low, high = 0.0, 0.0, 100.0
                else:
                    sd = math.sqrt(max(0.0, float(q[i] - s[i] * s[i] / count) / (count - 1)))
                    half = float(self.t[count]) * sd / math.sqrt(count)
                    low, high = max(0.0, mean - half), min(100.0, mean + half)
                key = (node, dimension)
                delta = key in self.published_before and int(self.roster[i]) >= self.k
                self.published_before.add(key)
                bands = "\t".join(str(int(c)) for c in dist[i])
                aggregates.append(
                    f"{scope}\t{dimension}\tt\t{'t' if delta else 'f'}\t{count}\t{mean!r}"
                    f"\t{sd!r}\t{low!r}\t{high!r}\t{bands}\t{result_id}\t{_n(team_id)}"
                )
        return aggregates, participation


# ``TeamAggregate.BANDS`` (this module is imported before Django is set up)
BANDS = ["band_0_20", "band_20_40", "band_40_60", "band_60_80", "band_80_100"]
AGGREGATE_COLUMNS = [
    "scope", "dimension", "published", "delta_published", "n", "index", "sd", "ci_low",
    "ci_high", *BANDS, "result_id", "team_id",
]  # fmt: skip
# a suppressed cell's n, index, sd, interval and bands, all NULL
_HIDDEN_FIGURES = "\t".join(["\\N"] * (5 + len(BANDS)))
PARTICIPATION_COLUMNS = [
    "scope",
    "invited",
    "published",
    "responded",
    "rate",
    "result_id",
    "team_id",
]


# --- Cycles -----------------------------------------------------------------------------------


def _schedule(org: Org, survey: Survey, name: str, start: date):
    from checkins.models import Schedule

    schedule = Schedule.objects.create(
        organisation_id=org.organisation_id,
        name=name,
        survey_id=survey.survey_id,
        weekday=0,
        open_hours=OPEN_HOURS,
        reminder_offsets=[48],
        start_date=start,
        paused=True,  # the tick must not open or close the bench's cycles on its own
    )
    roots = list(org.team_ids[:1])
    schedule.teams.set(roots)
    return schedule


def _invitation_lines(
    first_id: int, cycle_id: int, org: Org, answers: CycleAnswers, *, keep_rotation: bool
) -> Iterable[str]:
    cf = org.leaf_cf[org.user_leaf].tolist()
    teams = org.leaf_ids[org.user_leaf].tolist()
    for i, (uid, team, answered, offset, is_cf) in enumerate(
        zip(
            org.user_ids.tolist(),
            teams,
            answers.answered.tolist(),
            answers.offsets.tolist(),
            cf,
            strict=True,
        )
    ):
        if keep_rotation and not answered:
            question_ids, rotation = json.dumps(answers.shown[(is_cf, offset)]), str(offset)
        else:
            question_ids, rotation = "[]", "\\N"
        yield (
            f"{first_id + i}\t{uuid.uuid4()}\t{question_ids}\t{rotation}"
            f"\t{'t' if answered else 'f'}\t{cycle_id}\t{team}\t{uid}"
        )


RESULT_LAYOUT_COLUMNS = ["result_id", "nodes", "asked"]


def _result_layout_line(result_id: int, nodes: bytes, *, asked: bool) -> str:
    """A ``ResultLayout`` row for COPY (text format: the bytea in hex, its backslash escaped)."""
    return f"{result_id}\t\\\\x{nodes.hex()}\t{'t' if asked else 'f'}"


INVITATION_COLUMNS = [
    "id", "public_id", "question_ids", "rotation_offset", "answered", "cycle_id", "team_id",
    "user_id",
]  # fmt: skip


def generate_org(
    *,
    slug: str,
    people: int,
    teams: int,
    weeks: int,
    participation: float,
    raw_history: bool,
    seed: int,
    raw_weeks: int | None = None,
    now: datetime,
    progress: bool = True,
) -> dict:
    """One organisation with its history and the three benchmark cycles; returns a summary."""
    from django.db import connection, transaction
    from tqdm import tqdm

    from checkins.models import Cycle, PendingAnswer
    from checkins.services import response_scores_store
    from wellbeing.flags import detection_columns_store
    from wellbeing.models import CycleResult

    k = 5
    started = time.perf_counter()
    today = now.date()
    this_monday = today - timedelta(days=today.weekday())
    first_monday = this_monday - timedelta(weeks=weeks + 1)
    survey = library_survey()
    org = _build_people(
        slug=slug,
        people=people,
        teams=teams,
        k=k,
        seed=seed,
        start=first_monday - timedelta(days=7),
    )
    schedule = _schedule(org, survey, "Bench weekly", first_monday)
    submit_schedule = _schedule(org, survey, "Bench submit", this_monday)
    model = AnswerModel(org, survey, participation=participation, weeks=weeks, seed=seed)
    aggregator = Aggregator(org, k)
    team_ids = sorted(org.team_ids)
    counts = {"invitations": 0, "responses": 0, "aggregates": 0}

    def opens(monday: date) -> datetime:
        return datetime(monday.year, monday.month, monday.day, 9, tzinfo=UTC)

    bar = tqdm(total=weeks, desc=f"{slug} history", unit="week", disable=not progress)
    for number in range(weeks):
        monday = first_monday + timedelta(weeks=number)
        # Invitations (who the cycle asked: the next close's over-time rule reads them) for
        # every organisation within the raw weeks; responses for the main one only.
        asked = raw_weeks is None or number >= weeks - raw_weeks
        raw = raw_history and asked
        answers = model.cycle(number=number, cycle_index=number, json_needed=raw)
        with transaction.atomic():
            cycle = Cycle.objects.create(
                organisation_id=org.organisation_id,
                schedule=schedule,
                survey_id=survey.survey_id,
                period_start=monday,
                index=number,
                opens_at=opens(monday),
                closes_at=opens(monday) + timedelta(hours=OPEN_HOURS),
                state=Cycle.State.CLOSED,
                team_ids=team_ids,
                opened_fully=True,
                invited_count=people,
                closed_at=opens(monday) + timedelta(hours=OPEN_HOURS, minutes=1),
            )
            with connection.cursor() as cursor:
                if asked:
                    first = _reserve_ids(cursor, "checkins_invitation", people)
                    counts["invitations"] += _copy(
                        cursor,
                        "checkins_invitation",
                        INVITATION_COLUMNS,
                        _invitation_lines(first, cycle.pk, org, answers, keep_rotation=False),
                    )
                if raw:
                    teams_of = org.leaf_ids[org.user_leaf]
                    counts["responses"] += _copy(
                        cursor,
                        "checkins_response",
                        ["id", "answers", "comment", "cycle_id", "team_id"],
                        (
                            f"{uuid.uuid4()}\t{text}\t\t{cycle.pk}\t{teams_of[pos]}"
                            for pos, text in answers.answers_json.items()
                        ),
                    )
                    response_scores_store(cycle=cycle)  # as each release scores its batch
                result = CycleResult.objects.create(
                    organisation_id=org.organisation_id,
                    cycle_key=cycle.public_id,
                    period_start=monday,
                    closed_at=cycle.closed_at,
                    k=k,
                )
                aggregates, participation_rows = aggregator.rows(result.pk, answers)
                counts["aggregates"] += _copy(
                    cursor, "wellbeing_teamaggregate", AGGREGATE_COLUMNS, aggregates
                )
                _copy(
                    cursor, "wellbeing_teamparticipation", PARTICIPATION_COLUMNS, participation_rows
                )
                # the layout the close keeps with its result; ``asked``: its people are those
                # the cycle invited, as the check-in close counts them, or else (no invitations
                # written for this week) the memberships on its period start, the same people
                # here: the next close lists them again the same way
                _copy(
                    cursor,
                    "wellbeing_resultlayout",
                    RESULT_LAYOUT_COLUMNS,
                    [_result_layout_line(result.pk, aggregator.layout_nodes, asked=asked)],
                )
                detection_columns_store([result.pk])  # as the close packs what it stores
        bar.update(1)
    bar.close()

    # The close cycle: ended, answers released in batches of k, the remainder still pending.
    close_monday = this_monday - timedelta(weeks=1)
    answers = model.cycle(number=weeks, cycle_index=weeks, json_needed=True)
    with transaction.atomic():
        close = Cycle.objects.create(
            organisation_id=org.organisation_id,
            schedule=schedule,
            survey_id=survey.survey_id,
            period_start=close_monday,
            index=weeks,
            opens_at=opens(close_monday),
            closes_at=min(
                opens(close_monday) + timedelta(hours=OPEN_HOURS), now - timedelta(hours=1)
            ),
            state=Cycle.State.OPEN,
            team_ids=team_ids,
            opened_fully=True,
            invited_count=people,
        )
        with connection.cursor() as cursor:
            first = _reserve_ids(cursor, "checkins_invitation", people)
            counts["invitations"] += _copy(
                cursor,
                "checkins_invitation",
                INVITATION_COLUMNS,
                _invitation_lines(first, close.pk, org, answers, keep_rotation=True),
            )
            by_team: dict[int, list[str]] = defaultdict(list)
            teams_of = org.leaf_ids[org.user_leaf]
            for pos, text in answers.answers_json.items():
                by_team[int(teams_of[pos])].append(text)
            released, pending = [], []
            for team, texts in by_team.items():
                cut = len(texts) // k * k
                released += [(team, t) for t in texts[:cut]]
                pending += [(team, t) for t in texts[cut:]]
            counts["responses"] += _copy(
                cursor,
                "checkins_response",
                ["id", "answers", "comment", "cycle_id", "team_id"],
                (f"{uuid.uuid4()}\t{t}\t\t{close.pk}\t{team}" for team, t in released),
            )
            response_scores_store(cycle=close)
            _copy(
                cursor,
                PendingAnswer._meta.db_table,
                ["id", "answers", "comment", "cycle_id", "team_id"],
                (f"{uuid.uuid4()}\t{t}\t\t{close.pk}\t{team}" for team, t in pending),
            )
        # This week's two open cycles: the one the fan-out opens and the one people submit to.
        this_week = {
            "organisation_id": org.organisation_id,
            "survey_id": survey.survey_id,
            "period_start": this_monday,
            "index": weeks + 1,
            "opens_at": now - timedelta(minutes=10),
            "closes_at": now + timedelta(days=4),
            "state": Cycle.State.OPEN,
            "team_ids": team_ids,
        }
        fanout = Cycle.objects.create(schedule=schedule, **this_week)
        submit = Cycle.objects.create(schedule=submit_schedule, opened_fully=True, **this_week)
    with connection.cursor() as cursor:
        for table in (
            "checkins_invitation", "checkins_response", "checkins_pendinganswer",
            "wellbeing_teamaggregate", "wellbeing_teamparticipation", "wellbeing_resultlayout",
            "wellbeing_user", "wellbeing_membership", "wellbeing_team",
        ):  # fmt: skip
            cursor.execute(f"ANALYZE {table}")
    summary = {
        "organisation": slug,
        "organisation_id": org.organisation_id,
        "people": people,
        "teams": len(org.team_ids),
        "weeks": weeks,
        "close_cycle": close.pk,
        "fanout_cycle": fanout.pk,
        "submit_cycle": submit.pk,
        "close_responses": len(answers.answers_json),
        "admin_id": org.admin_id,
        **counts,
        "seconds": round(time.perf_counter() - started, 1),
    }
    say(
        f"{slug}: {people} people, {len(org.team_ids)} teams, {weeks} weeks, "
        f"{counts['invitations']} invitations, {counts['responses']} responses, "
        f"{counts['aggregates']} aggregate rows in {summary['seconds']} s"
    )
    return summary


def generate(size: Size, *, now: datetime | None = None, progress: bool = True) -> dict:
    """The main organisation (full raw history) and the two scaling ones (aggregates only).
    Idempotent per size: an organisation that exists is kept (delete the database to redo)."""
    from django.db import transaction

    from wellbeing.models import Organisation

    now = now or datetime.now(UTC)
    out: dict = {"size": size.name, "organisations": {}}
    plan: list[tuple[str, str, float]] = [("main", f"bench-{size.name}", 1.0)]
    plan += [(label, f"bench-{size.name}-{label}", f) for label, f in SCALE_FRACTIONS.items()]
    generated = False
    for index, (label, slug, fraction) in enumerate(plan):
        existing = Organisation.objects.filter(slug=slug).first()
        if existing is not None:
            out["organisations"][label] = existing_summary(existing)
            continue
        with transaction.atomic():  # all or nothing: a failed run leaves no half organisation
            out["organisations"][label] = generate_org(
                slug=slug,
                people=max(40, round(size.people * fraction)),
                teams=max(4, round(size.teams * fraction)),
                weeks=size.weeks,
                participation=size.participation,
                raw_history=label == "main",
                raw_weeks=size.raw_weeks,
                seed=1000 + index,
                now=now,
                progress=progress,
            )
            generated = True
    if generated:
        _vacuum_history()
    return out


def _vacuum_history() -> None:
    """VACUUM ANALYZE what was COPYed: a real history is months old, long since vacuumed and
    analysed (visibility map set for index-only scans, planner statistics current)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "wellbeing_teamaggregate",
            "wellbeing_teamparticipation",
            "wellbeing_resultlayout",
            "wellbeing_membership",
            "checkins_response",
            "checkins_invitation",
        ):
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def existing_summary(organisation) -> dict:
    """The summary of an organisation generated earlier (cycles found by schedule and index)."""
    from checkins.models import Cycle, PendingAnswer, Response
    from wellbeing.models import CycleResult, ResultLayout, Team, User

    weekly = Cycle.objects.filter(organisation=organisation, schedule__name="Bench weekly")
    fanout = weekly.order_by("-index").first()
    assert fanout is not None, "a half-generated organisation: drop the database and rerun"
    close = weekly.get(index=fanout.index - 1)
    latest = CycleResult.objects.filter(organisation=organisation).order_by("-period_start").first()
    assert latest is None or ResultLayout.objects.filter(result=latest).exists(), (
        f"{organisation.slug} was generated before history results kept their layout (its close "
        "would skip the over-time comparison): drop the database and rerun"
    )
    submit = Cycle.objects.get(organisation=organisation, schedule__name="Bench submit")
    return {
        "organisation": organisation.slug,
        "organisation_id": organisation.pk,
        "people": User.objects.filter(organisation=organisation, is_org_admin=False).count(),
        "teams": Team.objects.filter(organisation=organisation).count(),
        "weeks": close.index,
        "close_cycle": close.pk,
        "fanout_cycle": fanout.pk,
        "submit_cycle": submit.pk,
        "close_responses": Response.objects.filter(cycle=close).count()
        + PendingAnswer.objects.filter(cycle=close).count(),
        "admin_id": User.objects.get(organisation=organisation, is_org_admin=True).pk,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    args = parser.parse_args(argv)
    setup_django()
    started = time.perf_counter()
    summary = generate(SIZES[args.size])
    say(f"generated size {args.size} in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{k}={v['people']} people" for k, v in summary["organisations"].items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
