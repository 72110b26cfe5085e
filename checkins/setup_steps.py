"""The check-ins' part of the administration's "Getting started" list
(``wellbeing.setup_steps``): a running schedule (the library's surveys need no publishing)
and support resources."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext as _

from wellbeing.models import Organisation
from wellbeing.setup_steps import SetupStep

from .models import Schedule, SupportResource


def setup_steps(organisation: Organisation) -> list[SetupStep]:
    today = datetime.now(organisation.tz).date()
    running = Schedule.objects.filter(organisation=organisation, paused=False).filter(
        Q(end_date__isnull=True) | Q(end_date__gte=today)
    )
    return [
        SetupStep(
            50,
            _("Schedule the check-ins"),
            running.exists(),
            reverse("manage_checkins:schedules"),
            _(
                "Choose the teams, the day and the time; the question library's weekly pulse "
                "survey is ready to use."
            ),
        ),
        SetupStep(
            60,
            _("Add support resources"),
            SupportResource.objects.filter(organisation=organisation).exists(),
            reverse("manage_checkins:support"),
            _("Shown to everyone after a check-in: an assistance programme, a helpline."),
        ),
    ]
