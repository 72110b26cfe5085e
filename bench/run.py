"""Pulse at scale against bare baselines: ``./pulse bench [--size ci|small|large]``.

Builds (or reuses) the benchmark database ``bench_<size>`` on the PostgreSQL of DATABASE_URL,
starts a real gunicorn and real Celery workers (Redis db 9 unless REDIS_URL says otherwise) with
``bench.settings``, runs every benchmark, prints a table and writes
``bench/results/pulse_<size>.json`` and ``.md``.  Every figure is a ratio against a bare baseline
run in this process within the same minute; absolute times on shared machines are noise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.generate import SIZES, Size, generate, say  # noqa: E402
from bench.loadgen import Request, no_cookie_jar, run_load  # noqa: E402

RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable


# How much load each size gets (counts and a time cap bound every phase).
# ``submits``: each side of the idle submit ratio, run in ``slices`` alternating slices;
# ``loaded``: the submits timed while the background opening and close run.
LOAD = {
    "ci": {"submits": 60, "slices": 2, "loaded": 60, "dash": 40, "concurrency": 4},
    "small": {"submits": 600, "slices": 6, "loaded": 300, "dash": 120, "concurrency": 8},
    "medium": {"submits": 900, "slices": 6, "loaded": 300, "dash": 80, "concurrency": 8},
    "large": {"submits": 1200, "slices": 6, "loaded": 400, "dash": 40, "concurrency": 8},
}
TIME_LIMIT = 240.0


# --- Environment ------------------------------------------------------------------------------


def database_url(name: str) -> str:
    base = os.environ.get("DATABASE_URL", "postgres://root@127.0.0.1:5432/postgres")
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def ensure_database(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            say(f"creating database {name}")
            conn.execute(f'CREATE DATABASE "{name}"')


def machine() -> dict:
    import psutil

    return {
        "nproc": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class Servers:
    """A real gunicorn and a real Celery worker (prefork) with the bench settings."""

    def __init__(self, env: dict[str, str], port: int, log_dir: Path):
        self.env, self.port, self.log_dir = env, port, log_dir
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.web = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "config.wsgi:application", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "4", "--timeout", "150", "--log-level", "warning"],
            cwd=ROOT, env=self.env, stdout=open(self.log_dir / "gunicorn.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.worker = subprocess.Popen(
            [PYTHON, "-m", "celery", "-A", "config", "worker", "--pool", "threads",
             "--concurrency", "4", "-n", f"bench{self.port}@%h"],  # logs at LOG_LEVEL
            cwd=ROOT, env=self.env, stdout=open(self.log_dir / "worker.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        import httpx

        from config.celery import app

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("gunicorn did not come up (bench/results/logs/gunicorn.log)")
        while time.monotonic() < deadline:
            if app.control.ping(timeout=1.0):
                return
        raise RuntimeError("the Celery worker did not come up (bench/results/logs/worker.log)")

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in (self.web, self.worker):
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


class RssSampler(threading.Thread):
    """Peak resident memory of a process tree (the worker and its pool children)."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_tree = 0
        self.peak_process = 0
        self.peak_tree_pss = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self._stop_event.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                sizes = [p.memory_info().rss for p in tree]
                # PSS splits pages the prefork children share with the parent (copy-on-write)
                # instead of counting them once per process as an RSS sum does.
                self.peak_tree_pss = max(
                    self.peak_tree_pss, sum(p.memory_full_info().pss for p in tree)
                )
            except psutil.Error:
                sizes = []
            if sizes:
                self.peak_tree = max(self.peak_tree, sum(sizes))
                self.peak_process = max(self.peak_process, max(sizes))
            time.sleep(self.interval)

    def stop(self) -> tuple[float, float, float]:
        self._stop_event.set()
        self.join()
        return self.peak_tree / 2**20, self.peak_process / 2**20, self.peak_tree_pss / 2**20


# --- Helpers over the data --------------------------------------------------------------------


