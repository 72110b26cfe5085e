"""Writing to and delivering from the notification outbox.

Other apps call ``message_enqueue``, ``messages_enqueue_bulk``, ``message_cancel_pending`` and
``messages_cancel_pending_by_key_part`` inside their own transaction; rows become visible (and delivery tasks are queued with
``transaction.on_commit``) only if that transaction commits.  If the broker is down at that
moment nothing is lost: the periodic sweeper finds due rows and queues delivery later.

Delivery guarantees (read this before changing ``outbox_deliver_due``):

- A message is *claimed* in a short transaction (``SELECT ... FOR UPDATE SKIP LOCKED`` then a
  conditional UPDATE to ``claimed`` with a fresh ``claim_token``).  Two runs — the same task
  delivered twice, two workers, a sweeper racing an on-commit task — can never claim the same
  row, so a message is never sent twice by concurrent runs.
- Each message is marked ``sent`` (or retried/failed) in its own tiny UPDATE right after the
  channel accepted it, not at the end of the batch.  The only remaining window is a crash
  (SIGKILL, power loss) between the SMTP server's "250 OK" / the webhook's 2xx and that UPDATE:
  the claim then times out, the sweeper releases it and the message is sent again.  We choose
  **at-least-once inside that window** (an invitation delivered twice is a nuisance; one never
  delivered is a silent hole in participation); the window ends when the mark is written to
  PostgreSQL's socket.  On PostgreSQL the mark's reply is not awaited before the next message
  (``marks.SentMarks``: one mark in flight, which PostgreSQL commits even if we die — see
  there); elsewhere each mark waits for its reply.
- A live run refreshes its claims long before ``PULSE_OUTBOX_CLAIM_TIMEOUT_SECONDS``, so the
  sweeper only ever releases claims of dead runs.

Nothing here logs recipients' addresses, one-time links, webhook URLs or message bodies.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import random
import re
import smtplib
import time as monotonic_time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPEmailBackend
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from config.log_redaction import redact
from config.publishing import publish
from wellbeing.bulk import rows_copy, rows_insert_new
from wellbeing.errors import ServiceError
from wellbeing.models import Organisation, User

from . import conf
from .marks import MarkFailed, SentMarks, mark_sent_sql
from .marks import available as marks_available
from .mime import EmailWriter
from .models import (
    ACCOUNT_KINDS,
    MUTABLE_KINDS,
    Channel,
    ChannelSettings,
    Kind,
    Message,
    NotificationPreference,
    State,
)
from .quiet_hours import allowed_time_finder, next_allowed_time
from .rendering import RenderedMessage, TemplateRenderError, TemplateSet, render_message

logger = logging.getLogger("pulse.notifications")

UNSUBSCRIBE_SALT = "pulse.notifications.unsubscribe"
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,100}$")


# --- Enqueue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    organisation_id: int
    kind: str
    recipient_id: int | None
    template: str
    context: dict
    idempotency_key: str
    sensitive_context: dict | None = None
    channel: str | None = None  # None = recipient's preference / org default / email
    not_before: datetime | None = None  # earliest send time (UTC); quiet hours applied on top
    jitter_seconds: int = 0  # per-message random delay inside a window (invitations)


@dataclass
class _Lookups:
    """Everything needed to resolve channels and quiet hours for a batch, loaded in 3 queries."""

    # recipient id -> the time zone their messages keep quiet hours in (``effective_timezone``)
    timezones: dict[int, str] = field(default_factory=dict)
    preferences: dict[int, NotificationPreference] = field(default_factory=dict)
    channel_settings: dict[int, ChannelSettings] = field(default_factory=dict)
    organisations: dict[int, Organisation] = field(default_factory=dict)
    # Quiet hours per (timezone, working hours): each local day's window is computed once per
    # batch, not once per message.
    finders: dict[tuple, Callable[[datetime], datetime]] = field(default_factory=dict)

    def allowed_time(
        self, tz: ZoneInfo, preference: NotificationPreference | None
    ) -> Callable[[datetime], datetime]:
        if preference is None:
            key: tuple = (tz,)
        else:
            key = (tz, preference.work_start, preference.work_end, tuple(preference.work_days))
        finder = self.finders.get(key)
        if finder is None:
            finder = self.finders[key] = (
                allowed_time_finder(tz=tz)
                if preference is None
                else allowed_time_finder(
                    tz=tz, work_start=key[1], work_end=key[2], work_days=key[3]
                )
            )
        return finder

    @classmethod
    def load(cls, messages: Sequence[OutgoingMessage]) -> _Lookups:
        user_ids = {m.recipient_id for m in messages if m.recipient_id is not None}
        org_ids = {m.organisation_id for m in messages}
        lookups = cls()
        if user_ids:
            # Plain values, not model instances: an opening resolves thousands per batch.
            lookups.timezones = {
                pk: User.effective_timezone_of(own, organisation_id, organisation_timezone)
                for pk, own, organisation_id, organisation_timezone in User.objects.filter(
                    pk__in=user_ids
                ).values_list("pk", "timezone", "organisation_id", "organisation__timezone")
            }
            lookups.preferences = {
                p.user_id: p for p in NotificationPreference.objects.filter(user_id__in=user_ids)
            }
        lookups.channel_settings = {
            c.organisation_id: c
            for c in ChannelSettings.objects.filter(organisation_id__in=org_ids)
        }
        lookups.organisations = {
            o.pk: o for o in Organisation.objects.filter(pk__in=org_ids).only("pk", "timezone")
        }
        return lookups


_KINDS = frozenset(Kind.values)
_CHANNELS = frozenset(Channel.values)


def _validate(message: OutgoingMessage) -> None:
    problems: dict[str, list[str]] = {}
    if message.kind not in _KINDS:
        problems["kind"] = [f"must be one of {', '.join(Kind.values)}"]
    if message.channel is not None and message.channel not in _CHANNELS:
        problems["channel"] = [f"must be one of {', '.join(Channel.values)}"]
    if not _TEMPLATE_NAME.match(message.template or ""):
        problems["template"] = ["must be a short name of lowercase letters, digits and _"]
    if not message.idempotency_key or len(message.idempotency_key) > 200:
        problems["idempotency_key"] = ["is required (at most 200 characters)"]
    if message.jitter_seconds < 0:
        problems["jitter_seconds"] = ["must not be negative"]
    if message.not_before is not None and timezone.is_naive(message.not_before):
        problems["not_before"] = ["must be timezone-aware (UTC)"]
    if message.recipient_id is None and message.kind == Kind.INVITATION:
        problems["recipient_id"] = ["an invitation is personal and needs a recipient"]
    if message.kind in ACCOUNT_KINDS:
        if message.recipient_id is None:
            problems["recipient_id"] = ["a sign-in link is personal and needs a recipient"]
        if message.channel not in (None, Channel.EMAIL):
            problems["channel"] = ["a sign-in link goes by e-mail only"]
    if problems:
        raise ServiceError("invalid_message", "The outgoing message is invalid.", fields=problems)


def channel_resolve(
    *,
    requested: str | None,
    has_recipient: bool,
    preference: NotificationPreference | None,
    channel_settings: ChannelSettings | None,
) -> str:
    """The channel a message goes out on.  Slack/Teams reach a *person* only through a personal
    incoming webhook they configured; otherwise e-mail is the fallback.  Channel messages (no
    recipient) go to the organisation's webhook."""
    wanted = requested
    if wanted is None and preference is not None and preference.channel:
        wanted = preference.channel
    if wanted is None and channel_settings is not None:
        wanted = channel_settings.default_channel
    wanted = wanted or Channel.EMAIL
    if wanted == Channel.EMAIL:
        return Channel.EMAIL
    allowed = channel_settings is not None and channel_settings.allows(wanted)
    if not has_recipient:
        return wanted if allowed else Channel.EMAIL
    personal = ""
    if preference is not None:
        personal = (
            preference.slack_webhook_url
            if wanted == Channel.SLACK
            else preference.teams_webhook_url
        )
    return wanted if allowed and personal else Channel.EMAIL


