"""The fast JSON renderer of the analytics answers gives the same JSON as DRF's own."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from rest_framework.renderers import JSONRenderer

from wellbeing.renderers import FastJSONRenderer


def test_same_json_as_drf_for_plain_and_fallback_values():
    data = {
        "team_id": str(uuid.uuid4()),
        "rows": [
            {"dimension": "stress", "published": True, "index": 41.3, "n": 7, "change": -2.5},
            {"dimension": "wellbeing", "published": False, "index": None, "n": None},
        ],
        "name": 'Support – Tier 1 "EU" <b>',
        # values the standard encoder knows and orjson hands to it
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "day": dt.date(2026, 11, 23),
        "amount": Decimal("1.50"),
    }
    fast = FastJSONRenderer().render(data)
    assert json.loads(fast) == json.loads(JSONRenderer().render(data))


def test_pretty_output_and_empty_body():
    renderer = FastJSONRenderer()
    assert renderer.render(None) == b""
    pretty = renderer.render({"a": 1}, "application/json; indent=2", {})
    assert pretty.decode().startswith("{\n")


def test_heatmap_cells_are_written_as_objects():
    from wellbeing.analytics_selectors import HeatmapCell

    cells = (
        HeatmapCell("stress", True, 41.3, 7, -2.5),
        HeatmapCell("burnout", False, None, None, None),
    )
    assert json.loads(FastJSONRenderer().render({"cells": cells})) == {
        "cells": [
            {"dimension": "stress", "published": True, "index": 41.3, "n": 7, "change": -2.5},
            {"dimension": "burnout", "published": False, "index": None, "n": None, "change": None},
        ]
    }
