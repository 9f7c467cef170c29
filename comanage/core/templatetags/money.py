"""``{{ amount|money }}``: US-formatted dollars from a Decimal. Floats are refused loudly."""

from __future__ import annotations

import re
from decimal import Decimal

from django import template

from comanage.core.display import format_date, format_month, rule_reference, words
from comanage.core.money import FloatMoneyError, format_money, round_percentage, round_places

register = template.Library()
_CODE = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")


def _has_figure(value: object, what: str) -> bool:
    """Whether there is a figure to show (None or "" is none); a float is refused loudly."""
    if value is None or value == "":
        return False
    if isinstance(value, float):
        raise FloatMoneyError(f"template received float {value!r} as {what}")
    return True


@register.filter
def money(value: object) -> str:
    if not _has_figure(value, "money"):
        return "—"
    return format_money(value)


@register.filter
def pct(value: object, places: int = 2) -> str:
    """A percentage shown to two decimals (the spec's display rule); None is 'no score'."""
    if not _has_figure(value, "a percentage"):
        return "no score"
    amount = round_percentage(Decimal(str(value)), int(places))
    return f"{amount:,}%"


@register.filter
def day(value: object) -> str:
    """One date style (Dec 2, 2026) for a date, a datetime (local time) or an ISO string."""
    return format_date(value)


@register.filter
def plain(code: object) -> str:
    """A stored code (``all_or_nothing``, ``report.approved``) as words."""
    return words(code)


@register.filter
def rule_ref(code: object) -> str:
    """A rule's key (``4.edge.leftover-cents``) as where it is written, in words."""
    return rule_reference(code)


@register.filter
def number(value: object, places: int = 2) -> str:
    """A plain figure (a count of hours, a sum of weights) grouped, to ``places`` decimals."""
    if not _has_figure(value, "a figure"):
        return "—"
    return f"{round_places(Decimal(str(value)), int(places)):,}"


@register.filter
def month(value: object) -> str:
    """A month in words (January 2026) from a date or an ISO date string."""
    return format_month(value)


@register.filter
def fraction_pct(value: object) -> str:
    """A fraction (0.879121) shown as a percentage to two decimals (87.91%)."""
    if not _has_figure(value, "a fraction"):
        return "—"
    return f"{round_percentage(Decimal(str(value)) * 100):,}%"


@register.filter
def fact_label(key: object) -> str:
    """A stored fact's key (``severity_change_pct``) as a label ("Severity change (%)")."""
    text = str(key or "")
    if text.endswith("_pct"):
        return f"{words(text[:-4])} (%)"
    return words(text)


@register.filter
def fact(value: object) -> str:
    """A stored fact's value as read: yes/no, a whole number grouped, otherwise two decimals;
    a code in words; other text as it is."""
    if not _has_figure(value, "a figure"):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        text = str(value)
        return words(text) if _CODE.fullmatch(text) else text
    if not amount.is_finite():
        return str(value)
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{round_places(amount, 2):,}"
