"""Server-side SVG charts for the dashboards and the WeasyPrint PDFs.

Every function here is pure: plain data in (``Decimal`` figures, ``str`` labels), an SVG string
out. The same markup is inlined in the web pages and in the HTML that WeasyPrint turns into
the adjudication and statement PDFs, so it keeps to what both renderers draw the same way:

* presentation attributes only (no ``<style>``, no CSS classes, no ``paint-order``, no
  ``dominant-baseline``: vertical centring is done by hand), no script, no external font: the
  system sans-serif stack;
* an explicit ``viewBox`` with ``width="100%"`` so it scales to its container;
* ``role="img"`` with a ``<title>`` and a ``<desc>`` that states every figure in words, and the
  templates render the underlying data as a table as well;
* deterministic output: the same input gives the same string, byte for byte, so a frozen
  report's PDF hashes the same every time it is rendered;
* text never sits on a coloured fill, so contrast depends only on the two text greys.

Money stays ``Decimal``: figures are formatted through :func:`comanage.core.money.format_money`
(the compact tick form, ``$1.2M``, is derived from it). Floats are refused, as in ``money``;
only pixel geometry is computed in floats.

The returned value is an :class:`SvgMarkup`, a ``str`` whose ``__html__`` makes Django treat it
as already safe; every label inside has been escaped here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from xml.sax.saxutils import escape

from comanage.core.money import format_money, round_percentage, round_places, to_decimal

__all__ = [
    "DEFAULT_PALETTE",
    "SUBTOTAL",
    "Palette",
    "SvgMarkup",
    "bar_chart",
    "format_compact_money",
    "indicator_chart",
    "line_chart",
    "nice_ticks",
    "progress_bar_chart",
    "waterfall_chart",
]

WIDTH = 720
FONT_STACK = (
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, "
    "'Liberation Sans', 'DejaVu Sans', sans-serif"
)
TITLE_SIZE = 15
LABEL_SIZE = 11
LEGEND_SIZE = 12
ELLIPSIS = "\u2026"
VALUE_FORMATS = ("money", "number", "percent")
DIRECTIONS = ("higher_is_better", "lower_is_better")


class SvgMarkup(str):
    """An SVG document as a string; ``__html__`` tells Django it is already escaped."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Palette:
    """Colours for the charts.

    ``series`` defaults to the Okabe-Ito palette (distinguishable with the common colour-vision
    deficiencies), without its yellow, which is too light on white. Text is always one of the
    two greys, both above 7:1 on white.
    """

    series: tuple[str, ...] = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
    text: str = "#111827"
    muted: str = "#4B5563"
    grid: str = "#E5E7EB"
    axis: str = "#9CA3AF"
    background: str = "#FFFFFF"
    track: str = "#EEF1F5"
    increase: str = "#0072B2"
    decrease: str = "#D55E00"
    total: str = "#334155"
    over_target: str = "#E69F00"
    # Indicator tiers, threshold -> target -> stretch: one hue, getting darker.
    tier_bands: tuple[str, ...] = ("#EEF5FB", "#DCEAF6", "#C4DCF0")
    tier_lines: tuple[str, ...] = ("#7AA6CC", "#3F7FB5", "#0B5A94")
    result: str = "#111827"
    baseline: str = "#6B7280"

    def colour(self, index: int) -> str:
        return self.series[index % len(self.series)]


DEFAULT_PALETTE = Palette()


@dataclass(frozen=True)
class _Subtotal:
    """Marker for a waterfall step that shows the running total instead of a change."""

    def __repr__(self) -> str:
        return "SUBTOTAL"


SUBTOTAL = _Subtotal()


# --------------------------------------------------------------------------- formatting


