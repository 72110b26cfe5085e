"""A real cycle, answered and closed through the check-in services, for the hardening tests."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from checkins import services
from checkins.models import Cycle, Invitation
from checkins.selectors import invitation_questions
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule, open_cycle
from tests.factories import OrganisationFactory, team_with_members


def answered_cycle(
    *, size: int = 6, organisation=None, team=None, close: bool = True, comment: str = ""
) -> Cycle:
    """Open a weekly cycle for one team of ``size``, let everyone answer, release and close.
    ``comment``: when given, each person writes it followed by their number."""
    organisation = organisation or OrganisationFactory(anonymity_threshold=5)
    team = team or team_with_members(
        organisation=organisation, size=size, name="Support Tier 1", customer_facing=True
    )
    schedule = make_schedule(organisation=organisation, teams=[team], survey=ensure_library())
    cycle = open_cycle(schedule)
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        for number, invitation in enumerate(Invitation.objects.filter(cycle=cycle)):
            questions = invitation_questions(invitation=invitation)
            services.checkin_submit(
                invitation=invitation,
                answers={
                    q.pk: q.scale_min + (number % (q.scale_max - q.scale_min + 1))
                    for q in questions
                    if q.is_scale
                },
                comment=f"{comment} {number}" if comment else None,
            )
    services.pending_release(cycle=cycle, force=True)
    if close:
        assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    cycle.refresh_from_db()
    return cycle
