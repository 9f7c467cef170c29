"""Codes into words for readers: ``{{ f.kind|flag_label }}``, ``{{ code|words }}``."""

from __future__ import annotations

from django import template

from agreements.models import flag_kind_label

register = template.Library()


@register.filter
def flag_label(kind: object) -> str:
    return flag_kind_label(str(kind or ""))


@register.filter
def words(code: object) -> str:
    """A stored code (``forfeited_for_cause``) as words (``Forfeited for cause``)."""
    return str(code or "").replace("_", " ").strip().capitalize()
