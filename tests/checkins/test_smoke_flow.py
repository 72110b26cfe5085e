from datetime import timedelta

import time_machine

from checkins import services
from checkins.models import Invitation, PendingAnswer, Response
from checkins.selectors import invitation_questions
from tests.checkins.conftest import FIRST_OPEN


def test_a_whole_cycle_runs_from_open_to_close(cycle):
    invitations = list(Invitation.objects.filter(cycle=cycle))
    assert len(invitations) == 6
    with time_machine.travel(FIRST_OPEN + timedelta(hours=1), tick=False):
        for inv in invitations:
            qs = invitation_questions(invitation=inv)
            services.checkin_submit(
                invitation=inv, answers={q.pk: q.scale_min for q in qs if q.is_scale}, comment=None
            )
    assert PendingAnswer.objects.count() == 6
    assert services.pending_release(cycle=cycle) == 6
    assert Response.objects.count() == 6
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is False
