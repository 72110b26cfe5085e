from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import AppConfig

if TYPE_CHECKING:
    from wellbeing.models import Organisation
    from wellbeing.setup_steps import SetupStep


class CheckinsConfig(AppConfig):
    name = "checkins"
    verbose_name = "Check-ins"
    default_auto_field = "django.db.models.BigAutoField"

    def setup_steps(self, organisation: Organisation) -> list[SetupStep]:
        """This app's part of the administration's "Getting started" list."""
        from .setup_steps import setup_steps

        return setup_steps(organisation)
