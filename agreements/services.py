"""Writes of agreement data. Every refusal is a ``ValidationError({field: message})`` naming the
field and the reason, raised before anything is stored (each service runs in one transaction).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from comanage.core import master_imports, uploads
from comanage.core.audit import event_record
from comanage.core.models import Membership, Organization, Role, User
from comanage.core.money import ZERO
from comanage.core.versioning import data_version_bump

from . import fees, roster
from .models import (
    Agreement,
    AgreementDocument,
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    CommitteeMeeting,
    ComplianceFlag,
    FixedFeeMode,
    FlagSeverity,
    FMVOpinion,
    ManagementDuty,
    Milestone,
    MilestoneStatus,
    Participation,
    Physician,
    Practice,
    ProgrammeYear,
    RosterImport,
    ServiceLine,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)
from .selectors import (
    fmv_opinion_covering,
    participation_covers_month,
    terms_latest,
)
from .validators import npi_is_valid, validate_npi

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Helpers


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


# ---------------------------------------------------------------------------------------------
# Practices and physicians


PRACTICE_FIELDS = ("name", "tax_id", "contact_name", "contact_email", "address")


def practice_save(
    *, organization: Organization, data: dict[str, Any], practice: Practice | None = None
) -> Practice:
    practice = practice or Practice(organization=organization)
    for name in PRACTICE_FIELDS:
        if name in data:
            setattr(practice, name, data[name])
    _full_clean(practice)
    duplicate = Practice.objects.filter(name__iexact=practice.name).exclude(pk=practice.pk)
    if duplicate.exists():
        raise ValidationError({"name": "A practice with this name already exists."}, code="unique")
    practice.save()
    return practice


PHYSICIAN_FIELDS = ("npi", "first_name", "last_name", "specialty", "practice", "email")


def physician_save(
    *, organization: Organization, data: dict[str, Any], physician: Physician | None = None
) -> Physician:
    """Create or update a physician; the NPI must pass the Luhn check and be unique here."""
    physician = physician or Physician(organization=organization)
    for name in PHYSICIAN_FIELDS:
        if name in data:
            setattr(physician, name, data[name])
    physician.npi = (physician.npi or "").strip()
    try:
        validate_npi(physician.npi)
    except ValidationError as exc:
        raise ValidationError({"npi": exc.messages[0]}, code=exc.code) from None
    _full_clean(physician)
    if Physician.objects.filter(npi=physician.npi).exclude(pk=physician.pk).exists():
        raise ValidationError(
            {"npi": "A physician with this NPI already exists in this organization."}, code="unique"
        )
    physician.save()
    return physician


# ---------------------------------------------------------------------------------------------
# Agreements, programme years, terms


AGREEMENT_FIELDS = (
    "kind",
    "name",
    "practice",
    "service_line",
    "service_line_custom",
    "term_start",
    "term_end",
    "program_administrator",
    "administrator_contact",
    "patient_notice_process",
    "quality_safeguards",
)
# What may still change after execution: nothing that decides money or the term.
EDITABLE_WHEN_FROZEN = {
    "name",
    "program_administrator",
    "administrator_contact",
    "patient_notice_process",
    "quality_safeguards",
    "service_line_custom",
}
PROGRAMME_YEARS_DEFAULT = {AgreementKind.SHARED_SAVINGS: 3}


def _validate_term(agreement: Agreement) -> None:
    if agreement.term_start and agreement.term_end:
        if agreement.term_end <= agreement.term_start:
            raise ValidationError(
                {"term_end": "The term must end after it starts."}, code="end_before_start"
            )
        if agreement.term_end < add_years(agreement.term_start, 1) - dt.timedelta(days=1):
            raise ValidationError(
                {"term_end": "The term must be at least one year."}, code="term_too_short"
            )
    if agreement.service_line == ServiceLine.CUSTOM and not agreement.service_line_custom:
        raise ValidationError(
            {"service_line_custom": "Name the custom service line."}, code="required"
        )


@transaction.atomic
def agreement_create(
    *, organization: Organization, data: dict[str, Any], user: User | None
) -> Agreement:
    """A draft agreement with terms version 1 (the spec's policy defaults) and its programme
    years generated from the term (shared savings: three years by default)."""
    data = dict(data)
    kind = data.get("kind")
    if data.get("term_start") and not data.get("term_end"):
        data["term_end"] = add_years(
            data["term_start"], PROGRAMME_YEARS_DEFAULT.get(kind, 3)
        ) - dt.timedelta(days=1)
    agreement = Agreement(organization=organization, status=AgreementStatus.DRAFT)
    for name in AGREEMENT_FIELDS:
        if name in data:
            setattr(agreement, name, data[name])
    _validate_term(agreement)
    _full_clean(agreement)
    agreement.save()
    AgreementTerms.objects.create(
        organization=organization,
        agreement=agreement,
        version=1,
        effective_from=agreement.term_start,
        created_by=user,
        reason="Initial terms",
    )
    programme_years_generate(agreement=agreement)
    event_record(
        organization=organization,
        name="agreement.created",
        actor=user,
        obj=agreement,
        summary=f"{agreement.name} created as a draft",
    )
    return agreement


@transaction.atomic
def agreement_update(*, agreement: Agreement, data: dict[str, Any], user: User | None) -> Agreement:
    changed = {k for k in AGREEMENT_FIELDS if k in data and getattr(agreement, k) != data[k]}
    if agreement.is_frozen:
        refused = sorted(changed - EDITABLE_WHEN_FROZEN)
        if refused:
            raise _frozen_error(agreement, refused[0])
    term_changed = bool({"term_start", "term_end"} & changed)
    for name in changed:
        setattr(agreement, name, data[name])
    _validate_term(agreement)
    _full_clean(agreement)
    agreement.save()
    if term_changed:
        AgreementTerms.objects.filter(agreement=agreement, version=1).update(
            effective_from=agreement.term_start
        )
        data_version_bump(agreement.organization_id)  # update() sends no post_save
        agreement.programme_years.all().delete()
        programme_years_generate(agreement=agreement)
    return agreement


def programme_year_ranges(term_start: dt.date, term_end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Consecutive one-year closed ranges from the term start; the last ends with the term."""
    ranges = []
    start = term_start
    while start <= term_end:
        end = min(add_years(start, 1) - dt.timedelta(days=1), term_end)
        ranges.append((start, end))
        start = end + dt.timedelta(days=1)
    return ranges


def programme_years_generate(*, agreement: Agreement) -> list[ProgrammeYear]:
    return programme_years_set(
        agreement=agreement, ranges=programme_year_ranges(agreement.term_start, agreement.term_end)
    )


@transaction.atomic
def programme_years_set(
    *, agreement: Agreement, ranges: list[tuple[dt.date, dt.date]]
) -> list[ProgrammeYear]:
    """Replace the programme years with ``ranges``: closed, within the term, no overlaps."""
    if agreement.is_frozen:
        raise _frozen_error(agreement, "programme_years")
    ordered = sorted(ranges)
    for index, (start, end) in enumerate(ordered):
        if end < start:
            message = f"Year {index + 1} ends ({end}) before it starts ({start})."
            raise ValidationError({"programme_years": message}, code="end_before_start")
        if start < agreement.term_start or end > agreement.term_end:
            raise ValidationError(
                {
                    "programme_years": f"Year {index + 1} ({start} – {end}) lies "
                    "outside the agreement's term."
                },
                code="outside_term",
            )
        if index and start <= ordered[index - 1][1]:
            raise ValidationError(
                {"programme_years": f"Year {index + 1} ({start} – {end}) overlaps year {index}."},
                code="overlap",
            )
    agreement.programme_years.all().delete()
    return [
        ProgrammeYear.objects.create(
            organization=agreement.organization, agreement=agreement, number=i + 1, start=s, end=e
        )
        for i, (s, e) in enumerate(ordered)
    ]


TERMS_FIELDS = (
    "annual_fixed_fee",
    "incentive_pool",
    "hours_shortfall_policy",
    "tier_mode",
    "small_denominator_policy",
    "distribution_method",
    "physician_share_pct",
    "admin_fee_monthly",
    "volume_cap_scope",
    "negative_opportunities",
    "quality_gate",
    "min_savings_threshold_pct",
    "leaver_policy",
    "distribution_cap",
    "reprice_baseline",
    "severity_tolerance_pct",
    "quality_tolerance_pct",
)


def _validate_terms(terms: AgreementTerms) -> None:
    share = terms.physician_share_pct
    if share is not None and share > 50:
        raise ValidationError(
            {"physician_share_pct": "The physician share may not exceed 50%."},
            code="share_above_50",
        )
    if share is not None and share < 0:
        raise ValidationError(
            {"physician_share_pct": "The physician share cannot be negative."},
            code="share_negative",
        )
    for name in ("annual_fixed_fee", "incentive_pool", "admin_fee_monthly", "distribution_cap"):
        value = getattr(terms, name)
        if value is not None and value < 0:
            raise ValidationError({name: "Amounts cannot be negative."}, code="negative")
    threshold = terms.min_savings_threshold_pct
    if threshold is not None and not 0 <= threshold <= 100:
        raise ValidationError(
            {"min_savings_threshold_pct": "Use a percentage from 0 to 100."}, code="out_of_range"
        )
    for name in ("severity_tolerance_pct", "quality_tolerance_pct"):
        value = getattr(terms, name)
        if value is not None and not 0 <= value <= 100:
            raise ValidationError({name: "Use a percentage from 0 to 100."}, code="out_of_range")
    _full_clean(terms, exclude=["agreement"])


@transaction.atomic
def terms_update(
    *, terms: AgreementTerms, data: dict[str, Any], user: User | None
) -> AgreementTerms:
    """Edit a terms version before execution; afterwards it is frozen (use an amendment)."""
    if terms.agreement.is_frozen:
        field_name = next((k for k in data if k in TERMS_FIELDS), "__all__")
        raise _frozen_error(terms.agreement, field_name)
    for name in TERMS_FIELDS:
        if name in data:
            setattr(terms, name, data[name])
    _validate_terms(terms)
    terms.save()
    return terms


@transaction.atomic
def amendment_create(
    *,
    agreement: Agreement,
    effective_from: dt.date,
    data: dict[str, Any],
    reason: str,
    user: User | None,
    today: dt.date | None = None,
) -> AgreementTerms:
    """A new terms version effective from a future date, copied from the latest version with
    ``data`` applied. Programme years starting before the date keep their terms."""
    today = _today(today)
    if effective_from is None:
        raise ValidationError(
            {"effective_from": "Give the date the amendment takes effect."}, code="required"
        )
    if effective_from <= today:
        raise ValidationError(
            {
                "effective_from": "An amendment takes effect from a future date "
                f"(after {today:%b %-d, %Y}); compensation is "
                "set in advance."
            },
            code="not_future",
        )
    if not agreement.term_start <= effective_from <= agreement.term_end:
        raise ValidationError(
            {"effective_from": "The date must fall within the agreement's term."},
            code="outside_term",
        )
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the terms are amended."}, code="required")
    if AgreementTerms.objects.filter(agreement=agreement, effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": "Another version already takes effect on this date."},
            code="duplicate",
        )
    previous = terms_latest(agreement=agreement)
    new = AgreementTerms(
        organization=agreement.organization,
        agreement=agreement,
        effective_from=effective_from,
        reason=reason.strip(),
        created_by=user,
        version=(previous.version + 1) if previous else 1,
    )
    for name in TERMS_FIELDS:
        if previous is not None:
            setattr(new, name, getattr(previous, name))
        if name in data:
            setattr(new, name, data[name])
    _validate_terms(new)
    new.save()
    event_record(
        organization=agreement.organization,
        name="agreement.amended",
        actor=user,
        obj=agreement,
        summary=f"Terms v{new.version} effective {effective_from}",
        data={"version": new.version},
    )
    return new


# ---------------------------------------------------------------------------------------------
# Lifecycle

TRANSITIONS: dict[str, set[str]] = {
    AgreementStatus.DRAFT: {AgreementStatus.IN_NEGOTIATION, AgreementStatus.TERMINATED},
    AgreementStatus.IN_NEGOTIATION: {
        AgreementStatus.DRAFT,
        AgreementStatus.EXECUTED,
        AgreementStatus.TERMINATED,
    },
    AgreementStatus.EXECUTED: {AgreementStatus.ACTIVE, AgreementStatus.TERMINATED},
    AgreementStatus.ACTIVE: {AgreementStatus.EXPIRED, AgreementStatus.TERMINATED},
    AgreementStatus.EXPIRED: set(),
    AgreementStatus.TERMINATED: set(),
}


def fmv_gaps(*, agreement: Agreement) -> list[ProgrammeYear]:
    """Programme years no single FMV opinion covers."""
    return [
        y
        for y in agreement.programme_years.all()
        if fmv_opinion_covering(agreement=agreement, start=y.start, end=y.end) is None
    ]


def activation_blockers(*, agreement: Agreement) -> list[str]:
    problems = []
    years = list(agreement.programme_years.all())
    if not years:
        problems.append("The agreement has no programme years.")
    for year in fmv_gaps(agreement=agreement):
        problems.append(
            f"No FMV opinion covers programme year {year.number} "
            f"({year.start:%b %-d, %Y} – {year.end:%b %-d, %Y})."
        )
    if agreement.kind == AgreementKind.CO_MANAGEMENT:
        for terms in agreement.terms.all():
            total = (terms.annual_fixed_fee or ZERO) + (terms.incentive_pool or ZERO)
            for year in years:
                fmv = fmv_opinion_covering(agreement=agreement, start=year.start, end=year.end)
                if fmv is not None and total > fmv.total_max_annual:
                    problems.append(
                        f"Terms v{terms.version}: fixed fee plus incentive pool "
                        f"({total:,.2f}) exceeds the FMV maximum "
                        f"({fmv.total_max_annual:,.2f})."
                    )
                    break
    return problems


@transaction.atomic
def agreement_transition(
    *,
    agreement: Agreement,
    to_status: str,
    user: User | None,
    executed_on: dt.date | None = None,
    signatories: str = "",
    reason: str = "",
    on: dt.date | None = None,
    today: dt.date | None = None,
) -> Agreement:
    """Move along draft → in_negotiation → executed → active → expired / terminated."""
    today = _today(today)
    current = agreement.status
    if to_status not in TRANSITIONS.get(current, set()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, set()))) or "none"
        raise ValidationError(
            {
                "status": f"An agreement cannot go from {current} to {to_status} "
                f"(allowed: {allowed})."
            },
            code="invalid_transition",
        )
    if to_status == AgreementStatus.EXECUTED:
        if executed_on is None:
            raise ValidationError(
                {"executed_on": "Record the date the agreement was signed."}, code="required"
            )
        if executed_on > today:
            raise ValidationError(
                {"executed_on": "The signing date cannot be in the future."}, code="future"
            )
        if not signatories.strip():
            raise ValidationError(
                {"signatories": "Record who signed, one per line."}, code="required"
            )
        if not agreement.terms.exists():
            raise ValidationError(
                {"status": "The agreement has no terms to execute."}, code="no_terms"
            )
        agreement.executed_on = executed_on
        agreement.signatories = signatories.strip()
    elif to_status == AgreementStatus.ACTIVE:
        problems = activation_blockers(agreement=agreement)
        if problems:
            raise ValidationError({"status": problems}, code="not_activatable")
    elif to_status == AgreementStatus.EXPIRED:
        if agreement.term_end >= today:
            raise ValidationError(
                {
                    "status": f"The term runs until {agreement.term_end:%b %-d, %Y};"
                    " it has not expired."
                },
                code="not_expired",
            )
    elif to_status == AgreementStatus.TERMINATED:
        if not reason.strip():
            raise ValidationError({"reason": "Give the reason for terminating."}, code="required")
        agreement.terminated_on = on or today
        agreement.termination_reason = reason.strip()
    agreement.status = to_status
    agreement.save()
    event_record(
        organization=agreement.organization,
        name=f"agreement.{to_status}",
        actor=user,
        obj=agreement,
        summary=f"{agreement.name}: {current} → {to_status}",
    )
    return agreement