def deliver_at_compute(
    *,
    not_before: datetime | None,
    jitter_seconds: int,
    tz: ZoneInfo,
    preference: NotificationPreference | None,
    now: datetime | None = None,
    finder: Callable[[datetime], datetime] | None = None,
) -> datetime:
    """``not_before`` (or now) plus a random jitter, moved into the recipient's working hours.

    ``finder``: the ``allowed_time_finder`` for this ``tz`` and ``preference`` when the caller
    has one (bulk enqueue shares one per group)."""
    start = not_before or now or timezone.now()
    if jitter_seconds:
        start = start + timedelta(seconds=random.uniform(0, jitter_seconds))
    if finder is not None:
        return finder(start)
    if preference is None:
        return next_allowed_time(start, tz=tz)
    return next_allowed_time(
        start,
        tz=tz,
        work_start=preference.work_start,
        work_end=preference.work_end,
        work_days=preference.work_days,
    )


def _build_row(message: OutgoingMessage, lookups: _Lookups, now: datetime) -> Message:
    _validate(message)
    recipient_tz = lookups.timezones.get(message.recipient_id) if message.recipient_id else None
    if message.recipient_id is not None and recipient_tz is None:
        raise ServiceError(
            "unknown_recipient",
            "The recipient does not exist.",
            fields={"recipient_id": ["unknown"]},
        )
    preference = lookups.preferences.get(message.recipient_id) if message.recipient_id else None
    channel_settings = lookups.channel_settings.get(message.organisation_id)
    account = message.kind in ACCOUNT_KINDS
    channel = channel_resolve(
        requested=Channel.EMAIL if account else message.channel,
        has_recipient=recipient_tz is not None,
        preference=preference,
        channel_settings=channel_settings,
    )
    if recipient_tz is not None:
        tz = ZoneInfo(recipient_tz)
    else:
        organisation = lookups.organisations.get(message.organisation_id)
        if organisation is None:
            raise ServiceError(
                "unknown_organisation",
                "The organisation does not exist.",
                fields={"organisation_id": ["unknown"]},
            )
        tz = organisation.tz
    row = Message(
        organisation_id=message.organisation_id,
        kind=message.kind,
        channel=channel,
        recipient_id=message.recipient_id,
        template=message.template,
        context=message.context or {},
        sensitive_context=message.sensitive_context or None,
        had_sensitive_context=bool(message.sensitive_context),
        idempotency_key=message.idempotency_key,
        state=State.PENDING,
        next_attempt_at=(message.not_before or now)
        if account
        else deliver_at_compute(
            not_before=message.not_before,
            jitter_seconds=message.jitter_seconds,
            tz=tz,
            preference=preference,
            now=now,
            finder=lookups.allowed_time(tz, preference),
        ),
        created_at=now,
    )
    mute_flag = MUTABLE_KINDS.get(Kind(message.kind))
    if preference is not None and mute_flag and getattr(preference, mute_flag):
        row.state = State.CANCELLED
        row.sensitive_context = None
        row.last_error = "muted by the recipient"
    return row


