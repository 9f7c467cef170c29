"""Chart text as strings: escaping, measuring, truncating and wrapping labels, and the number
formats of ticks, value labels and descriptions.

Nothing here draws: it takes strings and figures and returns strings (or widths); the
elements that carry them are built in :mod:`.svg`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from xml.sax.saxutils import escape

from comanage.core.money import format_money, round_places, to_decimal

ELLIPSIS = "\u2026"
VALUE_FORMATS = ("money", "number", "percent")

# --------------------------------------------------------------------------- formatting


def plain(value: Decimal, places: int = 2) -> str:
    """``1,234.5``: thousands separators, at most ``places`` decimals, trailing zeros dropped."""
    q = round_places(value, places)
    text = format(q, ",f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fixed(value: Decimal, places: int = 2) -> str:
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


def compact_number(value: Decimal) -> str:
    """``1,250`` as is; ``1.25M`` from a million up."""
    if abs(value) >= Decimal(10) ** 6:
        return format_compact_money(value).replace("$", "", 1)
    return plain(value)


def tick_formatter(value_format: str) -> Callable[[Decimal], str]:
    if value_format == "money":
        return format_compact_money
    if value_format == "percent":
        return lambda v: plain(v) + "%"
    return compact_number


def value_formatter(value_format: str) -> Callable[[Decimal], str]:
    """Full-precision wording, used in tooltips and in ``<desc>``."""
    if value_format == "money":
        return format_money
    if value_format == "percent":
        return lambda v: fixed(v) + "%"
    return plain


def fitted_value(value: Decimal, value_format: str, max_width: float, size: float) -> str | None:
    """The fullest label for ``value`` that fits ``max_width``, or None if none fits."""
    candidates = [value_formatter(value_format)(value)]
    if value_format == "money":
        candidates.append(format_compact_money(value))
    elif value_format == "number":
        candidates.append(compact_number(value))
    for text in candidates:
        if text_width(text, size) <= max_width:
            return text
    return None


def check_format(value_format: str) -> None:
    if value_format not in VALUE_FORMATS:
        raise ValueError(f"value_format must be one of {VALUE_FORMATS}, not {value_format!r}")


def num(value: float) -> str:
    """A coordinate: at most two decimals, trailing zeros dropped."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --------------------------------------------------------------------------- escaping

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def clean(text: object) -> str:
    """A label as XML-safe text: control characters (not allowed in XML 1.0) become spaces."""
    return _CONTROL.sub(" ", str(text))


def esc(text: object) -> str:
    return escape(clean(text), {'"': "&quot;"})


# --------------------------------------------------------------------------- measuring

_NARROW = set("iIjl.,:;'|!()[]{} ft/\\-")
_WIDE = set("MWmw@%")


def text_width(text: str, size: float) -> float:
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


def truncate(text: str, max_width: float, size: float) -> str:
    if text_width(text, size) <= max_width:
        return text
    budget = max_width - text_width(ELLIPSIS, size)
    kept = ""
    for ch in text:
        if text_width(kept + ch, size) > budget:
            break
        kept += ch
    return kept.rstrip() + ELLIPSIS


def wrap(text: str, max_width: float, size: float, max_lines: int = 2) -> list[str]:
    """Break on spaces into at most ``max_lines`` lines; the last is truncated if need be."""
    words = text.split()
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if text_width(candidate, size) <= max_width or not current:
            current = candidate
            continue
        if len(lines) == max_lines - 1:
            current = " ".join([current, *words[i:]])
            break
        lines.append(current)
        current = word
    lines.append(current)
    return [truncate(line, max_width, size) for line in lines[:max_lines]] or [""]


# --------------------------------------------------------------------------- placing


def middle(y: float, size: float) -> float:
    """Baseline that centres a line of text on ``y`` (dominant-baseline is not portable)."""
    return y + size * 0.35


def spread(
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
