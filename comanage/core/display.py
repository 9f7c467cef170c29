"""Stored values as a person reads them: a model field's label and value in words.

Pages that list a record's fields (the terms of an agreement, a record's history) show
"Physicians' share (%) 50.00%", never "Physician share pct 50.0000"; amounts go through
``format_money``, percentages through ``round_percentage`` (comanage/core/money.py).
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.text import capfirst

from comanage.core.money import format_money, round_percentage, to_decimal

EMPTY = "—"
_CODE = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")
DATE_STYLE = "M j, Y"
DATETIME_STYLE = "M j, Y g:i A"

# Labels a person would write, where the field's name makes a poor one.
FIELD_LABELS = {
    "service_line_custom": "Other service line",
    "ownership_pct": "Ownership (%)",
    "physician_share_pct": "Physicians' share (%)",
    "min_savings_threshold_pct": "Minimum savings threshold (%)",
    "severity_tolerance_pct": "Severity tolerance (%)",
    "quality_tolerance_pct": "Quality tolerance (%)",
    "admin_fee_monthly": "Administrator fee per month",
    "npi": "NPI",
    "for_cause": "Terminated for cause",
    "executed_on": "Executed on",
}


def words(code: object) -> str:
    """A stored code (``forfeited_for_cause``, ``report.approved``) as words."""
    return str(code or "").replace("_", " ").replace(".", " ").strip().capitalize()


_RULE_REFERENCE = re.compile(r"^(?P<section>\d+)(?:\.(?P<part>[a-z]+))?")


def rule_reference(code: object) -> str:
    """Where a rule is written, in words: ``4.edge.leftover-cents`` -> "rules, section 4,
    edge cases" (the rule's own name is shown beside it)."""
    match = _RULE_REFERENCE.match(str(code or ""))
    if match is None:
        return "the programme rules"
    part = {"edge": ", edge cases"}.get(match["part"] or "", "")
    return f"rules, section {match['section']}{part}"


def field_label(field: Any) -> str:
    name = getattr(field, "name", str(field))
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    label = str(getattr(field, "verbose_name", "") or words(name))
    if label.lower().endswith(" pct"):
        label = f"{label[:-4]} (%)"
    return capfirst(label) or ""


def is_percentage(field: Any) -> bool:
    return getattr(field, "name", "").endswith(("_pct", "_percent"))


def format_date(value: object) -> str:
    """One date style everywhere (Dec 2, 2026); a datetime in the organization's time zone."""
    if value in (None, ""):
        return EMPTY
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return date_format(value, DATETIME_STYLE)
    if isinstance(value, dt.date):
        return date_format(value, DATE_STYLE)
    return str(value)


def format_month(value: object) -> str:
    """A month (January 2026) from a date or an ISO date string."""
    if isinstance(value, str):
        text = value
        try:
            value = dt.date.fromisoformat(text[:10])
        except ValueError:
            return text
    if isinstance(value, dt.date):
        return date_format(value, "F Y")
    return EMPTY if value in (None, "") else str(value)


def format_percentage(value: object) -> str:
    if value in (None, ""):
        return EMPTY
    return f"{round_percentage(to_decimal(value)):,}%"


def field_value(field: Any, value: object) -> str:
    """``value`` of model ``field`` in words: choices by label, money and percentages
    formatted, dates in one style, yes/no for booleans, "—" for nothing."""
    if value is None or value == "":
        return EMPTY
    choices = getattr(field, "flatchoices", None)
    if choices:
        return str(dict(choices).get(value, words(value)))
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(field, models.ForeignKey):
        related = field.related_model._base_manager.filter(pk=value).first()
        return str(related) if related is not None else EMPTY
    if isinstance(field, models.DecimalField) or isinstance(value, Decimal):
        if is_percentage(field):
            return format_percentage(value)
        if getattr(field, "decimal_places", 2) == 2:
            return format_money(value)
        return f"{to_decimal(value).normalize():,f}"
    if isinstance(value, dt.date | str) and isinstance(field, models.DateField):
        return format_date(value)
    if isinstance(value, str) and _CODE.fullmatch(value):
        return words(value)  # a stored code without choices (a flag's kind)
    return str(value)
