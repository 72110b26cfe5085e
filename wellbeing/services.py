"""Writes to the organisation: teams, people, memberships.  Each runs in one transaction."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .errors import ServiceError, validation_fields
from .models import Membership, Organisation, Team, TeamLead, User


def _validation_to_service_error(exc: ValidationError) -> ServiceError:
    fields = validation_fields(exc)
    message = "; ".join(m for msgs in fields.values() for m in msgs) or "; ".join(exc.messages)
    return ServiceError("invalid", message, fields=fields)


@transaction.atomic
def organisation_create(
    *, name: str, slug: str, timezone: str | None = None, anonymity_threshold: int | None = None
) -> Organisation:
    """A new organisation; what is not given comes from PULSE_DEFAULT_TIMEZONE and
    PULSE_DEFAULT_K (the model's defaults)."""
    organisation = Organisation(name=name, slug=slug)
    if timezone is not None:
        organisation.timezone = timezone
    if anonymity_threshold is not None:
        organisation.anonymity_threshold = anonymity_threshold
    try:
        organisation.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    organisation.save()
    return organisation


def _team_name_clash(team: Team, *, field: str, existing: str | None = None) -> ServiceError:
    where = f"under “{team.parent.name}”" if team.parent is not None else "at the top level"
    message = f"A team named “{existing or team.name}” already exists {where}."
    if existing is not None and existing != team.name:
        message += " Names that differ only in case count as the same."
    return ServiceError("duplicate_name", message, fields={field: [message]})


def _team_name_check(team: Team, *, field: str, new_name: bool) -> None:
    """Refuse a name the people import could not tell apart in a path ("Support / Tier 1",
    matched ignoring case): "/" in a new name, or a sibling of the same name in any case.  The
    database refuses only exact repeats, and only when the write reaches it."""
    if new_name and "/" in team.name:
        message = "A team name cannot contain “/”: it separates the teams of a path."
        raise ServiceError("invalid", message, fields={field: [message]})
    siblings = (
        Team.objects.filter(organisation_id=team.organisation_id, parent_id=team.parent_id)
        .exclude(pk=team.pk)
        .values_list("name", flat=True)
    )
    folded = team.name.casefold()
    existing = next((name for name in siblings if name.casefold() == folded), None)
    if existing is not None:
        raise _team_name_clash(team, field=field, existing=existing)


def team_name_check(team: Team, *, new_name: bool) -> None:
    """The name rules every way of naming a team applies (the Django admin's form included):
    raises ``ServiceError`` on the ``name`` field."""
    _team_name_check(team, field="name", new_name=new_name)


def _team_save(team: Team, *, field: str, **kwargs: Any) -> None:
    # A concurrent request can take the name between the check and this write: the savepoint
    # keeps the caller's transaction usable and the constraint's refusal becomes the same error.
    try:
        with transaction.atomic():
            team.save(**kwargs)
    except IntegrityError:
        raise _team_name_clash(team, field=field)


@transaction.atomic
def team_create(
    *,
    organisation: Organisation,
    name: str,
    parent: Team | None = None,
    customer_facing: bool = False,
) -> Team:
    team = Team(
        organisation=organisation, name=name, parent=parent, customer_facing=customer_facing
    )
    _team_name_check(team, field="name", new_name=True)
    try:
        team.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    _team_save(team, field="name")
    return team


@transaction.atomic
def team_move(*, team: Team, new_parent: Team | None) -> Team:
    """Move a team in the tree; refuses to put it under itself or a descendant, or next to a
    team of the same name."""
    locked = Team.objects.select_for_update().get(pk=team.pk)
    locked.parent = new_parent
    try:
        locked.clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    _team_name_check(locked, field="parent", new_name=False)
    _team_save(locked, field="parent", update_fields=["parent"])
    return locked


@transaction.atomic
def person_create(
    *,
    organisation: Organisation,
    email: str,
    full_name: str = "",
    team: Team | None = None,
    started_on: date | None = None,
    is_org_admin: bool = False,
    password: str | None = None,
) -> User:
    if User.objects.filter(email__iexact=email).exists():
        raise ServiceError("duplicate_email", f"A person with e-mail {email} already exists.")
    user = User.objects.create_user(
        email=email,
        password=password,
        full_name=full_name,
        organisation=organisation,
        is_org_admin=is_org_admin,
    )
    if team is not None:
        membership_start(user=user, team=team, started_on=started_on or date.today())
    return user


def person_language_set(*, user: User, language: str) -> User:
    """The language a person reads Pulse in (pages, check-ins and messages); "" follows their
    organisation's (``wellbeing.languages.reading_language``)."""
    codes = {code for code, _name in settings.LANGUAGES}
    if language and language not in codes:
        message = f"Choose one of: {', '.join(sorted(codes))}."
        raise ServiceError("invalid", message, fields={"language": [message]})
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])
    return user


@transaction.atomic
def membership_start(*, user: User, team: Team, started_on: date) -> Membership:
    if user.organisation_id != team.organisation_id:
        raise ServiceError("invalid", "A person can only join teams of their own organisation.")
    return Membership.objects.create(user=user, team=team, started_on=started_on)


@transaction.atomic
def membership_end(*, membership: Membership, ended_on: date) -> Membership:
    if ended_on < membership.started_on:
        raise ServiceError("invalid", "A membership cannot end before it starts.")
    membership.ended_on = ended_on
    membership.save(update_fields=["ended_on"])
    return membership