def message_enqueue(message: OutgoingMessage) -> Message | None:
    """Write one message to the outbox in the caller's transaction.  Returns ``None`` when a
    message with the same idempotency key exists already (nothing is changed then)."""
    now = timezone.now()
    row = _build_row(message, _Lookups.load([message]), now)
    try:
        with transaction.atomic():  # a savepoint inside the caller's transaction
            row.save(force_insert=True)
    except IntegrityError:
        if Message.objects.filter(idempotency_key=message.idempotency_key).exists():
            return None
        raise
    if row.state == State.PENDING and row.next_attempt_at <= now + timedelta(seconds=1):
        message_id = row.pk
        transaction.on_commit(lambda: _publish_delivery(message_ids=[message_id]), robust=True)
    return row


# Every stored column of a message but its id, for the bulk insert (``_build_row`` fills them).
_MESSAGE_FIELDS = [f for f in Message._meta.concrete_fields if not f.primary_key]
_MESSAGE_COLUMNS = [str(f.column) for f in _MESSAGE_FIELDS]
_MESSAGE_ATTRS = [f.attname for f in _MESSAGE_FIELDS]
_MESSAGE_JSON_COLUMNS = [
    i for i, f in enumerate(_MESSAGE_FIELDS) if isinstance(f, models.JSONField)
]


def messages_enqueue_bulk(
    messages: Iterable[OutgoingMessage], *, batch_size: int = 2000, new_keys: bool = False
) -> int:
    """Write many messages in batches (``rows_insert_new``: COPY on PostgreSQL).  Returns the
    number of rows inserted; messages whose key exists already are skipped.  Delivery is queued
    on commit as a few chunked tasks, never one task per message.

    ``new_keys``: every key is made from an id minted in the caller's transaction, so none can
    be in the outbox yet: the rows are copied straight in, with no look-up of the keys first
    (a key that did exist would fail the transaction, as a duplicate insert does)."""
    if batch_size < 1:
        raise ServiceError("invalid_batch_size", "batch_size must be at least 1.")
    inserted = 0
    due_now = 0
    now = timezone.now()
    batch: list[OutgoingMessage] = []

    def flush() -> None:
        nonlocal inserted, due_now
        if not batch:
            return
        existing: set[str] = set()
        if not new_keys:
            existing.update(
                Message.objects.filter(
                    idempotency_key__in={m.idempotency_key for m in batch}
                ).values_list("idempotency_key", flat=True)
            )
        lookups = _Lookups.load(batch)
        rows: list[Message] = []
        seen: set[str] = set()
        for message in batch:
            if message.idempotency_key in existing or message.idempotency_key in seen:
                _validate(message)
                continue
            seen.add(message.idempotency_key)
            rows.append(_build_row(message, lookups, now))
        values = [tuple(getattr(r, name) for name in _MESSAGE_ATTRS) for r in rows]
        if new_keys:
            rows_copy(Message, _MESSAGE_COLUMNS, values, json_columns=_MESSAGE_JSON_COLUMNS)
            inserted += len(values)
        else:
            # A concurrent writer may insert the same key between our check and this insert:
            # the unique constraint keeps one row and ours is skipped.
            inserted += rows_insert_new(
                Message,
                _MESSAGE_COLUMNS,
                values,
                unique="idempotency_key",
                json_columns=_MESSAGE_JSON_COLUMNS,
            )
        due_now += sum(
            1
            for r in rows
            if r.state == State.PENDING and r.next_attempt_at <= now + timedelta(seconds=1)
        )
        batch.clear()

    for message in messages:
        batch.append(message)
        if len(batch) >= batch_size:
            flush()
    flush()
    if due_now:
        count = due_now
        transaction.on_commit(lambda: _publish_delivery(expected=count), robust=True)
    return inserted


def _cancel_pending(pending: models.QuerySet[Message], *, reason: str) -> int:
    """Cancel these messages if still pending (one UPDATE): messages being sent right now are
    left alone; ``reason`` is kept as their ``last_error``."""
    return pending.filter(state=State.PENDING).update(
        state=State.CANCELLED, sensitive_context=None, claim_token=None, last_error=reason
    )


