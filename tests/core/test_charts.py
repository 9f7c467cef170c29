"""The SVG charts: well-formed, accessible, escaped, deterministic, and drawn the right way up."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from comanage.core import charts
from comanage.core.charts import (
    DEFAULT_PALETTE,
    SUBTOTAL,
    Palette,
    bar_chart,
    format_compact_money,
    indicator_chart,
    line_chart,
    nice_ticks,
    progress_bar_chart,
    waterfall_chart,
)
from comanage.core.money import FloatMoneyError, format_money

NS = "{http://www.w3.org/2000/svg}"
NASTY = 'Ortho <spine> & "joints" \x01 \u2019s'

D = Decimal


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{NS}text")]


def tooltips(root: ET.Element) -> list[str]:
    """Every <title> except the document's own."""
    return [t.text or "" for t in root.iter(f"{NS}title")][1:]


def sample_charts() -> dict[str, str]:
    return {
        "indicator": indicator_chart(
            title=f"Readmissions {NASTY}",
            direction="lower_is_better",
            threshold=D("18"),
            target=D("16"),
            stretch=D("14.5"),
            baseline=D("19.2"),
            results=[("Q1", D("17.85")), (NASTY, None), ("Q3", D("14.1"))],
            unit="%",
        ),
        "bar": bar_chart(
            title=f"Savings {NASTY}",
            categories=["Cardio", NASTY, "Onc"],
            series=[(NASTY, [D("1200000"), D("-250000"), None]), ("2024", [D(5), D(6), D(7)])],
        ),
        "stacked": bar_chart(
            title="Stacked",
            categories=["2023", NASTY],
            series=[("Fixed", [D("300000"), D("300000")]), ("Clawback", [D("-40000"), None])],
            stacked=True,
        ),
        "waterfall": waterfall_chart(
            title="Bridge",
            steps=[("Gross", D("2400000")), (NASTY, D("-180000")), ("Net", SUBTOTAL)],
            total_label=f"Paid {NASTY}",
        ),
        "progress": progress_bar_chart(
            title="Hours",
            items=[(NASTY, D("46.5"), D("48")), ("Over", D("60"), D("48"))],
            unit=" h",
        ),
        "line": line_chart(
            title="Trend",
            x_labels=["2021", NASTY, "2023"],
            series=[(NASTY, [D("1.5"), None, D("2")]), ("Other", [D(1), D(2), D(3)])],
        ),
    }


@pytest.mark.parametrize("kind", list(sample_charts()))
def test_each_chart_is_well_formed_accessible_svg(kind):
    svg = sample_charts()[kind]
    root = parse(svg)
    assert root.tag == f"{NS}svg"
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert root.get("viewBox", "").startswith("0 0 720 ")
    assert "sans-serif" in root.get("font-family", "")
    first, second = list(root)[:2]
    assert first.tag == f"{NS}title"
    assert first.text
    assert second.tag == f"{NS}desc"
    assert len(second.text or "") > 10
    assert root.get("aria-labelledby") == f"{first.get('id')} {second.get('id')}"
    # Self-contained: nothing WeasyPrint or a strict CSP would trip over.
    lowered = svg.lower()
    for forbidden in ("<script", "<style", "href=", "@import", "url(", "onload", "<foreignobject"):
        assert forbidden not in lowered


@pytest.mark.parametrize("kind", list(sample_charts()))
def test_labels_are_escaped_and_survive_in_the_text_alternatives(kind):
    root = parse(sample_charts()[kind])
    everything = " ".join(
        [*texts(root), *tooltips(root), root.find(f"{NS}desc").text, root.find(f"{NS}title").text]
    )
    # The control character is replaced, the markup characters come back as themselves.
    assert "\x01" not in everything
    assert "<spine>" in everything or "Ortho <sp" in everything
    assert "&" in everything


def test_output_is_deterministic():
    first, second = sample_charts(), sample_charts()
    assert first == second
    assert all(isinstance(svg, charts.SvgMarkup) for svg in first.values())


def test_it_marks_itself_safe_for_django_templates():
    svg = sample_charts()["bar"]
    assert svg.__html__() == str(svg)


def test_charts_on_one_page_get_distinct_ids():
    ids = {parse(svg).find(f"{NS}title").get("id") for svg in sample_charts().values()}
    assert len(ids) == len(sample_charts())


