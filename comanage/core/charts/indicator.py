"""The indicator chart: an indicator's results per period against its cut-points (threshold,
target, stretch) and its baseline, with the tier each result meets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .scales import YScale, gutter, maybe_amount, nice_ticks, y_axis
from .svg import (
    LABEL_SIZE,
    WIDTH,
    Canvas,
    Palette,
    SvgMarkup,
    draw_text,
    el,
    hline,
    marker,
    new_canvas,
    no_data,
    polylines,
)
from .text import fixed, middle, plain, spread, text_width

DIRECTIONS = ("higher_is_better", "lower_is_better")
_TIER_NAMES = ("Threshold", "Target", "Stretch")

# (tier index, tier name, cut-point)
_Cut = tuple[int, str, Decimal]


def _indicator_value(value: Decimal, unit: str, fixed_places: bool = True) -> str:
    number = fixed(value) if fixed_places else plain(value)
    if unit == "%":
        return number + "%"
    return f"{number} {unit}".strip()


@dataclass(frozen=True)
class _Plot:
    """The plot area and what every step of the drawing reads."""

    canvas: Canvas
    scale: YScale
    left: float
    right: float
    higher: bool
    unit: str
    cuts: list[_Cut]

    @property
    def top(self) -> float:
        return self.scale.top

    @property
    def bottom(self) -> float:
        return self.scale.bottom

    @property
    def side_unit(self) -> str:
        return "%" if self.unit == "%" else ""


def _cut_points(threshold: object, target: object, stretch: object) -> list[_Cut]:
    return [
        (i, _TIER_NAMES[i], v)
        for i, v in enumerate(maybe_amount(c) for c in (threshold, target, stretch))
        if v is not None
    ]


def _ticks(values: list[Decimal], unit: str) -> list[Decimal]:
    """Ticks around every value with an eighth of the span spare, kept at or above 0 (and at
    or below 100% for percentages) when the values are."""
    low, high = min(values), max(values)
    span = high - low or abs(high) / 10 or Decimal(1)
    low, high = low - span / 8, high + span / 8
    if all(v >= 0 for v in values):
        low = max(low, Decimal(0))
    if unit == "%" and all(v <= 100 for v in values):
        high = min(high, Decimal(100))
    return nice_ticks(low, high)


def _side_width(cuts: list[_Cut], base: Decimal | None, side_unit: str) -> float:
    """Width on the right for the cut-point and baseline labels."""
    side_labels = [f"{name} {_indicator_value(v, side_unit, False)}" for _, name, v in cuts]
    if base is not None:
        side_labels.append(f"Baseline {_indicator_value(base, side_unit, False)}")
    if not side_labels:
        return 8.0
    return min(max(text_width(s, LABEL_SIZE) for s in side_labels) + 14, 170.0)


def _bands(plot: _Plot) -> None:
    """Bands: from each cut-point to the next one in the good direction; the last to the edge."""
    scale, cuts, pal = plot.scale, plot.cuts, plot.canvas.palette
    edge = scale.hi if plot.higher else scale.lo
    for k, (tier, _name, value) in enumerate(cuts):
        upto = cuts[k + 1][2] if k + 1 < len(cuts) else edge
        y0, y1 = scale.y(value), scale.y(upto)
        top, bottom = max(min(y0, y1), plot.top), min(max(y0, y1), plot.bottom)
        if bottom > top:
            plot.canvas.add(
                el(
                    "rect",
                    x=plot.left,
                    y=top,
                    width=plot.right - plot.left,
                    height=bottom - top,
                    fill=pal.tier_bands[tier % len(pal.tier_bands)],
                )
            )


def _cut_lines(plot: _Plot, base: Decimal | None, side_width: float) -> None:
    """The cut-point lines and the dashed baseline, labelled on the right."""
    canvas, scale, pal = plot.canvas, plot.scale, plot.canvas.palette
    left, right = plot.left, plot.right
    side: list[tuple[float, str, str]] = []
    for tier, name, value in plot.cuts:
        ly = scale.y(value)
        colour = pal.tier_lines[tier % len(pal.tier_lines)]
        canvas.add(hline(left, right, ly, colour, 1.5))
        side.append((ly, f"{name} {_indicator_value(value, plot.side_unit, False)}", colour))
    if base is not None:
        ly = scale.y(base)
        canvas.add(hline(left, right, ly, pal.baseline, 1.5, "5 4"))
        side.append((ly, f"Baseline {_indicator_value(base, plot.side_unit, False)}", pal.baseline))
    colours = {text: colour for _, text, colour in side}
    for ly, text in spread([(a, b) for a, b, _ in side], LABEL_SIZE + 3, plot.top, plot.bottom):
        canvas.add(
            hline(right, right + 6, ly, colours[text], 1.5),
            draw_text(
                right + 9, middle(ly, LABEL_SIZE), text, fill=pal.text, max_width=side_width - 10
            ),
        )


def _no_score(plot: _Plot, cx: float, slot: float) -> None:
    """A period without a score: a dotted gap in the line, labelled "no score"."""
    pal = plot.canvas.palette
    centre = (plot.top + plot.bottom) / 2
    plot.canvas.add(
        el(
            "line",
            x1=cx,
            y1=plot.top + 4,
            x2=cx,
            y2=plot.bottom - 4,
            stroke=pal.axis,
            stroke_width=1.0,
            stroke_dasharray="2 4",
        ),
        el(
            "rect",
            x=cx - 30,
            y=centre - 10,
            width=60.0,
            height=20.0,
            rx=10.0,
            fill=pal.background,
            stroke=pal.axis,
            stroke_width=1.0,
        ),
        draw_text(cx, middle(centre, 11), "no score", size=11, fill=pal.muted, anchor="middle"),
        draw_text(
            cx,
            plot.bottom + 33,
            "No score",
            size=11,
            fill=pal.muted,
            anchor="middle",
            max_width=slot - 6,
        ),
    )


def _tier_text(plot: _Plot, score: Decimal, unscored: str) -> str:
    """The tier a result meets (>= a cut-point when higher is better, <= when lower is
    better, compared unrounded as in spec section 2)."""
    met = None
    for _tier, name, cut in plot.cuts:
        if (score >= cut) if plot.higher else (score <= cut):
            met = name
    if unscored:
        # Below the minimum denominator nothing is met, whatever the value: say so.
        return "Too few cases"
    return f"{met} met" if met else ("Below threshold" if plot.cuts else "")


def _result_wording(label: str, score: Decimal, unit: str, tier_text: str, unscored: str) -> str:
    if unscored:
        note = f" (not scored: {unscored})"
    elif tier_text:
        note = f" ({tier_text.lower()})"
    else:
        note = ""
    return f"{label} {_indicator_value(score, unit)}" + note


def _periods(
    plot: _Plot, scored: list[tuple[str, Decimal | None]], unscored: list[str]
) -> tuple[list[tuple[float, float] | None], list[str]]:
    """Each period's label and the tier its result meets; returns the points and the wording."""
    pal = plot.canvas.palette
    slot = (plot.right - plot.left) / max(len(scored), 1)
    points: list[tuple[float, float] | None] = []
    desc_results = []
    for i, (label, maybe_score) in enumerate(scored):
        cx = plot.left + slot * i + slot / 2
        plot.canvas.add(
            draw_text(
                cx, plot.bottom + 18, label, fill=pal.text, anchor="middle", max_width=slot - 6
            )
        )
        if maybe_score is None:
            points.append(None)
            _no_score(plot, cx, slot)
            desc_results.append(f"{label} no score")
            continue
        tier_text = _tier_text(plot, maybe_score, unscored[i])
        points.append((cx, plot.scale.y(maybe_score)))
        plot.canvas.add(
            draw_text(
                cx,
                plot.bottom + 33,
                tier_text,
                size=11,
                fill=pal.muted,
                anchor="middle",
                max_width=slot - 6,
            )
        )
        desc_results.append(_result_wording(label, maybe_score, plot.unit, tier_text, unscored[i]))
    return points, desc_results


