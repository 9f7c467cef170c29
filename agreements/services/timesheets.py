"""Management duties and the physicians' time sheets: save, submit, approve, return."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from comanage.core.models import Membership, Role, User
from comanage.core.money import ZERO

from ..models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    ManagementDuty,
    Participation,
    Physician,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)
from ..selectors import (
    participation_covers_month,
)
from .common import _frozen_error, _full_clean, _notify_roles, _send


@transaction.atomic
def duty_save(
    *, agreement: Agreement, data: dict[str, Any], duty: ManagementDuty | None = None
) -> ManagementDuty:
    """Duties (and their hours) are part of the compensation: frozen from execution."""
    if agreement.is_frozen:
        raise _frozen_error(agreement, "required_monthly_hours")
    if agreement.kind != AgreementKind.CO_MANAGEMENT:
        raise ValidationError(
            {"name": "Management duties belong to co-management agreements."}, code="wrong_kind"
        )
    duty = duty or ManagementDuty(organization=agreement.organization, agreement=agreement)
    for name in ("name", "description", "required_monthly_hours", "max_monthly_hours"):
        if name in data:
            setattr(duty, name, data[name])
    if duty.required_monthly_hours is not None and duty.required_monthly_hours < 0:
        raise ValidationError(
            {"required_monthly_hours": "Hours cannot be negative."}, code="negative"
        )
    if duty.max_monthly_hours is None or duty.max_monthly_hours <= 0:
        raise ValidationError(
            {"max_monthly_hours": "Give a monthly maximum above zero."}, code="required"
        )
    if duty.max_monthly_hours < (duty.required_monthly_hours or ZERO):
        raise ValidationError(
            {"max_monthly_hours": "The monthly maximum cannot be below the required hours."},
            code="below_required",
        )
    if (
        ManagementDuty.objects.filter(agreement=agreement, name__iexact=duty.name)
        .exclude(pk=duty.pk)
        .exists()
    ):
        raise ValidationError(
            {"name": "This agreement already has a duty with this name."}, code="unique"
        )
    _full_clean(duty, exclude=["agreement"])
    duty.save()
    return duty


def _month(value: dt.date) -> dt.date:
    return value.replace(day=1)


@dataclass
class EntryInput:
    duty: ManagementDuty
    hours: Decimal
    description: str = ""


def _check_month_open(*, agreement: Agreement, physician: Physician, month: dt.date) -> None:
    """Hours go on an executed or active co-management agreement, for a past or current month
    of its term in which the physician took part."""
    if agreement.kind != AgreementKind.CO_MANAGEMENT:
        raise ValidationError(
            {"month": "Time logs belong to co-management agreements."}, code="wrong_kind"
        )
    if agreement.status not in (AgreementStatus.EXECUTED, AgreementStatus.ACTIVE):
        raise ValidationError(
            {"month": "Hours are logged only on an executed or active agreement."},
            code="not_active",
        )
    if not (_month(agreement.term_start) <= month <= agreement.term_end):
        raise ValidationError(
            {"month": "The month is outside the agreement's term."}, code="outside_term"
        )
    participation = Participation.objects.filter(agreement=agreement, physician=physician).first()
    if participation is None or not participation_covers_month(participation, month):
        raise ValidationError(
            {"month": f"{physician} did not take part in this agreement in {month:%B %Y}."},
            code="outside_participation",
        )
    if month > _month(timezone.localdate()):
        raise ValidationError(
            {"month": "Hours cannot be logged for a future month."}, code="future"
        )


def _check_sheet_editable(sheet: TimeSheet | None, month: dt.date) -> None:
    """An approved month is locked; a submitted one goes back to its physician first."""
    if sheet is not None and sheet.status == TimeSheetStatus.APPROVED:
        raise ValidationError({"month": f"{month:%B %Y} is approved and locked."}, code="locked")
    if sheet is not None and sheet.status == TimeSheetStatus.SUBMITTED:
        raise ValidationError(
            {
                "month": f"{month:%B %Y} is submitted and awaiting review; ask "
                "the administrator to return it to change it."
            },
            code="submitted",
        )


def _check_entry(entry: EntryInput) -> None:
    """One duty's hours: a non-negative number of at most two places, within the duty's
    monthly maximum, described when above zero."""
    name = entry.duty.name
    if not isinstance(entry.hours, Decimal) or not entry.hours.is_finite():
        raise ValidationError({"hours": f"{name}: hours must be a number."}, code="invalid")
    if entry.hours < 0:
        raise ValidationError({"hours": f"{name}: hours cannot be negative."}, code="negative")
    if entry.hours.normalize().as_tuple().exponent < -2:  # type: ignore[operator]
        raise ValidationError(
            {"hours": f"{name}: hours take at most two decimal places."},
            code="max_decimal_places",
        )
    if entry.hours > entry.duty.max_monthly_hours:
        raise ValidationError(
            {
                "hours": f"{name}: {entry.hours} hours is above the monthly maximum of "
                f"{entry.duty.max_monthly_hours} hours."
            },
            code="above_maximum",
        )
    if "\x00" in entry.description:
        raise ValidationError(
            {"description": f"{name}: the description must not contain a NUL character."},
            code="null",
        )
    if entry.hours > 0 and not entry.description.strip():
        raise ValidationError({"description": f"{name}: describe the work done."}, code="required")


def _check_entries(*, agreement: Agreement, entries: list[EntryInput], month: dt.date) -> None:
    """Each duty once, of this agreement, each entry valid, and no more than 24 hours a day
    in the month whatever the duties' own maximums."""
    seen = set()
    for entry in entries:
        if entry.duty.agreement_id != agreement.pk:
            raise ValidationError(
                {"duty": "This duty belongs to another agreement."}, code="invalid"
            )
        if entry.duty.pk in seen:
            raise ValidationError({"duty": f"{entry.duty.name} is listed twice."}, code="duplicate")
        seen.add(entry.duty.pk)
        _check_entry(entry)
    days = calendar.monthrange(month.year, month.month)[1]
    if sum((e.hours for e in entries), Decimal(0)) > 24 * days:
        raise ValidationError(
            {
                "hours": f"{sum(e.hours for e in entries)} hours in "
                f"{month:%B %Y} is more than 24 hours a day."
            },
            code="above_maximum",
        )


