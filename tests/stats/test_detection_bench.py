"""The detection benchmark's quick mode runs to the end and reports every figure (not how good)."""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RULES = {"pulse_ewma", "naive_team_level", "naive_fixed_level", "ceiling_known_baseline"}


def test_quick_detection_benchmark_reports_every_figure(tmp_path):
    # when the quick run completes
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "detection.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]

    # then JSON and Markdown hold the false-alarm figures and every shift's delays for every rule
    report = json.loads((tmp_path / "detection.json").read_text())
    assert set(report["in_control"]) == RULES
    for figures in report["in_control"].values():
        assert figures["arl0_cycles"] > 0 and math.isfinite(figures["flags_per_team_year"])
    assert set(report["shifts"]) == {"0.5", "1.0", "2.0"}
    for rules in report["shifts"].values():
        assert set(rules) == RULES
        for figures in rules.values():
            assert figures["teams"] > 0 and not math.isnan(figures["median_delay_cycles"])
    assert report["replayed_team_cycles"] > 0
    # and the diagnostic breakdown of the production rule covers every team-size band
    bands = report["pulse_by_team_size"]
    assert list(bands) == ["5-7", "8-11", "12-19", "20-29", "30-40"]
    assert (
        sum(b["teams_1sd"] for b in bands.values())
        == report["shifts"]["1.0"]["pulse_ewma"]["teams"]
    )
    assert set(report["targets"]) >= {"ARL0 >= 500", "1 sd median delay <= 8"}
    assert "| pulse_ewma |" in (tmp_path / "detection.md").read_text()
    assert "detection benchmark:" in done.stdout
