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
        assert step.current is not None
        assert step.current[0]["team"].size and step.current[1]["team"].size
        # ... and the window built from them is the one read from what was stored
        stored = flags_module._History.load(step.results, flags_module.DETECTION_DIMENSIONS)
        _assert_same_history(step.history, stored, flags_module.DETECTION_DIMENSIONS)
    assert Flag.objects.filter(team__organisation=organisation).exists()


def test_a_failure_of_the_flag_computing_fails_the_whole_record(monkeypatch):
    import random

    from tests.analytics.helpers import period, record, team_input
    from tests.factories import OrganisationFactory, TeamFactory
    from wellbeing.models import CycleResult, TeamAggregate

    organisation = OrganisationFactory(anonymity_threshold=3)
    team = TeamFactory(organisation=organisation)
    rng = random.Random(5)
    record(organisation, 0, [team_input(team, rng=rng)])

    def fails(self):
        raise RuntimeError("computing failed")

    monkeypatch.setattr(flags_module.FlagStep, "compute", fails)
    # the computing runs on its own thread; its failure reaches the caller, and the cycle's
    # figures are not stored without their flags
    with pytest.raises(RuntimeError, match="computing failed"):
        record(organisation, 1, [team_input(team, rng=rng)])
    assert CycleResult.objects.filter(organisation=organisation).count() == 1
    stored = TeamAggregate.objects.filter(result__organisation=organisation)
    assert stored.exists() and not stored.exclude(result__period_start=period(0)).exists()
