"""Number scales and axes: chart figures as ``Decimal``, round tick values, the vertical scale
from figures to pixels, and the y axis drawn from it.

Money stays ``Decimal`` (floats are refused, as in :mod:`comanage.core.money`); only the
pixel geometry is computed in floats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from comanage.core.money import to_decimal

from .svg import LABEL_SIZE, Canvas, draw_text, hline
from .text import middle, text_width


def amount(value: object) -> Decimal:
    """A figure for a chart: Decimal or int or numeric string; floats refused, as in money."""
    return to_decimal(value)


def maybe_amount(value: object) -> Decimal | None:
    return None if value is None else amount(value)


def series_data(
    series: Sequence[tuple[str, Sequence[object | None]]], count: int, noun: str
) -> tuple[list[str], list[list[Decimal | None]]]:
    """Series names and figures; each series must have one value (or None) per ``noun``."""
    names = [str(name) for name, _ in series]
    data = [[maybe_amount(v) for v in values] for _, values in series]
    for name, values in zip(names, data, strict=True):
        if len(values) != count:
            raise ValueError(f"series {name!r} has {len(values)} values for {count} {noun}")
    return names, data


# --------------------------------------------------------------------------- ticks


def _nice_steps(raw: Decimal) -> Iterator[Decimal]:
    """1, 2, 2.5, 5 x 10^n, from the first one at least ``raw``, upwards."""
    exponent = raw.adjusted()
    while True:
        base = Decimal(1).scaleb(exponent)
        for multiple in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5)):
            step = multiple * base
            if step >= raw:
                yield step
        exponent += 1


def nice_ticks(low: object, high: object, *, max_ticks: int = 6) -> list[Decimal]:
    """Round tick values covering [low, high]: steps of 1, 2, 2.5 or 5 x 10^n.

    At most ``max_ticks`` ticks (and at least two); the first is <= low, the last >= high.
    """
    lo, hi = amount(low), amount(high)
    if max_ticks < 2:
        raise ValueError("at least two ticks")
    if lo > hi:
        lo, hi = hi, lo
    if lo == hi:
        if lo > 0:
            lo = Decimal(0)
        elif lo < 0:
            hi = Decimal(0)
        else:
            hi = Decimal(1)
    raw = (hi - lo) / (max_ticks - 1)
    for step in _nice_steps(raw):
        start = (lo / step).to_integral_value(rounding=ROUND_FLOOR)
        end = (hi / step).to_integral_value(rounding=ROUND_CEILING)
        if end - start + 1 <= max_ticks:
            return [(start + i) * step for i in range(int(end - start) + 1)]
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- the y axis


@dataclass(frozen=True)
class YScale:
    ticks: list[Decimal]
    top: float
    bottom: float

    @property
    def lo(self) -> Decimal:
        return self.ticks[0]

    @property
    def hi(self) -> Decimal:
        return self.ticks[-1]

    def y(self, value: Decimal) -> float:
        span = float(self.hi - self.lo) or 1.0
        return self.bottom - float(value - self.lo) / span * (self.bottom - self.top)


def y_axis(
    canvas: Canvas, scale: YScale, left: float, right: float, fmt: Callable[[Decimal], str]
) -> None:
    """Gridlines with tick labels right-aligned in the left gutter; the zero line stronger."""
    palette = canvas.palette
    for tick in scale.ticks:
        y = scale.y(tick)
        canvas.add(hline(left, right, y, palette.grid))
        canvas.add(
            draw_text(left - 8, middle(y, LABEL_SIZE), fmt(tick), fill=palette.muted, anchor="end")
        )


def zero_line(canvas: Canvas, scale: YScale, left: float, right: float) -> None:
    if scale.lo <= 0 <= scale.hi:
        canvas.add(hline(left, right, scale.y(Decimal(0)), canvas.palette.axis, 1.0))


def gutter(labels: Sequence[str]) -> float:
    """Width of the left gutter that holds the widest tick label."""
    return max((text_width(s, LABEL_SIZE) for s in labels), default=0.0) + 14