# ---------------------------------------------------------------------------------------------
# Participation


@transaction.atomic
def participation_save(
    *, agreement: Agreement, data: dict[str, Any], participation: Participation | None = None
) -> Participation:
    participation = participation or Participation(
        organization=agreement.organization, agreement=agreement
    )
    for name in (
        "physician",
        "join_date",
        "leave_date",
        "termination_date",
        "termination_reason",
        "for_cause",
        "ownership_pct",
    ):
        if name in data:
            setattr(participation, name, data[name])
    if participation.physician_id and participation.physician.organization_id != (
        agreement.organization_id
    ):
        raise ValidationError({"physician": "Unknown physician."}, code="invalid")
    join = participation.join_date
    if join is None:
        raise ValidationError({"join_date": "Give the date the physician joins."}, code="required")
    if not agreement.term_start <= join <= agreement.term_end:
        raise ValidationError(
            {"join_date": "The join date must fall within the agreement's term."},
            code="outside_term",
        )
    for name in ("leave_date", "termination_date"):
        value = getattr(participation, name)
        if value is not None and value < join:
            raise ValidationError(
                {name: "This date cannot be before the join date."}, code="before_join"
            )
    if participation.termination_date and not participation.termination_reason.strip():
        raise ValidationError(
            {"termination_reason": "Give the reason for the termination."}, code="required"
        )
    if participation.for_cause and not participation.termination_date:
        raise ValidationError(
            {"termination_date": "A termination for cause needs its date."}, code="required"
        )
    pct = participation.ownership_pct
    if pct is not None and not 0 <= pct <= 100:
        raise ValidationError(
            {"ownership_pct": "Ownership is a percentage from 0 to 100."}, code="out_of_range"
        )
    duplicate = Participation.objects.filter(
        agreement=agreement, physician_id=participation.physician_id
    )
    if duplicate.exclude(pk=participation.pk).exists():
        raise ValidationError(
            {"physician": "This physician already takes part in this agreement."}, code="unique"
        )
    _full_clean(participation, exclude=["agreement"])
    participation.save()
    return participation