def message_cancel_pending(*, idempotency_key_prefix: str) -> int:
    """Cancel messages not yet picked up whose key starts with the prefix (e.g. reminders for
    a cycle that closed).  Messages being sent right now are left alone."""
    if not idempotency_key_prefix:
        raise ServiceError("invalid_prefix", "An idempotency key prefix is required.")
    return _cancel_pending(
        Message.objects.filter(idempotency_key__startswith=idempotency_key_prefix),
        reason="cancelled before sending",
    )


def messages_cancel_pending_by_key_part(
    *, organisation_id: int, key_parts: Iterable[str], reason: str
) -> int:
    """Cancel an organisation's messages not yet picked up whose key contains one of
    ``key_parts`` anywhere (e.g. an event's id that is not the keys' prefix), recording why.
    Messages being sent right now are left alone.  No parts, nothing cancelled."""
    parts = list(key_parts)
    if not all(parts):  # an empty part would match every message
        raise ServiceError("invalid_key_part", "A key part must not be empty.")
    if not reason:
        raise ServiceError("invalid_reason", "Say why the messages are cancelled.")
    if not parts:
        return 0
    match = models.Q()
    for part in parts:
        match |= models.Q(idempotency_key__contains=part)
    return _cancel_pending(
        Message.objects.filter(match, organisation_id=organisation_id), reason=reason
    )


def _publish_delivery(*, message_ids: list[int] | None = None, expected: int = 1) -> int:
    """Queue delivery tasks.  A broker outage is logged and swallowed after one quick retry
    (the caller's request must not hang): the rows are committed and the sweeper will queue
    them.  Returns the number of tasks queued."""
    from .tasks import outbox_deliver

    if message_ids is not None:
        tasks = 1
        kwargs: dict = {"message_ids": message_ids}
    else:
        tasks = max(1, min(conf.max_parallel_tasks(), math.ceil(expected / conf.batch_size())))
        kwargs = {}
    queued, error = publish(outbox_deliver, kwargs=kwargs, times=tasks)
    if error is not None:
        logger.warning(
            "event=outbox_publish_failed queued=%d wanted=%d error=%s detail=sweeper_will_retry",
            queued,
            tasks,
            error,
        )
    return queued


# --- Delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    lost_claims: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            *(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True))
        )

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.claimed,
            self.sent,
            self.retried,
            self.failed,
            self.cancelled,
            self.lost_claims,
        )


class _Outcome:
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class _Result:
    outcome: str
    error: str = ""
    retry_after: float | None = None


