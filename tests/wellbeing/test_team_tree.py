import pytest
from django.core.exceptions import ValidationError

from tests.factories import OrganisationFactory, TeamFactory
from wellbeing.errors import ServiceError
from wellbeing.models import Team
from wellbeing.services import team_create, team_move

pytestmark = pytest.mark.django_db


def test_team_cannot_be_moved_under_its_own_descendant():
    # given a chain root -> child -> grandchild
    root = TeamFactory()
    child = TeamFactory(organisation=root.organisation, parent=root)
    grandchild = TeamFactory(organisation=root.organisation, parent=child)
    # when the root is moved under its grandchild
    with pytest.raises(ServiceError) as excinfo:
        team_move(team=root, new_parent=grandchild)
    # then it is refused and nothing changed
    assert "under itself" in excinfo.value.message
    root.refresh_from_db()
    assert root.parent_id is None


def test_team_cannot_be_its_own_parent():
    team = TeamFactory()
    with pytest.raises(ServiceError):
        team_move(team=team, new_parent=team)
    team.refresh_from_db()
    assert team.parent_id is None


def test_team_can_move_to_another_branch():
    org = OrganisationFactory()
    a = TeamFactory(organisation=org, name="A")
    b = TeamFactory(organisation=org, name="B")
    leaf = TeamFactory(organisation=org, parent=a, name="Leaf")
    moved = team_move(team=leaf, new_parent=b)
    assert moved.parent_id == b.pk
    assert Team.objects.get(pk=leaf.pk).parent_id == b.pk


def test_parent_from_another_organisation_is_refused():
    foreign_parent = TeamFactory()
    with pytest.raises(ServiceError) as excinfo:
        team_create(organisation=OrganisationFactory(), name="X", parent=foreign_parent)
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
    team_create(organisation=org, name="Support")
    with pytest.raises(ServiceError):
        team_create(organisation=org, name="Support")