def _plain(value: Decimal, places: int = 2) -> str:
    """``1,234.5``: thousands separators, at most ``places`` decimals, trailing zeros dropped."""
    q = round_places(value, places)
    text = format(q, ",f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _fixed(value: Decimal, places: int = 2) -> str:
    q = round_places(value, places)
    text = format(q, f",.{places}f")
    return text[1:] if q == 0 and text.startswith("-") else text


def _trim_money(text: str) -> str:
    # format_money always prints cents; compact labels drop ".00" and a trailing "0".
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_COMPACT_UNITS = ((Decimal(10) ** 9, "B"), (Decimal(10) ** 6, "M"), (Decimal(10) ** 3, "K"))


def format_compact_money(value: object) -> str:
    """``$1.2M``, ``$350K``, ``-$2.5K``, ``$120``: three significant figures at most.

    Built on ``format_money`` so the symbol and the sign are the house format.
    """
    amount = to_decimal(value)
    magnitude = abs(amount)
    for i, (size, suffix) in enumerate(_COMPACT_UNITS):
        if magnitude >= size:
            scaled = amount / size
            digits = len(str(int(abs(scaled))))
            q = round_places(scaled, max(0, 3 - digits))
            if abs(q) >= 1000 and i > 0:
                # 999,999 rounds to 1,000K: say $1M instead.
                bigger, bigger_suffix = _COMPACT_UNITS[i - 1]
                q = round_places(amount / bigger, 2)
                suffix = bigger_suffix
            return _trim_money(format_money(q)) + suffix
    text = format_money(amount)
    return text[:-3] if text.endswith(".00") else text


def _compact_number(value: Decimal) -> str:
    """``1,250`` as is; ``1.25M`` from a million up."""
    if abs(value) >= Decimal(10) ** 6:
        return format_compact_money(value).replace("$", "", 1)
    return _plain(value)


def _tick_formatter(value_format: str) -> Callable[[Decimal], str]:
    if value_format == "money":
        return format_compact_money
    if value_format == "percent":
        return lambda v: _plain(v) + "%"
    return _compact_number


def _value_formatter(value_format: str) -> Callable[[Decimal], str]:
    """Full-precision wording, used in tooltips and in ``<desc>``."""
    if value_format == "money":
        return format_money
    if value_format == "percent":
        return lambda v: _fixed(v) + "%"
    return _plain


def _fitted_value(value: Decimal, value_format: str, max_width: float, size: float) -> str | None:
    """The fullest label for ``value`` that fits ``max_width``, or None if none fits."""
    candidates = [_value_formatter(value_format)(value)]
    if value_format == "money":
        candidates.append(format_compact_money(value))
    elif value_format == "number":
        candidates.append(_compact_number(value))
    for text in candidates:
        if _text_width(text, size) <= max_width:
            return text
    return None


def _check_format(value_format: str) -> None:
    if value_format not in VALUE_FORMATS:
        raise ValueError(f"value_format must be one of {VALUE_FORMATS}, not {value_format!r}")


def _amount(value: object) -> Decimal:
    """A figure for a chart: Decimal or int or numeric string; floats refused, as in money."""
    return to_decimal(value)


def _maybe_amount(value: object) -> Decimal | None:
    return None if value is None else _amount(value)


# --------------------------------------------------------------------------- ticks


def _nice_steps(raw: Decimal):
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
    lo, hi = _amount(low), _amount(high)
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


# --------------------------------------------------------------------------- SVG primitives

_NARROW = set("iIjl.,:;'|!()[]{} ft/\\-")
_WIDE = set("MWmw@%")


def _text_width(text: str, size: float) -> float:
    """Rough advance width in a system sans-serif; enough to truncate and lay out labels."""
    total = 0.0
    for ch in text:
        if ch in _NARROW:
            total += 0.32
        elif ch in _WIDE:
            total += 0.86
        elif ch.isupper() or ch in "$#&":
            total += 0.66
        elif ch.isdigit():
            total += 0.56
        else:
            total += 0.53
    return total * size


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: object) -> str:
    """A label as XML-safe text: control characters (not allowed in XML 1.0) become spaces."""
    return _CONTROL.sub(" ", str(text))


def _esc(text: object) -> str:
    return escape(_clean(text), {'"': "&quot;"})