def session_cookie(user_id: int) -> str:
    """A signed-in session for ``user_id`` (as the login view would create it)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    from wellbeing.models import User

    user = User.objects.get(pk=user_id)
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"sessionid={store.session_key}"


def submit_invitations(cycle_id: int, count: int) -> list[str]:
    """Fresh invitations with known one-time links in the submit cycle (as the open does).  What
    an earlier run left in the cycle (invitations, pending and released answers) goes first,
    so every run starts from the same empty cycle."""
    from django.db import transaction

    from checkins import rotation, services
    from checkins.models import Cycle, Invitation, InvitationToken, PendingAnswer, Response
    from checkins.tokens import token_new
    from wellbeing.models import Membership

    with transaction.atomic():
        for model in (PendingAnswer, Response, InvitationToken, Invitation):
            field = "invitation__cycle_id" if model is InvitationToken else "cycle_id"
            model.objects.filter(**{field: cycle_id}).delete()
    cycle = Cycle.objects.select_related("survey").get(pk=cycle_id)
    items_all, items_cf = services._rotation_items(cycle.survey_id)
    cap = cycle.survey.items_per_person
    taken = set(Invitation.objects.filter(cycle=cycle).values_list("user_id", flat=True))
    members = (
        Membership.objects.filter(team_id__in=cycle.team_ids)
        .exclude(user_id__in=taken)
        .select_related("team")
        .order_by("user_id")[:count]
    )
    tokens, invitations, links = [], [], []
    for m in members:
        items = items_cf if m.team.customer_facing else items_all
        offset = 0
        invitation = Invitation(
            cycle=cycle, user_id=m.user_id, team_id=m.team_id, rotation_offset=offset,
            question_ids=rotation.rotation_select(items, cap=cap, cycle_index=cycle.index, offset=offset),
        )  # fmt: skip
        token, selector, hashed = token_new()
        invitations.append(invitation)
        tokens.append(InvitationToken(invitation=invitation, selector=selector, token_hash=hashed))
        links.append(token)
    with transaction.atomic():
        Invitation.objects.bulk_create(invitations)
        InvitationToken.objects.bulk_create(tokens)
    if len(links) < count:
        raise RuntimeError(f"only {len(links)} people left to invite in the submit cycle")
    return links


_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_RADIO = re.compile(r'<input type="radio" name="(q\d+)"[^>]*value="(\d+)"')


def prepare_form_submits(base_url: str, links: list[str], concurrency: int) -> list[Request]:
    """Exchange each link for a session and load the form (untimed), as a browser does."""
    import asyncio

    import httpx

    async def prepare() -> list[Request]:
        semaphore = asyncio.Semaphore(concurrency)
        out: list[Request] = []
        async with httpx.AsyncClient(
            base_url=base_url, timeout=60, cookies=no_cookie_jar()
        ) as shared:

            async def one(token: str) -> None:
                async with semaphore:
                    start = await shared.post(f"/checkin/t/{token}/")
                    if start.status_code != 302:
                        raise RuntimeError(f"link exchange answered {start.status_code}")
                    cookies = dict(start.cookies.items())  # the session and the snapshot
                    form = await shared.get("/checkin/answer/", cookies=cookies)
                    cookies.update(dict(form.cookies.items()))
                    csrf = _CSRF.search(form.text)
                    if form.status_code != 200 or csrf is None:
                        raise RuntimeError(f"form answered {form.status_code}")
                    data = {"csrfmiddlewaretoken": csrf.group(1)}
                    for name, value in _RADIO.findall(form.text):
                        data.setdefault(name, value)  # the first scale point of each item
                    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
                    out.append(Request("POST", "/checkin/answer/", data, {"Cookie": cookie}))

            await asyncio.gather(*(one(t) for t in links))
        return out

    return asyncio.run(prepare())


def interleaved(
    base_url: str,
    a: list[Request],
    b: list[Request],
    *,
    concurrency: int,
    ok_a,
    ok_b,
    slices: int = 4,
):
    """Run a and b in alternating slices (a, b, a, b, ...) so both see the same minutes: a
    burst of other work on the shared machine then lands on both sides, not on one."""
    from bench.loadgen import LoadResult

    results: dict[str, list[LoadResult]] = {"a": [], "b": []}
    slices = max(1, min(slices, len(a), len(b)))
    for part in range(slices):
        sa = a[part * len(a) // slices : (part + 1) * len(a) // slices]
        sb = b[part * len(b) // slices : (part + 1) * len(b) // slices]
        results["a"].append(
            run_load(base_url, sa, concurrency=concurrency, time_limit=TIME_LIMIT, ok=ok_a)
        )
        results["b"].append(
            run_load(base_url, sb, concurrency=concurrency, time_limit=TIME_LIMIT, ok=ok_b)
        )

    def merge(parts: list[LoadResult]) -> LoadResult:
        statuses: dict[int, int] = {}
        for p in parts:
            for code, n in p.statuses.items():
                statuses[code] = statuses.get(code, 0) + n
        return LoadResult(
            sum(p.count for p in parts), sum(p.ok for p in parts), sum(p.seconds for p in parts),
            [x for p in parts for x in p.latencies], statuses,
        )  # fmt: skip

    return merge(results["a"]), merge(results["b"])


def fanout_reset(cycle_id: int) -> None:
    from django.db import connection, transaction

    from checkins.models import Cycle, Invitation
    from notifications.models import Message

    with transaction.atomic():
        keys = [
            f"inv:{p}"
            for p in Invitation.objects.filter(cycle_id=cycle_id).values_list(
                "public_id", flat=True
            )
        ]
        for start in range(0, len(keys), 5000):
            Message.objects.filter(idempotency_key__in=keys[start : start + 5000]).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM checkins_invitationtoken WHERE invitation_id IN "
                "(SELECT id FROM checkins_invitation WHERE cycle_id = %s)", [cycle_id]
            )  # fmt: skip
            cursor.execute("DELETE FROM checkins_invitation WHERE cycle_id = %s", [cycle_id])
        Cycle.objects.filter(pk=cycle_id).update(open_cursor=0, opened_fully=False, invited_count=0)
    # A real opening starts on tables without an earlier opening's 100,000 deleted rows in the
    # way: without this the first chunks wade through their dead index entries (a first chunk
    # of 12-16 s instead of about 1 s, measured in process), which says nothing of the product.
    with connection.cursor() as cursor:
        cursor.execute(
            "VACUUM (ANALYZE) checkins_invitation, checkins_invitationtoken, notifications_message"
        )


def close_reset(cycle_id: int) -> None:
    from checkins.models import Cycle
    from notifications.models import Message
    from wellbeing.models import CycleResult, Flag

    cycle = Cycle.objects.get(pk=cycle_id)
    CycleResult.objects.filter(cycle_key=cycle.public_id).delete()
    Flag.objects.filter(organisation_id=cycle.organisation_id).delete()  # history has none
    Message.objects.filter(
        organisation_id=cycle.organisation_id, kind__in=["flag_alert", "cycle_summary"]
    ).delete()
    Cycle.objects.filter(pk=cycle_id).update(state=Cycle.State.OPEN, closed_at=None)


def wait_for(predicate, *, timeout: float, interval: float = 0.2) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("background work did not finish in time")
        time.sleep(interval)
    return time.perf_counter() - started


def fanout_prepare(cycle_id: int, *, on_time: bool) -> None:
    """Nobody invited yet, and the opening time now (on time) or six hours ago (late)."""
    from datetime import timedelta

    from django.utils import timezone

    from checkins.models import Cycle

    fanout_reset(cycle_id)
    now = timezone.now()
    opens_at = now if on_time else now - timedelta(hours=6)
    Cycle.objects.filter(pk=cycle_id).update(opens_at=opens_at, closes_at=now + timedelta(days=4))


SWEEP_SECONDS = 60.0  # the beat schedule's outbox sweep (config/settings/base.py)


def fanout_run(cycle_id: int, worker_pid: int, *, timeout: float, on_time: bool) -> dict:
    """Open a cycle through the real Celery chain; rows/s and the worker tree's peak RSS.

    ``on_time``: the cycle opens at its opening time, as the tick opens it: each invitation is
    due at a random moment of the next ``DELIVERY_JITTER_SECONDS`` (15 minutes), and the
    messages that fall due meanwhile are delivered as in production (queued on commit when due
    at once, else by the outbox sweep, sent every minute here as beat sends it).  Otherwise
    the opening is late (a catch-up after an outage): every invitation is due at once and its
    delivery competes with the rest of the opening from the first chunk."""
    from checkins.models import Cycle, Invitation
    from checkins.tasks import cycle_open_chunk_task
    from notifications.models import Message
    from notifications.tasks import outbox_sweep

    fanout_prepare(cycle_id, on_time=on_time)
    sampler = RssSampler(worker_pid)
    sampler.start()
    time.sleep(0.5)
    started = time.perf_counter()
    cycle_open_chunk_task.delay(cycle_id)
    swept = started

    def opened() -> bool:
        nonlocal swept
        if on_time and time.perf_counter() - swept >= SWEEP_SECONDS:
            outbox_sweep.delay()
            swept = time.perf_counter()
        return Cycle.objects.filter(pk=cycle_id, opened_fully=True).exists()

    wait_for(opened, timeout=timeout)
    seconds = time.perf_counter() - started
    peak_tree, peak_process, peak_pss = sampler.stop()
    invitations = Invitation.objects.filter(cycle_id=cycle_id).count()
    keys = [
        f"inv:{p}"
        for p in Invitation.objects.filter(cycle_id=cycle_id).values_list("public_id", flat=True)
    ]
    messages = sent = 0
    for i in range(0, len(keys), 5000):
        batch = Message.objects.filter(idempotency_key__in=keys[i : i + 5000])
        messages += batch.count()
        sent += batch.filter(state="sent").count()
    return {
        "opening": "on time" if on_time else "late (every invitation due at once)",
        "invitations": invitations,
        "messages": messages,
        "sent_by_the_end": sent,
        "seconds": seconds,
        "rows_per_s": (invitations + messages) / seconds,
        "peak_rss_tree_mb": round(peak_tree, 1),
        "peak_rss_process_mb": round(peak_process, 1),
        "peak_pss_tree_mb": round(peak_pss, 1),
    }


class _Rollback(Exception):
    pass


def bare_bulk_insert(cycle_id: int) -> dict:
    """The same invitation and outbox rows, bulk-inserted bare into a scratch cycle (rolled back)."""
    from datetime import date

    from django.db import transaction

    from checkins.models import Cycle, Invitation
    from notifications.models import Message

    source = Cycle.objects.get(pk=cycle_id)
    invitations = list(
        Invitation.objects.filter(cycle_id=cycle_id).values(
            "user_id", "team_id", "question_ids", "rotation_offset"
        )
    )
    keys = [
        f"inv:{p}"
        for p in Invitation.objects.filter(cycle_id=cycle_id).values_list("public_id", flat=True)
    ]
    fields = ["organisation_id", "kind", "channel", "recipient_id", "template", "context",
              "sensitive_context", "had_sensitive_context", "next_attempt_at"]  # fmt: skip
    messages = [
        row
        for i in range(0, len(keys), 5000)
        for row in Message.objects.filter(idempotency_key__in=keys[i : i + 5000]).values(*fields)
    ]
    seconds = 0.0
    try:
        with transaction.atomic():
            scratch = Cycle.objects.create(
                organisation_id=source.organisation_id, schedule_id=source.schedule_id,
                survey_id=source.survey_id, period_start=date(2099, 1, 5), index=9999,
                opens_at=source.opens_at, closes_at=source.closes_at, state="open",
            )  # fmt: skip
            started = time.perf_counter()
            Invitation.objects.bulk_create(
                (Invitation(cycle_id=scratch.pk, **row) for row in invitations), batch_size=2000
            )
            Message.objects.bulk_create(
                (Message(idempotency_key=f"bare:{i}", **row) for i, row in enumerate(messages)),
                batch_size=2000,
            )
            seconds = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        pass
    rows = len(invitations) + len(messages)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds if seconds else 0.0}


# The raw GROUP BY the close is measured against, and the settings it is also run with: the
# planner takes ``jsonb_each_text`` for 100 rows per response, so at ``large`` it may prefer
# reading every response in team order (to skip a sort it thinks huge) and JIT-compiling the
# plan, which makes the baseline up to three times slower than it needs to be.
GROUP_BY = (
    "SELECT r.team_id, a.key, avg(a.value::numeric) FROM checkins_response r, "
    "jsonb_each_text(r.answers) a WHERE r.cycle_id = %s GROUP BY r.team_id, a.key"
)
GROUP_BY_PLANS = {
    "default": [],
    "no_jit_no_incremental_sort": [
        "SET LOCAL jit = off",
        "SET LOCAL enable_incremental_sort = off",
    ],
}


def group_by_once(cycle_id: int, settings: Sequence[str]) -> float:
    """Seconds of one run of the raw GROUP BY under ``settings`` (one of ``GROUP_BY_PLANS``)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in settings:
            cursor.execute(statement)
        started = time.perf_counter()
        cursor.execute(GROUP_BY, [cycle_id])
        cursor.fetchall()
        return time.perf_counter() - started