def test_palette_is_used():
    palette = Palette(series=("#112233", "#445566"))
    svg = bar_chart(
        title="T", categories=["a"], series=[("s", [D(1)]), ("t", [D(2)])], palette=palette
    )
    assert 'fill="#112233"' in svg
    assert 'fill="#445566"' in svg
    assert DEFAULT_PALETTE.series[0] not in svg


# --------------------------------------------------------------------------- bars


def bar_rects(root: ET.Element) -> dict[str, tuple[float, float]]:
    """Tooltip text -> (top, bottom) for each bar."""
    out = {}
    for rect in root.iter(f"{NS}rect"):
        title = rect.find(f"{NS}title")
        if title is not None:
            top = float(rect.get("y"))
            out[title.text] = (top, top + float(rect.get("height")))
    return out


def zero_line_y(root: ET.Element) -> float:
    lines = [
        line
        for line in root.iter(f"{NS}line")
        if line.get("stroke") == DEFAULT_PALETTE.axis
        and line.get("y1") == line.get("y2")
        and line.get("stroke-dasharray") is None
    ]
    assert len(lines) == 1
    return float(lines[0].get("y1"))


def test_negative_bars_hang_below_the_zero_line():
    root = parse(
        bar_chart(
            title="Savings",
            categories=["Cardio", "Onc"],
            series=[("2024", [D("412345.67"), D("-98000")])],
        )
    )
    zero = zero_line_y(root)
    bars = bar_rects(root)
    up = bars["Cardio \u00b7 2024: $412,345.67"]
    down = bars["Onc \u00b7 2024: -$98,000.00"]
    assert up[1] == pytest.approx(zero)
    assert up[0] < zero
    assert down[0] == pytest.approx(zero)
    assert down[1] > zero
    # Heights are proportional to the amounts.
    assert (up[1] - up[0]) / (down[1] - down[0]) == pytest.approx(412345.67 / 98000, rel=1e-3)


def test_stacked_negative_parts_go_below_zero_and_positive_parts_stack_up():
    root = parse(sample_charts()["stacked"])
    zero = zero_line_y(root)
    bars = bar_rects(root)
    assert bars["2023 \u00b7 Clawback: -$40,000.00"][0] == pytest.approx(zero)
    assert bars["2023 \u00b7 Fixed: $300,000.00"][1] == pytest.approx(zero)
    desc = root.find(f"{NS}desc").text
    assert "total $260,000.00" in desc
    assert "Clawback no value" in desc


def test_a_missing_bar_is_marked_not_drawn_as_zero():
    root = parse(sample_charts()["bar"])
    assert "\u2014" in texts(root)  # the one empty value, as in the tables
    assert not any("Onc \u00b7 Ortho" in t for t in bar_rects(root))
    assert "no value" in root.find(f"{NS}desc").text


def test_money_labels_use_the_house_format():
    svg = bar_chart(title="T", categories=["a"], series=[("s", [D("1234.5")])])
    root = parse(svg)
    assert "$1,234.50" in texts(root)
    assert format_money(D("1234.5")) in root.find(f"{NS}desc").text


def test_percent_and_number_formats():
    root = parse(
        bar_chart(
            title="Scores",
            categories=["A"],
            series=[("s", [D("94.5")])],
            value_format="percent",
        )
    )
    assert "94.50%" in texts(root)
    assert "100%" in texts(root)
    with pytest.raises(ValueError):
        bar_chart(title="T", categories=["a"], series=[("s", [D(1)])], value_format="euros")


def test_floats_are_refused():
    with pytest.raises(FloatMoneyError):
        bar_chart(title="T", categories=["a"], series=[("s", [1.5])])
    with pytest.raises(FloatMoneyError):
        waterfall_chart(title="T", steps=[("a", 2.0)], total_label="t")


def test_series_length_must_match_categories():
    with pytest.raises(ValueError):
        bar_chart(title="T", categories=["a", "b"], series=[("s", [D(1)])])
    with pytest.raises(ValueError):
        line_chart(title="T", x_labels=["a"], series=[("s", [D(1), D(2)])])


def test_a_title_is_required():
    with pytest.raises(ValueError):
        bar_chart(title=" ", categories=["a"], series=[("s", [D(1)])])


