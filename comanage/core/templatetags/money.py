"""``{{ amount|money }}``: US-formatted dollars from a Decimal. Floats are refused loudly."""

from __future__ import annotations

from decimal import Decimal

from django import template

from comanage.core.money import FloatMoneyError, format_money, round_percentage

register = template.Library()


@register.filter
def money(value: object) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        raise FloatMoneyError(f"template received float {value!r} as money")
    return format_money(value)


@register.filter
def pct(value: object, places: int = 2) -> str:
    """A percentage shown to two decimals (the spec's display rule); None is 'no score'."""
    if value is None or value == "":
        return "no score"
    if isinstance(value, float):
        raise FloatMoneyError(f"template received float {value!r} as a percentage")
    amount = round_percentage(Decimal(str(value)), int(places))
    return f"{amount:,}%"