def retry_delay_seconds(*, attempts: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**(attempts-1)`` capped at the maximum, plus
    up to ``jitter`` of itself at random, so retries of one outage spread out."""
    base = conf.backoff_base_seconds() * (2 ** max(0, attempts - 1))
    delay = min(conf.backoff_max_seconds(), base)
    return delay + (rng or random).uniform(0, delay * conf.backoff_jitter())


def outbox_claim_due(
    *,
    limit: int,
    now: datetime | None = None,
    message_ids: Sequence[int] | None = None,
) -> tuple[uuid.UUID, list[int]]:
    """Claim up to ``limit`` due pending messages for this run; rows locked by another run are
    skipped, never waited for.  Returns the claim token and the claimed ids."""
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        due = Message.objects.filter(state=State.PENDING, next_attempt_at__lte=now)
        if message_ids is not None:
            due = due.filter(pk__in=list(message_ids))
        ids = list(
            due.order_by("next_attempt_at", "pk")
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return token, []
        claimed = Message.objects.filter(pk__in=ids, state=State.PENDING).update(
            state=State.CLAIMED, claimed_at=now, claim_token=token, attempts=F("attempts") + 1
        )
        if claimed != len(ids):  # only possible without row locks (SQLite serialises instead)
            ids = list(
                Message.objects.filter(claim_token=token, state=State.CLAIMED).values_list(
                    "pk", flat=True
                )
            )
    return token, ids


def outbox_release_stuck(
    *, now: datetime | None = None, claim_timeout_seconds: float | None = None
) -> int:
    """Put claims older than the claim timeout (their worker died) back to pending, due now.
    Live runs refresh their claims long before the timeout, so only dead runs lose theirs."""
    now = now or timezone.now()
    timeout = (
        conf.claim_timeout_seconds() if claim_timeout_seconds is None else claim_timeout_seconds
    )
    cutoff = now - timedelta(seconds=timeout)
    released = Message.objects.filter(state=State.CLAIMED, claimed_at__lte=cutoff).update(
        state=State.PENDING, claim_token=None, claimed_at=None, next_attempt_at=now
    )
    if released:
        logger.warning("event=outbox_stuck_released count=%d", released)
    return released


def outbox_count_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return Message.objects.filter(state=State.PENDING, next_attempt_at__lte=now).count()


def outbox_sweep(
    *, now: datetime | None = None, claim_timeout_seconds: float | None = None
) -> tuple[int, int]:
    """Release stuck claims and queue delivery for everything due.  Returns (released, due)."""
    released = outbox_release_stuck(now=now, claim_timeout_seconds=claim_timeout_seconds)
    due = outbox_count_due(now=now)
    if due:
        _publish_delivery(expected=due)
    return released, due


def outbox_deliver_due(
    *,
    message_ids: Sequence[int] | None = None,
    batch_size: int | None = None,
    time_budget_seconds: float | None = None,
    max_batches: int | None = None,
) -> DeliveryReport:
    """Claim and deliver due messages batch by batch until none are left or the time budget
    is spent.  Each batch shares one SMTP connection and one HTTP client."""
    size = batch_size or conf.batch_size()
    budget = conf.task_time_budget_seconds() if time_budget_seconds is None else time_budget_seconds
    started = monotonic_time.monotonic()
    report = DeliveryReport()
    batches = 0
    # PostgreSQL: "sent" marks overlap the next message's work (see ``marks``); SQLite, or a
    # caller's open transaction: each mark waits for its reply.
    sent_marks = SentMarks() if conf.overlap_sent_marks() and marks_available() else None
    try:
        while True:
            token, ids = outbox_claim_due(limit=size, message_ids=message_ids)
            if not ids:
                break
            report = report + _deliver_claimed(token=token, ids=ids, sent_marks=sent_marks)
            batches += 1
            if message_ids is not None and len(ids) < size:
                break
            if max_batches is not None and batches >= max_batches:
                break
            if monotonic_time.monotonic() - started > budget:
                break
    finally:
        if sent_marks is not None:
            sent_marks.close()
    if report.claimed:
        logger.info(
            "event=outbox_delivered claimed=%d sent=%d retried=%d failed=%d cancelled=%d "
            "lost_claims=%d",
            *report.as_tuple(),
        )
    return report


class _Transports:
    """One SMTP connection and one HTTP client for a batch, opened lazily."""

    def __init__(self) -> None:
        self._email = None
        self.email_broken: str = ""
        self._http: httpx.Client | None = None
        self._writer: EmailWriter | None = None

    @property
    def writer(self) -> EmailWriter:
        if self._writer is None:
            self._writer = EmailWriter()
        return self._writer

    @property
    def email(self):
        if self._email is None:
            self._email = get_connection(fail_silently=False)
            self._email.open()
        return self._email

    def reset_email(self) -> None:
        if self._email is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._email.close()
            self._email = None

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=conf.webhook_timeout_seconds(), follow_redirects=False
            )
        return self._http

    def close(self) -> None:
        self.reset_email()
        if self._http is not None:
            self._http.close()
            self._http = None


def _deliver_claimed(
    *, token: uuid.UUID, ids: list[int], sent_marks: SentMarks | None = None
) -> DeliveryReport:
    messages = list(
        Message.objects.filter(pk__in=ids, claim_token=token, state=State.CLAIMED)
        .select_related("organisation", "recipient", "recipient__notification_preference")
        .order_by("next_attempt_at", "pk")
    )
    org_ids = {m.organisation_id for m in messages}
    channel_settings = {
        c.organisation_id: c for c in ChannelSettings.objects.filter(organisation_id__in=org_ids)
    }
    counts = {"sent": 0, "retry": 0, "failed": 0, "cancelled": 0, "lost": 0}
    transports = _Transports()
    templates = TemplateSet()
    refresh_every = conf.claim_timeout_seconds() / 4
    last_refresh = monotonic_time.monotonic()
    relaxed = _relaxed_commits(True)
    by_id = {m.pk: m for m in messages}

    def settle(done: tuple[int, bool] | None) -> None:
        if done is None:
            return
        message_id, updated = done
        if updated:
            counts["sent"] += 1
        else:
            counts["lost"] += 1
            logger.error(
                "event=outbox_claim_lost message=%s outcome=sent", by_id[message_id].public_id
            )

    def marks_failed(exc: MarkFailed, *message_ids: int | None) -> None:
        # The marker session broke: every mark it may not have committed is written again
        # here, and the rest of the run marks through Django's connection.
        nonlocal sent_marks
        sent_marks = None
        logger.warning("event=outbox_marks_fallback reason=%s", exc)
        for message_id in dict.fromkeys(i for i in message_ids if i is not None):
            settle((message_id, _mark_sent_again(by_id[message_id], token)))

    try:
        for index, message in enumerate(messages):
            if monotonic_time.monotonic() - last_refresh > refresh_every:
                # Keep our remaining claims fresh so the sweeper never takes them over.
                remaining = [m.pk for m in messages[index:]]
                Message.objects.filter(
                    pk__in=remaining, claim_token=token, state=State.CLAIMED
                ).update(claimed_at=timezone.now())
                last_refresh = monotonic_time.monotonic()
            result = _deliver_one(
                message, channel_settings.get(message.organisation_id), transports, templates
            )
            if result.outcome == _Outcome.SENT and sent_marks is not None:
                # On its way to PostgreSQL before the next message's exchange begins; its
                # reply is collected while that message is being sent.
                try:
                    settle(sent_marks.mark(message.pk, token, timezone.now()))
                except MarkFailed as exc:
                    marks_failed(exc, exc.in_flight, message.pk)
                continue
            if _record(message, token, result):
                counts[result.outcome] += 1
            else:
                counts["lost"] += 1
        if sent_marks is not None:
            try:
                settle(sent_marks.drain())  # the batch is done only when its marks are
            except MarkFailed as exc:
                marks_failed(exc, exc.in_flight)
    finally:
        transports.close()
        if relaxed:
            _relaxed_commits(False)
    return DeliveryReport(
        claimed=len(messages),
        sent=counts["sent"],
        retried=counts["retry"],
        failed=counts["failed"],
        cancelled=counts["cancelled"],
        lost_claims=counts["lost"],
    )


def _relaxed_commits(on: bool) -> bool:
    """PostgreSQL only: while marking outcomes, do not wait for the WAL flush on each commit.

    The claim itself was committed durably before any send.  An outcome lost to a *database*
    crash (the last few hundred milliseconds of commits) leaves the row claimed; the sweeper
    releases it and the message is sent again — the at-least-once choice already made for
    the crash window, now also covering a PostgreSQL crash.  A worker crash loses nothing:
    the server has the commit.  Saves one disk flush per message."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO " + ("OFF" if on else "DEFAULT"))
    return True