def test_empty_data_renders_a_placeholder():
    for svg in (
        bar_chart(title="T", categories=[], series=[]),
        bar_chart(title="T", categories=["a"], series=[("s", [None])]),
        line_chart(title="T", x_labels=["a"], series=[("s", [None])]),
        waterfall_chart(title="T", steps=[], total_label="Total"),
        progress_bar_chart(title="T", items=[]),
    ):
        root = parse(svg)
        assert "No data" in texts(root)


def test_long_labels_are_truncated_with_the_full_text_as_tooltip():
    long = " ".join(["Protocol development and pathway review for the cardiac cath lab"] * 3)
    root = parse(
        bar_chart(
            title="T",
            categories=[long, "b", "c", "d", "e", "f"],
            series=[("s", [D(1)] * 6)],
        )
    )
    shown = [t for t in texts(root) if t.endswith("\u2026")]
    assert len(shown) == 1
    assert len(shown[0]) < len(long)
    assert "Protocol" in texts(root)  # wrapped onto two lines, the second cut short
    assert long in tooltips(root)


# --------------------------------------------------------------------------- waterfall


def test_waterfall_runs_to_the_total_with_subtotals():
    svg = waterfall_chart(
        title="Savings 2024",
        steps=[
            ("Gross savings", D("2400000")),
            ("Administrator fee", D("-180000")),
            ("Net savings", SUBTOTAL),
            ("Hospital share", D("-1110000")),
            ("Physician pool", SUBTOTAL),
            ("Above cap", D("-310000")),
        ],
        total_label="Paid to physicians",
    )
    root = parse(svg)
    desc = root.find(f"{NS}desc").text
    assert "Net savings $2,220,000.00" in desc
    assert "Physician pool $1,110,000.00" in desc
    assert "Paid to physicians $800,000.00" in desc
    assert "Administrator fee -$180,000.00" in desc
    bars = bar_rects(root)
    zero = zero_line_y(root)
    total = bars["Paid to physicians: $800,000.00"]
    assert total[1] == pytest.approx(zero)
    fee = bars["Administrator fee: -$180,000.00"]
    gross = bars["Gross savings: $2,400,000.00"]
    net = bars["Net savings: $2,220,000.00"]
    # The fee hangs from the top of the gross bar down to the top of the net bar.
    assert fee[0] == pytest.approx(gross[0])
    assert fee[1] == pytest.approx(net[0])


def test_waterfall_can_go_negative():
    root = parse(
        waterfall_chart(
            title="Loss year",
            steps=[("Gross", D("100000")), ("Fees", D("-250000"))],
            total_label="Net",
        )
    )
    zero = zero_line_y(root)
    net = bar_rects(root)["Net: -$150,000.00"]
    assert net[0] == pytest.approx(zero)
    assert net[1] > zero


def test_waterfall_refuses_a_missing_amount():
    with pytest.raises(ValueError, match="SUBTOTAL"):
        waterfall_chart(title="T", steps=[("a", D(1)), ("b", None)], total_label="t")


# --------------------------------------------------------------------------- progress


def test_progress_bars_show_share_and_overrun():
    svg = progress_bar_chart(
        title="Cap used",
        items=[
            ("Incentive cap", D("412000"), D("500000")),
            ("FMV max", D("1020000"), D("1000000")),
        ],
        value_format="money",
    )
    root = parse(svg)
    shown = texts(root)
    assert "$412,000.00 of $500,000.00 \u00b7 82.40%" in shown
    assert "$1,020,000.00 of $1,000,000.00 \u00b7 102.00%" in shown
    assert f'fill="{DEFAULT_PALETTE.over_target}"' in svg
    assert "FMV max: $20,000.00 over target" in tooltips(root)


def test_progress_with_a_zero_target():
    root = parse(progress_bar_chart(title="T", items=[("Duty", D("3"), D("0"))], unit=" h"))
    assert "3 h of 0 h \u00b7 no target" in texts(root)


# --------------------------------------------------------------------------- line


def test_a_missing_point_breaks_the_line():
    root = parse(
        line_chart(
            title="T", x_labels=["a", "b", "c", "d"], series=[("s", [D(1), D(2), None, D(4)])]
        )
    )
    polylines = list(root.iter(f"{NS}polyline"))
    assert len(polylines) == 1  # a-b; d alone is only a marker
    assert len(polylines[0].get("points").split()) == 2
    assert "c no value" in root.find(f"{NS}desc").text


