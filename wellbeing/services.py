"""Writes to the organisation: teams, people, memberships.  Each runs in one transaction.

Every edge that changes the organisation calls these — the in-product pages
(``manage_views``), the people import and the Django admin — so the rules and the audit entry
are the same whichever way a change is made.  A write someone asked for takes the ``actor``
(``None`` for the system or a management command) and records it in the audit log."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .audit import audit_changes, audit_record
from .errors import ServiceError, validation_fields
from .models import Membership, Organisation, Team, TeamLead, User
from .selectors import team_path


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
    actor: User | None,
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
    audit_record(
        organisation=organisation,
        actor=actor,
        action="team.create",
        target=team,
        after={
            "name": team.name,
            "parent": str(parent) if parent else None,
            "customer_facing": team.customer_facing,
        },
    )
    return team


@transaction.atomic
def team_move(*, team: Team, new_parent: Team | None, actor: User | None) -> Team:
    """Move a team in the tree; refuses to put it under itself or a descendant, under a team
    of another organisation, or next to a team of the same name."""
    locked = Team.objects.select_for_update().get(pk=team.pk)
    if locked.parent_id == (new_parent.pk if new_parent is not None else None):
        return locked
    before = str(locked.parent) if locked.parent else None
    locked.parent = new_parent
    try:
        locked.clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    _team_name_check(locked, field="parent", new_name=False)
    _team_save(locked, field="parent", update_fields=["parent"])
    audit_record(
        organisation=locked.organisation,
        actor=actor,
        action="team.move",
        target=locked,
        before={"parent": before},
        after={"parent": str(new_parent) if new_parent else None},
    )
    return locked


def person_last_admin_refuse(person: User) -> None:
    """An organisation is never left with nobody to run it: the only active admin cannot be
    erased, deactivated, made a plain member or moved out.  Promote someone else first."""
    if (
        person.organisation_id is not None
        and person.is_org_admin
        and not User.objects.filter(
            organisation_id=person.organisation_id, is_org_admin=True, is_active=True
        )
        .exclude(pk=person.pk)
        .exists()
    ):
        raise ServiceError(
            "last_admin",
            _("This person is the organisation's only admin. Make someone else an admin first."),
            status=409,
        )


def _duplicate_email_refuse(email: str, *, exclude: User | None = None) -> None:
    """E-mail addresses are unique ignoring case (sign-in and the people import match them
    that way), which the database's unique column alone does not ensure."""
    others = User.objects.filter(email__iexact=email)
    if exclude is not None:
        others = others.exclude(pk=exclude.pk)
    if others.exists():
        message = _("A person with e-mail %(email)s already exists.") % {"email": email}
        raise ServiceError("duplicate_email", message, fields={"email": [message]})


@transaction.atomic
def person_create(
    *,
    organisation: Organisation,
    email: str,
    actor: User | None,
    full_name: str = "",
    team: Team | None = None,
    started_on: date | None = None,
    is_org_admin: bool = False,
    password: str | None = None,
) -> User:
    _duplicate_email_refuse(email)
    user = User.objects.create_user(
        email=email,
        password=password,
        full_name=full_name,
        organisation=organisation,
        is_org_admin=is_org_admin,
    )
    audit_record(
        organisation=organisation,
        actor=actor,
        action="person.create",
        target=user,
        after={"active": True, "org_admin": is_org_admin},
    )
    if team is not None:
        membership_start(user=user, team=team, started_on=started_on or date.today(), actor=actor)
    return user


PERSON_UPDATE_FIELDS = ("email", "full_name", "timezone", "is_org_admin")


