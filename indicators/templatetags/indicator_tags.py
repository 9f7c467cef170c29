"""``{{ name|words }}``: ``insufficient_denominator`` -> ``Insufficient denominator``."""

from django import template

register = template.Library()


@register.filter
def words(value: object) -> str:
    return str(value or "").replace("_", " ").capitalize()
