import pytest
from django.core.exceptions import ValidationError

from tests.factories import OrganisationFactory, TeamFactory
from wellbeing.errors import ServiceError
from wellbeing.models import Team
from wellbeing.services import team_create, team_move, team_update

pytestmark = pytest.mark.django_db


def test_team_cannot_be_moved_under_its_own_descendant():
    # given a chain root -> child -> grandchild
    root = TeamFactory()
    child = TeamFactory(organisation=root.organisation, parent=root)
    grandchild = TeamFactory(organisation=root.organisation, parent=child)
    # when the root is moved under its grandchild
    with pytest.raises(ServiceError) as excinfo:
        team_move(team=root, new_parent=grandchild, actor=None)
    # then it is refused and nothing changed
    assert "under itself" in excinfo.value.message
    root.refresh_from_db()
    assert root.parent_id is None


def test_team_cannot_be_its_own_parent():
    team = TeamFactory()
    with pytest.raises(ServiceError):
        team_move(team=team, new_parent=team, actor=None)
    team.refresh_from_db()
    assert team.parent_id is None


def test_team_can_move_to_another_branch():
    org = OrganisationFactory()
    a = TeamFactory(organisation=org, name="A")
    b = TeamFactory(organisation=org, name="B")
    leaf = TeamFactory(organisation=org, parent=a, name="Leaf")
    moved = team_move(team=leaf, new_parent=b, actor=None)
    assert moved.parent_id == b.pk
    assert Team.objects.get(pk=leaf.pk).parent_id == b.pk


def test_parent_from_another_organisation_is_refused():
    foreign_parent = TeamFactory()
    with pytest.raises(ServiceError) as excinfo:
        team_create(organisation=OrganisationFactory(), name="X", parent=foreign_parent, actor=None)
    assert "another organisation" in excinfo.value.message
    assert not Team.objects.filter(name="X").exists()


def test_saving_a_cycle_directly_through_the_model_is_refused():
    org = OrganisationFactory()
    a = TeamFactory(organisation=org)
    b = TeamFactory(organisation=org, parent=a)
    a.parent = b
    with pytest.raises(ValidationError):
        a.save()


def test_duplicate_root_team_names_are_refused():
    org = OrganisationFactory()
    team_create(organisation=org, name="Support", actor=None)
    with pytest.raises(ServiceError):
        team_create(organisation=org, name="Support", actor=None)


def test_move_next_to_a_namesake_is_refused_and_leaves_the_team_in_place():
    org = OrganisationFactory()
    a = TeamFactory(organisation=org, name="A")
    b = TeamFactory(organisation=org, name="B")
    TeamFactory(organisation=org, parent=b, name="Support")
    moving = TeamFactory(organisation=org, parent=a, name="Support")
    with pytest.raises(ServiceError) as excinfo:
        team_move(team=moving, new_parent=b, actor=None)
    assert excinfo.value.fields == {"parent": ["A team named “Support” already exists under “B”."]}
    assert Team.objects.get(pk=moving.pk).parent_id == a.pk


def test_a_namesake_created_after_the_check_is_the_same_error_not_a_crash(monkeypatch):
    # given a concurrent request that takes the name between the check and the write
    org = OrganisationFactory()
    a = TeamFactory(organisation=org, name="A")
    TeamFactory(organisation=org, name="Support")
    moving = TeamFactory(organisation=org, parent=a, name="Support")
    monkeypatch.setattr("wellbeing.services._team_name_check", lambda team, **kwargs: None)
    # when the move reaches the database's unique constraint
    with pytest.raises(ServiceError) as excinfo:
        team_move(team=moving, new_parent=None, actor=None)
    # then it is refused in words, and the caller's transaction is still usable
    assert "already exists at the top level" in excinfo.value.message
    assert Team.objects.get(pk=moving.pk).parent_id == a.pk


def test_sibling_names_that_differ_only_in_case_are_refused():
    # imports match team paths ignoring case, so such siblings could not be told apart there
    org = OrganisationFactory()
    support = team_create(organisation=org, name="Support", actor=None)
    other = team_create(organisation=org, name="Sales", actor=None)
    with pytest.raises(ServiceError) as excinfo:
        team_create(organisation=org, name="SUPPORT", actor=None)
    assert "A team named “Support” already exists at the top level." in excinfo.value.message
    assert "differ only in case" in excinfo.value.message
    with pytest.raises(ServiceError):
        team_update(team=other, actor=None, name="support")
    nested = team_create(organisation=org, name="support", parent=other, actor=None)
    with pytest.raises(ServiceError):
        team_move(team=nested, new_parent=None, actor=None)
    # a change of case of the team's own name is fine
    assert team_update(team=support, actor=None, name="SUPPORT").name == "SUPPORT"


def test_a_slash_in_a_new_team_name_is_refused():
    # "/" separates the teams of a path in imports
    org = OrganisationFactory()
    with pytest.raises(ServiceError) as excinfo:
        team_create(organisation=org, name="Sales/Marketing", actor=None)
    assert excinfo.value.fields == {
        "name": ["A team name cannot contain “/”: it separates the teams of a path."]
    }
    team = team_create(organisation=org, name="Sales", actor=None)
    with pytest.raises(ServiceError):
        team_update(team=team, actor=None, name="Sales/Marketing")
    # a team named so before this rule can still be moved and edited otherwise
    legacy = TeamFactory(organisation=org, name="A/B")
    assert team_move(team=legacy, new_parent=team, actor=None).parent_id == team.pk
    assert team_update(team=legacy, actor=None, customer_facing=True).customer_facing
