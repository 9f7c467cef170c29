"""Compliance flags: raise, clear, resolve, and the scheduled scan with its notices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from comanage.core.audit import event_record
from comanage.core.models import Membership, Organization, Role, User

from .. import fees
from ..models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    ComplianceFlag,
    FlagSeverity,
    Physician,
    ProgrammeYear,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)
from ..selectors import (
    fmv_opinion_covering,
    participation_covers_month,
)
from ..validators import npi_is_valid
from .common import _notify_roles, _send, _today


def flag_raise(
    *,
    organization: Organization,
    kind: str,
    key: str,
    message: str,
    agreement: Agreement | None = None,
    programme_year: ProgrammeYear | None = None,
    physician: Physician | None = None,
    severity: str = FlagSeverity.WARNING,
    blocking: bool = False,
    data: dict[str, Any] | None = None,
    user: User | None = None,
) -> tuple[ComplianceFlag, bool]:
    """Open a flag, or update the open flag with the same key (a rescan never duplicates).
    Returns (flag, created)."""
    values = {
        "kind": kind,
        "message": message,
        "agreement": agreement,
        "programme_year": programme_year,
        "physician": physician,
        "severity": severity,
        "blocking": blocking,
        "data": data or {},
    }
    existing = ComplianceFlag.objects.filter(key=key, resolved_at__isnull=True).first()
    if existing is not None:
        changed = [k for k, v in values.items() if getattr(existing, k) != v]
        if changed:
            for k in changed:
                setattr(existing, k, values[k])
            existing.save(update_fields=changed)
        return existing, False
    try:
        with transaction.atomic():
            flag = ComplianceFlag.objects.create(
                organization=organization, key=key, opened_by=user, **values
            )
    except IntegrityError:  # a concurrent scan opened it first
        return ComplianceFlag.objects.get(key=key, resolved_at__isnull=True), False
    event_record(
        organization=organization,
        name="compliance_flag.raised",
        actor=user,
        obj=flag,
        summary=message,
        data={"kind": kind, "severity": severity, "key": key},
    )
    return flag, True


def flag_clear(*, organization: Organization, key: str, note: str = "") -> bool:
    """Close the open flag with ``key`` because its condition is gone (automatic)."""
    flag = ComplianceFlag.objects.filter(key=key, resolved_at__isnull=True).first()
    if flag is None:
        return False
    flag.resolved_at = timezone.now()
    flag.auto_cleared = True
    flag.resolution_note = note or "The condition is no longer present (automatic rescan)."
    flag.save(update_fields=["resolved_at", "auto_cleared", "resolution_note"])
    return True


@transaction.atomic
def flag_resolve(*, flag: ComplianceFlag, user: User | None, note: str) -> ComplianceFlag:
    """A person resolves a flag: who, when and why are kept."""
    flag = ComplianceFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.resolved_at is not None:
        raise ValidationError(
            {"resolution_note": "This flag is already resolved."}, code="already_resolved"
        )
    if not (note or "").strip():
        raise ValidationError(
            {"resolution_note": "Say how the issue was resolved."}, code="required"
        )
    flag.resolved_at = timezone.now()
    flag.resolved_by = user
    flag.resolution_note = note.strip()
    flag.save()
    event_record(
        organization=flag.organization,
        name="flag.resolved",
        actor=user,
        obj=flag,
        summary=flag.message[:200],
    )
    return flag


SCAN_KINDS = (
    "logs_missing",
    "committee_missing",
    "fmv_expiring",
    "agreement_expiring",
    "hours_above_max",
    "npi_invalid",
)
LOG_GRACE_DAYS = 10


@dataclass
class ScanResult:
    raised: list[ComplianceFlag] = field(default_factory=list)
    updated: int = 0
    cleared: int = 0
    emails: int = 0


def _quarters(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date, str]]:
    quarters = []
    q_start = dt.date(start.year, 3 * ((start.month - 1) // 3) + 1, 1)
    while q_start <= end:
        q_next = fees.month_end(
            fees.month_end(fees.month_end(q_start) + dt.timedelta(1)) + dt.timedelta(1)
        )
        quarters.append((q_start, q_next, f"{q_start.year}Q{(q_start.month - 1) // 3 + 1}"))
        q_start = q_next + dt.timedelta(days=1)
    return quarters


def _year_of(years: list[ProgrammeYear], day: dt.date) -> ProgrammeYear | None:
    return next((y for y in years if y.start <= day <= y.end), None)


def _logs_missing(
    agreement: Agreement, years: list[ProgrammeYear], today: dt.date
) -> list[dict[str, Any]]:
    """Months without approved logs (co-management), once the month plus a grace is over."""
    if agreement.kind != AgreementKind.CO_MANAGEMENT:
        return []
    found: list[dict[str, Any]] = []
    approved = set(
        TimeSheet.objects.filter(agreement=agreement, status=TimeSheetStatus.APPROVED).values_list(
            "month", "physician_id"
        )
    )
    participations = list(agreement.participations.select_related("physician"))
    for month in fees.months_between(agreement.term_start, agreement.term_end):
        if fees.month_end(month) + dt.timedelta(days=LOG_GRACE_DAYS) >= today:
            break
        for p in participations:
            if participation_covers_month(p, month) and (month, p.physician_id) not in approved:
                found.append(
                    {
                        "kind": "logs_missing",
                        "agreement": agreement,
                        "programme_year": _year_of(years, month),
                        "physician": p.physician,
                        "key": f"logs_missing:{agreement.pk}:{p.physician_id}:{month:%Y-%m}",
                        "message": f"{agreement.name}: no approved time log for "
                        f"{p.physician} in {month:%B %Y}.",
                        "blocking": True,
                        "data": {"month": f"{month:%Y-%m}"},
                    }
                )
    return found


def _committees_missing(
    agreement: Agreement, years: list[ProgrammeYear], today: dt.date
) -> list[dict[str, Any]]:
    """Quarters over without a committee meeting."""
    held = list(agreement.committee_meetings.values_list("held_on", flat=True))
    found: list[dict[str, Any]] = []
    for q_start, q_end, label in _quarters(agreement.term_start, agreement.term_end):
        if q_end >= today:
            break
        if not any(q_start <= d <= q_end for d in held):
            found.append(
                {
                    "kind": "committee_missing",
                    "agreement": agreement,
                    "programme_year": _year_of(years, q_start),
                    "key": f"committee_missing:{agreement.pk}:{label}",
                    "message": f"{agreement.name}: no programme committee meeting in "
                    f"{label[:4]} {label[4:]}.",
                    "data": {"quarter": label},
                }
            )
    return found


def _fmv_expiring(agreement: Agreement, today: dt.date) -> list[dict[str, Any]]:
    """No FMV opinion covering today, or the covering one ends within 60 days with none after
    it, while the term runs on."""
    if agreement.term_end < today:
        return []
    covering_today = fmv_opinion_covering(agreement=agreement, start=today, end=today)
    if covering_today is None:
        return [
            {
                "kind": "fmv_expiring",
                "agreement": agreement,
                "blocking": True,
                "severity": FlagSeverity.CRITICAL,
                "key": f"fmv_expiring:{agreement.pk}",
                "message": f"{agreement.name}: no FMV opinion covers today.",
            }
        ]
    horizon = min(today + dt.timedelta(days=60), agreement.term_end)
    day_after = covering_today.effective_end + dt.timedelta(1)
    if covering_today.effective_end >= horizon or (
        fmv_opinion_covering(agreement=agreement, start=day_after, end=day_after) is not None
    ):
        return []
    return [
        {
            "kind": "fmv_expiring",
            "agreement": agreement,
            "key": f"fmv_expiring:{agreement.pk}",
            "message": f"{agreement.name}: the FMV opinion by {covering_today.valuator} "
            f"expires on {covering_today.effective_end:%b %-d, %Y}.",
            "data": {"expires": covering_today.effective_end.isoformat()},
        }
    ]


def _agreement_expiring(agreement: Agreement, today: dt.date) -> list[dict[str, Any]]:
    """The agreement's term ends within 90 days."""
    if not today <= agreement.term_end <= today + dt.timedelta(days=90):
        return []
    return [
        {
            "kind": "agreement_expiring",
            "agreement": agreement,
            "severity": FlagSeverity.INFO,
            "key": f"agreement_expiring:{agreement.pk}",
            "message": f"{agreement.name} expires on {agreement.term_end:%b %-d, %Y}: "
            "renew or let it expire.",
            "data": {"expires": agreement.term_end.isoformat()},
        }
    ]