# ---------------------------------------------------------------------------------------------
# FMV opinions

FMV_FIELDS = (
    "valuator",
    "issue_date",
    "effective_start",
    "effective_end",
    "total_max_annual",
    "fixed_mode",
    "fixed_annual",
    "fixed_hours",
    "hourly_rate",
    "max_incentive",
    "rate_p25",
    "rate_p50",
    "rate_p75",
    "rate_p90",
    "justification",
)


def fmv_opinion_check(opinion: FMVOpinion) -> list[str]:
    """Spec 2's validations. Errors raise; the returned list holds the warnings."""
    if (
        opinion.effective_start
        and opinion.effective_end
        and (opinion.effective_end < opinion.effective_start)
    ):
        raise ValidationError(
            {"effective_end": "The effective period ends before it starts."},
            code="end_before_start",
        )
    if opinion.fixed_mode == FixedFeeMode.HOURLY:
        for name in ("fixed_hours", "hourly_rate"):
            if getattr(opinion, name) is None:
                raise ValidationError(
                    {name: "Required when the fixed portion is hours × hourly rate."},
                    code="required",
                )
    elif opinion.fixed_annual is None:
        raise ValidationError(
            {"fixed_annual": "Required when the fixed portion is an annual amount."},
            code="required",
        )
    percentiles = [opinion.rate_p25, opinion.rate_p50, opinion.rate_p75, opinion.rate_p90]
    given = [p for p in percentiles if p is not None]
    if given != sorted(given):
        raise ValidationError(
            {"rate_p90": "Survey percentiles must rise from the 25th to the 90th."},
            code="unordered",
        )
    fixed = opinion.fixed_portion or ZERO
    total = opinion.total_max_annual or ZERO
    incentive = opinion.max_incentive or ZERO
    if fixed + incentive > total:
        raise ValidationError(
            {
                "max_incentive": f"Fixed ({fixed:,.2f}) plus maximum incentive "
                f"({incentive:,.2f}) exceeds the FMV total "
                f"maximum ({total:,.2f})."
            },
            code="above_fmv_maximum",
        )
    if (
        opinion.fixed_mode == FixedFeeMode.HOURLY
        and opinion.rate_p75 is not None
        and opinion.hourly_rate is not None
        and opinion.hourly_rate > opinion.rate_p75
        and not opinion.justification.strip()
    ):
        raise ValidationError(
            {
                "justification": "The hourly rate is above the 75th percentile "
                f"({opinion.rate_p75:,.2f}): a written "
                "justification is required."
            },
            code="justification_required",
        )
    warnings = []
    if total and incentive * 2 > total:
        warnings.append(
            f"The incentive is {incentive * 100 / total:.2f}% of the total maximum "
            "(above 50%): review that the fixed portion reflects the duties."
        )
    return warnings


