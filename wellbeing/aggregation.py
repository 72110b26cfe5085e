"""Per-cycle aggregates, trend detection and flags (placeholder until the trends capability).

Until then nothing is stored and no flag changes; the close job still runs end to end."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .analytics import FlagChange, TeamCycleInput
    from .models import Organisation


def cycle_results_store(
    *,
    organisation: Organisation,
    cycle_key: uuid.UUID,
    period_start: date,
    closed_at: datetime,
    teams: Sequence[TeamCycleInput],
) -> list[FlagChange]:
    return []
