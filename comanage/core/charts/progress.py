"""The progress bars: actual against target, one row per item (hours logged against the hours
required, the distribution cap used)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from comanage.core.money import round_percentage

from .scales import amount
from .svg import (
    LABEL_SIZE,
    WIDTH,
    Canvas,
    Palette,
    SvgMarkup,
    draw_text,
    el,
    new_canvas,
    no_data,
    tooltip_rect,
)
from .text import check_format, fixed, text_width, value_formatter

ROW_HEIGHT = 46.0
TRACK_HEIGHT = 8.0


def _fill(
    canvas: Canvas,
    label: str,
    actual: Decimal,
    target: Decimal,
    track_y: float,
    fmt: Callable[[Decimal], str],
) -> None:
    """The filled part of a track, drawn to scale: up to the target, then the excess past it
    with the target marked."""
    pal = canvas.palette
    full = max(actual, target, Decimal(0))
    if not (full > 0 and actual > 0):
        return
    scale = WIDTH / float(full)
    within = min(actual, target) if target > 0 else Decimal(0)
    if within > 0:
        canvas.add(
            tooltip_rect(
                f"{label}: {fmt(actual)} of {fmt(target)}",
                x=0.0,
                y=track_y,
                width=max(float(within) * scale, 2.0),
                height=TRACK_HEIGHT,
                rx=4.0,
                fill=pal.increase,
            )
        )
    if actual > target:
        _excess(
            canvas, f"{label}: {fmt(actual - target)} over target", target, within, track_y, scale
        )


def _excess(
    canvas: Canvas, tooltip: str, target: Decimal, within: Decimal, track_y: float, scale: float
) -> None:
    pal = canvas.palette
    start = float(max(target, Decimal(0))) * scale
    canvas.add(
        tooltip_rect(
            tooltip,
            x=start,
            y=track_y,
            width=max(WIDTH - start, 2.0),
            height=TRACK_HEIGHT,
            rx=4.0,
            fill=pal.over_target,
        )
    )
    if within > 0:
        # Square off the join between the two segments.
        canvas.add(
            el(
                "rect",
                x=max(start - 4, 0.0),
                y=track_y,
                width=min(4.0, start),
                height=TRACK_HEIGHT,
                fill=pal.increase,
            ),
            el(
                "rect",
                x=start,
                y=track_y,
                width=min(4.0, WIDTH - start),
                height=TRACK_HEIGHT,
                fill=pal.over_target,
            ),
        )
    tx = float(target) * scale
    canvas.add(
        el(
            "line",
            x1=tx,
            y1=track_y - 3,
            x2=tx,
            y2=track_y + TRACK_HEIGHT + 3,
            stroke=pal.text,
            stroke_width=1.5,
        )
    )


def _row(
    canvas: Canvas, y: float, item: tuple[str, object, object], fmt: Callable[[Decimal], str]
) -> str:
    """One item's label, figures and track from ``y``; returns its wording."""
    pal = canvas.palette
    label, actual_raw, target_raw = item
    actual, target = amount(actual_raw), amount(target_raw)
    if target > 0:
        share = round_percentage(actual / target * 100)
        share_text = f"{fixed(share)}%"  # every percentage to two decimals
    else:
        share_text = "no target"
    summary = f"{fmt(actual)} of {fmt(target)}"
    right_text = f"{summary} \u00b7 {share_text}"
    right_width = text_width(right_text, LABEL_SIZE)
    label_y = y + 14
    canvas.add(
        draw_text(
            0,
            label_y,
            str(label),
            size=12.5,
            fill=pal.text,
            weight="500",
            max_width=max(WIDTH - right_width - 24, 80.0),
        ),
        draw_text(WIDTH, label_y, right_text, fill=pal.muted, anchor="end"),
    )
    track_y = y + 24
    canvas.add(
        el(
            "rect",
            x=0.0,
            y=track_y,
            width=float(WIDTH),
            height=TRACK_HEIGHT,
            rx=4.0,
            fill=pal.track,
        )
    )
    _fill(canvas, label, actual, target, track_y, fmt)
    return f"{label}: {summary} ({share_text})"


def progress_bar_chart(
    *,
    title: str,
    items: Sequence[tuple[str, object, object]],
    value_format: str = "number",
    unit: str = "",
    palette: Palette | None = None,
    show_title: bool = True,
) -> SvgMarkup:
    """One horizontal bar per item: actual against target (hours logged vs required, cap used).

    A bar past its target is drawn to scale with the target marked and the excess in the
    ``over_target`` colour. ``unit`` is appended to numbers (``" h"``).
    """
    check_format(value_format)
    canvas = new_canvas(title, palette, show_title)
    y = canvas.header() + 2
    if not items:
        return no_data(canvas, y + 4, 80.0)
    base_fmt = value_formatter(value_format)

    def fmt(v: Decimal) -> str:
        return base_fmt(v) + unit

    desc_parts = []
    for item in items:
        desc_parts.append(_row(canvas, y, item, fmt))
        y += ROW_HEIGHT
    desc = "Progress against target. " + "; ".join(desc_parts) + "."
    return canvas.render(y, desc)
