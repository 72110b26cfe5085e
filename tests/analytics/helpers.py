"""Synthetic cycle hand-overs for the analytics tests (what the check-in close job passes in)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from wellbeing.analytics import FlagChange, TeamCycleInput, cycle_results_record
from wellbeing.models import Organisation, Team

START = date(2025, 1, 6)  # a Monday


def period(i: int) -> date:
    return START + timedelta(weeks=i)


def closed_at(i: int) -> datetime:
    return datetime.combine(period(i) + timedelta(days=4), time(17, 0), tzinfo=UTC)


def record(
    organisation: Organisation,
    i: int,
    teams: Sequence[TeamCycleInput],
    *,
    cycle_key: uuid.UUID | None = None,
) -> list[FlagChange]:
    return cycle_results_record(
        organisation=organisation,
        cycle_key=cycle_key or uuid.uuid5(uuid.NAMESPACE_URL, f"{organisation.pk}:{i}"),
        period_start=period(i),
        closed_at=closed_at(i),
        teams=teams,
    )


def scores_around(rng: random.Random, mean: float, n: int, sd: float = 12.0) -> list[float]:
    return [min(100.0, max(0.0, rng.gauss(mean, sd))) for _ in range(n)]


def team_input(
    team: Team,
    *,
    rng: random.Random,
    invited: int = 12,
    responded: int = 10,
    means: dict[str, float] | None = None,
) -> TeamCycleInput:
    means = means or {"stress": 40.0, "client_burnout": 35.0, "wellbeing": 40.0}
    return TeamCycleInput(
        team_id=team.pk,
        invited=invited,
        responded=responded,
        scores={dim: scores_around(rng, mean, responded) for dim, mean in means.items()},
    )


def fixed_input(
    team: Team, *, stress: Sequence[float], invited: int | None = None
) -> TeamCycleInput:
    """A team whose respondents all give the listed stress indices."""
    return TeamCycleInput(
        team_id=team.pk,
        invited=invited if invited is not None else len(stress) + 2,
        responded=len(stress),
        scores={"stress": list(stress)},
    )


def run_history(
    organisation: Organisation,
    cycles: int,
    make: Callable[[int], Sequence[TeamCycleInput]],
    *,
    first: int = 0,
) -> list[list[FlagChange]]:
    return [record(organisation, i, make(i)) for i in range(first, first + cycles)]