@transaction.atomic
def team_lead_assign(*, user: User, team: Team) -> TeamLead:
    if user.organisation_id != team.organisation_id:
        raise ServiceError("invalid", "A lead must belong to the team's organisation.")
    lead, _ = TeamLead.objects.get_or_create(user=user, team=team)
    return lead


# --- Configuration writes used by the in-product admin pages (each audited) ------------------


@transaction.atomic
def team_update(
    *,
    team: Team,
    actor: User | None,
    name: str | None = None,
    customer_facing: bool | None = None,
) -> Team:
    """Rename a team or change whether it serves customers."""
    from .audit import audit_changes, audit_record

    locked = Team.objects.select_for_update().get(pk=team.pk)
    before = {"name": locked.name, "customer_facing": locked.customer_facing}
    if name is not None:
        locked.name = name.strip()
    if customer_facing is not None:
        locked.customer_facing = customer_facing
    if locked.name != before["name"]:
        _team_name_check(locked, field="name", new_name=True)
    try:
        locked.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    _team_save(locked, field="name", update_fields=["name", "customer_facing"])
    old, new = audit_changes(
        before, {"name": locked.name, "customer_facing": locked.customer_facing}
    )
    if new:
        audit_record(
            organisation=locked.organisation,
            actor=actor,
            action="team.update",
            target=locked,
            before=old,
            after=new,
        )
    return locked


@transaction.atomic
def team_lead_remove(*, user: User, team: Team) -> bool:
    deleted, _ = TeamLead.objects.filter(user=user, team=team).delete()
    return deleted > 0


@transaction.atomic
def person_deactivate(*, person: User, actor: User | None, ended_on: date) -> User:
    """A leaver: open memberships end on ``ended_on``, the account stops working.  Never
    deleted (past invitations and participation counts still refer to them)."""
    from .audit import audit_record

    if actor is not None and person.pk == actor.pk:
        raise ServiceError("invalid", "You cannot deactivate yourself.")
    locked = User.objects.select_for_update().get(pk=person.pk)
    if not locked.is_active:
        return locked
    for membership in Membership.objects.filter(user=locked, ended_on__isnull=True):
        membership.ended_on = max(membership.started_on, ended_on)
        membership.save(update_fields=["ended_on"])
    locked.is_active = False
    locked.save(update_fields=["is_active"])
    assert locked.organisation is not None
    audit_record(
        organisation=locked.organisation,
        actor=actor,
        action="person.deactivate",
        target=locked,
        before={"active": True},
        after={"active": False, "ended_on": ended_on},
    )
    return locked


def _organisation_update(
    organisation: Organisation, *, actor: User | None, action: str, values: dict[str, Any]
) -> Organisation:
    """Set ``values`` on the locked organisation, validated as a whole, and audit what changed
    under ``action``.  In the caller's transaction."""
    from .audit import audit_changes, audit_record

    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    before = {f: getattr(locked, f) for f in values}
    for field, value in values.items():
        setattr(locked, field, value)
    try:
        locked.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    locked.save(update_fields=list(values))
    old, new = audit_changes(before, {f: getattr(locked, f) for f in values})
    if new:
        audit_record(
            organisation=locked, actor=actor, action=action, target=locked, before=old, after=new
        )
    return locked


@transaction.atomic
def organisation_thresholds_update(
    *,
    organisation: Organisation,
    actor: User | None,
    anonymity_threshold: int,
    comment_threshold: int,
    comments_enabled: bool,
) -> Organisation:
    """k (never below 3) and the comment threshold (never below k)."""
    values = {
        "anonymity_threshold": anonymity_threshold,
        "comment_threshold": comment_threshold,
        "comments_enabled": comments_enabled,
    }
    return _organisation_update(
        organisation, actor=actor, action="organisation.thresholds", values=values
    )


@transaction.atomic
def organisation_settings_update(
    *, organisation: Organisation, actor: User | None, locale: str, timezone: str
) -> Organisation:
    """The organisation's language (for people who chose none) and timezone (for schedules
    and people who set none)."""
    values = {"locale": locale, "timezone": timezone}
    return _organisation_update(
        organisation, actor=actor, action="organisation.settings", values=values
    )


FLAG_SETTING_FIELDS = (
    "high_stress_level",
    "high_stress_consecutive",
    "client_burnout_level",
    "resolve_after_cycles",
    "reopen_within_days",
)


@transaction.atomic
def flag_settings_update(*, organisation: Organisation, actor: User | None, **values: int):
    """Thresholds the flag engine uses for this organisation (created on first save)."""
    from .audit import audit_changes, audit_record
    from .models import FlagSettings

    unknown = set(values) - set(FLAG_SETTING_FIELDS)
    if unknown:
        raise ServiceError("invalid", "Unknown fields.", fields={n: ["unknown"] for n in unknown})
    settings, _ = FlagSettings.objects.select_for_update().get_or_create(organisation=organisation)
    before = {f: getattr(settings, f) for f in FLAG_SETTING_FIELDS}
    for name, value in values.items():
        setattr(settings, name, value)
    try:
        settings.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    settings.save()
    old, new = audit_changes(before, {f: getattr(settings, f) for f in FLAG_SETTING_FIELDS})
    if new:
        audit_record(
            organisation=organisation,
            actor=actor,
            action="flags.thresholds",
            target=settings,
            before=old,
            after=new,
        )
    return settings