@transaction.atomic
def timesheet_save(
    *,
    agreement: Agreement,
    physician: Physician,
    month: dt.date,
    entries: list[EntryInput],
    user: User | None,
    acting_physician: Physician | None = None,
) -> TimeSheet:
    """Record a physician's hours for a month, per duty. ``acting_physician`` is set when a
    physician logs for themself: they can never log for someone else."""
    if acting_physician is not None and acting_physician.pk != physician.pk:
        raise PermissionDenied("Physicians log only their own hours.")
    month = _month(month)
    _check_month_open(agreement=agreement, physician=physician, month=month)
    sheet = (
        TimeSheet.objects.select_for_update()
        .filter(agreement=agreement, physician=physician, month=month)
        .first()
    )
    _check_sheet_editable(sheet, month)
    _check_entries(agreement=agreement, entries=entries, month=month)
    if sheet is None:
        sheet = TimeSheet.objects.create(
            organization=agreement.organization,
            agreement=agreement,
            physician=physician,
            month=month,
        )
    sheet.entries.all().delete()
    for entry in entries:
        if entry.hours > 0:
            TimeEntry.objects.create(
                organization=agreement.organization,
                timesheet=sheet,
                duty=entry.duty,
                hours=entry.hours,
                description=entry.description.strip(),
            )
    if sheet.status == TimeSheetStatus.RETURNED:
        sheet.status = TimeSheetStatus.DRAFT
        sheet.save(update_fields=["status"])
    return sheet


def _lock_sheet(timesheet: TimeSheet) -> TimeSheet:
    return TimeSheet.objects.select_for_update().get(pk=timesheet.pk)


@transaction.atomic
def timesheet_submit(
    *, timesheet: TimeSheet, user: User | None, acting_physician: Physician | None = None
) -> TimeSheet:
    if acting_physician is not None and acting_physician.pk != timesheet.physician_id:
        raise PermissionDenied("Physicians submit only their own hours.")
    sheet = _lock_sheet(timesheet)
    if sheet.status == TimeSheetStatus.APPROVED:
        raise ValidationError(
            {
                "status": f"{sheet.month:%B %Y} is already approved and locked; "
                "it cannot be submitted again."
            },
            code="locked",
        )
    if sheet.status == TimeSheetStatus.SUBMITTED:
        raise ValidationError(
            {"status": f"{sheet.month:%B %Y} is already submitted."}, code="already_submitted"
        )
    if not sheet.entries.exists():
        raise ValidationError(
            {"entries": "Log hours for at least one duty before submitting."}, code="empty"
        )
    sheet.status = TimeSheetStatus.SUBMITTED
    sheet.submitted_at = timezone.now()
    sheet.save()
    _notify_roles(
        organization=sheet.organization,
        roles={Role.ADMINISTRATOR},
        subject=f"Time sheet submitted: {sheet}",
        body=f"{sheet.physician} submitted hours for {sheet.month:%B %Y} "
        f"({sheet.agreement}). Review and approve or return them.",
    )
    return sheet


@transaction.atomic
def timesheet_approve(*, timesheet: TimeSheet, user: User | None, note: str = "") -> TimeSheet:
    sheet = _lock_sheet(timesheet)
    if sheet.status != TimeSheetStatus.SUBMITTED:
        raise ValidationError(
            {
                "status": f"Only a submitted month can be approved (this one is "
                f"{sheet.get_status_display().lower()})."
            },
            code="not_submitted",
        )
    for entry in sheet.entries.select_related("duty"):
        if entry.hours > entry.duty.max_monthly_hours:
            raise ValidationError(
                {
                    "hours": f"{entry.duty.name}: {entry.hours} hours is above the "
                    "monthly maximum; return the sheet."
                },
                code="above_maximum",
            )
    sheet.status = TimeSheetStatus.APPROVED
    sheet.reviewed_by = user
    sheet.reviewed_at = timezone.now()
    sheet.review_note = note
    sheet.save()
    return sheet


@transaction.atomic
def timesheet_return(*, timesheet: TimeSheet, user: User | None, note: str) -> TimeSheet:
    sheet = _lock_sheet(timesheet)
    if sheet.status != TimeSheetStatus.SUBMITTED:
        raise ValidationError(
            {"status": "Only a submitted month can be returned."}, code="not_submitted"
        )
    if not (note or "").strip():
        raise ValidationError({"review_note": "Say what needs to change."}, code="required")
    sheet.status = TimeSheetStatus.RETURNED
    sheet.reviewed_by = user
    sheet.reviewed_at = timezone.now()
    sheet.review_note = note.strip()
    sheet.save()
    emails = list(
        Membership.objects.filter(physician=sheet.physician, is_active=True).values_list(
            "user__email", flat=True
        )
    )
    _send(
        emails,
        f"Time sheet returned: {sheet.month:%B %Y}",
        f"Your hours for {sheet.month:%B %Y} ({sheet.agreement}) were returned: "
        f"{sheet.review_note}",
    )
    return sheet
