"""The bar chart: grouped or stacked vertical bars (incentive earned per agreement, savings per
year, the fixed fee per month)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from .scales import YScale, gutter, nice_ticks, series_data, y_axis, zero_line
from .svg import (
    LABEL_SIZE,
    WIDTH,
    Canvas,
    Palette,
    SvgMarkup,
    bar_rect,
    draw_lines,
    draw_text,
    new_canvas,
    no_data,
)
from .text import check_format, fitted_value, tick_formatter, value_formatter

X_LABEL_LINES = 2


@dataclass(frozen=True)
class _Bars:
    """What drawing one category's bars needs: the scale, the figures and the bar geometry."""

    canvas: Canvas
    scale: YScale
    names: list[str]
    data: list[list[Decimal | None]]
    value_format: str
    slot: float
    bar_width: float
    inner_gap: float
    n_bars: int

    def full(self, value: Decimal) -> str:
        return value_formatter(self.value_format)(value)

    @property
    def used(self) -> float:
        return self.bar_width * self.n_bars + self.inner_gap * (self.n_bars - 1)


def _value_range(data: list[list[Decimal | None]], stacked: bool) -> tuple[Decimal, Decimal]:
    """The lowest and highest level a bar reaches, zero included."""
    if stacked:
        columns = [[v for vs in data if (v := vs[c]) is not None] for c in range(len(data[0]))]
        ups = [sum((v for v in column if v > 0), Decimal(0)) for column in columns]
        downs = [sum((v for v in column if v < 0), Decimal(0)) for column in columns]
        return min([Decimal(0), *downs]), max([Decimal(0), *ups])
    present = [v for vs in data for v in vs if v is not None]
    return min([Decimal(0), *present]), max([Decimal(0), *present])


def _stacked_column(bars: _Bars, c: int, category: str, x0: float, cx: float) -> list[str]:
    """One stacked column: positive parts stack up, negative parts down; the total on top."""
    canvas, scale, pal = bars.canvas, bars.scale, bars.canvas.palette
    wording = []
    up, down = Decimal(0), Decimal(0)
    for s, values in enumerate(bars.data):
        value = values[c]
        if value is None:
            wording.append(f"{bars.names[s]} no value")
            continue
        wording.append(f"{bars.names[s]} {bars.full(value)}")
        if value == 0:
            continue
        start = up if value > 0 else down
        end = start + value
        if value > 0:
            up = end
        else:
            down = end
        canvas.add(
            bar_rect(
                x0,
                scale.y(start),
                scale.y(end),
                bars.bar_width,
                pal.colour(s),
                f"{category} \u00b7 {bars.names[s]}: {bars.full(value)}",
            )
        )
    total = up + down
    label = fitted_value(total, bars.value_format, bars.slot - 4, LABEL_SIZE)
    if label is not None and any(v is not None for v in (vs[c] for vs in bars.data)):
        ly = scale.y(up) - 6 if total >= 0 else scale.y(down) + LABEL_SIZE + 3
        canvas.add(draw_text(cx, ly, label, size=LABEL_SIZE, fill=pal.text, anchor="middle"))
    if len(bars.data) > 1:
        wording.append(f"total {bars.full(total)}")
    return wording


def _grouped_bar(bars: _Bars, s: int, value: Decimal | None, category: str, bx: float) -> str:
    """One bar of a group (or the "—" of a missing value) with its value label; its wording."""
    canvas, scale, pal = bars.canvas, bars.scale, bars.canvas.palette
    name = bars.names[s]
    mid = bx + bars.bar_width / 2
    zero_y = scale.y(Decimal(0))
    if value is None:
        canvas.add(
            draw_text(
                mid,
                zero_y - 5,
                "\u2014",
                size=11,
                fill=pal.muted,
                anchor="middle",
                tooltip=f"{category} \u00b7 {name}: no value",
            )
        )
        return f"{name} no value"
    end_y = scale.y(value)
    canvas.add(
        bar_rect(
            bx,
            zero_y,
            end_y,
            bars.bar_width,
            pal.colour(s),
            f"{category} \u00b7 {name}: {bars.full(value)}",
        )
    )
    room = bars.bar_width + (bars.inner_gap if bars.n_bars > 1 else bars.slot - bars.bar_width) - 2
    label = fitted_value(value, bars.value_format, room, LABEL_SIZE)
    if label is not None:
        ly = end_y - 5 if value >= 0 else end_y + LABEL_SIZE + 2
        canvas.add(draw_text(mid, ly, label, size=LABEL_SIZE, fill=pal.text, anchor="middle"))
    return f"{name} {bars.full(value)}"


def _grouped_column(bars: _Bars, c: int, category: str, x0: float) -> list[str]:
    return [
        _grouped_bar(bars, s, values[c], category, x0 + s * (bars.bar_width + bars.inner_gap))
        for s, values in enumerate(bars.data)
    ]


def bar_chart(
    *,
    title: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[object | None]]],
    value_format: str = "money",
    stacked: bool = False,
    palette: Palette | None = None,
    show_title: bool = True,
    height: int = 320,
) -> SvgMarkup:
    """Grouped (or stacked) vertical bars, one group per category, one bar per series.

    Negative values hang below the zero line (savings can be negative); in a stacked chart the
    positive parts stack upwards and the negative parts downwards. ``None`` is a missing value:
    no bar, a "—" mark. ``value_format`` is ``money``, ``number`` or ``percent`` (values in
    percentage points: 94.5 means 94.5%).
    """
    check_format(value_format)
    canvas = new_canvas(title, palette, show_title)
    pal = canvas.palette
    names, data = series_data(series, len(categories), "categories")
    y = canvas.header()
    if len(series) > 1 or stacked:
        y = canvas.legend(y, [(n, pal.colour(i), "box") for i, n in enumerate(names)])
    if not categories or not series or all(v is None for vs in data for v in vs):
        return no_data(canvas, y + 4, 120.0)

    tick_fmt = tick_formatter(value_format)
    low, high = _value_range(data, stacked)
    ticks = nice_ticks(low, high)
    has_negative = low < 0
    plot_top = y + 18  # room for the value label over the tallest bar
    plot_bottom = height - (X_LABEL_LINES * 14 + 10) - (16 if has_negative else 0)
    scale = YScale(ticks, plot_top, plot_bottom)
    left = gutter([tick_fmt(t) for t in ticks])
    right = float(WIDTH)
    y_axis(canvas, scale, left, right, tick_fmt)

    slot = (right - left) / len(categories)
    group_width = slot * 0.72
    n_bars = 1 if stacked else len(series)
    inner_gap = 0.0 if n_bars == 1 else min(4.0, group_width * 0.06)
    bar_width = min((group_width - inner_gap * (n_bars - 1)) / n_bars, 56.0)
    bars = _Bars(canvas, scale, names, data, value_format, slot, bar_width, inner_gap, n_bars)

    desc_parts = []
    for c, category in enumerate(categories):
        cx = left + slot * c + slot / 2
        x0 = cx - bars.used / 2
        if stacked:
            wording = _stacked_column(bars, c, category, x0, cx)
        else:
            wording = _grouped_column(bars, c, category, x0)
        canvas.add(
            draw_lines(
                cx,
                plot_bottom + (16 if has_negative else 0) + 18,
                category,
                max_width=slot - 6,
                fill=pal.muted,
                max_lines=X_LABEL_LINES,
            )
        )
        desc_parts.append(f"{category}: {', '.join(wording)}")
    zero_line(canvas, scale, left, right)
    kind = "Stacked bar chart" if stacked else "Bar chart"
    desc = f"{kind}. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)
