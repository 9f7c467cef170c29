"""The line chart: trends over periods (savings per year, hours logged per month)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from .scales import YScale, gutter, nice_ticks, series_data, y_axis, zero_line
from .svg import (
    LABEL_SIZE,
    MARKERS,
    WIDTH,
    Canvas,
    Palette,
    SvgMarkup,
    draw_text,
    marker,
    new_canvas,
    no_data,
    polylines,
)
from .text import (
    check_format,
    fitted_value,
    middle,
    spread,
    text_width,
    tick_formatter,
    value_formatter,
)


def _range(present: list[Decimal], include_zero: bool) -> tuple[Decimal, Decimal]:
    low, high = min(present), max(present)
    if include_zero:
        low, high = min(low, Decimal(0)), max(high, Decimal(0))
    elif low == high:
        pad = abs(low) / 10 or Decimal(1)
        low, high = low - pad, high + pad
    return low, high


def _x_positions(n: int, left: float, right: float) -> list[float]:
    inset = 14.0
    if n == 1:
        return [(left + right) / 2]
    return [left + inset + i * (right - left - 2 * inset) / (n - 1) for i in range(n)]


def _series(
    canvas: Canvas,
    scale: YScale,
    s: int,
    name: str,
    values: list[Decimal | None],
    x_labels: Sequence[str],
    xs: list[float],
    value_format: str,
) -> str:
    """One series: its line (broken at ``None``) and markers; returns its wording."""
    pal = canvas.palette
    full_fmt = value_formatter(value_format)
    colour = pal.colour(s)
    points = [None if v is None else (x, scale.y(v)) for x, v in zip(xs, values, strict=True)]
    canvas.add(polylines(points, colour))
    kind = MARKERS[s % len(MARKERS)]
    for label, point, value in zip(x_labels, points, values, strict=True):
        if point is not None and value is not None:
            canvas.add(
                marker(
                    kind,
                    point[0],
                    point[1],
                    colour,
                    pal.background,
                    f"{name}, {label}: {full_fmt(value)}",
                )
            )
    wording = ", ".join(
        f"{label} {'no value' if v is None else full_fmt(v)}"
        for label, v in zip(x_labels, values, strict=True)
    )
    return f"{name}: {wording}"


def line_chart(
    *,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[object | None]]],
    value_format: str = "number",
    include_zero: bool = False,
    palette: Palette | None = None,
    show_title: bool = True,
    height: int = 300,
) -> SvgMarkup:
    """Trends over periods. ``None`` breaks the line. Each series has its own marker shape,
    so the lines are told apart without colour. The last value of each series is labelled.
    """
    check_format(value_format)
    canvas = new_canvas(title, palette, show_title)
    pal = canvas.palette
    names, data = series_data(series, len(x_labels), "labels")
    y = canvas.header()
    if len(series) > 1:
        y = canvas.legend(y, [(n, pal.colour(i), "line") for i, n in enumerate(names)])
    present = [v for vs in data for v in vs if v is not None]
    if not x_labels or not present:
        return no_data(canvas, y + 4, 120.0)
    ticks = nice_ticks(*_range(present, include_zero))
    tick_fmt = tick_formatter(value_format)
    plot_top = y + 12
    plot_bottom = height - 34
    scale = YScale(ticks, plot_top, plot_bottom)
    left = gutter([tick_fmt(t) for t in ticks])
    end_labels = [
        fitted_value(vs[-1], value_format, 90, LABEL_SIZE) if vs and vs[-1] is not None else None
        for vs in data
    ]
    right = WIDTH - max([text_width(t, LABEL_SIZE) + 12 for t in end_labels if t] + [12.0])
    y_axis(canvas, scale, left, right, tick_fmt)
    zero_line(canvas, scale, left, right)
    xs = _x_positions(len(x_labels), left, right)
    spacing = (right - left) / len(x_labels)
    for x, label in zip(xs, x_labels, strict=True):
        canvas.add(
            draw_text(
                x,
                plot_bottom + 22,
                str(label),
                fill=pal.muted,
                anchor="middle",
                max_width=spacing - 4,
            )
        )
    desc_parts = []
    end_positions: list[tuple[float, str]] = []
    for s, values in enumerate(data):
        desc_parts.append(_series(canvas, scale, s, names[s], values, x_labels, xs, value_format))
        if values and values[-1] is not None and end_labels[s]:
            end_positions.append((scale.y(values[-1]), end_labels[s] or ""))
    for ly, text in spread(end_positions, LABEL_SIZE + 3, plot_top, plot_bottom):
        canvas.add(draw_text(right + 10, middle(ly, LABEL_SIZE), text, fill=pal.text))
    desc = "Line chart. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)
