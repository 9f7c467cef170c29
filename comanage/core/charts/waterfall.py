"""The waterfall chart: the bridge from gross savings to the physician pool."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from comanage.core.money import format_money

from .scales import YScale, amount, gutter, nice_ticks, y_axis, zero_line
from .svg import (
    LABEL_SIZE,
    WIDTH,
    Canvas,
    Palette,
    SvgMarkup,
    bar_rect,
    draw_lines,
    draw_text,
    el,
    new_canvas,
    no_data,
)
from .text import format_compact_money, text_width


@dataclass(frozen=True)
class _Subtotal:
    """Marker for a waterfall step that shows the running total instead of a change."""

    def __repr__(self) -> str:
        return "SUBTOTAL"


SUBTOTAL = _Subtotal()

# label, start, end, kind ("start", "change" or "total")
_Bar = tuple[str, Decimal, Decimal, str]


def _bars(steps: Sequence[tuple[str, object]]) -> list[_Bar]:
    """The steps as bars from their start level to their end level (the total not yet added)."""
    bars: list[_Bar] = []
    running = Decimal(0)
    for i, (label, change) in enumerate(steps):
        if change is SUBTOTAL:
            bars.append((str(label), Decimal(0), running, "total"))
            continue
        if change is None:
            raise ValueError(f"step {label!r} has no amount; use SUBTOTAL for a running total")
        value = amount(change)
        bars.append((str(label), running, running + value, "start" if i == 0 else "change"))
        running += value
    return bars


def _wording(start: Decimal, end: Decimal, kind: str) -> tuple[str, Decimal]:
    """(the amount in words, the amount the bar shows): a total shows its level, a step its
    change, signed unless it is the starting amount."""
    change = end - start
    if kind == "total":
        return format_money(end), end
    if kind == "start":
        return format_money(change), change
    return ("+" if change >= 0 else "") + format_money(change), change


def _bar(
    canvas: Canvas,
    scale: YScale,
    bar: _Bar,
    box: tuple[float, float, float],
    previous_end: tuple[float, float] | None,
) -> tuple[str, tuple[float, float]]:
    """Draws one bar, its connector from the previous one and its value label.

    ``box`` is (centre x, slot width, bar width). Returns the wording and the bar's end point.
    """
    pal = canvas.palette
    label, start, end, kind = bar
    cx, slot, bar_width = box
    bx = cx - bar_width / 2
    change = end - start
    if kind == "total":
        colour = pal.total
    elif change >= 0:
        colour = pal.increase
    else:
        colour = pal.decrease
    wording_value, shown_value = _wording(start, end, kind)
    y0, y1 = scale.y(start), scale.y(end)
    if previous_end is not None:
        # Connector from the previous bar's end level to this bar.
        px, py = previous_end
        connect_y = y0 if kind != "total" else y1
        canvas.add(
            el(
                "line",
                x1=px,
                y1=py,
                x2=bx,
                y2=connect_y,
                stroke=pal.axis,
                stroke_width=1.0,
                stroke_dasharray="3 3",
            )
            if abs(py - connect_y) < 0.5
            else ""
        )
    canvas.add(bar_rect(bx, y0, y1, bar_width, colour, f"{label}: {wording_value}"))
    text = wording_value
    if text_width(text, LABEL_SIZE) > slot - 4:
        compact = format_compact_money(shown_value)
        text = ("+" + compact) if kind == "change" and change >= 0 else compact
    goes_up = (end >= start) if kind != "total" else end >= 0
    ly = min(y0, y1) - 7 if goes_up else max(y0, y1) + LABEL_SIZE + 3
    canvas.add(
        draw_text(
            cx,
            ly,
            text,
            fill=pal.text,
            anchor="middle",
            weight="600" if kind == "total" else None,
        )
    )
    return wording_value, (bx + bar_width, y1)


def waterfall_chart(
    *,
    title: str,
    steps: Sequence[tuple[str, object]],
    total_label: str,
    palette: Palette | None = None,
    show_title: bool = True,
    height: int = 340,
) -> SvgMarkup:
    """A bridge from the first amount to the total, e.g. gross savings to the physician pool.

    Each step is ``(label, change)``: the first is the starting amount, the rest add to it
    (deductions are negative). ``(label, SUBTOTAL)`` draws the running total at that point
    (net savings, physician pool); the last bar, ``total_label``, is always the final total.
    """
    canvas = new_canvas(title, palette, show_title)
    pal = canvas.palette
    y = canvas.header()
    y = canvas.legend(
        y,
        [
            ("Increase", pal.increase, "box"),
            ("Decrease", pal.decrease, "box"),
            ("Total", pal.total, "box"),
        ],
    )
    bars = _bars(steps)
    if not bars:
        return no_data(canvas, y + 4, 120.0)
    bars.append((str(total_label), Decimal(0), bars[-1][2], "total"))  # the last level

    levels = [Decimal(0)] + [v for _, a, b, _ in bars for v in (a, b)]
    ticks = nice_ticks(min(levels), max(levels))
    has_negative = min(levels) < 0
    plot_top = y + 18
    plot_bottom = height - 40 - (16 if has_negative else 0)
    scale = YScale(ticks, plot_top, plot_bottom)
    left = gutter([format_compact_money(t) for t in ticks])
    right = float(WIDTH)
    y_axis(canvas, scale, left, right, format_compact_money)

    slot = (right - left) / len(bars)
    bar_width = min(slot * 0.62, 72.0)
    desc_parts = []
    previous_end: tuple[float, float] | None = None
    for i, bar in enumerate(bars):
        cx = left + slot * i + slot / 2
        wording_value, previous_end = _bar(canvas, scale, bar, (cx, slot, bar_width), previous_end)
        label = bar[0]
        canvas.add(
            draw_lines(cx, height - 22, label, max_width=slot - 6, fill=pal.muted, max_lines=2)
        )
        desc_parts.append(f"{label} {wording_value}")
    zero_line(canvas, scale, left, right)
    desc = "Waterfall chart. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)