@transaction.atomic
def person_update(
    *,
    person: User,
    actor: User | None,
    email: str | None = None,
    full_name: str | None = None,
    timezone: str | None = None,
    is_org_admin: bool | None = None,
) -> User:
    """Correct a person's e-mail address, name or timezone, or make them an organisation admin
    or no longer one.  Audited in their organisation's log (people outside any organisation,
    such as operators, have none)."""
    locked = User.objects.select_for_update().get(pk=person.pk)
    before = {f: getattr(locked, f) for f in PERSON_UPDATE_FIELDS}
    if email is not None:
        email = User.objects.normalize_email(email.strip()).lower()
        if email != locked.email:
            _duplicate_email_refuse(email, exclude=locked)
        locked.email = email
    if full_name is not None:
        locked.full_name = full_name.strip()
    if timezone is not None:
        locked.timezone = timezone
    if is_org_admin is not None:
        if is_org_admin and locked.organisation_id is None:
            message = _("Only a person in an organisation can be its admin.")
            raise ServiceError("invalid", message, fields={"is_org_admin": [message]})
        if not is_org_admin:
            person_last_admin_refuse(locked)
        locked.is_org_admin = is_org_admin
    try:
        locked.full_clean(exclude=["password", "organisation"], validate_unique=False)
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    locked.save(update_fields=list(PERSON_UPDATE_FIELDS))
    old, new = audit_changes(before, {f: getattr(locked, f) for f in PERSON_UPDATE_FIELDS})
    if new and locked.organisation is not None:
        audit_record(
            organisation=locked.organisation,
            actor=actor,
            action="person.update",
            target=locked,
            before=old,
            after=new,
        )
    return locked


@transaction.atomic
def person_organisation_set(
    *, person: User, actor: User | None, organisation: Organisation | None
) -> User:
    """Put a person (an operator's new account, say) in an organisation, or in another one.
    Refused once they have been in a team or led one: memberships and lead roles never cross
    organisations, and their history stays where it happened."""
    locked = User.objects.select_for_update().get(pk=person.pk)
    previous = locked.organisation
    if previous == organisation:
        return locked
    if (
        Membership.objects.filter(user=locked).exists()
        or TeamLead.objects.filter(user=locked).exists()
    ):
        message = _(
            "This person has been in teams of “%(organisation)s”; their memberships and lead "
            "roles stay in that organisation. Deactivate them there and create a new account "
            "instead."
        ) % {"organisation": previous}
        raise ServiceError("invalid", message, fields={"organisation": [message]})
    person_last_admin_refuse(locked)
    locked.organisation = organisation
    locked.save(update_fields=["organisation"])
    if previous is not None:
        audit_record(
            organisation=previous,
            actor=actor,
            action="person.leave",
            target=locked,
            after={"organisation": str(organisation) if organisation else None},
        )
    if organisation is not None:
        audit_record(
            organisation=organisation,
            actor=actor,
            action="person.join",
            target=locked,
            before={"organisation": str(previous) if previous else None},
        )
    return locked


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
def membership_start(
    *,
    user: User,
    team: Team,
    started_on: date,
    actor: User | None,
    ended_on: date | None = None,
) -> Membership:
    """``user`` joins ``team`` on ``started_on`` (until ``ended_on``, when a past membership is
    recorded).  Moving someone is ending one membership and starting another."""
    if user.organisation_id != team.organisation_id:
        message = _("A person can only join teams of their own organisation.")
        raise ServiceError("invalid", message, fields={"team": [message]})
    membership = Membership(user=user, team=team, started_on=started_on, ended_on=ended_on)
    try:
        membership.full_clean(exclude=["user", "team"])
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    membership.save()
    after: dict[str, Any] = {"team": team_path(team=team), "start": started_on}
    if ended_on is not None:
        after["ended_on"] = ended_on
    audit_record(
        organisation=team.organisation,
        actor=actor,
        action="membership.start",
        target=user,
        after=after,
    )
    return membership