def _num(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, float):
            rendered = _num(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            rendered = str(value)
        else:
            rendered = _esc(value)
        parts.append(f' {key}="{rendered}"')
    return "".join(parts)


def _el(tag: str, content: str | None = None, **attrs: object) -> str:
    names = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
    if content is None:
        return f"<{tag}{_attrs(names)}/>"
    return f"<{tag}{_attrs(names)}>{content}</{tag}>"


def _truncate(text: str, max_width: float, size: float) -> str:
    if _text_width(text, size) <= max_width:
        return text
    budget = max_width - _text_width(ELLIPSIS, size)
    kept = ""
    for ch in text:
        if _text_width(kept + ch, size) > budget:
            break
        kept += ch
    return kept.rstrip() + ELLIPSIS


def _wrap(text: str, max_width: float, size: float, max_lines: int = 2) -> list[str]:
    """Break on spaces into at most ``max_lines`` lines; the last is truncated if need be."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if _text_width(candidate, size) <= max_width or not current:
            current = candidate
            continue
        if len(lines) == max_lines - 1:
            current = " ".join([current, *words[i:]])
            break
        lines.append(current)
        current = word
    lines.append(current)
    return [_truncate(line, max_width, size) for line in lines[:max_lines]] or [""]


def _middle(y: float, size: float) -> float:
    """Baseline that centres a line of text on ``y`` (dominant-baseline is not portable)."""
    return y + size * 0.35


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = LABEL_SIZE,
    fill: str,
    anchor: str = "start",
    weight: str | None = None,
    max_width: float | None = None,
    tooltip: str | None = None,
) -> str:
    """One line of text at baseline ``y``; truncated with an ellipsis, full text as tooltip."""
    shown = _clean(text)
    if max_width is not None:
        shown = _truncate(shown, max_width, size)
    node = _el(
        "text",
        _esc(shown),
        x=float(x),
        y=float(y),
        font_size=size,
        fill=fill,
        text_anchor=None if anchor == "start" else anchor,
        font_weight=weight,
    )
    full = tooltip if tooltip is not None else (text if shown != _clean(text) else None)
    if full is not None:
        return f"<g><title>{_esc(full)}</title>{node}</g>"
    return node


def _lines(
    x: float,
    y: float,
    text: str,
    *,
    max_width: float,
    size: float = LABEL_SIZE,
    fill: str,
    anchor: str = "middle",
    max_lines: int = 2,
) -> str:
    """Wrapped text, first baseline at ``y``; tooltip with the full text if anything was cut."""
    cleaned = _clean(text)
    wrapped = _wrap(cleaned, max_width, size, max_lines)
    nodes = "".join(
        _el(
            "text",
            _esc(line),
            x=float(x),
            y=float(y + i * size * 1.25),
            font_size=size,
            fill=fill,
            text_anchor=None if anchor == "start" else anchor,
        )
        for i, line in enumerate(wrapped)
    )
    if " ".join(wrapped) != " ".join(cleaned.split()):
        return f"<g><title>{_esc(cleaned)}</title>{nodes}</g>"
    return nodes


def _tooltip_rect(content_title: str, **attrs: object) -> str:
    return _el("rect", f"<title>{_esc(content_title)}</title>", **attrs)


def _hline(
    x1: float, x2: float, y: float, colour: str, width: float = 1.0, dash: str | None = None
) -> str:
    return _el(
        "line",
        x1=float(x1),
        y1=float(y),
        x2=float(x2),
        y2=float(y),
        stroke=colour,
        stroke_width=float(width),
        stroke_dasharray=dash,
    )


def _bar_rect(x: float, y0: float, y1: float, width: float, colour: str, tooltip: str) -> str:
    top, bottom = min(y0, y1), max(y0, y1)
    height = max(bottom - top, 0.0)
    if 0 < height < 1:
        # A tiny non-zero value still shows as a hairline.
        height = 1.0
        top = y0 - 1 if y1 < y0 else y0
    return _tooltip_rect(
        tooltip,
        x=float(x),
        y=float(top),
        width=float(max(width, 1.0)),
        height=float(height),
        rx=2.0 if height >= 4 and width >= 6 else None,
        fill=colour,
    )


@dataclass
class _Canvas:
    """Accumulates the body of a chart, then wraps it in the accessible document."""

    title: str
    palette: Palette
    show_title: bool
    parts: list[str] = field(default_factory=list)

    def add(self, *markup: str) -> None:
        self.parts.extend(markup)

    def header(self) -> float:
        """Draws the visible title; returns the y where the next block starts."""
        if not self.show_title:
            return 12.0
        self.add(
            _text(
                0,
                18,
                self.title,
                size=TITLE_SIZE,
                fill=self.palette.text,
                weight="600",
                max_width=WIDTH,
            )
        )
        return 34.0

    def legend(self, y: float, items: Sequence[tuple[str, str, str]]) -> float:
        """Legend entries (name, colour, marker) in rows from ``y``; returns the y below it."""
        if not items:
            return y
        x = 0.0
        row_height = 20.0
        rows = 1
        max_item = WIDTH / 2
        for name, colour, marker in items:
            label_width = min(_text_width(name, LEGEND_SIZE), max_item - 20)
            item_width = 16 + label_width + 18
            if x > 0 and x + item_width > WIDTH:
                x = 0.0
                y += row_height
                rows += 1
            cy = y + 7
            if marker == "line":
                self.add(
                    _hline(x, x + 12, cy, colour, 2.0),
                    _el("circle", cx=x + 6, cy=cy, r=3.0, fill=colour),
                )
            elif marker == "dash":
                self.add(_hline(x, x + 12, cy, colour, 1.5, "4 3"))
            else:
                self.add(_el("rect", x=x, y=cy - 5, width=10.0, height=10.0, rx=2.0, fill=colour))
            self.add(
                _text(
                    x + 16,
                    _middle(cy, LEGEND_SIZE),
                    name,
                    size=LEGEND_SIZE,
                    fill=self.palette.muted,
                    max_width=label_width,
                )
            )
            x += item_width
        return y + row_height + 4

    def render(self, height: float, desc: str) -> SvgMarkup:
        body = "".join(self.parts)
        digest = hashlib.sha256(f"{self.title}\x00{desc}\x00{body}".encode()).hexdigest()[:10]
        title_id, desc_id = f"chart-{digest}-title", f"chart-{digest}-desc"
        height_text = _num(float(height))
        head = (
            '<svg xmlns="http://www.w3.org/2000/svg"'
            f' viewBox="0 0 {WIDTH} {height_text}" width="100%"'
            ' preserveAspectRatio="xMidYMid meet"'
            f' role="img" aria-labelledby="{title_id} {desc_id}"'
            f' font-family="{_esc(FONT_STACK)}"'
            ' style="display:block;max-width:100%;height:auto;overflow:visible">'
        )
        return SvgMarkup(
            head
            + f'<title id="{title_id}">{_esc(self.title)}</title>'
            + f'<desc id="{desc_id}">{_esc(desc)}</desc>'
            + body
            + "</svg>"
        )


def _canvas(title: str, palette: Palette | None, show_title: bool) -> _Canvas:
    if not isinstance(title, str) or not title.strip():
        raise ValueError("a chart needs a title")
    return _Canvas(title=title, palette=palette or DEFAULT_PALETTE, show_title=show_title)


@dataclass(frozen=True)
class _YScale:
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


def _y_axis(
    canvas: _Canvas, scale: _YScale, left: float, right: float, fmt: Callable[[Decimal], str]
) -> None:
    """Gridlines with tick labels right-aligned in the left gutter; the zero line stronger."""
    palette = canvas.palette
    for tick in scale.ticks:
        y = scale.y(tick)
        canvas.add(_hline(left, right, y, palette.grid))
        canvas.add(
            _text(left - 8, _middle(y, LABEL_SIZE), fmt(tick), fill=palette.muted, anchor="end")
        )


def _zero_line(canvas: _Canvas, scale: _YScale, left: float, right: float) -> None:
    if scale.lo <= 0 <= scale.hi:
        canvas.add(_hline(left, right, scale.y(Decimal(0)), canvas.palette.axis, 1.0))


def _gutter(labels: Sequence[str]) -> float:
    return max((_text_width(s, LABEL_SIZE) for s in labels), default=0.0) + 14


def _no_data(canvas: _Canvas, top: float, height: float, message: str = "No data") -> SvgMarkup:
    canvas.add(
        _el(
            "rect",
            x=0.0,
            y=top,
            width=float(WIDTH),
            height=height,
            rx=6.0,
            fill=canvas.palette.track,
        ),
        _text(
            WIDTH / 2,
            _middle(top + height / 2, 13),
            message,
            size=13,
            fill=canvas.palette.muted,
            anchor="middle",
        ),
    )
    return canvas.render(top + height + 4, f"{canvas.title}. {message}.")


# --------------------------------------------------------------------------- bar chart


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
    _check_format(value_format)
    canvas = _canvas(title, palette, show_title)
    pal = canvas.palette
    names = [str(name) for name, _ in series]
    data = [[_maybe_amount(v) for v in values] for _, values in series]
    for name, values in zip(names, data, strict=True):
        if len(values) != len(categories):
            raise ValueError(
                f"series {name!r} has {len(values)} values for {len(categories)} categories"
            )
    y = canvas.header()
    if len(series) > 1 or stacked:
        y = canvas.legend(y, [(n, pal.colour(i), "box") for i, n in enumerate(names)])
    if not categories or not series or all(v is None for vs in data for v in vs):
        return _no_data(canvas, y + 4, 120.0)

    tick_fmt = _tick_formatter(value_format)
    full_fmt = _value_formatter(value_format)
    if stacked:
        columns = [[v for vs in data if (v := vs[c]) is not None] for c in range(len(categories))]
        ups = [sum((v for v in column if v > 0), Decimal(0)) for column in columns]
        downs = [sum((v for v in column if v < 0), Decimal(0)) for column in columns]
        low, high = min([Decimal(0), *downs]), max([Decimal(0), *ups])
    else:
        present = [v for vs in data for v in vs if v is not None]
        low, high = min([Decimal(0), *present]), max([Decimal(0), *present])
    ticks = nice_ticks(low, high)
    has_negative = low < 0
    x_label_lines = 2
    plot_top = y + 18  # room for the value label over the tallest bar
    plot_bottom = height - (x_label_lines * 14 + 10) - (16 if has_negative else 0)
    scale = _YScale(ticks, plot_top, plot_bottom)
    left = _gutter([tick_fmt(t) for t in ticks])
    right = float(WIDTH)
    _y_axis(canvas, scale, left, right, tick_fmt)

    slot = (right - left) / len(categories)
    group_width = slot * 0.72
    n_bars = 1 if stacked else len(series)
    inner_gap = 0.0 if n_bars == 1 else min(4.0, group_width * 0.06)
    bar_width = min((group_width - inner_gap * (n_bars - 1)) / n_bars, 56.0)
    used = bar_width * n_bars + inner_gap * (n_bars - 1)
    zero_y = scale.y(Decimal(0))
    value_size = LABEL_SIZE

    desc_parts = []
    for c, category in enumerate(categories):
        cx = left + slot * c + slot / 2
        x0 = cx - used / 2
        wording = []
        if stacked:
            up, down = Decimal(0), Decimal(0)
            for s, values in enumerate(data):
                value = values[c]
                if value is None:
                    wording.append(f"{names[s]} no value")
                    continue
                wording.append(f"{names[s]} {full_fmt(value)}")
                if value == 0:
                    continue
                start = up if value > 0 else down
                end = start + value
                if value > 0:
                    up = end
                else:
                    down = end
                canvas.add(
                    _bar_rect(
                        x0,
                        scale.y(start),
                        scale.y(end),
                        bar_width,
                        pal.colour(s),
                        f"{category} \u00b7 {names[s]}: {full_fmt(value)}",
                    )
                )
            total = up + down
            label = _fitted_value(total, value_format, slot - 4, value_size)
            if label is not None and any(v is not None for v in (vs[c] for vs in data)):
                ly = scale.y(up) - 6 if total >= 0 else scale.y(down) + value_size + 3
                canvas.add(_text(cx, ly, label, size=value_size, fill=pal.text, anchor="middle"))
            if len(series) > 1:
                wording.append(f"total {full_fmt(total)}")
        else:
            for s, values in enumerate(data):
                value = values[c]
                bx = x0 + s * (bar_width + inner_gap)
                mid = bx + bar_width / 2
                if value is None:
                    wording.append(f"{names[s]} no value")
                    canvas.add(
                        _text(
                            mid,
                            zero_y - 5,
                            "\u2014",
                            size=11,
                            fill=pal.muted,
                            anchor="middle",
                            tooltip=f"{category} \u00b7 {names[s]}: no value",
                        )
                    )
                    continue
                wording.append(f"{names[s]} {full_fmt(value)}")
                end_y = scale.y(value)
                canvas.add(
                    _bar_rect(
                        bx,
                        zero_y,
                        end_y,
                        bar_width,
                        pal.colour(s),
                        f"{category} \u00b7 {names[s]}: {full_fmt(value)}",
                    )
                )
                room = bar_width + (inner_gap if n_bars > 1 else slot - bar_width) - 2
                label = _fitted_value(value, value_format, room, value_size)
                if label is not None:
                    ly = end_y - 5 if value >= 0 else end_y + value_size + 2
                    canvas.add(
                        _text(mid, ly, label, size=value_size, fill=pal.text, anchor="middle")
                    )
        canvas.add(
            _lines(
                cx,
                plot_bottom + (16 if has_negative else 0) + 18,
                category,
                max_width=slot - 6,
                fill=pal.muted,
                max_lines=x_label_lines,
            )
        )
        desc_parts.append(f"{category}: {', '.join(wording)}")
    _zero_line(canvas, scale, left, right)
    kind = "Stacked bar chart" if stacked else "Bar chart"
    desc = f"{kind}. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)


# --------------------------------------------------------------------------- waterfall


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
    canvas = _canvas(title, palette, show_title)
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
    bars: list[tuple[str, Decimal, Decimal, str]] = []  # label, start, end, kind
    running = Decimal(0)
    for i, (label, change) in enumerate(steps):
        if change is SUBTOTAL:
            bars.append((str(label), Decimal(0), running, "total"))
            continue
        if change is None:
            raise ValueError(f"step {label!r} has no amount; use SUBTOTAL for a running total")
        amount = _amount(change)
        bars.append((str(label), running, running + amount, "start" if i == 0 else "change"))
        running += amount
    if not bars:
        return _no_data(canvas, y + 4, 120.0)
    bars.append((str(total_label), Decimal(0), running, "total"))

    levels = [Decimal(0)] + [v for _, a, b, _ in bars for v in (a, b)]
    ticks = nice_ticks(min(levels), max(levels))
    has_negative = min(levels) < 0
    plot_top = y + 18
    plot_bottom = height - 40 - (16 if has_negative else 0)
    scale = _YScale(ticks, plot_top, plot_bottom)
    left = _gutter([format_compact_money(t) for t in ticks])
    right = float(WIDTH)
    _y_axis(canvas, scale, left, right, format_compact_money)

    slot = (right - left) / len(bars)
    bar_width = min(slot * 0.62, 72.0)
    desc_parts = []
    previous_end: tuple[float, float] | None = None
    for i, (label, start, end, kind) in enumerate(bars):
        cx = left + slot * i + slot / 2
        bx = cx - bar_width / 2
        change = end - start
        if kind == "total":
            colour, wording_value = pal.total, format_money(end)
            shown_value = end
        else:
            colour = pal.increase if change >= 0 else pal.decrease
            wording_value = (
                format_money(change)
                if kind == "start"
                else (("+" if change >= 0 else "") + format_money(change))
            )
            shown_value = change
        y0, y1 = scale.y(start), scale.y(end)
        if previous_end is not None:
            # Connector from the previous bar's end level to this bar.
            px, py = previous_end
            connect_y = y0 if kind != "total" else y1
            canvas.add(
                _el(
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
        canvas.add(_bar_rect(bx, y0, y1, bar_width, colour, f"{label}: {wording_value}"))
        previous_end = (bx + bar_width, y1)
        text = wording_value
        if _text_width(text, LABEL_SIZE) > slot - 4:
            compact = format_compact_money(shown_value)
            text = ("+" + compact) if kind == "change" and change >= 0 else compact
        goes_up = (end >= start) if kind != "total" else end >= 0
        ly = min(y0, y1) - 7 if goes_up else max(y0, y1) + LABEL_SIZE + 3
        canvas.add(
            _text(
                cx,
                ly,
                text,
                fill=pal.text,
                anchor="middle",
                weight="600" if kind == "total" else None,
            )
        )
        canvas.add(_lines(cx, height - 22, label, max_width=slot - 6, fill=pal.muted, max_lines=2))
        desc_parts.append(f"{label} {wording_value}")
    _zero_line(canvas, scale, left, right)
    desc = "Waterfall chart. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)


# --------------------------------------------------------------------------- progress bars


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
    _check_format(value_format)
    canvas = _canvas(title, palette, show_title)
    pal = canvas.palette
    y = canvas.header() + 2
    if not items:
        return _no_data(canvas, y + 4, 80.0)
    base_fmt = _value_formatter(value_format)

    def fmt(v: Decimal) -> str:
        return base_fmt(v) + unit

    row_height = 46.0
    track_height = 8.0
    desc_parts = []
    for label, actual_raw, target_raw in items:
        actual, target = _amount(actual_raw), _amount(target_raw)
        if target > 0:
            share = round_percentage(actual / target * 100)
            share_text = f"{_fixed(share)}%"  # every percentage to two decimals
        else:
            share_text = "no target"
        summary = f"{fmt(actual)} of {fmt(target)}"
        right_text = f"{summary} \u00b7 {share_text}"
        right_width = _text_width(right_text, LABEL_SIZE)
        label_y = y + 14
        canvas.add(
            _text(
                0,
                label_y,
                str(label),
                size=12.5,
                fill=pal.text,
                weight="500",
                max_width=max(WIDTH - right_width - 24, 80.0),
            ),
            _text(WIDTH, label_y, right_text, fill=pal.muted, anchor="end"),
        )
        track_y = y + 24
        full = max(actual, target, Decimal(0))
        canvas.add(
            _el(
                "rect",
                x=0.0,
                y=track_y,
                width=float(WIDTH),
                height=track_height,
                rx=4.0,
                fill=pal.track,
            )
        )
        if full > 0 and actual > 0:
            scale = WIDTH / float(full)
            within = min(actual, target) if target > 0 else Decimal(0)
            if within > 0:
                canvas.add(
                    _tooltip_rect(
                        f"{label}: {summary}",
                        x=0.0,
                        y=track_y,
                        width=max(float(within) * scale, 2.0),
                        height=track_height,
                        rx=4.0,
                        fill=pal.increase,
                    )
                )
            if actual > target:
                start = float(max(target, Decimal(0))) * scale
                canvas.add(
                    _tooltip_rect(
                        f"{label}: {fmt(actual - target)} over target",
                        x=start,
                        y=track_y,
                        width=max(WIDTH - start, 2.0),
                        height=track_height,
                        rx=4.0,
                        fill=pal.over_target,
                    )
                )
                if within > 0:
                    # Square off the join between the two segments.
                    canvas.add(
                        _el(
                            "rect",
                            x=max(start - 4, 0.0),
                            y=track_y,
                            width=min(4.0, start),
                            height=track_height,
                            fill=pal.increase,
                        ),
                        _el(
                            "rect",
                            x=start,
                            y=track_y,
                            width=min(4.0, WIDTH - start),
                            height=track_height,
                            fill=pal.over_target,
                        ),
                    )
                tx = float(target) * scale
                canvas.add(
                    _el(
                        "line",
                        x1=tx,
                        y1=track_y - 3,
                        x2=tx,
                        y2=track_y + track_height + 3,
                        stroke=pal.text,
                        stroke_width=1.5,
                    )
                )
        desc_parts.append(f"{label}: {summary} ({share_text})")
        y += row_height
    desc = "Progress against target. " + "; ".join(desc_parts) + "."
    return canvas.render(y, desc)


# --------------------------------------------------------------------------- line chart

_MARKERS = ("circle", "square", "diamond", "triangle")


def _marker(kind: str, x: float, y: float, colour: str, background: str, tooltip: str) -> str:
    title = f"<title>{_esc(tooltip)}</title>"
    common = {"fill": colour, "stroke": background, "stroke_width": 1.5}
    if kind == "circle":
        return _el("circle", title, cx=x, cy=y, r=4.0, **common)
    if kind == "square":
        return _el("rect", title, x=x - 3.5, y=y - 3.5, width=7.0, height=7.0, **common)
    if kind == "diamond":
        corners = [(x, y - 5), (x + 5, y), (x, y + 5), (x - 5, y)]
    else:
        corners = [(x, y - 5), (x + 5, y + 4), (x - 5, y + 4)]
    points = " ".join(f"{_num(px)},{_num(py)}" for px, py in corners)
    return _el("polygon", title, points=points, **common)


def _polylines(
    points: Sequence[tuple[float, float] | None], colour: str, width: float = 2.0
) -> str:
    """One polyline per unbroken run of points; ``None`` breaks the line (a gap)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    out = []
    for run in runs:
        if len(run) >= 2:
            out.append(
                _el(
                    "polyline",
                    points=" ".join(f"{_num(x)},{_num(y)}" for x, y in run),
                    fill="none",
                    stroke=colour,
                    stroke_width=width,
                    stroke_linejoin="round",
                    stroke_linecap="round",
                )
            )
    return "".join(out)


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
    _check_format(value_format)
    canvas = _canvas(title, palette, show_title)
    pal = canvas.palette
    names = [str(name) for name, _ in series]
    data = [[_maybe_amount(v) for v in values] for _, values in series]
    for name, values in zip(names, data, strict=True):
        if len(values) != len(x_labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(x_labels)} labels")
    y = canvas.header()
    if len(series) > 1:
        y = canvas.legend(y, [(n, pal.colour(i), "line") for i, n in enumerate(names)])
    present = [v for vs in data for v in vs if v is not None]
    if not x_labels or not present:
        return _no_data(canvas, y + 4, 120.0)
    low, high = min(present), max(present)
    if include_zero:
        low, high = min(low, Decimal(0)), max(high, Decimal(0))
    elif low == high:
        pad = abs(low) / 10 or Decimal(1)
        low, high = low - pad, high + pad
    ticks = nice_ticks(low, high)
    tick_fmt = _tick_formatter(value_format)
    full_fmt = _value_formatter(value_format)
    plot_top = y + 12
    plot_bottom = height - 34
    scale = _YScale(ticks, plot_top, plot_bottom)
    left = _gutter([tick_fmt(t) for t in ticks])
    end_labels = [
        _fitted_value(vs[-1], value_format, 90, LABEL_SIZE) if vs and vs[-1] is not None else None
        for vs in data
    ]
    right = WIDTH - max([_text_width(t, LABEL_SIZE) + 12 for t in end_labels if t] + [12.0])
    _y_axis(canvas, scale, left, right, tick_fmt)
    _zero_line(canvas, scale, left, right)
    n = len(x_labels)
    inset = 14.0
    if n == 1:
        xs = [(left + right) / 2]
    else:
        xs = [left + inset + i * (right - left - 2 * inset) / (n - 1) for i in range(n)]
    spacing = (right - left) / n
    for x, label in zip(xs, x_labels, strict=True):
        canvas.add(
            _text(
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
        colour = pal.colour(s)
        points = [None if v is None else (x, scale.y(v)) for x, v in zip(xs, values, strict=True)]
        canvas.add(_polylines(points, colour))
        marker = _MARKERS[s % len(_MARKERS)]
        for label, point, value in zip(x_labels, points, values, strict=True):
            if point is not None and value is not None:
                canvas.add(
                    _marker(
                        marker,
                        point[0],
                        point[1],
                        colour,
                        pal.background,
                        f"{names[s]}, {label}: {full_fmt(value)}",
                    )
                )
        if values and values[-1] is not None and end_labels[s]:
            end_positions.append((scale.y(values[-1]), end_labels[s] or ""))
        wording = ", ".join(
            f"{label} {'no value' if v is None else full_fmt(v)}"
            for label, v in zip(x_labels, values, strict=True)
        )
        desc_parts.append(f"{names[s]}: {wording}")
    for ly, text in _spread(end_positions, LABEL_SIZE + 3, plot_top, plot_bottom):
        canvas.add(_text(right + 10, _middle(ly, LABEL_SIZE), text, fill=pal.text))
    desc = "Line chart. " + "; ".join(desc_parts) + "."
    return canvas.render(height, desc)


def _spread(
    labels: Sequence[tuple[float, str]], gap: float, top: float, bottom: float
) -> list[tuple[float, str]]:
    """Move label centres apart vertically so no two are closer than ``gap``, within bounds."""
    ordered = sorted(labels, key=lambda item: (item[0], item[1]))
    ys = [y for y, _ in ordered]
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    overflow = (ys[-1] - bottom) if ys else 0
    if overflow > 0:
        ys[-1] -= overflow
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
    if ys and ys[0] < top:
        shift = top - ys[0]
        ys = [y + shift for y in ys]
    return [(y, text) for y, (_, text) in zip(ys, ordered, strict=True)]


# --------------------------------------------------------------------------- indicator chart

_TIER_NAMES = ("Threshold", "Target", "Stretch")


def _indicator_value(value: Decimal, unit: str, fixed: bool = True) -> str:
    number = _fixed(value) if fixed else _plain(value)
    if unit == "%":
        return number + "%"
    return f"{number} {unit}".strip()


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
    canvas = _canvas(title, palette, show_title)
    pal = canvas.palette
    higher = direction == "higher_is_better"
    cuts = [
        (i, _TIER_NAMES[i], v)
        for i, v in enumerate(_maybe_amount(c) for c in (threshold, target, stretch))
        if v is not None
    ]
    base = _maybe_amount(baseline)
    scored = [(str(item[0]), _maybe_amount(item[1])) for item in results]
    unscored = [str(item[2]) if len(item) > 2 and item[2] else "" for item in results]
    y = canvas.header()
    caption = ("Higher is better" if higher else "Lower is better") + (
        f" \u00b7 {unit}" if unit and unit != "%" else ""
    )
    canvas.add(_text(0, y + 10, caption, fill=pal.muted, max_width=WIDTH))
    y += 22
    values = [v for _, _, v in cuts] + [v for _, v in scored if v is not None]
    if base is not None:
        values.append(base)
    if not values:
        return _no_data(canvas, y + 4, 120.0, "No results")
    low, high = min(values), max(values)
    span = high - low or abs(high) / 10 or Decimal(1)
    low, high = low - span / 8, high + span / 8
    if all(v >= 0 for v in values):
        low = max(low, Decimal(0))
    if unit == "%" and all(v <= 100 for v in values):
        high = min(high, Decimal(100))
    ticks = nice_ticks(low, high)
    plot_top = y + 8
    plot_bottom = height - 44
    scale = _YScale(ticks, plot_top, plot_bottom)

    def tick_fmt(v: Decimal) -> str:
        return _plain(v) + ("%" if unit == "%" else "")

    left = _gutter([tick_fmt(t) for t in ticks])
    side_unit = "%" if unit == "%" else ""
    side_labels = [f"{name} {_indicator_value(v, side_unit, fixed=False)}" for _, name, v in cuts]
    if base is not None:
        side_labels.append(f"Baseline {_indicator_value(base, side_unit, fixed=False)}")
    side_width = (
        min(max(_text_width(s, LABEL_SIZE) for s in side_labels) + 14, 170.0)
        if side_labels
        else 8.0
    )
    right = WIDTH - side_width

    # Bands: from each cut-point to the next one in the good direction; the last to the edge.
    edge = scale.hi if higher else scale.lo
    for k, (tier, _name, value) in enumerate(cuts):
        upto = cuts[k + 1][2] if k + 1 < len(cuts) else edge
        y0, y1 = scale.y(value), scale.y(upto)
        top, bottom = max(min(y0, y1), plot_top), min(max(y0, y1), plot_bottom)
        if bottom > top:
            canvas.add(
                _el(
                    "rect",
                    x=left,
                    y=top,
                    width=right - left,
                    height=bottom - top,
                    fill=pal.tier_bands[tier % len(pal.tier_bands)],
                )
            )
    _y_axis(canvas, scale, left, right, tick_fmt)
    # Gridlines were drawn over the bands; cut-point lines go on top of both.
    side: list[tuple[float, str, str]] = []
    for tier, name, value in cuts:
        ly = scale.y(value)
        colour = pal.tier_lines[tier % len(pal.tier_lines)]
        canvas.add(_hline(left, right, ly, colour, 1.5))
        side.append((ly, f"{name} {_indicator_value(value, side_unit, fixed=False)}", colour))
    if base is not None:
        ly = scale.y(base)
        canvas.add(_hline(left, right, ly, pal.baseline, 1.5, "5 4"))
        side.append(
            (ly, f"Baseline {_indicator_value(base, side_unit, fixed=False)}", pal.baseline)
        )
    colours = {text: colour for _, text, colour in side}
    for ly, text in _spread([(a, b) for a, b, _ in side], LABEL_SIZE + 3, plot_top, plot_bottom):
        canvas.add(
            _hline(right, right + 6, ly, colours[text], 1.5),
            _text(
                right + 9, _middle(ly, LABEL_SIZE), text, fill=pal.text, max_width=side_width - 10
            ),
        )

    n = len(scored)
    slot = (right - left) / max(n, 1)
    points: list[tuple[float, float] | None] = []
    desc_results = []
    for i, (label, maybe_score) in enumerate(scored):
        cx = left + slot * i + slot / 2
        canvas.add(
            _text(cx, plot_bottom + 18, label, fill=pal.text, anchor="middle", max_width=slot - 6)
        )
        if maybe_score is None:
            points.append(None)
            canvas.add(
                _el(
                    "line",
                    x1=cx,
                    y1=plot_top + 4,
                    x2=cx,
                    y2=plot_bottom - 4,
                    stroke=pal.axis,
                    stroke_width=1.0,
                    stroke_dasharray="2 4",
                ),
                _el(
                    "rect",
                    x=cx - 30,
                    y=(plot_top + plot_bottom) / 2 - 10,
                    width=60.0,
                    height=20.0,
                    rx=10.0,
                    fill=pal.background,
                    stroke=pal.axis,
                    stroke_width=1.0,
                ),
                _text(
                    cx,
                    _middle((plot_top + plot_bottom) / 2, 11),
                    "no score",
                    size=11,
                    fill=pal.muted,
                    anchor="middle",
                ),
                _text(
                    cx,
                    plot_bottom + 33,
                    "No score",
                    size=11,
                    fill=pal.muted,
                    anchor="middle",
                    max_width=slot - 6,
                ),
            )
            desc_results.append(f"{label} no score")
            continue
        score = maybe_score
        met = None
        for _tier, name, cut in cuts:
            if (score >= cut) if higher else (score <= cut):
                met = name
        tier_text = f"{met} met" if met else ("Below threshold" if cuts else "")
        if unscored[i]:
            # Below the minimum denominator nothing is met, whatever the value: say so.
            tier_text = "Too few cases"
        points.append((cx, scale.y(score)))
        canvas.add(
            _text(
                cx,
                plot_bottom + 33,
                tier_text,
                size=11,
                fill=pal.muted,
                anchor="middle",
                max_width=slot - 6,
            )
        )
        desc_results.append(
            f"{label} {_indicator_value(score, unit)}"
            + (
                f" (not scored: {unscored[i]})"
                if unscored[i]
                else f" ({tier_text.lower()})"
                if tier_text
                else ""
            )
        )
    canvas.add(_polylines(points, pal.result, 2.0))
    for (label, result), reason, point in zip(scored, unscored, points, strict=True):
        if point is None or result is None:
            continue
        px, py = point
        canvas.add(
            _marker(
                "circle",
                px,
                py,
                pal.result,
                pal.background,
                f"{label}: {_indicator_value(result, unit)}"
                + (f" \u2014 not scored: {reason}" if reason else ""),
            )
        )
        text = _indicator_value(result, "%" if unit == "%" else "")
        width = _text_width(text, LABEL_SIZE) + 8
        above = py - 10 - LABEL_SIZE > plot_top - 6
        box_y = py - 26 if above else py + 9
        canvas.add(
            _el(
                "rect",
                x=px - width / 2,
                y=box_y,
                width=width,
                height=17.0,
                rx=3.0,
                fill=pal.background,
                fill_opacity="0.9",
            ),
            _text(
                px,
                _middle(box_y + 8.5, LABEL_SIZE),
                text,
                fill=pal.text,
                anchor="middle",
                weight="600",
            ),
        )

    cut_words = ", ".join(
        f"{name.lower()} {_indicator_value(v, unit, fixed=False)}" for _, name, v in cuts
    )
    desc = f"{'Higher' if higher else 'Lower'} is better."
    if cut_words:
        desc += f" Cut-points: {cut_words}."
    if base is not None:
        desc += f" Baseline {_indicator_value(base, unit, fixed=False)}."
    desc += " Results: " + ("; ".join(desc_results) if desc_results else "none") + "."
    return canvas.render(height, desc)