# Rounds of the close benchmark: each closes the cycle afresh, then runs the GROUP BY once
# under each plan, so both sides are timed alternately in the same minutes and each side's
# figure is the median of as many runs.  Five: a round here varies by a fifth from the next
# (a second on this scale), and the median of three moved the scaling fit by 0.1-0.2.
CLOSE_ROUNDS = 5


def close_run(cycle_id: int, *, rounds: int = CLOSE_ROUNDS) -> dict:
    """The close job in this process against the raw GROUP BY of the same per-team means, in
    ``rounds`` alternating rounds: the median close against the median GROUP BY of its
    fastest plan (``GROUP_BY_PLANS``), so a plan PostgreSQL happens to pick badly never
    flatters the ratio.

    Two figures against the GROUP BY: the analytic part the close records about itself (inputs,
    aggregates, guard, detection, flags: ``checkins.services.CLOSE_PHASES``) and the whole
    ``cycle_close`` (also the final release of pending answers, the outbox and the touch of
    every invitation).  The first round's close, the first of its organisation in this process,
    is reported beside them (``first_ratio``)."""
    # Warm the imports a worker has loaded already (scipy alone takes seconds the first time).
    import wellbeing.aggregation  # noqa: F401
    import wellbeing.flags  # noqa: F401
    import wellbeing.stats.detector  # noqa: F401
    from checkins.models import Cycle, PendingAnswer, Response
    from checkins.services import CLOSE_PHASES, cycle_close

    runs = []
    for _ in range(rounds):
        close_reset(cycle_id)
        cycle = Cycle.objects.get(pk=cycle_id)
        responses = (
            Response.objects.filter(cycle=cycle).count()
            + PendingAnswer.objects.filter(cycle=cycle).count()
        )
        CLOSE_PHASES.clear()
        started = time.perf_counter()
        assert cycle_close(cycle=cycle), "the close cycle was not open and ended"
        close_seconds = time.perf_counter() - started
        phases = dict(CLOSE_PHASES)
        assert "analytic" in phases, "the close did not record its analytic phases"
        runs.append(
            {
                "analytic_seconds": phases["analytic"],
                "close_seconds": close_seconds,
                "phases": phases,
                "group_by_seconds_by_plan": {
                    name: group_by_once(cycle_id, settings)
                    for name, settings in GROUP_BY_PLANS.items()
                },
            }
        )
    planned = {
        name: statistics.median(run["group_by_seconds_by_plan"][name] for run in runs)
        for name in GROUP_BY_PLANS
    }
    baseline = min(planned.values())
    analytic = statistics.median(run["analytic_seconds"] for run in runs)
    close_seconds = statistics.median(run["close_seconds"] for run in runs)
    return {
        "responses": responses,
        "teams": Response.objects.filter(cycle=cycle).values("team_id").distinct().count(),
        "rounds": runs,
        "analytic_seconds": analytic,
        "close_seconds": close_seconds,
        "group_by_seconds": baseline,
        "group_by_seconds_by_plan": planned,
        "ratio": analytic / baseline,
        "whole_close_ratio": close_seconds / baseline,
        "first_ratio": runs[0]["analytic_seconds"] / baseline,
    }


