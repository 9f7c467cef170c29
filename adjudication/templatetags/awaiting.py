"""The CEO queue's "awaiting payment" summary, as an inclusion tag so the queue's page and
view stay as they are."""

from __future__ import annotations

from typing import Any

from django import template

from adjudication import selectors

register = template.Library()


@register.inclusion_tag("adjudication/_awaiting_payment.html")
def awaiting_payment() -> dict[str, Any]:
    return {"awaiting": selectors.payments_awaiting()}