@functools.cache
def _mark_sent_sql(vendor: str) -> str:
    return mark_sent_sql(["%s"] * 5)


def _mark_sent(message: Message, token: uuid.UUID, now: datetime) -> bool:
    """``UPDATE … SET state='sent'`` for one message we still hold the claim on.

    The hot path of delivery: one statement per message, right after the channel accepted it
    (that is what keeps the crash window to one round trip, see the module docstring).  Written
    as one parameterised statement because building the equivalent ``filter().update()``
    costs more Python time than the round trip itself."""
    params = [
        State.SENT.value,
        Message._meta.get_field("sent_at").get_db_prep_value(now, connection),
        message.pk,
        Message._meta.get_field("claim_token").get_db_prep_value(token, connection),
        State.CLAIMED.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_mark_sent_sql(connection.vendor), params)
        return cursor.rowcount == 1


def _mark_sent_again(message: Message, token: uuid.UUID) -> bool:
    """A mark the marker session may or may not have committed, written through Django's
    connection.  No row updated: either that mark did commit, or the claim was lost."""
    if _mark_sent(message, token, timezone.now()):
        return True
    return Message.objects.filter(pk=message.pk, state=State.SENT, claim_token=None).exists()


def _record(message: Message, token: uuid.UUID, result: _Result) -> bool:
    """Write the outcome of one attempt, only if we still hold the claim."""
    now = timezone.now()
    ours = Message.objects.filter(pk=message.pk, claim_token=token, state=State.CLAIMED)
    if result.outcome == _Outcome.SENT:
        updated = int(_mark_sent(message, token, now))
    elif result.outcome == _Outcome.CANCELLED:
        updated = ours.update(
            state=State.CANCELLED, sensitive_context=None, claim_token=None, last_error=result.error
        )
    elif result.outcome == _Outcome.RETRY and message.attempts < conf.max_attempts():
        delay = retry_delay_seconds(attempts=message.attempts)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        updated = ours.update(
            state=State.PENDING,
            next_attempt_at=now + timedelta(seconds=delay),
            claim_token=None,
            claimed_at=None,
            last_error=result.error[:1000],
        )
    else:
        error = result.error
        if result.outcome == _Outcome.RETRY:
            result.outcome = _Outcome.FAILED
            error = f"gave up after {message.attempts} attempts: {error}"
        updated = ours.update(
            state=State.FAILED,
            sensitive_context=None,
            claim_token=None,
            last_error=error[:1000],
        )
        logger.warning(
            "event=outbox_failed message=%s kind=%s channel=%s attempts=%d",
            message.public_id,
            message.kind,
            message.channel,
            message.attempts,
        )
    if not updated:
        logger.error(
            "event=outbox_claim_lost message=%s outcome=%s", message.public_id, result.outcome
        )
    return bool(updated)


def _muted(message: Message) -> bool:
    mute_flag = MUTABLE_KINDS.get(Kind(message.kind))
    if not mute_flag or message.recipient is None:
        return False
    preference = getattr(message.recipient, "notification_preference", None)
    return bool(preference is not None and getattr(preference, mute_flag))


def _deliver_one(
    message: Message,
    channel_settings: ChannelSettings | None,
    transports: _Transports,
    templates: TemplateSet | None = None,
) -> _Result:
    recipient = message.recipient
    if recipient is not None and not recipient.is_active:
        return _Result(_Outcome.CANCELLED, "recipient is no longer active")
    if _muted(message):
        return _Result(_Outcome.CANCELLED, "muted by the recipient")
    channel, webhook = _destination(message, channel_settings)
    if channel is None:
        return _Result(_Outcome.FAILED, "no destination: no recipient and no channel webhook")
    try:
        rendered = render_message(
            message,
            unsubscribe_url="" if message.kind in ACCOUNT_KINDS else unsubscribe_url_for(recipient),
            templates=templates,
            chat=channel != Channel.EMAIL,
        )
    except TemplateRenderError as exc:
        return _Result(_Outcome.FAILED, f"template error: {exc}")
    if channel == Channel.EMAIL:
        return _send_email(message, rendered, transports)
    assert webhook
    return _send_webhook(channel, webhook, rendered, transports)