@transaction.atomic
def fmv_opinion_save(
    *, agreement: Agreement, data: dict[str, Any], opinion: FMVOpinion | None = None
) -> tuple[FMVOpinion, list[str]]:
    opinion = opinion or FMVOpinion(organization=agreement.organization, agreement=agreement)
    for name in FMV_FIELDS:
        if name in data:
            setattr(opinion, name, data[name])
    opinion.justification = opinion.justification or ""
    _full_clean(opinion, exclude=["agreement"])
    warnings = fmv_opinion_check(opinion)
    opinion.save()
    return opinion, warnings


# ---------------------------------------------------------------------------------------------
# Management duties and time sheets


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
    sheet = (
        TimeSheet.objects.select_for_update()
        .filter(agreement=agreement, physician=physician, month=month)
        .first()
    )
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
    seen = set()
    for entry in entries:
        if entry.duty.agreement_id != agreement.pk:
            raise ValidationError(
                {"duty": "This duty belongs to another agreement."}, code="invalid"
            )
        if entry.duty.pk in seen:
            raise ValidationError({"duty": f"{entry.duty.name} is listed twice."}, code="duplicate")
        seen.add(entry.duty.pk)
        if not isinstance(entry.hours, Decimal) or not entry.hours.is_finite():
            raise ValidationError(
                {"hours": f"{entry.duty.name}: hours must be a number."}, code="invalid"
            )
        if entry.hours < 0:
            raise ValidationError(
                {"hours": f"{entry.duty.name}: hours cannot be negative."}, code="negative"
            )
        if entry.hours.normalize().as_tuple().exponent < -2:  # type: ignore[operator]
            raise ValidationError(
                {"hours": f"{entry.duty.name}: hours take at most two decimal places."},
                code="max_decimal_places",
            )
        if entry.hours > entry.duty.max_monthly_hours:
            raise ValidationError(
                {
                    "hours": f"{entry.duty.name}: {entry.hours} hours is above the "
                    f"monthly maximum of "
                    f"{entry.duty.max_monthly_hours} hours."
                },
                code="above_maximum",
            )
        if "\x00" in entry.description:
            raise ValidationError(
                {
                    "description": f"{entry.duty.name}: the description must not "
                    f"contain a NUL character."
                },
                code="null",
            )
        if entry.hours > 0 and not entry.description.strip():
            raise ValidationError(
                {"description": f"{entry.duty.name}: describe the work done."}, code="required"
            )
    # A month holds at most 24 hours a day, whatever the duties' own maximums.
    days = calendar.monthrange(month.year, month.month)[1]
    if sum((e.hours for e in entries), Decimal(0)) > 24 * days:
        raise ValidationError(
            {
                "hours": f"{sum(e.hours for e in entries)} hours in "
                f"{month:%B %Y} is more than 24 hours a day."
            },
            code="above_maximum",
        )
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


