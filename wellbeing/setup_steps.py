"""The administration overview's "Getting started" list: what an organisation still needs
before its first check-in, each step with whether it is done and where to do it.

``wellbeing`` knows its own steps (teams, people, leads); another app adds its own by giving
its ``AppConfig`` a ``setup_steps(organisation)`` method (``checkins``: the survey, the
schedule, support resources), so ``wellbeing`` imports nothing from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.apps import apps
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .models import Membership, Organisation, Team, TeamLead


@dataclass(frozen=True)
class SetupStep:
    order: int  # the list's order across apps
    label: str
    done: bool
    url: str
    hint: str = ""  # what is missing, when not done


def _own_steps(organisation: Organisation) -> list[SetupStep]:
    today = datetime.now(organisation.tz).date()
    teams = Team.objects.filter(organisation=organisation, is_active=True)
    current = Membership.objects.filter(
        Q(ended_on__isnull=True) | Q(ended_on__gte=today), team=OuterRef("pk")
    )
    staffed = teams.filter(Exists(current))
    unled = staffed.exclude(Exists(TeamLead.objects.filter(team=OuterRef("pk")))).count()
    has_teams, has_people = teams.exists(), staffed.exists()
    return [
        SetupStep(10, _("Create your teams"), has_teams, reverse("manage:teams")),
        SetupStep(
            20,
            _("Add people to their teams"),
            has_people,
            reverse("manage:people_import"),
            _("Import them from a spreadsheet."),
        ),
        SetupStep(
            30,
            _("Give every team a lead"),
            has_people and not unled,
            reverse("manage:teams"),
            ngettext(
                "%(count)d team with people has no lead yet.",
                "%(count)d teams with people have no lead yet.",
                unled,
            )
            % {"count": unled}
            if unled
            else "",
        ),
    ]


def setup_steps(organisation: Organisation) -> list[SetupStep]:
    """Every app's steps for ``organisation``, in order."""
    steps = _own_steps(organisation)
    for config in apps.get_app_configs():
        contribute = getattr(config, "setup_steps", None)
        if callable(contribute):
            steps.extend(contribute(organisation))
    return sorted(steps, key=lambda step: step.order)
