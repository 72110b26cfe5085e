"""The pure SVG charts: accessible, gaps never carry a number, text is escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from wellbeing.charts import (
    DistributionBar,
    TrendChartPoint,
    TrendChartText,
    distribution_chart_svg,
    trend_chart_svg,
)

SVG = "{http://www.w3.org/2000/svg}"
TEXT = TrendChartText(
    title="Stress", description="Stress over 4 cycles", gap="Not enough responses"
)


def _points() -> list[TrendChartPoint]:
    return [
        TrendChartPoint(label="6 Jan", value=41.25, low=35.0, high=47.5),
        TrendChartPoint(label="13 Jan", value=None),
        TrendChartPoint(label="20 Jan", value=44.0, low=38.0, high=50.0),
        TrendChartPoint(label="27 Jan", value=52.0, low=46.0, high=58.0, highlight=True),
    ]


def test_trend_chart_is_an_image_named_by_its_title_and_description():
    # given / when
    svg = trend_chart_svg(_points(), chart_id="stress-team", text=TEXT)
    root = ET.fromstring(svg)
    # then
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}title").text == "Stress"
    assert root.find(f"{SVG}desc").get("id") == desc_id


def test_suppressed_cycle_is_a_labelled_gap_without_a_number():
    # given / when
    svg = trend_chart_svg(_points(), chart_id="c1", text=TEXT)
    root = ET.fromstring(svg)
    gaps = [g for g in root.iter(f"{SVG}g") if g.get("class") == "gap"]
    # then: one gap, labelled in words, carrying no digits except its date label
    assert len(gaps) == 1
    label = gaps[0].find(f"{SVG}title").text
    assert label == "13 Jan: Not enough responses"
    # and the line is broken at the gap: the published points either side are not joined
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "series"]
    assert len(lines) == 1
    assert len(lines[0].get("points").split()) == 2


def test_flagged_cycle_uses_a_different_marker_shape_not_only_colour():
    # given / when
    root = ET.fromstring(trend_chart_svg(_points(), chart_id="c1", text=TEXT))
    points = [g for g in root.iter(f"{SVG}g") if g.get("class") == "point"]
    # then
    marks = [[c.tag for c in g if c.tag != f"{SVG}title"][0] for g in points]
    assert marks == [f"{SVG}circle", f"{SVG}circle", f"{SVG}path"]
    assert "Cycle behind the flag" in points[-1].find(f"{SVG}title").text


def test_point_labels_give_value_and_interval_in_text():
    root = ET.fromstring(trend_chart_svg(_points(), chart_id="c1", text=TEXT))
    titles = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "point"]
    assert titles[0] == "6 Jan: 41.2 (35–47.5)" or titles[0] == "6 Jan: 41.3 (35–47.5)"


def test_chart_text_is_escaped():
    # given a team name with markup
    text = TrendChartText(title='<script>alert("x")</script>', description="a & b")
    # when
    svg = trend_chart_svg(_points(), chart_id='x"><script>', text=text)
    # then it parses as XML and contains no live markup
    ET.fromstring(svg)
    assert "<script>" not in svg


def test_all_suppressed_history_says_so_and_draws_no_series():
    points = [TrendChartPoint(label=f"w{i}", value=None) for i in range(3)]
    root = ET.fromstring(trend_chart_svg(points, chart_id="c", text=TEXT))
    assert not list(root.iter(f"{SVG}polyline"))
    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "point"]
    assert "No published cycles yet" in ET.tostring(root, encoding="unicode")


def test_values_outside_the_scale_are_clamped_into_the_plot():
    points = [TrendChartPoint(label="a", value=130.0), TrendChartPoint(label="b", value=-5.0)]
    svg = trend_chart_svg(points, chart_id="c", text=TEXT, height=240)
    root = ET.fromstring(svg)
    markers = [g.find(f"{SVG}circle") for g in root.iter(f"{SVG}g") if g.get("class") == "point"]
    ys = [float(m.get("cy")) for m in markers]
    assert ys == [12.0, 240 - 58]


def test_distribution_chart_labels_each_band_with_its_share():
    bars = [DistributionBar(label="0–20", share=0.25), DistributionBar(label="20–40", share=0.75)]
    root = ET.fromstring(
        distribution_chart_svg(bars, chart_id="d", title="Stress now", description="2 bands")
    )
    assert root.get("role") == "img"
    labels = [g.find(f"{SVG}title").text for g in root.iter(f"{SVG}g") if g.get("class") == "bar"]
    assert labels == ["0–20: 25%", "20–40: 75%"]


def test_x_labels_of_a_long_history_do_not_overlap_and_include_the_latest_cycle():
    points = [TrendChartPoint(label=f"{i:02d}/01/2026", value=50.0) for i in range(52)]
    root = ET.fromstring(trend_chart_svg(points, chart_id="c", text=TEXT, width=640))
    labels = [t for g in root.iter(f"{SVG}g") if g.get("class") == "x-labels" for t in g]
    xs = [float(t.get("x")) for t in labels]
    assert labels[-1].text == "51/01/2026"
    assert all(b - a >= 10 * 5.5 for a, b in zip(xs, xs[1:], strict=False))


def _legend(root):
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    return [(float(t.get("x")), float(t.get("y")), t.text) for t in legend.iter(f"{SVG}text")]


def test_a_legend_too_long_for_one_line_flows_onto_the_next_inside_the_drawing():
    # given the legend's words in a language that needs more room than one line
    long = TrendChartText(
        title="Stress",
        description="Stress über 4 Check-ins",
        series="Index",
        band="Unsicherheitsintervall",
        gap="Zu wenige Antworten",
        highlight="Check-in, der den Hinweis ausgelöst hat",
    )
    # when
    root = ET.fromstring(trend_chart_svg(_points(), chart_id="de", text=long, width=640))
    entries = _legend(root)
    # then every entry ends inside the drawing, on two lines, and the drawing grew to hold them
    assert all(x + len(text) * 6.2 <= 640 for x, _, text in entries)
    assert len({y for _, y, _ in entries}) == 2
    assert root.get("viewBox") == "0 0 640 256"
    # and the short English legend keeps one line and the usual size
    short = ET.fromstring(trend_chart_svg(_points(), chart_id="en", text=TEXT, width=640))
    assert len({y for _, y, _ in _legend(short)}) == 1
    assert short.get("viewBox") == "0 0 640 240"


def test_the_latest_cycle_label_stays_inside_the_drawing():
    points = [TrendChartPoint(label=f"{d:02d}.11.2026", value=40.0) for d in range(1, 27)]
    root = ET.fromstring(trend_chart_svg(points, chart_id="x", text=TEXT, width=640))
    labels = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "x-labels")
    last = list(labels.iter(f"{SVG}text"))[-1]
    assert last.text == "26.11.2026"
    assert (last.get("text-anchor"), float(last.get("x"))) == ("end", 638.0)