def _result_mark(
    plot: _Plot, label: str, result: Decimal, reason: str, px: float, py: float
) -> None:
    """A result's marker (its tooltip says why it was not scored) and its value in a box
    above it, or below it when there is no room above."""
    canvas, pal, unit = plot.canvas, plot.canvas.palette, plot.unit
    canvas.add(
        marker(
            "circle",
            px,
            py,
            pal.result,
            pal.background,
            f"{label}: {_indicator_value(result, unit)}"
            + (f" \u2014 not scored: {reason}" if reason else ""),
        )
    )
    text = _indicator_value(result, plot.side_unit)
    width = text_width(text, LABEL_SIZE) + 8
    above = py - 10 - LABEL_SIZE > plot.top - 6
    box_y = py - 26 if above else py + 9
    canvas.add(
        el(
            "rect",
            x=px - width / 2,
            y=box_y,
            width=width,
            height=17.0,
            rx=3.0,
            fill=pal.background,
            fill_opacity="0.9",
        ),
        draw_text(
            px,
            middle(box_y + 8.5, LABEL_SIZE),
            text,
            fill=pal.text,
            anchor="middle",
            weight="600",
        ),
    )


def _description(plot: _Plot, base: Decimal | None, desc_results: list[str]) -> str:
    cut_words = ", ".join(
        f"{name.lower()} {_indicator_value(v, plot.unit, False)}" for _, name, v in plot.cuts
    )
    desc = f"{'Higher' if plot.higher else 'Lower'} is better."
    if cut_words:
        desc += f" Cut-points: {cut_words}."
    if base is not None:
        desc += f" Baseline {_indicator_value(base, plot.unit, False)}."
    desc += " Results: " + ("; ".join(desc_results) if desc_results else "none") + "."
    return desc