def _destination(
    message: Message, channel_settings: ChannelSettings | None
) -> tuple[str | None, str]:
    """(channel, webhook URL) at send time; settings may have changed since enqueue, so a
    Slack/Teams message without a usable webhook falls back to e-mail for a person."""
    recipient = message.recipient
    if message.channel in (Channel.SLACK, Channel.TEAMS):
        webhook = ""
        enabled = channel_settings is not None and channel_settings.allows(message.channel)
        if recipient is not None:
            preference = getattr(recipient, "notification_preference", None)
            if preference is not None and enabled:
                webhook = (
                    preference.slack_webhook_url
                    if message.channel == Channel.SLACK
                    else preference.teams_webhook_url
                )
        elif channel_settings is not None and enabled:
            webhook = (
                channel_settings.slack_webhook_url
                if message.channel == Channel.SLACK
                else channel_settings.teams_webhook_url
            )
        if webhook:
            return message.channel, webhook
    if recipient is not None and recipient.email:
        return Channel.EMAIL, ""
    return None, ""


def _smtp_error_text(exc: BaseException, address: str) -> str:
    text = f"{type(exc).__name__}"
    code = getattr(exc, "smtp_code", None)
    if code is not None:
        detail = getattr(exc, "smtp_error", b"")
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        text += f": {code} {detail}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [str(c) for c, _ in exc.recipients.values()]
        text += f": {' '.join(codes)}"
    if address:
        text = text.replace(address, "<recipient>")
    return text[:500]


def _smtp_is_permanent(exc: BaseException) -> bool:
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= c < 600 for c in codes)
    return code is not None and 500 <= int(code) < 600


def email_build(*, to: str, rendered: RenderedMessage) -> EmailMultiAlternatives:
    """The e-mail for a rendered message: text + HTML alternative, RFC 8058 one-click
    unsubscribe headers when there is an unsubscribe link."""
    headers = {}
    if rendered.unsubscribe_url:
        headers["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers=headers,
    )
    email.attach_alternative(rendered.html, "text/html")
    return email


def _send_email(message: Message, rendered: RenderedMessage, transports: _Transports) -> _Result:
    recipient = message.recipient
    assert recipient is not None
    if transports.email_broken:
        return _Result(_Outcome.RETRY, transports.email_broken)
    try:
        backend = transports.email
        built = (
            transports.writer.message(to=recipient.email, rendered=rendered)
            if isinstance(backend, SMTPEmailBackend) and backend.connection is not None
            else None
        )
        if built is not None:
            # The bytes Django's SMTP backend would send, written directly (``mime``), on the
            # backend's own smtplib connection.
            envelope_from, to, data = built
            backend.connection.sendmail(envelope_from, [to], data)
            sent = 1
        else:
            sent = backend.send_messages([email_build(to=recipient.email, rendered=rendered)])
    except smtplib.SMTPServerDisconnected as exc:
        transports.reset_email()
        return _Result(_Outcome.RETRY, _smtp_error_text(exc, recipient.email))
    except smtplib.SMTPException as exc:
        error = _smtp_error_text(exc, recipient.email)
        if _smtp_is_permanent(exc):
            return _Result(_Outcome.FAILED, error)
        transports.reset_email()
        return _Result(_Outcome.RETRY, error)
    except OSError as exc:  # refused, timeout, DNS: the server is unreachable for this batch
        transports.reset_email()
        transports.email_broken = f"smtp unreachable: {type(exc).__name__}"
        return _Result(_Outcome.RETRY, transports.email_broken)
    if not sent:
        return _Result(_Outcome.RETRY, "smtp backend sent nothing")
    return _Result(_Outcome.SENT)


