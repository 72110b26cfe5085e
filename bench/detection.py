"""Detection-quality benchmark for Pulse's deterioration detector.

Simulates many teams answering weekly check-ins and measures, for the production detector
(``wellbeing.stats.detector``) and for two naive rules tuned to the same false-alarm rate:

- the in-control average run length (cycles to the first false alarm) and false flags per
  team-year (52 weekly cycles), on teams whose stress never changes;
- the median detection delay (cycles from the start of a sustained shift to the first flag) for
  shifts of 0.5, 1 and 2 standard deviations of the team's cycle mean.

A diagnostic table (no target) breaks the production rule down by team size (members invited):
its false flags and its delay at a 1 sd shift per size band.

The simulation: team sizes 5-40; each member has a stable personal level (sd 15 index points)
and weekly noise (sd 12); the team has weekly shocks (sd 3); a respondent's index is rounded to
the 100/12 steps of a three-item five-point scale and clipped to 0-100; each team has its own
participation rate (Beta(14, 6), mean 70 %) and members answer independently each week, so n
varies binomially; cycles with fewer than k = 5 respondents are hidden (None), as in production.

Baselines are estimated from the simulated history exactly as in production: at every cycle the
detector sees what the flag job passes it, the last ``HISTORY_CYCLES`` (52) cycles of the history
so far, so a team's baseline grows, freezes, and after a year rolls forward with the window
(statuses come from the vectorised chart that ``detect_deterioration`` itself runs, and a sample
of teams is replayed through ``detect_deterioration`` on every window to prove they agree).

    python bench/detection.py            # full run (about a minute), writes bench/results/
    python bench/detection.py --quick    # small run for CI
    python bench/detection.py --tune     # search the EWMA limit L for ARL0 >= 500
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wellbeing.stats.detector import (  # noqa: E402
    DETECTOR_L,
    DETECTOR_L_WITHOUT_SD,
    HISTORY_CYCLES,
    MAX_BASELINE_CYCLES,
    CyclePoint,
    detect_deterioration,
    monitored_in_window,
    team_baseline_batch,
    team_status_windowed,
)
from wellbeing.stats.ewma import ewma_upper_batch  # noqa: E402

K = 5
MAX_SIZE = 40
CYCLES_PER_YEAR = 52
BASELINE_CYCLES = 12
LAM = 0.2
SHIFTS = (0.5, 1.0, 2.0)
SHIFT_START = 26  # the shift begins half a year in
SHIFT_HORIZON = 52  # followed for a year
RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Teams:
    x: np.ndarray  # teams x cycles, team index (NaN when hidden)
    n: np.ndarray  # teams x cycles, respondents
    s: np.ndarray  # teams x cycles, the respondents' sample sd (what the aggregates store)
    sd: np.ndarray  # per team: sd of its in-control cycle mean (the shift unit)
    mu: np.ndarray  # per team: long-run in-control mean (what an oracle baseline would know)
    invited: np.ndarray | None = None  # per team: members invited each cycle (the team size)


def simulate(rng: np.random.Generator, teams: int, cycles: int, shift: float, start: int) -> Teams:
    """Teams x cycles of team indices; ``shift`` (sds of the team mean) from cycle ``start``."""
    xs, ns, ss, sds, mus, sizes = [], [], [], [], [], []
    for lo in range(0, teams, 250):
        m = min(250, teams - lo)
        size = rng.integers(5, MAX_SIZE + 1, m)
        rate = rng.beta(14, 6, m)
        level = rng.normal(45, 8, m)
        person = rng.normal(0, 15, (m, MAX_SIZE))
        member = np.arange(MAX_SIZE)[None, :] < size[:, None]
        latent = (
            level[:, None, None]
            + rng.normal(0, 3, (m, cycles))[:, :, None]
            + person[:, None, :]
            + rng.normal(0, 12, (m, cycles, MAX_SIZE))
        )
        responds = (rng.random((m, cycles, MAX_SIZE)) < rate[:, None, None]) & member[:, None, :]
        n = responds.sum(axis=2).astype(float)

        def team_means(lat: np.ndarray, responds=responds, n=n) -> tuple[np.ndarray, np.ndarray]:
            step = 100.0 / 12.0
            idx = np.clip(np.round(lat / step) * step, 0.0, 100.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = (idx * responds).sum(axis=2) / n
                var = (((idx - mean[:, :, None]) ** 2) * responds).sum(axis=2) / (n - 1)
            shown = n >= K
            return np.where(shown, mean, np.nan), np.where(shown, np.sqrt(var), np.nan)

        calm, calm_s = team_means(latent)
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.nanstd(calm, axis=1, ddof=1)
        if shift:
            bump = np.where(np.arange(cycles)[None, :] >= start, shift * sd[:, None], 0.0)
            x, s = team_means(latent + bump[:, :, None])
        else:
            x, s = calm, calm_s
        xs.append(x)
        ss.append(s)
        ns.append(np.where(n >= K, n, np.nan))
        sds.append(sd)
        sizes.append(size.astype(float))
        with np.errstate(invalid="ignore"):
            mus.append(np.nanmean(calm, axis=1))
    return Teams(
        x=np.vstack(xs),
        n=np.vstack(ns),
        s=np.vstack(ss),
        sd=np.concatenate(sds),
        mu=np.concatenate(mus),
        invited=np.concatenate(sizes),
    )


def carry(values: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Carry each row's last observed value forward over unobserved cycles (False before)."""
    out = np.zeros_like(values, dtype=bool)
    current = np.zeros(values.shape[0], dtype=bool)
    for j in range(values.shape[1]):
        current = np.where(observed[:, j], values[:, j], current)
        out[:, j] = current
    return out