def indicator_chart(
    *,
    title: str,
    direction: str,
    threshold: object | None,
    target: object | None,
    stretch: object | None,
    baseline: object | None,
    results: Sequence[tuple[str, object | None] | tuple[str, object | None, str | None]],
    unit: str = "",
    palette: Palette | None = None,
    show_title: bool = True,
    height: int = 320,
) -> SvgMarkup:
    """An indicator's results per period against its cut-points.

    A result may carry a third element, the reason it was not scored (for instance
    ``"n = 18 is below the minimum of 25"``): its value is still drawn, but the tier under it
    says "Too few cases" and never a tier met, because nothing is paid on it.

    The tiers are shaded bands (threshold -> target -> stretch, darker is better) whose lines
    are labelled on the right; the baseline is dashed. For ``lower_is_better`` the bands run
    downwards. A period with no score (``None``) is a gap in the line labelled "no score".
    Below each period is the tier the result meets (>= a cut-point when higher is better,
    <= when lower is better, compared unrounded as in spec section 2).
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    canvas = new_canvas(title, palette, show_title)
    pal = canvas.palette
    higher = direction == "higher_is_better"
    cuts = _cut_points(threshold, target, stretch)
    base = maybe_amount(baseline)
    scored = [(str(item[0]), maybe_amount(item[1])) for item in results]
    unscored = [str(item[2]) if len(item) > 2 and item[2] else "" for item in results]
    y = canvas.header()
    caption = ("Higher is better" if higher else "Lower is better") + (
        f" \u00b7 {unit}" if unit and unit != "%" else ""
    )
    canvas.add(draw_text(0, y + 10, caption, fill=pal.muted, max_width=WIDTH))
    y += 22
    values = [v for _, _, v in cuts] + [v for _, v in scored if v is not None]
    if base is not None:
        values.append(base)
    if not values:
        return no_data(canvas, y + 4, 120.0, "No results")
    ticks = _ticks(values, unit)
    scale = YScale(ticks, y + 8, height - 44)

    def tick_fmt(v: Decimal) -> str:
        return plain(v) + ("%" if unit == "%" else "")

    left = gutter([tick_fmt(t) for t in ticks])
    side_width = _side_width(cuts, base, "%" if unit == "%" else "")
    plot = _Plot(canvas, scale, left, WIDTH - side_width, higher, unit, cuts)

    _bands(plot)
    y_axis(canvas, scale, plot.left, plot.right, tick_fmt)
    # Gridlines were drawn over the bands; cut-point lines go on top of both.
    _cut_lines(plot, base, side_width)
    points, desc_results = _periods(plot, scored, unscored)
    canvas.add(polylines(points, pal.result, 2.0))
    for (label, result), reason, point in zip(scored, unscored, points, strict=True):
        if point is not None and result is not None:
            _result_mark(plot, label, result, reason, *point)
    return canvas.render(height, _description(plot, base, desc_results))
