"""Server-rendered, accessible SVG charts for the dashboards.  Pure: no Django import.

Every chart is an inline ``<svg role="img">`` with a ``<title>`` and ``<desc>`` (referenced by
``aria-labelledby``), so it works without JavaScript or any CDN.  Colour is never the only
signal: suppressed cycles are hatched columns labelled in text, flagged cycles use a different
marker shape, and the uncertainty band is a hatched area named in the legend.  The caller gives
every visible string already translated and formatted (this module knows no locale) and must
pass only published figures: a ``None`` value is drawn as a gap and never as a number.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

SCALE_MIN = 0.0
SCALE_MAX = 100.0


@dataclass(frozen=True)
class TrendChartPoint:
    """One cycle on a trend chart.  ``value is None`` means the cycle was suppressed (< k)."""

    label: str  # x-axis label, already localised (e.g. "3 Mar")
    value: float | None
    low: float | None = None
    high: float | None = None
    highlight: bool = False  # e.g. a cycle a flag rests on
    value_text: str | None = None  # the value (and interval) as the caller's locale writes it


@dataclass(frozen=True)
class TrendChartText:
    """Translated strings a trend chart shows; the caller owns the wording."""

    title: str
    description: str
    y_axis: str = "Index (0–100, higher is worse)"
    series: str = "Index"
    band: str = "Uncertainty interval"
    gap: str = "Not enough responses"
    highlight: str = "Cycle behind the flag"
    empty: str = "No published cycles yet"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _safe_id(chart_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id)
    return cleaned if cleaned[:1].isalpha() else f"c-{cleaned}"


def _clamp(value: float) -> float:
    return min(SCALE_MAX, max(SCALE_MIN, float(value)))


def _fmt(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _runs(points: Sequence[TrendChartPoint]) -> list[list[int]]:
    """Indices of consecutive published points; a suppressed cycle breaks the line."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i, point in enumerate(points):
        if point.value is None:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(i)
    if current:
        runs.append(current)
    return runs