def monitored_mask(t: Teams) -> np.ndarray:
    """Cycles at which the team has a complete baseline (status is not "not_enough_data")."""
    usable = np.isfinite(t.x)
    return np.cumsum(usable, axis=1) > BASELINE_CYCLES


@dataclass(frozen=True)
class Setup:
    """What the flag job reads (``cycles``), the longest team baseline within it and the chart's
    smoothing ``lam``: production's by default, others for sensitivity runs."""

    cycles: int = HISTORY_CYCLES
    max_baseline: int = MAX_BASELINE_CYCLES
    lam: float = LAM


PRODUCTION = Setup()


def in_control_cycles(cycles: int, setup: Setup) -> int:
    """``cycles`` of in-control history at production's read; a longer read gets as many
    cycles after it starts rolling as production's does."""
    return max(cycles, setup.cycles + cycles - HISTORY_CYCLES)


def pulse_status(
    t: Teams, L: float, setup: Setup = PRODUCTION, L_without_sd: float = DETECTOR_L_WITHOUT_SD
) -> np.ndarray:
    """The production chart on what the flag job reads: the last ``setup.cycles`` cycles
    (``HISTORY_CYCLES`` in production), with ``setup``'s longest baseline and smoothing."""
    above, _ = team_status_windowed(
        t.x,
        t.n,
        t.s,
        window=setup.cycles,
        baseline_cycles=BASELINE_CYCLES,
        max_baseline_cycles=setup.max_baseline,
        lam=setup.lam,
        L=L,
        L_without_sd=L_without_sd,
    )
    return above


def oracle_status(t: Teams, L: float, lam: float = LAM) -> np.ndarray:
    """The same EWMA with the team's true in-control mean and sd (a ceiling, not a product)."""
    z = np.where(monitored_mask(t), (t.x - t.mu[:, None]) / t.sd[:, None], np.nan)
    stats, limits = ewma_upper_batch(z, lam=lam, L=L)
    return carry(stats > limits, np.isfinite(z))


def shewhart_status(t: Teams, level: float) -> np.ndarray:
    z = team_baseline_batch(t.x, t.n, t.s, baseline_cycles=BASELINE_CYCLES).z
    observed = np.isfinite(z)
    return carry(np.where(observed, z > level, False), observed)


def fixed_level_status(t: Teams, level: float) -> np.ndarray:
    observed = np.isfinite(t.x) & monitored_mask(t)
    return carry(np.where(observed, t.x > level, False), observed)


def false_alarms(status: np.ndarray, monitored: np.ndarray) -> dict[str, float]:
    """ARL0 (censored-geometric estimate of cycles to the first false flag) and flags/team-year."""
    status = status & monitored
    onset = status & ~np.concatenate([np.zeros((status.shape[0], 1), bool), status[:, :-1]], axis=1)
    onsets = int(onset.sum())
    exposure = int(monitored.sum())
    first_alarm = onset.any(axis=1)
    first_at = np.where(first_alarm, onset.argmax(axis=1), status.shape[1])
    start = np.where(monitored.any(axis=1), monitored.argmax(axis=1), status.shape[1])
    time_to_first = np.clip(first_at - start + first_alarm, 0, None)
    events = int(first_alarm.sum())
    arl = float(time_to_first.sum() / events) if events else math.inf
    return {
        "arl0_cycles": arl,
        "flags_per_team_year": CYCLES_PER_YEAR * onsets / exposure if exposure else math.nan,
        "monitored_team_cycles": exposure,
        "first_false_alarms": events,
    }