# ---------------------------------------------------------------------------------------------
# Committee, documents, milestones


@transaction.atomic
def committee_meeting_save(
    *, agreement: Agreement, data: dict[str, Any], meeting: CommitteeMeeting | None = None
) -> CommitteeMeeting:
    meeting = meeting or CommitteeMeeting(organization=agreement.organization, agreement=agreement)
    for name in ("held_on", "hospital_attendees", "administrator_attendees", "minutes"):
        if name in data:
            setattr(meeting, name, data[name] or ("" if name != "held_on" else None))
    if meeting.held_on is None:
        raise ValidationError({"held_on": "Give the meeting date."}, code="required")
    if meeting.held_on > timezone.localdate():
        raise ValidationError({"held_on": "Record a meeting once it has been held."}, code="future")
    present = list(
        data.get("physicians_present", meeting.physicians_present.all() if meeting.pk else [])
    )
    participant_ids = set(agreement.participations.values_list("physician_id", flat=True))
    for physician in present:
        if physician.pk not in participant_ids:
            raise ValidationError(
                {"physicians_present": f"{physician} does not take part in this agreement."},
                code="invalid",
            )
    _full_clean(meeting, exclude=["agreement"])
    meeting.save()
    meeting.physicians_present.set(present)
    return meeting


MAX_DOCUMENT_BYTES = 25 * 1024 * 1024


@transaction.atomic
def document_upload(
    *, agreement: Agreement, kind: str, title: str, upload: Any, user: User | None
) -> AgreementDocument:
    """Store a PDF (checked by its magic bytes, not its name) with its SHA-256."""
    if upload is None:
        raise ValidationError({"file": "Choose a file."}, code="required")
    if upload.size > MAX_DOCUMENT_BYTES:
        raise ValidationError({"file": "The file is larger than 25 MB."}, code="too_large")
    upload.seek(0)
    head = upload.read(5)
    if head != b"%PDF-":
        raise ValidationError(
            {"file": "Only PDF files are accepted (this file is not a PDF)."}, code="not_pdf"
        )
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    if not (title or "").strip():
        title = upload.name
    document = AgreementDocument(
        organization=agreement.organization,
        agreement=agreement,
        kind=kind,
        title=title.strip()[:200],
        original_name=upload.name[:255],
        sha256=digest.hexdigest(),
        size=upload.size,
        uploaded_by=user,
    )
    _full_clean(document, exclude=["file", "agreement"])
    document.file.save(f"{digest.hexdigest()[:16]}.pdf", upload, save=False)
    document.save()
    event_record(
        organization=agreement.organization,
        name="document.uploaded",
        actor=user,
        obj=document,
        summary=f"{document.title} ({document.get_kind_display()})",
        data={"sha256": document.sha256},
    )
    return document


DEFAULT_PLAN = [  # (name, days from start, owner)
    ("Kick-off meeting", 0, "Program administrator"),
    ("Data analysis", 21, "Program administrator"),
    ("Indicator proposal", 42, "Physician group"),
    ("Negotiation with counsel", 63, "Legal counsel"),
    ("FMV opinion", 77, "FMV valuator"),
    ("Execution", 90, "Hospital CEO"),
]


