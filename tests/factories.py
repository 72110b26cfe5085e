"""factory-boy factories for the organisation.  Other apps add theirs next to their tests."""

from __future__ import annotations

from datetime import date

import factory

from wellbeing.models import Membership, Organisation, Team, TeamLead, User


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    timezone = "Europe/Berlin"
    anonymity_threshold = 5


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.test")
    full_name = factory.Sequence(lambda n: f"Person {n}")
    organisation = factory.SubFactory(OrganisationFactory)
    password = factory.django.Password("correct-horse-battery")


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")
    parent = None
    customer_facing = False


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(
        UserFactory, organisation=factory.SelfAttribute("..team.organisation")
    )
    started_on = date(2020, 1, 1)
    ended_on = None


class TeamLeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TeamLead

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(
        UserFactory, organisation=factory.SelfAttribute("..team.organisation")
    )


def team_with_members(
    *,
    organisation: Organisation,
    size: int,
    name: str | None = None,
    parent: Team | None = None,
    customer_facing: bool = False,
    started_on: date = date(2020, 1, 1),
) -> Team:
    team = TeamFactory(
        organisation=organisation,
        parent=parent,
        customer_facing=customer_facing,
        **({"name": name} if name else {}),
    )
    for _ in range(size):
        MembershipFactory(team=team, started_on=started_on)
    return team