def _npi_invalid(agreement: Agreement, today: dt.date) -> list[dict[str, Any]]:
    """Current participants without a valid NPI."""
    return [
        {
            "kind": "npi_invalid",
            "agreement": agreement,
            "physician": p.physician,
            "blocking": True,
            "severity": FlagSeverity.CRITICAL,
            "key": f"npi_invalid:{p.pk}",
            "message": f"{p.physician} takes part in {agreement.name} without a valid "
            f"NPI ({p.physician.npi or 'none'}).",
        }
        for p in agreement.participations.select_related("physician")
        if (p.end_date is None or p.end_date >= today) and not npi_is_valid(p.physician.npi)
    ]


def _hours_above_max() -> list[dict[str, Any]]:
    """Logged hours above the duty's monthly maximum (e.g. after a maximum was lowered)."""
    over = TimeEntry.objects.select_related("duty", "timesheet__agreement", "timesheet__physician")
    found: list[dict[str, Any]] = []
    for entry in over.filter(hours__gt=F("duty__max_monthly_hours")):
        sheet = entry.timesheet
        found.append(
            {
                "kind": "hours_above_max",
                "agreement": sheet.agreement,
                "physician": sheet.physician,
                "blocking": True,
                "key": f"hours_above_max:{entry.pk}",
                "message": f"{sheet.physician} logged {entry.hours} h for {entry.duty.name} in "
                f"{sheet.month:%B %Y}, above the monthly maximum of "
                f"{entry.duty.max_monthly_hours} h.",
            }
        )
    return found


