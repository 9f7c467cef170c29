"""Helpers the agreement services share: dates, model validation, the frozen-terms refusal,
and e-mail to the people holding a role.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.utils import timezone

from comanage.core.models import Membership, Organization

from ..models import (
    Agreement,
)

log = logging.getLogger(__name__)


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _today(today: dt.date | None) -> dt.date:
    return today or timezone.localdate()


def _full_clean(obj: Any, exclude: list[str] | None = None) -> None:
    """Model validation with the field names kept (the API turns them into errors[].field)."""
    obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)


FROZEN_MESSAGE = (
    "The agreement was executed{on}: its terms are frozen. Make an amendment "
    "effective from a future date instead."
)


def _frozen_error(agreement: Agreement, field_name: str = "__all__") -> ValidationError:
    on = f" on {agreement.executed_on:%b %-d, %Y}" if agreement.executed_on else ""
    return ValidationError({field_name: FROZEN_MESSAGE.format(on=on)}, code="frozen")


def _send(recipients: list[str], subject: str, body: str) -> int:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return 0
    try:
        return send_mail(subject, body, None, recipients)
    except Exception:  # noqa: BLE001 - a mail outage must not undo the work; it is logged
        log.exception("could not send %r", subject)
        return 0


def _notify_roles(*, organization: Organization, roles: set[str], subject: str, body: str) -> int:
    emails = list(
        Membership.objects.filter(
            organization=organization, role__in=roles, is_active=True
        ).values_list("user__email", flat=True)
    )
    return _send(emails, subject, body)
