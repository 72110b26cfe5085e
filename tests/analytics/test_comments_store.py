"""Comments stored at close through the guard at the comment threshold (``wellbeing.comments``)."""

from __future__ import annotations

import random
import uuid
from collections import Counter

import pytest

from tests.analytics.helpers import record
from tests.factories import OrganisationFactory, TeamFactory
from wellbeing.analytics import TeamCycleInput, cycle_comments_record
from wellbeing.comments import cycle_comments_store
from wellbeing.errors import ServiceError
from wellbeing.models import Organisation, Scope, Team, TeamComments


@pytest.fixture
def org(db) -> Organisation:
    return OrganisationFactory(anonymity_threshold=5, comment_threshold=8, comments_enabled=True)


def texts(team: Team, n: int) -> list[str]:
    return [f"{team.name} says {i}" for i in range(n)]


def close(
    organisation: Organisation,
    respondents: dict[Team, int],
    comments: dict[Team, list[str]],
    *,
    rng: random.Random | None = None,
) -> int:
    """Record a cycle's results for ``respondents`` and then its comments, as the close does."""
    key = uuid.uuid4()
    teams = [
        TeamCycleInput(team_id=t.pk, invited=n + 2, responded=n) for t, n in respondents.items()
    ]
    record(organisation, 0, teams, cycle_key=key)
    return cycle_comments_store(
        organisation=organisation,
        cycle_key=key,
        teams=teams,
        comments={t.pk: c for t, c in comments.items()},
        rng=rng,
    )


def stored() -> dict[tuple[int | None, str], list[str]]:
    return {(r.team_id, r.scope): r.comments for r in TeamComments.objects.all()}


def test_a_team_at_the_threshold_has_its_comments_stored(org):
    # given a team of eight respondents (the threshold) who wrote five comments
    team = TeamFactory(organisation=org, name="Support")
    written = texts(team, 5)
    # when its cycle closes
    groups = close(org, {team: 8}, {team: written})
    # then the team's and the organisation's comments are stored, the same texts
    rows = stored()
    assert groups == 2 and set(rows) == {(team.pk, Scope.TEAM), (None, Scope.ORGANISATION)}
    assert Counter(rows[(team.pk, Scope.TEAM)]) == Counter(written)


def test_a_team_below_the_threshold_has_no_comments_stored(org):
    # given seven respondents, above k = 5 but below the comment threshold of 8
    team = TeamFactory(organisation=org)
    assert close(org, {team: 7}, {team: texts(team, 7)}) == 0
    assert not TeamComments.objects.exists()


def test_a_small_child_is_never_shown_and_its_visible_sibling_is_held_back(org):
    # given a parent whose sub-teams are a desk of ten and a night shift of three
    region = TeamFactory(organisation=org, name="Region")
    desk = TeamFactory(organisation=org, parent=region, name="Desk")
    night = TeamFactory(organisation=org, parent=region, name="Night")
    close(org, {desk: 10, night: 3}, {desk: texts(desk, 6), night: texts(night, 2)})
    rows = stored()
    # then the night shift's comments are never stored on their own
    assert (night.pk, Scope.TEAM) not in rows
    # and neither are the desk's: the region's comments minus the desk's would be the night
    # shift's three people; the region (13 people) is shown with everyone's comments
    assert (desk.pk, Scope.TEAM) not in rows
    assert Counter(rows[(region.pk, Scope.SUBTREE)]) == Counter(texts(desk, 6) + texts(night, 2))


def test_a_parent_is_held_back_when_it_minus_its_visible_sub_team_exposes_a_few(org):
    # given a region with two people of its own above a desk (no people of its own) whose one
    # sub-team has ten
    region = TeamFactory(organisation=org, name="Region")
    desk = TeamFactory(organisation=org, parent=region, name="Desk")
    desk_a = TeamFactory(organisation=org, parent=desk, name="Desk A")
    close(org, {region: 2, desk_a: 10}, {region: texts(region, 2), desk_a: texts(desk_a, 4)})
    rows = stored()
    # then the region (12) and the organisation are held back, since either minus the desk
    # (10, which covers nothing else) would be the region's two people
    assert set(rows) == {(desk.pk, Scope.SUBTREE), (desk_a.pk, Scope.TEAM)}
    assert all(text.startswith("Desk A") for group in rows.values() for text in group)


def test_published_comment_groups_never_differ_by_fewer_than_the_threshold(org):
    # given a tree with groups of many sizes
    rng = random.Random(11)
    root = TeamFactory(organisation=org, name="Root")
    teams = [root]
    for i in range(12):
        teams.append(TeamFactory(organisation=org, parent=rng.choice(teams), name=f"T{i}"))
    respondents = {t: rng.choice([0, 2, 3, 6, 8, 9, 12]) for t in teams}
    close(
        org, respondents, {t: [f"{t.name}:{i}" for i in range(n)] for t, n in respondents.items()}
    )
    rows = stored()
    assert rows, "the test needs some published groups"
    # then each stored group's comments, minus those of the stored groups below it, come from
    # nobody or from at least the threshold's number of people
    size = {t.name: n for t, n in respondents.items()}
    shown = [set(group) for group in rows.values()]
    for group in shown:
        below = [other for other in shown if other < group]
        top = [b for b in below if not any(b < other for other in below)]
        rest = group - set().union(*top)
        writers = {text.split(":")[0] for text in rest}
        assert sum(size[w] for w in writers) == 0 or sum(size[w] for w in writers) >= 8


def test_nothing_is_stored_when_comments_are_off(db):
    organisation = OrganisationFactory(anonymity_threshold=5, comments_enabled=False)
    team = TeamFactory(organisation=organisation)
    assert close(organisation, {team: 12}, {team: texts(team, 12)}) == 0
    assert not TeamComments.objects.exists()


def test_stored_comments_are_shuffled_and_hold_only_text(org):
    # given 30 comments in the order they were released
    team = TeamFactory(organisation=org)
    written = [f"comment {i:02d}" for i in range(30)]
    # when the close stores them with a seeded generator (the OS's by default)
    close(org, {team: 30}, {team: written}, rng=random.Random(5))
    row = TeamComments.objects.get(team=team)
    # then the list is a permutation of the comments, not in their order
    assert sorted(row.comments) == written and row.comments != written
    # and the row holds the group and the texts, nothing else (no time, no response id)
    fields = {f.name for f in TeamComments._meta.get_fields()}
    assert fields == {"id", "result", "team", "scope", "comments"}


def test_storing_again_replaces_the_cycles_comments(org):
    team = TeamFactory(organisation=org)
    key = uuid.uuid4()
    teams = [TeamCycleInput(team_id=team.pk, invited=10, responded=9)]
    record(org, 0, teams, cycle_key=key)
    for _ in range(2):
        cycle_comments_record(
            organisation=org, cycle_key=key, teams=teams, comments={team.pk: ["a", "b"]}
        )
    assert TeamComments.objects.count() == 2  # the team's and the organisation's, once each


def test_more_comments_than_respondents_are_refused(org, caplog):
    team = TeamFactory(organisation=org)
    assert close(org, {team: 8}, {team: texts(team, 9)}) == 0
    assert "reason=more_than_respondents" in caplog.text
    assert "says" not in caplog.text  # never a comment in the log


def test_comments_need_the_cycles_stored_results(org):
    team = TeamFactory(organisation=org)
    with pytest.raises(ServiceError):
        cycle_comments_record(
            organisation=org,
            cycle_key=uuid.uuid4(),
            teams=[TeamCycleInput(team_id=team.pk, invited=9, responded=9)],
            comments={team.pk: ["a"]},
        )