def trend_chart_svg(
    points: Sequence[TrendChartPoint],
    *,
    chart_id: str,
    text: TrendChartText,
    width: int = 640,
    height: int = 240,
) -> str:
    """A line chart of a 0-100 index over cycles with its uncertainty band and gaps.

    Suppressed cycles are hatched columns carrying the ``text.gap`` label (no number); cycles
    marked ``highlight`` get a diamond marker instead of a circle.
    """
    cid = _safe_id(chart_id)
    left, right, top, bottom = 44, 12, 12, 58
    plot_w = max(1, width - left - right)
    plot_h = max(1, height - top - bottom)
    count = len(points)
    step = plot_w / count if count else plot_w

    def x_at(i: int) -> float:
        return left + step * (i + 0.5)

    def y_at(value: float) -> float:
        return top + plot_h * (1 - (_clamp(value) - SCALE_MIN) / (SCALE_MAX - SCALE_MIN))

    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart trend-chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{_e(text.title)}</title>',
        f'<desc id="{cid}-desc">{_e(text.description)}</desc>',
        "<defs>",
        f'<pattern id="{cid}-gap" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eceef1"/>'
        '<line x1="0" y1="0" x2="0" y2="6" stroke="#8a939c" stroke-width="2"/></pattern>',
        f'<pattern id="{cid}-band" width="5" height="5" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(-45)"><rect width="5" height="5" fill="#d7e6f6"/>'
        '<line x1="0" y1="0" x2="0" y2="5" stroke="#a9c6e6" stroke-width="1"/></pattern>',
        "</defs>",
    ]
    # Grid and y axis: 0, 25, 50, 75, 100.
    parts.append('<g class="axis" aria-hidden="true">')
    for tick in (0, 25, 50, 75, 100):
        y = y_at(tick)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" '
            'stroke="#d5dae0" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#4a5560">{tick}</text>'
        )
    parts.append(
        f'<text x="12" y="{top + plot_h / 2:.1f}" font-size="11" fill="#4a5560" '
        f'text-anchor="middle" transform="rotate(-90 12 {top + plot_h / 2:.1f})">'
        f"{_e(text.y_axis)}</text>"
    )
    parts.append("</g>")

    if not any(p.value is not None for p in points):
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle" font-size="14" fill="#4a5560">{_e(text.empty)}</text>'
        )

    # Suppressed cycles: hatched columns with a text label, never a number.
    for i, point in enumerate(points):
        if point.value is not None:
            continue
        x0 = left + step * i + 1
        parts.append(
            f'<g class="gap"><title>{_e(point.label)}: {_e(text.gap)}</title>'
            f'<rect x="{x0:.1f}" y="{top}" width="{max(1.0, step - 2):.1f}" height="{plot_h}" '
            f'fill="url(#{cid}-gap)" opacity="0.8"/></g>'
        )

    runs = _runs(points)
    # Uncertainty band per run of published cycles.
    for run in runs:
        banded = [
            (x_at(i), y_at(p.high), y_at(p.low))
            for i in run
            if (p := points[i]).low is not None and p.high is not None
        ]
        if len(banded) == 1:
            x, y_high, y_low = banded[0]
            parts.append(
                f'<rect class="band" x="{x - 4:.1f}" y="{y_high:.1f}" width="8" '
                f'height="{max(1.0, y_low - y_high):.1f}" fill="url(#{cid}-band)"/>'
            )
        elif banded:
            upper = " ".join(f"{x:.1f},{yh:.1f}" for x, yh, _ in banded)
            lower = " ".join(f"{x:.1f},{yl:.1f}" for x, _, yl in reversed(banded))
            parts.append(
                f'<polygon class="band" points="{upper} {lower}" fill="url(#{cid}-band)"/>'
            )
    # The index line, broken at gaps.
    for run in runs:
        line_points = [(x_at(i), p.value) for i in run if (p := points[i]).value is not None]
        if len(line_points) < 2:
            continue
        line = " ".join(f"{x:.1f},{y_at(v):.1f}" for x, v in line_points)
        parts.append(
            f'<polyline class="series" points="{line}" fill="none" stroke="#0b5cad" '
            'stroke-width="2.5" stroke-linejoin="round"/>'
        )
    # Markers: circles, diamonds for highlighted cycles; each names its value.
    for i, point in enumerate(points):
        if point.value is None:
            continue
        x, y = x_at(i), y_at(point.value)
        if point.value_text is not None:
            label = f"{point.label}: {point.value_text}"
        else:
            label = f"{point.label}: {_fmt(point.value)}"
            if point.low is not None and point.high is not None:
                label += f" ({_fmt(point.low)}–{_fmt(point.high)})"
        if point.highlight:
            label += f" — {text.highlight}"
            shape = (
                f'<path d="M{x:.1f} {y - 7:.1f} L{x + 7:.1f} {y:.1f} L{x:.1f} {y + 7:.1f} '
                f'L{x - 7:.1f} {y:.1f} Z" fill="#a4161a" stroke="#fff" stroke-width="1.5"/>'
            )
        else:
            shape = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#0b5cad" stroke="#fff" '
                'stroke-width="1.5"/>'
            )
        parts.append(f'<g class="point"><title>{_e(label)}</title>{shape}</g>')

    # X labels: as many as fit without overlapping (about 5.5 px per character at 10 px), the
    # outermost ones kept inside the drawing.
    widest = max((len(p.label) for p in points), default=1) * 5.5 + 10
    every = max(1, math.ceil(count * widest / plot_w)) if count else 1
    parts.append('<g class="x-labels" aria-hidden="true">')
    for i, point in enumerate(points):
        if (count - 1 - i) % every:  # anchored on the latest cycle, which is always labelled
            continue
        x, anchor, half = x_at(i), "middle", len(point.label) * 5.5 / 2
        if x + half > width - 2:
            x, anchor = width - 2, "end"
        elif x - half < 2:
            x, anchor = 2, "start"
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="{anchor}" '
            f'font-size="10" fill="#4a5560">{_e(point.label)}</text>'
        )
    parts.append("</g>")

    # Legend in words and shapes, not colour alone; its entries flow onto further lines when
    # their words (longer in some languages) do not fit on one.
    entries = [("series", text.series), ("band", text.band), ("gap", text.gap)]
    if any(p.highlight for p in points):
        entries.append(("highlight", text.highlight))
    placed: list[tuple[float, int, str, str]] = []
    x, row = float(left), 0
    for kind, label in entries:
        entry_w = 20 + len(label) * 6.2
        if x > left and x + entry_w > width - right:
            x, row = float(left), row + 1
        placed.append((x, row, kind, label))
        x += entry_w + 24
    parts.append('<g class="legend" aria-hidden="true" font-size="11" fill="#1b1f24">')
    for x, row, kind, label in placed:
        ly = height - 14 + LEGEND_LINE * row
        parts.append(_legend_symbol(kind, x, ly, cid))
        parts.append(f'<text x="{x + 20:.1f}" y="{ly}">{_e(label)}</text>')
    parts.append("</g></svg>")
    extra = LEGEND_LINE * placed[-1][1]
    if extra:  # taller by the legend's further lines; the plot keeps its size
        parts[0] = parts[0].replace(
            f'viewBox="0 0 {width} {height}"', f'viewBox="0 0 {width} {height + extra}"', 1
        )
    return "".join(parts)