def _scan_conditions(*, organization: Organization, today: dt.date) -> list[dict[str, Any]]:
    """Every compliance condition present today, as flag_raise keyword arguments."""
    found: list[dict[str, Any]] = []
    live = Agreement.objects.filter(status__in=[AgreementStatus.EXECUTED, AgreementStatus.ACTIVE])
    for agreement in live.prefetch_related("programme_years"):
        years = list(agreement.programme_years.all())
        found += _logs_missing(agreement, years, today)
        found += _committees_missing(agreement, years, today)
        found += _fmv_expiring(agreement, today)
        found += _agreement_expiring(agreement, today)
        found += _npi_invalid(agreement, today)
    return found + _hours_above_max()


def compliance_scan(
    *, organization: Organization, today: dt.date | None = None, notify: bool = True
) -> ScanResult:
    """Raise every present condition, clear system flags whose condition is gone, and e-mail
    the people who can act about the newly raised ones."""
    today = _today(today)
    result = ScanResult()
    conditions = _scan_conditions(organization=organization, today=today)
    present = set()
    with transaction.atomic():
        for condition in conditions:
            present.add(condition["key"])
            flag, created = flag_raise(organization=organization, **condition)
            if created:
                result.raised.append(flag)
            else:
                result.updated += 1
        stale = ComplianceFlag.objects.filter(
            kind__in=SCAN_KINDS, resolved_at__isnull=True, opened_by__isnull=True
        ).exclude(key__in=present)
        for flag in stale:
            result.cleared += flag_clear(organization=organization, key=flag.key)
    if notify and result.raised:
        result.emails = _notify_new_flags(organization=organization, flags=result.raised)
    return result


def _notify_new_flags(*, organization: Organization, flags: list[ComplianceFlag]) -> int:
    """Administrators (who resolve flags) get a digest; a physician gets their missing logs."""
    sent = 0
    lines = "\n".join(f"- {f.message}" for f in flags)
    sent += _notify_roles(
        organization=organization,
        roles={Role.ADMINISTRATOR},
        subject=f"{organization.name}: {len(flags)} new compliance flag(s)",
        body=f"The daily compliance scan raised:\n\n{lines}\n",
    )
    by_physician: dict[int, list[ComplianceFlag]] = {}
    for flag in flags:
        if flag.kind == "logs_missing" and flag.physician_id:
            by_physician.setdefault(flag.physician_id, []).append(flag)
    for physician_id, own in by_physician.items():
        emails = list(
            Membership.objects.filter(
                organization=organization, physician_id=physician_id, is_active=True
            ).values_list("user__email", flat=True)
        )
        body = "\n".join(f"- {f.message}" for f in own)
        sent += _send(
            emails,
            "Reminder: time logs to submit",
            f"Please log and submit your hours:\n\n{body}\n",
        )
    return sent