def _send_webhook(
    channel: str, url: str, rendered: RenderedMessage, transports: _Transports
) -> _Result:
    payload = rendered.slack_payload() if channel == Channel.SLACK else rendered.teams_payload()
    try:
        response = transports.http.post(url, json=payload)
    except httpx.TimeoutException as exc:
        return _Result(_Outcome.RETRY, f"{channel}: timeout ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return _Result(_Outcome.RETRY, f"{channel}: transport error ({type(exc).__name__})")
    status = response.status_code
    if 200 <= status < 300:
        return _Result(_Outcome.SENT)
    # An endpoint may echo the request, whose links carry tokens: never keep them.
    body = redact(response.text[:200].replace("\n", " "))
    error = f"{channel}: HTTP {status} {body}".strip()
    if status == 429:
        retry_after = response.headers.get("Retry-After", "")
        return _Result(
            _Outcome.RETRY, error, retry_after=float(retry_after) if retry_after.isdigit() else None
        )
    if 400 <= status < 500:
        return _Result(_Outcome.FAILED, error)
    return _Result(_Outcome.RETRY, error)


# --- Admin operations -----------------------------------------------------------------------


def messages_retry_now(*, message_ids: Sequence[int]) -> tuple[int, int]:
    """Make failed or waiting messages due now with a fresh attempt budget.  Messages whose
    one-time secret was erased (a failed invitation) cannot be resent and are skipped: the
    sender must issue a new one.  Returns (retried, skipped)."""
    with transaction.atomic():
        candidates = Message.objects.filter(
            pk__in=list(message_ids), state__in=[State.FAILED, State.PENDING]
        )
        unrecoverable = candidates.filter(
            had_sensitive_context=True, sensitive_context__isnull=True
        )
        skipped = unrecoverable.count()
        retried = candidates.exclude(pk__in=unrecoverable.values("pk")).update(
            state=State.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            claim_token=None,
            claimed_at=None,
        )
    if retried:
        transaction.on_commit(lambda: _publish_delivery(expected=retried), robust=True)
    return retried, skipped


# --- Preferences and unsubscribe -----------------------------------------------------------


def unsubscribe_token_for(user: User) -> str:
    # Signer (HMAC with SECRET_KEY and a salt of its own), not a database token: nothing to
    # store, and the value names the person's random public id, never their address.
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(user.public_id.hex)


def unsubscribe_url_for(user: User | None) -> str:
    if user is None:
        return ""
    prefix, suffix = _unsubscribe_path_parts()
    return f"{settings.SITE_URL}{prefix}{unsubscribe_token_for(user)}{suffix}"


@functools.cache
def _unsubscribe_path_parts() -> tuple[str, str]:
    # reverse() once: per message it cost milliseconds in the delivery loop (measured).
    placeholder = "TOKEN"
    path = reverse("notifications:unsubscribe", kwargs={"token": placeholder})
    prefix, _, suffix = path.rpartition(placeholder)
    return prefix, suffix


def unsubscribe_user_from_token(token: str) -> User:
    """The person a signed unsubscribe token names; ``ServiceError`` if it is not valid."""
    try:
        public_id = uuid.UUID(hex=signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token))
    except (signing.BadSignature, ValueError):
        raise ServiceError("invalid_token", "This unsubscribe link is not valid.", status=404)
    user = User.objects.filter(public_id=public_id, is_active=True).first()
    if user is None:
        raise ServiceError("invalid_token", "This unsubscribe link is not valid.", status=404)
    return user


def preference_unsubscribe(*, user: User) -> NotificationPreference:
    """Mute reminders and digests for ``user`` and cancel the ones already waiting.
    Invitations are not affected."""
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        preference.mute_reminders = True
        preference.mute_digests = True
        preference.save(update_fields=["mute_reminders", "mute_digests", "updated_at"])
        Message.objects.filter(
            recipient=user, state=State.PENDING, kind__in=[Kind.REMINDER, Kind.DIGEST]
        ).update(state=State.CANCELLED, sensitive_context=None, last_error="muted by the recipient")
    logger.info("event=notifications_unsubscribed user=%s", user.public_id)
    return preference


def preference_update(
    *,
    user: User,
    channel: str,
    slack_webhook_url: str,
    teams_webhook_url: str,
    mute_reminders: bool,
    mute_digests: bool,
    work_start,
    work_end,
    work_days: list[int],
) -> NotificationPreference:
    """Save a person's notification preferences (validated; the organisation decides which
    channels may be chosen)."""
    channel_settings = ChannelSettings.objects.filter(organisation_id=user.organisation_id).first()
    fields: dict[str, list[str]] = {}
    if channel and channel not in Channel.values:
        fields["channel"] = ["unknown channel"]
    elif (
        channel
        and channel != Channel.EMAIL
        and not (channel_settings is not None and channel_settings.allows(channel))
    ):
        fields["channel"] = ["your organisation does not use this channel"]
    if work_end <= work_start:
        fields["work_end"] = ["must be after the start of working hours"]
    if not work_days or any(d not in range(7) for d in work_days):
        fields["work_days"] = ["choose at least one working day"]
    if fields:
        raise ServiceError("invalid_preferences", "Please correct the preferences.", fields=fields)
    with transaction.atomic():
        preference, _ = NotificationPreference.objects.select_for_update().get_or_create(user=user)
        preference.channel = channel
        preference.slack_webhook_url = slack_webhook_url
        preference.teams_webhook_url = teams_webhook_url
        preference.mute_reminders = mute_reminders
        preference.mute_digests = mute_digests
        preference.work_start = work_start
        preference.work_end = work_end
        preference.work_days = sorted(set(work_days))
        try:
            preference.full_clean(exclude=["user"])
        except ValidationError as exc:
            raise ServiceError(
                "invalid_preferences", "Please correct the preferences.", fields=exc.message_dict
            )
        preference.save()
    return preference


__all__ = [
    "OutgoingMessage",
    "message_enqueue",
    "messages_enqueue_bulk",
    "message_cancel_pending",
    "messages_cancel_pending_by_key_part",
    "outbox_deliver_due",
    "outbox_sweep",
]
