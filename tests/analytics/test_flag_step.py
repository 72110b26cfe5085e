"""The close's flag step computes from the cycle's own rows while they are being copied: what
it computes from must be what is then stored."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from checkins.demo import history_seed
from tests.analytics.test_flag_screening import _assert_same_history
from wellbeing import flags as flags_module
from wellbeing.demo import organisation_seed
from wellbeing.models import Flag

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_every_close_of_the_demo_computes_flags_from_the_rows_it_stores(monkeypatch):
    steps: list[flags_module.FlagStep] = []
    compute = flags_module.FlagStep.compute

    def recorded(self):
        compute(self)
        steps.append(self)

    monkeypatch.setattr(flags_module.FlagStep, "compute", recorded)
    organisation, _ = organisation_seed(today=date(2026, 11, 25))
    history_seed(organisation=organisation, weeks=12, now=NOW)
    assert len(steps) == 12
    for step in steps:
        # the close passed the cycle's rows rather than reading them back ...
        assert step.current is not None and step.current[0] and step.current[1]
        # ... and the window built from them is the one read from what was stored
        stored = flags_module._History.load(step.results, flags_module.DETECTION_DIMENSIONS)
        _assert_same_history(step.history, stored, flags_module.DETECTION_DIMENSIONS)
    assert Flag.objects.filter(team__organisation=organisation).exists()