def delays(status: np.ndarray, t: Teams, start: int) -> dict[str, float]:
    """Median cycles from the shift start to the first flag, over teams monitored before it."""
    monitored = monitored_mask(t)
    eligible = monitored[:, start - 1] & ~status[:, start - 1]
    after = status[eligible, start:]
    detected = after.any(axis=1)
    delay = np.where(detected, after.argmax(axis=1) + 1, np.inf)
    return {
        "median_delay_cycles": float(np.median(delay)) if delay.size else math.nan,
        "detected_within_8": float(np.mean(delay <= 8)) if delay.size else math.nan,
        "detected_within_52": float(np.mean(detected)) if delay.size else math.nan,
        "teams": int(eligible.sum()),
        "teams_without_baseline_yet": int((~monitored[:, start - 1]).sum()),
    }


def tune_level(status_for, t: Teams, target_arl: float, lo: float, hi: float) -> float:
    """Bisect a naive rule's level so its ARL0 on the in-control teams matches ``target_arl``."""
    monitored = monitored_mask(t)
    for _ in range(40):
        mid = (lo + hi) / 2
        if false_alarms(status_for(t, mid), monitored)["arl0_cycles"] < target_arl:
            lo = mid
        else:
            hi = mid
    return hi


def replay_check(
    t: Teams, status: np.ndarray, L: float, teams: int, setup: Setup = PRODUCTION
) -> int:
    """Replay teams through detect_deterioration on every growing prefix, cut to the last
    ``setup.cycles`` cycles as the flag job reads it; count the cycles."""
    checked = 0
    # causal: depends only on cycles up to j
    monitored = monitored_in_window(t.x, t.n, window=setup.cycles, baseline_cycles=BASELINE_CYCLES)
    for i in range(min(teams, t.x.shape[0])):
        history = [
            CyclePoint(
                index=None if math.isnan(v) else float(v),
                n=0 if math.isnan(c) else int(c),
                sd=None if math.isnan(sd) else float(sd),
            )
            for v, c, sd in zip(t.x[i], t.n[i], t.s[i], strict=True)
        ]
        for j in range(len(history)):
            result = detect_deterioration(
                history[max(0, j - setup.cycles + 1) : j + 1],
                baseline_cycles=BASELINE_CYCLES,
                max_baseline_cycles=setup.max_baseline,
                lam=setup.lam,
                L=L,
            )
            expected = "signal" if status[i, j] else "in_control"
            if not monitored[i, j]:
                expected = "not_enough_data"
            if result.status != expected:
                raise AssertionError(f"team {i} cycle {j}: {result.status} != {expected}")
            checked += 1
    return checked


# Team-size bands (members invited) for the diagnostic breakdown of the production rule.
SIZE_BANDS = ((5, 7), (8, 11), (12, 19), (20, 29), (30, 40))


def subset(t: Teams, rows: np.ndarray) -> Teams:
    invited = None if t.invited is None else t.invited[rows]
    return Teams(
        x=t.x[rows], n=t.n[rows], s=t.s[rows], sd=t.sd[rows], mu=t.mu[rows], invited=invited
    )


def by_team_size(
    calm: Teams, calm_status: np.ndarray, shifted: Teams, shifted_status: np.ndarray, start: int
) -> dict[str, dict[str, float]]:
    """Diagnostic (no target): the production rule's false flags and 1 sd delays per size band."""
    assert calm.invited is not None and shifted.invited is not None
    out = {}
    for lo, hi in SIZE_BANDS:
        ic = (calm.invited >= lo) & (calm.invited <= hi)
        sh = (shifted.invited >= lo) & (shifted.invited <= hi)
        fa = false_alarms(calm_status[ic], monitored_mask(subset(calm, ic)))
        d = delays(shifted_status[sh], subset(shifted, sh), start)
        out[f"{lo}-{hi}"] = {
            "arl0_cycles": fa["arl0_cycles"],
            "flags_per_team_year": fa["flags_per_team_year"],
            "median_delay_cycles_1sd": d["median_delay_cycles"],
            "detected_within_8_1sd": d["detected_within_8"],
            "teams_1sd": d["teams"],
        }
    return out