def close_figures(orgs: dict) -> dict:
    """Close at the three sizes; the scaling exponent is fitted to the analytic time."""
    closes = {
        label: close_run(org["close_cycle"])
        for label, org in sorted(orgs.items(), key=lambda o: o[1]["people"])
    }
    xs = [math.log(c["responses"]) for c in closes.values()]
    ys = [math.log(c["analytic_seconds"]) for c in closes.values()]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return {"close": closes, "scaling_exponent": slope}


def query_counts(org_main: dict, org_small: dict) -> dict:
    """Queries per dashboard request at two sizes (teams) and two windows (cycles)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from wellbeing.models import Team, TeamLead, User

    def count(user_id: int, path: str) -> int:
        client = Client()
        client.force_login(User.objects.get(pk=user_id))
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return len(ctx.captured_queries)

    lead = TeamLead.objects.filter(
        team__organisation_id=org_main["organisation_id"], team__children__isnull=True
    ).first()
    team = Team.objects.get(pk=lead.team_id)
    return {
        "trend_26": count(
            lead.user_id, f"/api/teams/{team.public_id}/trend/?dimension=stress&cycles=26"
        ),
        "trend_104": count(
            lead.user_id, f"/api/teams/{team.public_id}/trend/?dimension=stress&cycles=104"
        ),
        "heatmap_small_org": count(org_small["admin_id"], "/api/heatmap/"),
        "heatmap_main_org": count(org_main["admin_id"], "/api/heatmap/"),
    }


# --- The run ----------------------------------------------------------------------------------


def dashboards(report: dict, base_url: str, main: dict, quarter: dict, load: dict) -> None:
    """The real API against ``.values()`` + ``JsonResponse``, same server, same minute."""
    from wellbeing.models import Team, TeamLead

    say("dashboards")
    concurrency = load["concurrency"]
    lead = (
        TeamLead.objects.filter(team__organisation_id=main["organisation_id"], team__children__isnull=True)
        .order_by("team_id").first()
    )  # fmt: skip
    team = Team.objects.get(pk=lead.team_id)
    lead_cookie = {"Cookie": session_cookie(lead.user_id)}
    admin_cookie = {"Cookie": session_cookie(main["admin_id"])}
    n = load["dash"]
    trend_real = [
        Request(
            "GET",
            f"/api/teams/{team.public_id}/trend/?dimension=stress&cycles=104",
            headers=lead_cookie,
        )
    ] * n
    trend_bare = [
        Request("GET", f"/bench/bare/trend/{team.public_id}/?cycles=104", headers=lead_cookie)
    ] * n
    heat_real = [Request("GET", "/api/heatmap/", headers=admin_cookie)] * max(4, n // 4)
    heat_bare = [
        Request(
            "GET",
            f"/bench/bare/heatmap/?organisation={main['organisation_id']}",
            headers=admin_cookie,
        )
    ] * max(4, n // 4)
    ok200 = lambda r: r.status_code == 200  # noqa: E731
    tb, tr = interleaved(
        base_url, trend_bare, trend_real, concurrency=concurrency, ok_a=ok200, ok_b=ok200
    )
    hb, hr = interleaved(
        base_url, heat_bare, heat_real, concurrency=concurrency, ok_a=ok200, ok_b=ok200
    )
    report["figures"]["dashboards"] = {
        "trend_rps": tr.rps, "trend_bare_rps": tb.rps, "trend_ratio": tr.rps / tb.rps,
        "trend_p95_ms": tr.percentile(95) * 1000, "heatmap_p95_ms": hr.percentile(95) * 1000,
        "heatmap_rps": hr.rps, "heatmap_bare_rps": hb.rps, "heatmap_ratio": hr.rps / hb.rps,
        "statuses": {"trend": tr.statuses, "heatmap": hr.statuses},
        "queries": query_counts(main, quarter),
    }  # fmt: skip


def run(size: Size, *, port: int, log_dir: Path, only: str | None = None) -> dict:
    from django.conf import settings
    from django.core.management import call_command
    from django.db import DatabaseError, connection

    from checkins.models import Cycle
    from checkins.tasks import cycle_close_task, cycle_open_chunk_task
    from config.allocator import keep_freed_memory
    from config.celery import app

    load = LOAD[size.name]
    concurrency = load["concurrency"]
    report: dict = {"size": size.name, "machine": machine(), "figures": {}}
    # The close is timed in this process: with the allocator settings a worker starts with
    # (``config.celery.worker_heap_kept``); the worker that opens cycles has them too.
    keep_mb = int(settings.PULSE_WORKER_HEAP_KEEP_MB)
    report["machine"]["worker_heap_keep_mb"] = keep_mb
    report["machine"]["heap_kept"] = keep_freed_memory(keep_mb * 1024 * 1024)
    say("migrating")
    call_command("migrate", "--no-input", verbosity=0)
    started = time.perf_counter()
    data = generate(size)
    report["generate_seconds"] = round(time.perf_counter() - started, 1)
    orgs = data["organisations"]
    main = orgs["main"]
    report["data"] = orgs
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_bare_insert (id uuid PRIMARY KEY, payload text)"
        )
        cursor.execute("TRUNCATE bench_bare_insert")
        # A reused database carries the dead rows of earlier runs' resets (100,000 invitations
        # and messages per fan-out, a cycle's aggregates per close): clean them up and refresh
        # the planner's statistics first, so autovacuum does not wake up in the middle of a
        # measurement and both sides of every ratio start from the same tables.
        say("vacuum analyze")
        started = time.perf_counter()
        cursor.execute("VACUUM ANALYZE")
        report["vacuum_seconds"] = round(time.perf_counter() - started, 1)
        # And write out now what the generator and the vacuum left in memory (gigabytes after
        # a fresh generation), rather than while a close or an opening is timed: the
        # checkpoint that would spread it over the next minutes makes every commit's log
        # flush wait behind it.
        say("checkpoint")
        try:
            cursor.execute("CHECKPOINT")
            report["checkpoint"] = True
        except DatabaseError as exc:  # needs a superuser or pg_checkpoint
            say(f"checkpoint skipped: {exc}".strip())
            report["checkpoint"] = False
    app.control.purge()
    figures = report["figures"]

    # Close and scaling first, in this process (fresh close cycles, no background load).
    if only != "submit":
        say("close: three sizes")
        figures.update(close_figures(orgs))
    if only == "close":
        report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
        return report

    servers = Servers(os.environ.copy(), port, log_dir)
    say(f"starting gunicorn on 127.0.0.1:{port} and a Celery worker")
    servers.start()
    base_url = f"http://127.0.0.1:{port}"
    try:
        assert servers.worker is not None
        if only is None:
            dashboards(report, base_url, main, orgs["q"], load)

        # Submit: the real form endpoint against a bare one-INSERT view.
        say("submit: preparing sessions")
        count, under_load = load["submits"], load["loaded"]
        links = submit_invitations(main["submit_cycle"], count + 4 * under_load)
        form = prepare_form_submits(base_url, links[:count], concurrency)
        bare = [Request("POST", "/bench/bare/insert/", r.data, r.headers) for r in form]
        say("submit: idle")
        sb, sf = interleaved(
            base_url, bare, form, concurrency=concurrency, slices=load["slices"],
            ok_a=lambda r: r.status_code == 200, ok_b=lambda r: r.status_code == 302,
        )  # fmt: skip
        figures["submit"] = {
            "form_rps": sf.rps, "bare_rps": sb.rps, "ratio": sf.rps / sb.rps,
            "submits_per_side": count, "slices": load["slices"],
            "statuses": {"form": sf.statuses, "bare": sb.statuses},
            "p95_idle_ms": sf.percentile(95) * 1000,
            "endpoint": "form (POST /checkin/answer/ after the link exchange and the form GET)",
        }  # fmt: skip
        if only == "submit":
            report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
            return report
        # Four sets of submits: for each opening (on time, late) one run idle and one under load.
        sets = [
            prepare_form_submits(
                base_url, links[count + i * under_load : count + (i + 1) * under_load], concurrency
            )
            for i in range(4)
        ]

        # Fan-out alone, at two sizes, through the real worker.
        say("fan-out: main organisation")
        fan_main = fanout_run(main["fanout_cycle"], servers.worker.pid, timeout=1800, on_time=True)
        bare_main = bare_bulk_insert(main["fanout_cycle"])
        say("fan-out: main organisation, opened late")
        fan_late = fanout_run(main["fanout_cycle"], servers.worker.pid, timeout=1800, on_time=False)
        bare_late = bare_bulk_insert(main["fanout_cycle"])
        say("fan-out: quarter organisation")
        fan_q = fanout_run(orgs["q"]["fanout_cycle"], servers.worker.pid, timeout=900, on_time=True)
        figures["fanout"] = {
            "main": fan_main, "bare_main": bare_main,
            "ratio": fan_main["rows_per_s"] / bare_main["rows_per_s"],
            "late": fan_late, "bare_late": bare_late,
            "late_ratio": fan_late["rows_per_s"] / bare_late["rows_per_s"],
            "quarter": fan_q,
        }  # fmt: skip

        # Submit under load: the main cycle opens and a close runs in the worker meanwhile --
        # opened on time (the target) and late, with every invitation's delivery due at once.
        # Its idle p95 is taken just before, on the same prepared tables, in the same minute.
        loaded: dict[str, dict] = {}
        plan = (("on_time", True, sets[0], sets[1]), ("late", False, sets[2], sets[3]))
        for label, on_time, idle_forms, forms in plan:
            say(f"submit under load ({label.replace('_', ' ')} opening)")
            fanout_prepare(main["fanout_cycle"], on_time=on_time)
            close_reset(main["close_cycle"])
            idle = run_load(
                base_url, idle_forms, concurrency=concurrency, time_limit=TIME_LIMIT,
                ok=lambda r: r.status_code == 302,
            )  # fmt: skip
            cycle_open_chunk_task.delay(main["fanout_cycle"])
            cycle_close_task.delay(main["close_cycle"])
            time.sleep(1.0)
            result = run_load(
                base_url, forms, concurrency=concurrency, time_limit=TIME_LIMIT,
                ok=lambda r: r.status_code == 302,
            )  # fmt: skip
            opened = Cycle.objects.filter(pk=main["fanout_cycle"], opened_fully=True)
            closed = Cycle.objects.filter(pk=main["close_cycle"], state="closed")
            loaded[label] = {
                "idle": idle,
                "result": result,
                "background_still_running": not (opened.exists() and closed.exists()),
            }
            wait_for(opened.exists, timeout=1800)
            wait_for(closed.exists, timeout=1800)
        on_time_load, late_load = loaded["on_time"]["result"], loaded["late"]["result"]
        on_time_idle, late_idle = loaded["on_time"]["idle"], loaded["late"]["idle"]
        figures["submit"]["statuses"].update(
            loaded=on_time_load.statuses, loaded_late=late_load.statuses,
            idle_before=on_time_idle.statuses, idle_before_late=late_idle.statuses,
        )  # fmt: skip
        figures["submit"].update({
            "p95_idle_before_ms": on_time_idle.percentile(95) * 1000,
            "p95_loaded_ms": on_time_load.percentile(95) * 1000,
            "p95_ratio": on_time_load.percentile(95) / on_time_idle.percentile(95),
            "p95_idle_before_late_ms": late_idle.percentile(95) * 1000,
            "p95_loaded_late_ms": late_load.percentile(95) * 1000,
            "p95_late_ratio": late_load.percentile(95) / late_idle.percentile(95),
            # against the idle run at the start of the submit benchmark, minutes earlier
            "p95_ratio_vs_first_idle": on_time_load.percentile(95) / sf.percentile(95),
            "background_still_running_after_submits": loaded["on_time"]["background_still_running"],
            "background_still_running_after_submits_late": loaded["late"]["background_still_running"],
        })  # fmt: skip
    finally:
        servers.stop()
    report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


TARGETS = [
    # label, value getter, target text, pass test
    ("Submit: form submits/s ÷ bare INSERT view", lambda f: f["submit"]["ratio"], "≥ 0.6", lambda v: v >= 0.6),
    ("Submit under load: p95 loaded ÷ p95 idle (on time)", lambda f: f["submit"]["p95_ratio"], "≤ 2", lambda v: v <= 2),
    ("Submit under load (info): p95 ÷ idle, opened late", lambda f: f["submit"]["p95_late_ratio"], "info", lambda v: True),
    ("Fan-out: rows/s ÷ bare bulk insert (on time)", lambda f: f["fanout"]["ratio"], "≥ 0.5", lambda v: v >= 0.5),
    ("Fan-out (info): rows/s ÷ bare, opened late, all due at once", lambda f: f["fanout"]["late_ratio"], "info", lambda v: True),
    ("Fan-out: worker tree peak RSS, main (MB)", lambda f: f["fanout"]["main"]["peak_rss_tree_mb"], "≤ 300", lambda v: v <= 300),
    ("Fan-out: worker tree peak RSS, quarter (MB)", lambda f: f["fanout"]["quarter"]["peak_rss_tree_mb"], "≤ 300", lambda v: v <= 300),
    ("Fan-out: worker tree peak PSS, main (MB)", lambda f: f["fanout"]["main"]["peak_pss_tree_mb"], "≤ 300", lambda v: v <= 300),
    ("Close: close job ÷ raw GROUP BY (time)", lambda f: f["close"]["main"]["ratio"], "≤ 2", lambda v: v <= 2),
    ("Close (info): whole cycle_close ÷ raw GROUP BY", lambda f: f["close"]["main"]["whole_close_ratio"], "info", lambda v: True),
    ("Close (info): first close of the organisation ÷ raw GROUP BY", lambda f: f["close"]["main"]["first_ratio"], "info", lambda v: True),
    ("Dashboards: lead trend (104) req/s ÷ .values()", lambda f: f["dashboards"]["trend_ratio"], "≥ 0.7", lambda v: v >= 0.7),
    ("Dashboards: admin heatmap req/s ÷ .values()", lambda f: f["dashboards"]["heatmap_ratio"], "≥ 0.7", lambda v: v >= 0.7),
    ("Dashboards: queries trend 26 → 104 cycles", lambda f: f["dashboards"]["queries"]["trend_104"] - f["dashboards"]["queries"]["trend_26"], "0 more", lambda v: v <= 0),
    ("Dashboards: queries heatmap ¼ → full org", lambda f: f["dashboards"]["queries"]["heatmap_main_org"] - f["dashboards"]["queries"]["heatmap_small_org"], "0 more", lambda v: v <= 0),
    ("Scaling: exponent of close time vs responses", lambda f: f["scaling_exponent"], "≤ 1.15", lambda v: v <= 1.15),
]  # fmt: skip


# The rows each ``--only`` part produces.
ONLY_TARGETS = {"close": ("Close", "Scaling"), "submit": ("Submit: ",)}


def table(report: dict, *, only: str | None = None) -> list[dict]:
    rows = []
    for label, get, target, passes in TARGETS:
        if only is not None and not label.startswith(ONLY_TARGETS[only]):
            continue
        value = get(report["figures"])
        rows.append(
            {
                "benchmark": label,
                "value": round(value, 3),
                "target": target,
                "met": bool(passes(value)),
            }
        )
    return rows


def markdown(report: dict) -> str:
    f = report["figures"]
    m = report["machine"]
    lines = [
        f"# Pulse benchmark, size {report['size']}",
        "",
        f"Machine: {m['nproc']} CPUs, {m['ram_gb']} GB RAM, load average {m['load_avg']} at the start, "
        f"{m.get('load_avg_end')} at the end; {m['at']}. Data generated in {report['generate_seconds']} s. "
        f"Worker heap kept: {m.get('worker_heap_keep_mb')} MiB (taken: {m.get('heap_kept')}).",
        "",
        "| benchmark | value | target | met |",
        "| --- | ---: | --- | --- |",
    ]
    for row in report["table"]:
        lines.append(
            f"| {row['benchmark']} | {row['value']} | {row['target']} | {'yes' if row['met'] else 'NO'} |"
        )
    lines += ["", "## Raw figures", "", "```json", json.dumps(f, indent=2, default=str), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pulse benchmarks against bare baselines")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--database", help="database name (default bench_<size>)")
    parser.add_argument("--port", type=int, default=18000)
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument(
        "--only",
        choices=["close", "submit"],
        help="run only this part (results go to pulse_<size>_<only>)",
    )
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    url = database_url(args.database or f"bench_{size.name}")
    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["SITE_URL"] = f"http://127.0.0.1:{args.port}"
    os.environ.setdefault("DATABASE_POOL_MAX", "4")
    import django

    django.setup()
    results = Path(args.results)
    report = run(size, port=args.port, log_dir=results / "logs", only=args.only)
    report["table"] = table(report, only=args.only)
    results.mkdir(parents=True, exist_ok=True)
    stem = f"pulse_{size.name}" + (f"_{args.only}" if args.only else "")
    (results / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    (results / f"{stem}.md").write_text(markdown(report))
    width = max(len(r["benchmark"]) for r in report["table"])
    print()
    for row in report["table"]:
        print(
            f"{row['benchmark']:<{width}}  {row['value']:>10}  {row['target']:<7}  {'met' if row['met'] else 'MISSED'}"
        )
    missed = sum(1 for r in report["table"] if not r["met"])
    say(
        f"{len(report['table']) - missed}/{len(report['table'])} targets met; results in {results}/{stem}.md"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