@transaction.atomic
def membership_update(
    *, membership: Membership, actor: User | None, started_on: date, ended_on: date | None
) -> Membership:
    """Change when a membership starts or ends; the person and the team stay (a move is an end
    and a start).  Audited as the people import does: ``membership.end`` when an open
    membership ends, ``membership.change`` for any other correction of the dates."""
    locked = (
        Membership.objects.select_for_update().select_related("team", "user").get(pk=membership.pk)
    )
    before = (locked.started_on, locked.ended_on)
    if before == (started_on, ended_on):
        return locked
    locked.started_on, locked.ended_on = started_on, ended_on
    try:
        locked.full_clean(exclude=["user", "team"])
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    locked.save(update_fields=["started_on", "ended_on"])
    old: dict[str, Any]
    new: dict[str, Any]
    if before[1] is None and ended_on is not None and before[0] == started_on:
        action = "membership.end"
        old, new = {"team": team_path(team=locked.team), "ended_on": None}, {"ended_on": ended_on}
    else:
        action = "membership.change"
        old, new = {"dates": list(before)}, {"dates": [started_on, ended_on]}
    audit_record(
        organisation=locked.team.organisation,
        actor=actor,
        action=action,
        target=locked.user,
        before=old,
        after=new,
    )
    return locked


def membership_end(*, membership: Membership, ended_on: date, actor: User | None) -> Membership:
    return membership_update(
        membership=membership, actor=actor, started_on=membership.started_on, ended_on=ended_on
    )


@transaction.atomic
def team_lead_assign(*, user: User, team: Team, actor: User | None) -> TeamLead:
    if user.organisation_id != team.organisation_id:
        message = _("A lead must belong to the team's organisation.")
        raise ServiceError("invalid", message, fields={"user": [message]})
    lead, created = TeamLead.objects.get_or_create(user=user, team=team)
    if created:
        audit_record(
            organisation=team.organisation,
            actor=actor,
            action="lead.add",
            target=team,
            after={"lead": str(user)},
        )
    return lead


# --- Configuration writes used by the in-product admin pages (each audited) ------------------


@transaction.atomic
def team_update(
    *,
    team: Team,
    actor: User | None,
    name: str | None = None,
    customer_facing: bool | None = None,
    is_active: bool | None = None,
) -> Team:
    """Rename a team, change whether it serves customers, or deactivate it (a deactivated
    team is no longer invited to check-ins; teams are deactivated, never deleted, so their
    history and results stay)."""
    fields = ("name", "customer_facing", "is_active")
    locked = Team.objects.select_for_update().get(pk=team.pk)
    before = {f: getattr(locked, f) for f in fields}
    if name is not None:
        locked.name = name.strip()
    if customer_facing is not None:
        locked.customer_facing = customer_facing
    if is_active is not None:
        locked.is_active = is_active
    if locked.name != before["name"]:
        _team_name_check(locked, field="name", new_name=True)
    try:
        locked.full_clean()
    except ValidationError as exc:
        raise _validation_to_service_error(exc)
    _team_save(locked, field="name", update_fields=list(fields))
    old, new = audit_changes(before, {f: getattr(locked, f) for f in fields})
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
def team_lead_remove(*, user: User, team: Team, actor: User | None) -> bool:
    deleted, _per_model = TeamLead.objects.filter(user=user, team=team).delete()
    if deleted:
        audit_record(
            organisation=team.organisation,
            actor=actor,
            action="lead.remove",
            target=team,
            before={"lead": str(user)},
        )
    return deleted > 0


@transaction.atomic
def person_deactivate(*, person: User, actor: User | None, ended_on: date) -> User:
    """A leaver: open memberships end on ``ended_on``, the account stops working.  Never
    deleted (past invitations and participation counts still refer to them)."""
    if actor is not None and person.pk == actor.pk:
        raise ServiceError("invalid", "You cannot deactivate yourself.")
    locked = User.objects.select_for_update().get(pk=person.pk)
    if not locked.is_active:
        return locked
    person_last_admin_refuse(locked)
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
def person_reactivate(*, person: User, actor: User | None) -> User:
    """A person who comes back (or was deactivated by mistake) can sign in again.  Their ended
    memberships stay ended: add the team they are in now."""
    locked = User.objects.select_for_update().get(pk=person.pk)
    if locked.is_active:
        return locked
    locked.is_active = True
    locked.save(update_fields=["is_active"])
    assert locked.organisation is not None
    audit_record(
        organisation=locked.organisation,
        actor=actor,
        action="person.reactivate",
        target=locked,
        before={"active": False},
        after={"active": True},
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