@transaction.atomic
def milestones_generate(*, agreement: Agreement, start: dt.date) -> list[Milestone]:
    """The default 90-day implementation plan from ``start``; refused if a plan exists."""
    if agreement.milestones.exists():
        raise ValidationError({"start": "This agreement already has a timeline."}, code="exists")
    return [
        Milestone.objects.create(
            organization=agreement.organization,
            agreement=agreement,
            name=name,
            position=i,
            owner=owner,
            due_date=start + dt.timedelta(days=days),
        )
        for i, (name, days, owner) in enumerate(DEFAULT_PLAN)
    ]


@transaction.atomic
def milestone_save(
    *, agreement: Agreement, data: dict[str, Any], milestone: Milestone | None = None
) -> Milestone:
    milestone = milestone or Milestone(
        organization=agreement.organization,
        agreement=agreement,
        position=agreement.milestones.count(),
    )
    for name in ("name", "position", "owner", "due_date", "status", "completed_on"):
        if name in data:
            setattr(milestone, name, data[name])
    if milestone.status == MilestoneStatus.DONE and milestone.completed_on is None:
        milestone.completed_on = timezone.localdate()
    if milestone.status != MilestoneStatus.DONE:
        milestone.completed_on = None
    _full_clean(milestone, exclude=["agreement"])
    milestone.save()
    return milestone


# ---------------------------------------------------------------------------------------------
# Compliance flags


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


def _scan_conditions(*, organization: Organization, today: dt.date) -> list[dict[str, Any]]:
    """Every compliance condition present today, as flag_raise keyword arguments."""
    found: list[dict[str, Any]] = []
    live = Agreement.objects.filter(status__in=[AgreementStatus.EXECUTED, AgreementStatus.ACTIVE])
    for agreement in live.prefetch_related("programme_years"):
        years = list(agreement.programme_years.all())

        def year_of(day: dt.date, years: list[ProgrammeYear] = years) -> ProgrammeYear | None:
            return next((y for y in years if y.start <= day <= y.end), None)

        # Months without approved logs (co-management), once the month plus a grace is over.
        if agreement.kind == AgreementKind.CO_MANAGEMENT:
            approved = set(
                TimeSheet.objects.filter(
                    agreement=agreement, status=TimeSheetStatus.APPROVED
                ).values_list("month", "physician_id")
            )
            participations = list(agreement.participations.select_related("physician"))
            for month in fees.months_between(agreement.term_start, agreement.term_end):
                if fees.month_end(month) + dt.timedelta(days=LOG_GRACE_DAYS) >= today:
                    break
                for p in participations:
                    if participation_covers_month(p, month) and (
                        (month, p.physician_id) not in approved
                    ):
                        found.append(
                            {
                                "kind": "logs_missing",
                                "agreement": agreement,
                                "programme_year": year_of(month),
                                "physician": p.physician,
                                "key": f"logs_missing:{agreement.pk}:{p.physician_id}:"
                                f"{month:%Y-%m}",
                                "message": f"{agreement.name}: no approved time log for "
                                f"{p.physician} in {month:%B %Y}.",
                                "blocking": True,
                                "data": {"month": f"{month:%Y-%m}"},
                            }
                        )
        # Quarters without a committee meeting.
        held = list(agreement.committee_meetings.values_list("held_on", flat=True))
        for q_start, q_end, label in _quarters(agreement.term_start, agreement.term_end):
            if q_end >= today:
                break
            if not any(q_start <= d <= q_end for d in held):
                found.append(
                    {
                        "kind": "committee_missing",
                        "agreement": agreement,
                        "programme_year": year_of(q_start),
                        "key": f"committee_missing:{agreement.pk}:{label}",
                        "message": f"{agreement.name}: no programme committee meeting in "
                        f"{label[:4]} {label[4:]}.",
                        "data": {"quarter": label},
                    }
                )
        # FMV opinion expiring within 60 days (or expired) while the term runs on.
        if agreement.term_end >= today:
            covering_today = fmv_opinion_covering(agreement=agreement, start=today, end=today)
            horizon = min(today + dt.timedelta(days=60), agreement.term_end)
            if covering_today is None:
                found.append(
                    {
                        "kind": "fmv_expiring",
                        "agreement": agreement,
                        "blocking": True,
                        "severity": FlagSeverity.CRITICAL,
                        "key": f"fmv_expiring:{agreement.pk}",
                        "message": f"{agreement.name}: no FMV opinion covers today.",
                    }
                )
            elif (
                covering_today.effective_end < horizon
                and fmv_opinion_covering(
                    agreement=agreement,
                    start=covering_today.effective_end + dt.timedelta(1),
                    end=covering_today.effective_end + dt.timedelta(1),
                )
                is None
            ):
                found.append(
                    {
                        "kind": "fmv_expiring",
                        "agreement": agreement,
                        "key": f"fmv_expiring:{agreement.pk}",
                        "message": f"{agreement.name}: the FMV opinion by "
                        f"{covering_today.valuator} "
                        f"expires on {covering_today.effective_end:%b %-d, %Y}.",
                        "data": {"expires": covering_today.effective_end.isoformat()},
                    }
                )
        # Agreement expiring within 90 days.
        if today <= agreement.term_end <= today + dt.timedelta(days=90):
            found.append(
                {
                    "kind": "agreement_expiring",
                    "agreement": agreement,
                    "severity": FlagSeverity.INFO,
                    "key": f"agreement_expiring:{agreement.pk}",
                    "message": f"{agreement.name} expires on {agreement.term_end:%b %-d, %Y}: "
                    "renew or let it expire.",
                    "data": {"expires": agreement.term_end.isoformat()},
                }
            )
        # Participants without a valid NPI.
        for p in agreement.participations.select_related("physician"):
            if (p.end_date is None or p.end_date >= today) and not npi_is_valid(p.physician.npi):
                found.append(
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
                )
    # Logged hours above the duty's monthly maximum (e.g. after a maximum was lowered).
    over = TimeEntry.objects.select_related("duty", "timesheet__agreement", "timesheet__physician")
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