def run(
    quick: bool, L: float, seed: int, shift_start: int = SHIFT_START, setup: Setup = PRODUCTION
) -> dict:
    rng = np.random.default_rng(seed)
    n_ic, cycles_ic = (400, 120) if quick else (8000, 220)
    cycles_ic = in_control_cycles(cycles_ic, setup)
    n_shift = 300 if quick else 4000
    began = time.perf_counter()
    print(f"in-control: {n_ic} teams x {cycles_ic} cycles ...", flush=True)
    calm = simulate(rng, n_ic, cycles_ic, 0.0, 0)
    monitored = monitored_mask(calm)
    calm_pulse = pulse_status(calm, L, setup)  # the windowed chart: computed once, used 4 times
    target = false_alarms(calm_pulse, monitored)["arl0_cycles"]
    level_z = tune_level(shewhart_status, calm, target, 0.0, 8.0)
    level_abs = tune_level(fixed_level_status, calm, target, 0.0, 100.0)
    oracle = partial(oracle_status, lam=setup.lam)
    oracle_L = tune_level(oracle, calm, target, 1.0, 5.0)
    rules = {
        "pulse_ewma": lambda t: calm_pulse if t is calm else pulse_status(t, L, setup),
        "naive_team_level": lambda t: shewhart_status(t, level_z),
        "naive_fixed_level": lambda t: fixed_level_status(t, level_abs),
        "ceiling_known_baseline": lambda t: oracle(t, oracle_L),
    }
    report: dict = {
        "config": {
            "quick": quick,
            "seed": seed,
            "lam": setup.lam,
            "L": L,
            "k": K,
            "baseline_cycles": BASELINE_CYCLES,
            "in_control_teams": n_ic,
            "in_control_cycles": cycles_ic,
            "shift_teams": n_shift,
            "max_baseline_cycles": setup.max_baseline,
            "window_cycles": setup.cycles,
            "shift_start_cycle": shift_start,
            "naive_team_level_z": level_z,
            "naive_fixed_level_index": level_abs,
            "ceiling_known_baseline_L": oracle_L,
        },
        "in_control": {name: false_alarms(rule(calm), monitored) for name, rule in rules.items()},
        "shifts": {},
    }
    checked = replay_check(calm, calm_pulse, L, 3 if quick else 12, setup)
    for shift in SHIFTS:
        print(f"shift {shift} sd: {n_shift} teams ...", flush=True)
        shifted = simulate(rng, n_shift, shift_start + SHIFT_HORIZON, shift, shift_start)
        statuses = {name: rule(shifted) for name, rule in rules.items()}
        report["shifts"][str(shift)] = {
            name: delays(status, shifted, shift_start) for name, status in statuses.items()
        }
        if shift == 1.0:
            report["pulse_by_team_size"] = by_team_size(
                calm, calm_pulse, shifted, statuses["pulse_ewma"], shift_start
            )
            checked += replay_check(shifted, statuses["pulse_ewma"], L, 2 if quick else 8, setup)
    report["replayed_team_cycles"] = checked
    report["seconds"] = round(time.perf_counter() - began, 1)
    return report


def _speed(d: dict) -> tuple[float, float]:
    return (d["median_delay_cycles"], -d["detected_within_52"])


def targets(report: dict) -> dict[str, bool]:
    pulse = report["in_control"]["pulse_ewma"]
    s = report["shifts"]
    return {
        "ARL0 >= 500": pulse["arl0_cycles"] >= 500,
        "1 sd median delay <= 8": s["1.0"]["pulse_ewma"]["median_delay_cycles"] <= 8,
        "2 sd median delay <= 3": s["2.0"]["pulse_ewma"]["median_delay_cycles"] <= 3,
        # faster = lower median delay; when both medians are beyond the horizon, more detected
        "faster than naive at every shift": all(
            _speed(s[k]["pulse_ewma"]) < _speed(s[k][naive])
            for k in s
            for naive in ("naive_team_level", "naive_fixed_level")
        ),
    }


