"""Fast builders for the fault tests: many people at once, schedules due on the real clock,
one-time links read back from the mails the SMTP server received."""

from __future__ import annotations

import re
from datetime import date, timedelta

from django.utils import timezone

from checkins.models import Cycle, Invitation, Schedule
from checkins.selectors import invitation_questions
from tests.checkins.conftest import ensure_library, make_schedule
from tests.factories import OrganisationFactory, TeamFactory
from tests.notifications.helpers import always_available
from wellbeing.models import Membership, Organisation, Team, User

LINK = re.compile(r"/checkin/t/([A-Za-z0-9_\-]{20,100})/")


def organisation_utc(*, k: int = 5) -> Organisation:
    return OrganisationFactory(timezone="UTC", anonymity_threshold=k)


def team_of_people(
    *, organisation: Organisation, size: int, name: str, parent: Team | None = None, tag: str = ""
) -> Team:
    """A team and ``size`` members created with bulk inserts (10,000 take a few seconds);
    everyone accepts messages at any hour so delivery is due at once."""
    team = TeamFactory(organisation=organisation, name=name, parent=parent)
    label = tag or f"t{team.pk}"
    users = User.objects.bulk_create(
        [
            User(email=f"{label}-{i}@example.test", organisation=organisation, password="!")
            for i in range(size)
        ],
        batch_size=2000,
    )
    Membership.objects.bulk_create(
        [Membership(user=user, team=team, started_on=date(2020, 1, 1)) for user in users],
        batch_size=2000,
    )
    always_available(users)
    return team


def schedule_due_now(
    *,
    organisation: Organisation,
    teams: list[Team],
    opened_ago: timedelta = timedelta(hours=1),
    open_hours: int = 96,
    name: str = "Weekly pulse",
) -> Schedule:
    """A weekly schedule whose latest opening was ``opened_ago`` on the real clock, created a
    day before that: the next tick opens it (or records it missed if its window has passed)."""
    opens_at = (timezone.now() - opened_ago).replace(second=0, microsecond=0)
    return make_schedule(
        organisation=organisation,
        teams=teams,
        survey=ensure_library(),
        created_at=opens_at - timedelta(days=1),
        name=name,
        start_date=opens_at.date(),
        weekday=opens_at.weekday(),
        local_time=opens_at.time(),
        open_hours=open_hours,
        reminder_offsets=[h for h in (24, 72) if h < open_hours],
    )


def links_by_address(smtp) -> dict[str, str]:
    """address -> the token of the one-time link in the mail it received (the last one)."""
    tokens: dict[str, str] = {}
    for mail in smtp.received:
        body = mail.message.get_body(preferencelist=("plain",)).get_content()
        found = LINK.search(body)
        assert found, "an invitation mail without a check-in link"
        tokens[mail.to] = found.group(1)
    return tokens


def answers_for(invitation: Invitation, value: int = 3) -> dict[str, int]:
    """A valid answer to every rating item shown to this person."""
    return {
        str(q.pk): min(max(value, q.scale_min or 0), q.scale_max or value)
        for q in invitation_questions(invitation=invitation)
        if q.is_scale
    }


def end_window(cycle: Cycle) -> None:
    """Let the answering window end now (instead of waiting days for it)."""
    Cycle.objects.filter(pk=cycle.pk).update(closes_at=timezone.now())
