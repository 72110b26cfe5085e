"""An admin fetches every figure the API and the CSV export publish and tries to isolate fewer
than k people by subtraction.

Tree (k = 5): Parent (1 direct member) with children A (6), B (6) and Small (3); a second root
Ops (7), which gains one joiner in the second cycle.  Everyone answers the same way every cycle
(the attacker's best case).  The attacker tries, per cycle and dimension:

- every published n: never below k;
- parent (subtree) minus the sum of its published children, and the organisation minus the sum
  of its published roots: the difference is 0 or at least k people, never 1..k-1;
- across the two cycles around the single joiner: no published "change" spans a roster that
  moved by fewer than k people.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, timedelta

import pytest
import time_machine
from django.test import Client

from checkins import services
from checkins.models import Cycle, Invitation
from tests.checkins.conftest import FIRST_OPEN, ensure_library, make_schedule
from tests.factories import OrganisationFactory, UserFactory
from wellbeing.models import Membership, Team, User

from .builders import answers_for, team_of_people

pytestmark = [pytest.mark.django_db]

K = 5


def run_cycle(week: int, value_of: dict[int, int]) -> Cycle:
    opens = FIRST_OPEN + timedelta(weeks=week)
    cycle = Cycle.objects.get(pk=services.tick_run(now=opens).opened[-1])
    services.cycle_open_all(cycle=cycle)
    with time_machine.travel(opens + timedelta(hours=1), tick=False):
        for invitation in Invitation.objects.filter(cycle=cycle):
            value = value_of.setdefault(invitation.user_id, 1 + len(value_of) % 5)
            services.checkin_submit(
                invitation=invitation, answers=answers_for(invitation, value), comment=None
            )
    assert services.cycle_close(cycle=cycle, now=cycle.closes_at) is True
    return cycle


def test_no_subtraction_of_published_figures_isolates_fewer_than_k_people():
    # given the tree, two closed cycles and a joiner in Ops between them
    organisation = OrganisationFactory(anonymity_threshold=K)
    parent = team_of_people(organisation=organisation, size=1, name="Parent")
    for name, size in (("A", 6), ("B", 6), ("Small", 3)):
        team_of_people(organisation=organisation, size=size, name=name, parent=parent)
    ops = team_of_people(organisation=organisation, size=7, name="Ops")
    make_schedule(organisation=organisation, teams=[parent, ops], survey=ensure_library())
    values: dict[int, int] = {}
    run_cycle(0, values)
    joiner = User.objects.create(email="joiner@example.test", organisation=organisation)
    Membership.objects.create(user=joiner, team=ops, started_on=date(2026, 3, 5))
    run_cycle(1, values)
    admin = UserFactory(organisation=organisation, is_org_admin=True)
    client = Client()
    client.force_login(admin)

    # when the attacker collects every published n: heatmap, every team's trend, the export
    heatmap = client.get("/api/heatmap/").json()
    published: dict[tuple[str, str, str], int] = {}  # (team or "org", period, dimension) -> n
    changes: dict[tuple[str, str], float | None] = {}
    for row in heatmap["rows"]:
        team_key = row["team_id"] or "org"
        for cell in row["cells"]:
            if cell["published"]:
                published[(team_key, row["period_start"], cell["dimension"])] = cell["n"]
                changes[(team_key, cell["dimension"])] = cell["change"]
    teams = {str(t.public_id): t for t in Team.objects.filter(organisation=organisation)}
    for public_id in teams:
        for dimension in heatmap["dimensions"]:
            trend = client.get(f"/api/teams/{public_id}/trend/?dimension={dimension}&cycles=104")
            assert trend.status_code == 200
            for point in trend.json()["points"]:
                if point["published"]:
                    key = (public_id, point["period_start"], dimension)
                    assert published.get(key, point["n"]) == point["n"]
                    published[key] = point["n"]
    export = client.get("/dashboards/organisation/export.csv")
    assert export.status_code == 200
    export_rows = list(csv.reader(io.StringIO(export.content.decode())))

    # then nothing published rests on fewer than k people
    assert published, "the attacker found no figures at all: the test would prove nothing"
    assert min(published.values()) >= K
    # and no parent-minus-children or organisation-minus-roots difference is 1..k-1 people
    children_of: dict[str, list[str]] = defaultdict(list)
    for public_id, team in teams.items():
        parent_key = str(team.parent.public_id) if team.parent_id else "org"
        children_of[parent_key].append(public_id)
    isolating = []
    for (whole, period, dimension), n in published.items():
        parts = [
            published[(c, period, dimension)]
            for c in children_of.get(whole, [])
            if (c, period, dimension) in published
        ]
        if parts and 0 < n - sum(parts) < K:
            isolating.append((whole, period, dimension, n, parts))
    assert not isolating, isolating
    print(
        f"\ndifferencing: {len(published)} published figures, smallest n {min(published.values())}"
    )
    # and the change across the joiner's two cycles is not published for Ops or the organisation
    for dimension in heatmap["dimensions"]:
        for team_key in (str(ops.public_id), "org"):
            assert changes.get((team_key, dimension)) is None, (team_key, dimension)
    # and the export shows the same cells, none with a number the API withheld
    assert len(export_rows) == 1 + len(heatmap["rows"])