def test_line_chart_series_have_different_markers():
    root = parse(sample_charts()["line"])
    assert list(root.iter(f"{NS}circle"))
    assert list(root.iter(f"{NS}rect"))


# --------------------------------------------------------------------------- indicator


def test_indicator_lower_is_better_tiers_and_no_score():
    root = parse(sample_charts()["indicator"])
    shown = texts(root)
    assert "no score" in shown
    assert "No score" in shown
    assert "Threshold met" in shown  # 17.85 <= 18
    assert "Stretch met" in shown  # 14.1 <= 14.5
    desc = root.find(f"{NS}desc").text
    assert desc.startswith("Lower is better.")
    assert "Q1 17.85% (threshold met)" in desc
    assert "no score" in desc
    assert any(line.get("stroke-dasharray") == "5 4" for line in root.iter(f"{NS}line"))


def test_indicator_bands_run_downwards_when_lower_is_better():
    root = parse(sample_charts()["indicator"])
    bands = {
        rect.get("fill"): float(rect.get("y"))
        for rect in root.iter(f"{NS}rect")
        if rect.get("fill") in DEFAULT_PALETTE.tier_bands
    }
    threshold_band, target_band, stretch_band = (bands[c] for c in DEFAULT_PALETTE.tier_bands)
    assert threshold_band < target_band < stretch_band


def test_indicator_compares_unrounded_but_shows_two_decimals():
    root = parse(
        indicator_chart(
            title="Aspirin",
            direction="higher_is_better",
            threshold=D("90"),
            target=D("95"),
            stretch=D("98"),
            baseline=None,
            results=[("FY2024", D("94.996"))],
            unit="%",
        )
    )
    shown = texts(root)
    assert "95.00%" in shown
    assert "Threshold met" in shown
    assert "Target met" not in shown


def test_indicator_with_a_non_percent_unit_and_missing_tier():
    root = parse(
        indicator_chart(
            title="CLABSI",
            direction="lower_is_better",
            threshold=D("1.2"),
            target=D("0.9"),
            stretch=None,
            baseline=None,
            results=[("Jan", D("1.3")), ("Feb", D("0.5"))],
            unit="per 1,000 line days",
        )
    )
    shown = texts(root)
    assert "Below threshold" in shown
    assert "Target met" in shown
    assert any("per 1,000 line days" in t for t in shown)
    assert "Jan 1.30 per 1,000 line days (below threshold)" in root.find(f"{NS}desc").text


def test_indicator_refuses_an_unknown_direction():
    with pytest.raises(ValueError):
        indicator_chart(
            title="T",
            direction="up",
            threshold=D(1),
            target=D(2),
            stretch=D(3),
            baseline=None,
            results=[],
            unit="",
        )


# --------------------------------------------------------------------------- ticks and formats


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1234567, ["0", "250000", "500000", "750000", "1000000", "1250000"]),
        (0, 97, ["0", "20", "40", "60", "80", "100"]),
        (-250000, 1450000, ["-500000", "0", "500000", "1000000", "1500000"]),
        (0, 0, ["0", "0.2", "0.4", "0.6", "0.8", "1"]),
        (D("3.75"), D("4.9"), ["3.75", "4", "4.25", "4.5", "4.75", "5"]),
    ],
)
def test_nice_ticks_examples(low, high, expected):
    assert [format(t.normalize(), "f") for t in nice_ticks(low, high)] == expected


@given(
    st.decimals(
        min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False
    ),
    st.decimals(
        min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False
    ),
)
def test_nice_ticks_cover_the_range_with_round_steps(a, b):
    ticks = nice_ticks(a, b)
    assert 2 <= len(ticks) <= 6
    assert ticks[0] <= min(a, b)
    assert ticks[-1] >= max(a, b)
    steps = {y - x for x, y in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    step = steps.pop()
    mantissa = step.scaleb(-step.adjusted()).normalize()
    assert mantissa in {D(1), D(2), D("2.5"), D(5)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("1200000"), "$1.2M"),
        (D("1234567.89"), "$1.23M"),
        (D("350000"), "$350K"),
        (D("-2500"), "-$2.5K"),
        (D("999999"), "$1M"),
        (D("2500000000"), "$2.5B"),
        (D("120"), "$120"),
        (D("12.5"), "$12.50"),
        (D("0"), "$0"),
    ],
)
def test_compact_money(value, expected):
    assert format_compact_money(value) == expected