def markdown(report: dict) -> str:
    c = report["config"]
    lines = [
        "# Detection benchmark",
        "",
        f"{'Quick' if c['quick'] else 'Full'} run, seed {c['seed']}: EWMA lambda {c['lam']}, "
        f"L {c['L']}, baseline the first {c['baseline_cycles']} growing to "
        f"{c['max_baseline_cycles']} usable cycles of the last {c['window_cycles']} "
        f"(respondent sds pooled), k {c['k']}; "
        f"{c['in_control_teams']} in-control teams x {c['in_control_cycles']} cycles, "
        f"{c['shift_teams']} teams per shift (shift starts at cycle {c['shift_start_cycle']}).",
        f"Naive rules tuned to the same ARL0: team level z > {c['naive_team_level_z']:.3f}, "
        f"fixed index > {c['naive_fixed_level_index']:.1f}; the ceiling row is the same EWMA "
        f"knowing each team's true mean and sd (L {c['ceiling_known_baseline_L']:.3f}), "
        "which no product can have.",
        "",
        "| rule | ARL0 (cycles) | false flags / team-year | median delay 0.5 sd | 1 sd | 2 sd |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, ic in report["in_control"].items():
        d = [report["shifts"][str(s)][name]["median_delay_cycles"] for s in SHIFTS]
        lines.append(
            f"| {name} | {ic['arl0_cycles']:.0f} | {ic['flags_per_team_year']:.3f} | "
            + " | ".join(f"{v:g}" for v in d)
            + " |"
        )
    lines += ["", "| shift | rule | detected within 8 cycles | within 52 | teams |"]
    lines += ["| --- | --- | ---: | ---: | ---: |"]
    for shift, rules in report["shifts"].items():
        for name, d in rules.items():
            lines.append(
                f"| {shift} sd | {name} | {d['detected_within_8']:.0%} | "
                f"{d['detected_within_52']:.0%} | {d['teams']} |"
            )
    if "pulse_by_team_size" in report:
        lines += [
            "",
            "Diagnostic, no target: pulse_ewma by team size (members invited); delay at 1 sd.",
            "",
            "| team size | ARL0 (cycles) | false flags / team-year | median delay 1 sd "
            "| detected within 8 | teams |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for band, d in report["pulse_by_team_size"].items():
            lines.append(
                f"| {band} | {d['arl0_cycles']:.0f} | {d['flags_per_team_year']:.3f} | "
                f"{d['median_delay_cycles_1sd']:g} | {d['detected_within_8_1sd']:.0%} | "
                f"{d['teams_1sd']} |"
            )
    lines += [
        "",
        "Targets: "
        + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets(report).items()),
    ]
    lines += [
        f"Replayed through detect_deterioration: {report['replayed_team_cycles']} team-cycles, all equal."
    ]
    return "\n".join(lines) + "\n"


def tune(seed: int, setup: Setup = PRODUCTION) -> None:
    """ARL0 over a grid of L, with the respondents' sds (DETECTOR_L) and without them."""
    rng = np.random.default_rng(seed)
    calm = simulate(rng, 8000, in_control_cycles(220, setup), 0.0, 0)
    monitored = monitored_mask(calm)
    no_sd = Teams(x=calm.x, n=calm.n, s=np.full_like(calm.s, np.nan), sd=calm.sd, mu=calm.mu)
    for label, teams, grid in (
        ("with sd", calm, np.arange(2.3, 2.86, 0.05)),
        ("without sd", no_sd, np.arange(2.6, 3.16, 0.05)),
    ):
        for L in grid:
            above = pulse_status(teams, float(L), setup, L_without_sd=float(L))
            fa = false_alarms(above, monitored)
            print(
                f"{label}: L={L:.2f} ARL0={fa['arl0_cycles']:.0f} "
                f"flags/team-year={fa['flags_per_team_year']:.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (CI)")
    parser.add_argument("--tune", action="store_true", help="print ARL0 over a grid of L")
    parser.add_argument("--L", type=float, default=DETECTOR_L)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--shift-start", type=int, default=SHIFT_START, help="cycle the shift begins (sensitivity)"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=HISTORY_CYCLES,
        help="cycles the flag job reads (sensitivity; production reads HISTORY_CYCLES)",
    )
    parser.add_argument(
        "--max-baseline",
        type=int,
        default=MAX_BASELINE_CYCLES,
        help="longest team baseline in usable cycles (sensitivity)",
    )
    parser.add_argument("--lam", type=float, default=LAM, help="the EWMA's smoothing (sensitivity)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not BASELINE_CYCLES < args.max_baseline < args.window:
        parser.error(f"--max-baseline must be above {BASELINE_CYCLES} and below --window")
    setup = Setup(cycles=args.window, max_baseline=args.max_baseline, lam=args.lam)
    if args.tune:
        tune(args.seed, setup)
        return
    report = run(args.quick, args.L, args.seed, args.shift_start, setup)
    report["targets"] = targets(report)
    md = markdown(report)
    print(md)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detection.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    (args.out / "detection.md").write_text(md)
    met = sum(report["targets"].values())
    print(
        f"detection benchmark: {met}/{len(report['targets'])} targets met in {report['seconds']} s"
    )


if __name__ == "__main__":
    main()
