"""Agreements and their programme years; the guard that keeps final calculations until a
programme year has ended.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from comanage.core.audit import event_record
from comanage.core.models import Organization, User
from comanage.core.versioning import data_version_bump

from ..models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    ProgrammeYear,
    ServiceLine,
)
from .common import _frozen_error, _full_clean, add_years

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
# Programme years a term makes by default, by agreement kind (a kind value, as submitted).
PROGRAMME_YEARS_DEFAULT: dict[str, int] = {AgreementKind.SHARED_SAVINGS: 3}


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
    kind: str = data.get("kind") or ""
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
        field = "term_start" if "term_start" in changed else "term_end"
        _programme_years_clear(agreement, field)
        programme_years_generate(agreement=agreement)
    return agreement


def _programme_years_clear(agreement: Agreement, field: str) -> None:
    """Delete the agreement's programme years, or refuse (a ValidationError on ``field``)
    while one of them holds recorded data: imported results or cases, a calculation, a report.
    Those rows protect their year (a year is never deleted from under a payment's trail)."""
    try:
        agreement.programme_years.all().delete()
    except ProtectedError as exc:
        held = sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects})
        raise ValidationError(
            {
                field: "The programme years already hold recorded data ("
                + ", ".join(held)
                + "), so they cannot be replaced: the term and the years stay as they are."
            },
            code="programme_year_in_use",
        ) from exc


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
    _programme_years_clear(agreement, "programme_years")
    return [
        ProgrammeYear.objects.create(
            organization=agreement.organization, agreement=agreement, number=i + 1, start=s, end=e
        )
        for i, (s, e) in enumerate(ordered)
    ]


def _day(date: dt.date) -> str:
    """The one date style of every page ("Dec 31, 2025")."""
    return f"{date:%b} {date.day}, {date.year}"


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
