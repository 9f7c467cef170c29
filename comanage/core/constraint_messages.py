"""Database constraints in the words of the person filling the form.

Django reports a failed ``CheckConstraint`` as 'Constraint "agreement_term_end_after_start" is
violated.', which names a code, not the problem. ``PlainConstraintErrors`` (a ModelForm mixin)
puts the sentence below in its place, on the field the constraint is about when there is one.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

# constraint name -> (field the message belongs to, or None, message)
CONSTRAINT_MESSAGES: dict[str, tuple[str | None, str]] = {
    "agreement_term_end_after_start": ("term_end", "The term must end after it starts."),
    "duty_max_at_least_required": (
        "max_monthly_hours",
        "The maximum hours must be at least the hours required.",
    ),
    "fmv_effective_end_after_start": (
        "effective_end",
        "The opinion must end after it takes effect.",
    ),
    "indicator_result_period_order": ("period_end", "The period must end after it starts."),
    "opportunity_floor_not_negative": (None, "The floor cannot be negative."),
    "opportunity_target_not_negative": (None, "The target cannot be negative."),
    "participation_leave_after_join": (None, "A physician must leave after joining."),
    "participation_termination_after_join": (
        None,
        "A termination must come after the physician joined.",
    ),
    "payment_line_paid_amount_and_date_together": (
        None,
        "Enter both the amount paid and the date it was paid, or neither.",
    ),
    "physician_membership_has_physician": (None, "Choose the physician this login belongs to."),
    "programme_year_end_after_start": (None, "A programme year must end after it starts."),
    "time_entry_hours_positive": (None, "Hours must be more than zero."),
    "timesheet_month_first_day": (None, "Choose the month of the time sheet."),
    "terms_physician_share_at_most_50": (
        "physician_share_pct",
        "The physicians' share must be between 0% and 50%.",
    ),
    "import_period_target": (
        None,
        "A base-period file names a base year; a programme file names a programme year.",
    ),
}
FALLBACK = "These values do not fit together; check the dates and amounts."
_PATTERN = re.compile(r"^Constraint [“\"](?P<name>[^”\"]+)[”\"] is violated\.$")


def plain_constraint_message(message: object) -> tuple[str | None, str] | None:
    """(field or None, plain message) for Django's constraint message; None for any other."""
    match = _PATTERN.match(str(message))
    if match is None:
        return None
    return CONSTRAINT_MESSAGES.get(match["name"], (None, FALLBACK))


class PlainConstraintErrors:
    """Mixin for ModelForms: constraint codes never reach the page."""

    def _update_errors(self, errors: ValidationError) -> None:
        if not hasattr(errors, "error_dict"):
            errors = ValidationError({NON_FIELD_ERRORS: errors.error_list})
        rewritten: dict[str, list[Any]] = {}
        for field_name, items in errors.error_dict.items():
            for error in items:
                messages = (
                    list(error)
                    if not hasattr(error, "message")
                    else [error.message % error.params if error.params else error.message]
                )
                plain = plain_constraint_message(messages[0]) if messages else None
                if plain is None:
                    rewritten.setdefault(field_name, []).append(error)
                    continue
                target, text = plain
                form_fields = getattr(self, "fields", {})
                key = target if target is not None and target in form_fields else field_name
                rewritten.setdefault(key, []).append(ValidationError(text, code="plain_constraint"))
        super()._update_errors(ValidationError(rewritten))  # type: ignore[misc]