LEGEND_LINE = 16  # px between the legend's lines


def _legend_symbol(kind: str, x: float, ly: float, cid: str) -> str:
    if kind == "series":
        return f'<circle cx="{x + 6:.1f}" cy="{ly - 4}" r="4" fill="#0b5cad"/>'
    if kind == "highlight":
        cx = x + 6
        return (
            f'<path d="M{cx:.1f} {ly - 11} L{cx + 6:.1f} {ly - 4} L{cx:.1f} {ly + 3} '
            f'L{cx - 6:.1f} {ly - 4} Z" fill="#a4161a"/>'
        )
    pattern = "band" if kind == "band" else "gap"
    return f'<rect x="{x:.1f}" y="{ly - 10}" width="14" height="12" fill="url(#{cid}-{pattern})"/>'


@dataclass(frozen=True)
class DistributionBar:
    label: str  # e.g. "0–20"
    share: float  # 0-1 of the respondents


def distribution_chart_svg(
    bars: Sequence[DistributionBar],
    *,
    chart_id: str,
    title: str,
    description: str,
    width: int = 320,
    bar_height: int = 22,
) -> str:
    """Horizontal bars of the share of respondents per index band, each labelled in text."""
    cid = _safe_id(chart_id)
    label_w, value_w, gap = 70, 48, 6
    height = max(1, len(bars)) * (bar_height + gap) + gap
    plot_w = max(1, width - label_w - value_w)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart distribution-chart" id="{cid}" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{_e(title)}</title>',
        f'<desc id="{cid}-desc">{_e(description)}</desc>',
    ]
    for i, bar in enumerate(bars):
        share = min(1.0, max(0.0, float(bar.share)))
        y = gap + i * (bar_height + gap)
        percent = f"{share * 100:.0f}%"
        parts.append(
            f'<g class="bar"><title>{_e(bar.label)}: {percent}</title>'
            f'<text x="{label_w - 6}" y="{y + bar_height * 0.7:.1f}" text-anchor="end" '
            f'font-size="11" fill="#1b1f24">{_e(bar.label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{plot_w}" height="{bar_height}" fill="#eceef1"/>'
            f'<rect x="{label_w}" y="{y}" width="{plot_w * share:.1f}" height="{bar_height}" '
            'fill="#0b5cad"/>'
            f'<text x="{label_w + plot_w + 6}" y="{y + bar_height * 0.7:.1f}" font-size="11" '
            f'fill="#1b1f24">{percent}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