# ---------------------------------------------------------------------------------------------
# Final calculations (savings and adjudication): only once the programme year has ended


def _day(date: dt.date) -> str:
    return f"{date.day} {date:%b %Y}"


def programme_year_refuse_final_run(
    *, programme_year: ProgrammeYear, field: str = "programme_year"
) -> None:
    """A final calculation or adjudication run needs the whole year: refuse it before the
    year's last day is over (its service dates would lie in the future); projections run
    any time. "Today" is the installation's local date (organizations carry no time zone)."""
    today = timezone.localdate()
    if today > programme_year.end:
        return
    start, end = programme_year.start, programme_year.end
    years = str(end.year) if start.year == end.year else f"{start.year}–{end.year}"
    possible_from = end + dt.timedelta(days=1)
    raise ValidationError(
        {
            field: f"The {years} programme year ends on {_day(end)}; a final calculation is "
            f"possible from {_day(possible_from)}. Run a projection instead."
        },
        code="year_not_ended",
    )


# ---------------------------------------------------------------------------------------------
# Physician roster import (issue 17): upload, preview, confirm (a job), apply whole or refuse


ROSTER_JOB_KIND = "agreements.roster_import"


def _roster_layout(roster_import: RosterImport, table: master_imports.Table) -> roster.Layout:
    layout = roster.layout_named(roster_import.layout)
    return layout or master_imports.layout_detect(roster.LAYOUTS, table.columns)


@transaction.atomic
def roster_import_receive(
    *,
    organization: Organization,
    upload: Any,
    user: User | None,
    agreement: Agreement | None = None,
    layout: str = "",
) -> RosterImport:
    """Keep the uploaded roster with its SHA-256, awaiting confirmation (nothing is read into
    the physicians yet). ``layout`` "" recognises it from the headers."""
    if layout and roster.layout_named(layout) is None:
        raise ValidationError({"layout": "Choose one of the roster layouts."}, code="invalid")
    if agreement is not None and agreement.organization_id != organization.pk:
        raise ValidationError({"agreement": "Unknown agreement."}, code="invalid")
    facts = master_imports.upload_prepare(upload=upload, kind="roster")
    roster_import = RosterImport(
        organization=organization, agreement=agreement, uploaded_by=user, **facts
    )
    master_imports.file_store(roster_import, upload)
    try:
        table = master_imports.table_of(roster_import)
    except uploads.FileProblem:
        table = None  # the preview says why; confirming is not offered
    roster_import.layout = _roster_layout(roster_import, table).key if table else layout
    roster_import.layout = roster_import.layout or roster.CANONICAL.key
    roster_import.save()
    event_record(
        organization=organization,
        name="roster.file_uploaded",
        actor=user,
        obj=roster_import,
        summary=f"{roster_import} sha256 {roster_import.sha256[:12]}",
        data={"sha256": roster_import.sha256, "size": roster_import.size},
    )
    return roster_import


def roster_import_preview(*, roster_import: RosterImport) -> dict[str, Any]:
    """The layout read, the fields found and the first rows, plus every row's problems
    (a roster is small: it is checked whole here, and again when applied)."""
    try:
        canonical = master_imports.canonical_of(roster_import)  # through its mapping
    except uploads.FileProblem as problem:
        return {"error": problem.message, "problems": [], "missing": [], "mapping": [], "rows": []}
    result = master_imports.preview(canonical, required=roster.REQUIRED, labels=roster.FIELD_LABELS)
    _rows, problems = roster.parse_roster(canonical)
    result.update(
        error="",
        problems=problems.as_list(),
        problem_count=problems.total,
    )
    return result


def roster_import_start(*, roster_import: RosterImport, user: User | None) -> Any:
    from .tasks import roster_import_task

    return master_imports.master_import_start(
        instance=roster_import, user=user, job_kind=ROSTER_JOB_KIND, task=roster_import_task
    )


def roster_import_discard(*, roster_import: RosterImport, user: User | None) -> RosterImport:
    return master_imports.master_import_discard(
        instance=roster_import, user=user, event="roster.discarded"
    )


def _same_person(physician: Physician, row: roster.RosterRow) -> bool:
    """A row may correct one of the names (a married name), not replace the person."""
    return (
        physician.first_name.casefold() == row.first_name.casefold()
        or physician.last_name.casefold() == row.last_name.casefold()
    )


