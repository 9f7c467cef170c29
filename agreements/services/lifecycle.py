"""The agreement lifecycle: transitions, what blocks activation, and recording the signing."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction

from comanage.core.audit import event_record
from comanage.core.models import User
from comanage.core.money import ZERO

from ..models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    ProgrammeYear,
)
from ..selectors import (
    fmv_opinion_covering,
)
from .common import _today

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


def _check_executable(
    *, agreement: Agreement, executed_on: dt.date | None, signatories: str, today: dt.date
) -> None:
    """Executing records a past signing date and who signed, on an agreement with terms."""
    if executed_on is None:
        raise ValidationError(
            {"executed_on": "Record the date the agreement was signed."}, code="required"
        )
    if executed_on > today:
        raise ValidationError(
            {"executed_on": "The signing date cannot be in the future."}, code="future"
        )
    if not signatories.strip():
        raise ValidationError({"signatories": "Record who signed, one per line."}, code="required")
    if not agreement.terms.exists():
        raise ValidationError({"status": "The agreement has no terms to execute."}, code="no_terms")


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
        _check_executable(
            agreement=agreement, executed_on=executed_on, signatories=signatories, today=today
        )
        agreement.executed_on = executed_on
        agreement.signatories = signatories.strip()
    elif to_status == AgreementStatus.ACTIVE:
        problems = activation_blockers(agreement=agreement)
        if problems:
            raise ValidationError({"status": problems}, code="not_activatable")
    elif to_status == AgreementStatus.EXPIRED and agreement.term_end >= today:
        raise ValidationError(
            {"status": f"The term runs until {agreement.term_end:%b %-d, %Y}; it has not expired."},
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
        summary=(
            f"{agreement.name}: {AgreementStatus(current).label} → "
            f"{AgreementStatus(to_status).label}"
        ),
    )
    return agreement


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