@transaction.atomic
def roster_import_apply(*, roster_import: RosterImport, user: User | None) -> dict[str, int]:
    """Create or update every physician of the file (matched by NPI) and, with the agreement
    chosen on upload, their participation dates. One problem anywhere: nothing is stored."""
    try:
        canonical = master_imports.canonical_of(roster_import)  # through its mapping
    except uploads.FileProblem as problem:
        raise master_imports.refused_reading(problem) from problem
    rows, problems = roster.parse_roster(canonical)
    if problems:
        raise master_imports.ImportRefused(problems)
    organization = roster_import.organization
    agreement = roster_import.agreement
    source = canonical.source
    practices = {p.name.casefold(): p for p in Practice.objects.filter(organization=organization)}
    physicians = {
        p.npi: p
        for p in Physician.objects.filter(
            organization=organization, npi__in=[r.npi for r in rows]
        ).select_for_update()
    }
    participations = (
        {p.physician_id: p for p in agreement.participations.select_for_update()}
        if agreement is not None
        else {}
    )
    counts = dict.fromkeys(
        (
            "physicians_created",
            "physicians_updated",
            "physicians_unchanged",
            "participations_added",
            "participations_updated",
        ),
        0,
    )

    def refuse(row: roster.RosterRow, error: ValidationError, fields: dict[str, str]) -> None:
        for name, messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
            for message in messages:
                problems.add(row=row.row, column=fields.get(name, ""), message=message)

    for row in rows:
        data: dict[str, Any] = {"npi": row.npi, "first_name": row.first_name}
        data["last_name"] = row.last_name
        for name in ("specialty", "email"):
            if getattr(row, name):
                data[name] = getattr(row, name)
        if row.practice:
            practice = practices.get(row.practice.casefold())
            if practice is None:
                problems.add(
                    row=row.row,
                    column=source("practice"),
                    message=f"no practice named “{row.practice[:80]}” here; add it on the "
                    "practices page first, or leave the cell empty",
                )
                continue
            data["practice"] = practice
        physician = physicians.get(row.npi)
        if physician is not None and not _same_person(physician, row):
            problems.add(
                row=row.row,
                column=source("npi"),
                message=f"the NPI {row.npi} already belongs to {physician} in this "
                f"organization; this row names {row.first_name} {row.last_name}",
            )
            continue
        if (
            physician is not None
            and all(getattr(physician, k) == v for k, v in data.items() if k != "practice")
            and ("practice" not in data or physician.practice_id == data["practice"].pk)
        ):
            counts["physicians_unchanged"] += 1
        else:
            try:
                saved = physician_save(organization=organization, data=data, physician=physician)
            except ValidationError as error:
                refuse(row, error, {k: source(k) for k in roster.FIELDS})
                continue
            counts["physicians_created" if physician is None else "physicians_updated"] += 1
            physician = physicians[row.npi] = saved
        if row.join_date is None and row.leave_date is None:
            continue
        if agreement is None:
            problems.add(
                row=row.row,
                column=source("join_date" if row.join_date else "leave_date"),
                message="the row gives participation dates but no agreement was chosen on upload",
            )
            continue
        participation = participations.get(physician.pk)
        if participation is None and row.join_date is None:
            problems.add(
                row=row.row,
                column=source("leave_date"),
                message=f"{physician} does not take part in {agreement.name}: give the join date",
            )
            continue
        change: dict[str, Any] = {"physician": physician}
        if row.join_date is not None:
            change["join_date"] = row.join_date
        if row.leave_date is not None:
            change["leave_date"] = row.leave_date
        if participation is not None and all(
            getattr(participation, k) == v for k, v in change.items()
        ):
            continue
        try:
            participations[physician.pk] = participation_save(
                agreement=agreement, data=change, participation=participation
            )
        except ValidationError as error:
            refuse(
                row, error, {"join_date": source("join_date"), "leave_date": source("leave_date")}
            )
            continue
        counts["participations_added" if participation is None else "participations_updated"] += 1
    if problems:
        raise master_imports.ImportRefused(problems)
    return counts


# The guided setup's writes (the setup's pages call these; see agreements/setup.py)


@transaction.atomic
def participant_add(
    *, agreement: Agreement, data: dict[str, Any], user: User | None
) -> Participation:
    """Add a participating physician: an existing one, or a new one created here (NPI and
    name). Both rows are written or neither."""
    physician = data.get("physician")
    if physician is None:
        if not (data.get("npi") or "").strip():
            raise ValidationError(
                {"physician": "Choose a physician, or enter a new physician's NPI and name."},
                code="required",
            )
        physician = physician_save(
            organization=agreement.organization,
            data={
                "npi": data.get("npi", ""),
                "first_name": data.get("first_name", ""),
                "last_name": data.get("last_name", ""),
                "specialty": data.get("specialty", ""),
                "practice": agreement.practice,
            },
        )
    participation = participation_save(
        agreement=agreement,
        data={
            "physician": physician,
            "join_date": data.get("join_date"),
            "ownership_pct": data.get("ownership_pct"),
        },
    )
    event_record(
        organization=agreement.organization,
        name="agreement.participant_added",
        actor=user,
        obj=agreement,
        summary=f"{physician.full_name} joins {agreement.name} on {participation.join_date}",
    )
    return participation


@transaction.atomic
def agreement_execute(
    *,
    agreement: Agreement,
    executed_on: dt.date | None,
    signatories: str,
    user: User | None,
    today: dt.date | None = None,
) -> Agreement:
    """Record the signing: a draft passes through negotiation to executed in one step (the
    same checks as each transition); either both moves happen or neither."""
    if agreement.status == AgreementStatus.DRAFT:
        agreement_transition(
            agreement=agreement, to_status=AgreementStatus.IN_NEGOTIATION, user=user, today=today
        )
    if agreement.status != AgreementStatus.IN_NEGOTIATION:
        raise ValidationError(
            {
                "status": f"The agreement is {agreement.get_status_display().lower()}; "
                "its signing cannot be recorded now."
            },
            code="invalid_transition",
        )
    return agreement_transition(
        agreement=agreement,
        to_status=AgreementStatus.EXECUTED,
        user=user,
        executed_on=executed_on,
        signatories=signatories,
        today=today,
    )
