"""Reading indicators: definitions in force, measurement periods, current results, benchmarks
and action plans. Keyword-only, typed, no writes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import QuerySet
from django.db.models.functions import Substr

from agreements.models import Agreement, AgreementTerms, ProgrammeYear
from agreements.selectors import terms_for_year
from comanage.core.security import case_id_hash, case_id_hashing_enabled

from . import membership
from .models import (
    ActionPlan,
    ActionPlanStatus,
    CaseImport,
    CaseMembership,
    IndicatorDefinition,
    IndicatorResult,
    IndicatorTemplate,
    PeriodKind,
    ResultImport,
)


def terms_for_agreement(*, agreement: Agreement) -> list[AgreementTerms]:
    return list(AgreementTerms.objects.filter(agreement=agreement).order_by("version"))


def definitions_for_terms(*, terms: AgreementTerms) -> QuerySet[IndicatorDefinition]:
    return IndicatorDefinition.objects.filter(terms=terms).order_by("position", "id")


def definitions_in_force(*, programme_year: ProgrammeYear) -> list[IndicatorDefinition]:
    """The indicator definitions of the terms version in force for the programme year."""
    try:
        terms = terms_for_year(programme_year=programme_year)
    except AgreementTerms.DoesNotExist:
        return []
    return list(definitions_for_terms(terms=terms))


def template_list() -> QuerySet[IndicatorTemplate]:
    return IndicatorTemplate.objects.all()


@dataclass(frozen=True)
class Period:
    """A measurement period: the programme year (annual, pays) or a quarter (interim)."""

    kind: str
    label: str
    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        return f"{self.start.isoformat()}_{self.end.isoformat()}"

    @property
    def is_interim(self) -> bool:
        return self.kind == PeriodKind.QUARTER


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return dt.date(day.year + month // 12, month % 12 + 1, 1)


def periods_for_year(*, programme_year: ProgrammeYear) -> list[Period]:
    """The annual period and its four quarters (quarters of the programme year, not calendar)."""
    year_label = (
        str(programme_year.start.year)
        if programme_year.start.year == programme_year.end.year
        else programme_year.label
    )
    periods = [Period(PeriodKind.ANNUAL, year_label, programme_year.start, programme_year.end)]
    start = programme_year.start
    for quarter in range(1, 5):
        if start > programme_year.end:
            break
        end = min(_add_months(start.replace(day=1), 3) - dt.timedelta(days=1), programme_year.end)
        periods.append(Period(PeriodKind.QUARTER, f"{year_label} Q{quarter}", start, end))
        start = end + dt.timedelta(days=1)
    return periods


def period_find(*, programme_year: ProgrammeYear, key: str) -> Period | None:
    return next((p for p in periods_for_year(programme_year=programme_year) if p.key == key), None)


def results_current(*, agreement: Agreement) -> QuerySet[IndicatorResult]:
    return (
        IndicatorResult.objects.filter(definition__agreement=agreement, is_current=True)
        .select_related("definition", "programme_year", "case_import")
        .order_by("definition__position", "period_start", "period_kind")
    )


def result_current(
    *, definition: IndicatorDefinition, start: dt.date, end: dt.date
) -> IndicatorResult | None:
    return IndicatorResult.objects.filter(
        definition=definition, period_start=start, period_end=end, is_current=True
    ).first()


def results_annual_for_year(
    *, programme_year: ProgrammeYear, definitions: list[IndicatorDefinition]
) -> dict[int, IndicatorResult]:
    rows = IndicatorResult.objects.filter(
        definition__in=definitions,
        programme_year=programme_year,
        period_kind=PeriodKind.ANNUAL,
        is_current=True,
    ).select_related("case_import")
    return {r.definition_id: r for r in rows}


def results_interim_latest(
    *, programme_year: ProgrammeYear, definitions: list[IndicatorDefinition]
) -> dict[int, IndicatorResult]:
    """The latest current quarterly result per definition (what a projection is built on)."""
    latest: dict[int, IndicatorResult] = {}
    rows = IndicatorResult.objects.filter(
        definition__in=definitions,
        programme_year=programme_year,
        period_kind=PeriodKind.QUARTER,
        is_current=True,
    ).order_by("period_start")
    for row in rows:
        latest[row.definition_id] = row
    return latest


def result_versions(*, result: IndicatorResult) -> QuerySet[IndicatorResult]:
    return (
        IndicatorResult.objects.filter(
            definition=result.definition,
            period_start=result.period_start,
            period_end=result.period_end,
        )
        .select_related("created_by", "case_import", "result_import")
        .order_by("-version")
    )


def results_of_import(*, result_import: ResultImport) -> QuerySet[IndicatorResult]:
    """The result versions a results file wrote (the rows it left unchanged wrote none)."""
    return (
        IndicatorResult.objects.filter(result_import=result_import)
        .select_related("definition")
        .order_by("definition__name", "period_start", "period_end", "version")
    )


def results_by_key_across_terms(*, agreement: Agreement, key: str) -> list[IndicatorResult]:
    """Every current result of the indicator ``key`` of an agreement, over every terms version
    (a chart runs across amendments)."""
    return list(
        IndicatorResult.objects.filter(
            definition__agreement=agreement, definition__key=key, is_current=True
        )
        .select_related("programme_year")
        .order_by("period_start", "-period_end")
    )


def case_imports_for_agreement(*, agreement: Agreement) -> QuerySet[CaseImport]:
    return CaseImport.objects.filter(agreement=agreement).select_related("job", "created_by")


def case_memberships(
    *,
    case_import: CaseImport,
    indicator_index: int,
    kind: str,
    filter_name: str = "",
    search: str = "",
) -> QuerySet[CaseMembership]:
    """The cases of an import for the drill-down, filtered in SQL on the indicator's code."""
    rows = CaseMembership.objects.filter(case_import=case_import)
    if filter_name in membership.FILTERS:
        codes = membership.codes_matching(filter_name, kind=kind)
        rows = rows.annotate(code=Substr("codes", 2 * indicator_index + 1, 2)).filter(
            code__in=codes
        )
    if search:
        if case_id_hashing_enabled():
            # Stored ids are hashed: only an exact case id can be found.
            rows = rows.filter(case_id=case_id_hash(case_import.organization, search.strip()))
        else:
            rows = rows.filter(case_id__icontains=search.strip())
    return rows.order_by("row_number")


def action_plans_for_year(
    *, programme_year: ProgrammeYear, status: str = ""
) -> QuerySet[ActionPlan]:
    """The year's action plans (open and closed), for the indicators page and the report."""
    plans = (
        ActionPlan.objects.filter(programme_year=programme_year)
        .select_related("definition", "result")
        .prefetch_related("steps")
    )
    if status == "open":
        plans = plans.exclude(status=ActionPlanStatus.CLOSED)
    elif status == "closed":
        plans = plans.filter(status=ActionPlanStatus.CLOSED)
    return plans.order_by("status", "due_date", "id")


def action_plans_for_agreement(*, agreement: Agreement) -> QuerySet[ActionPlan]:
    return (
        ActionPlan.objects.filter(definition__agreement=agreement)
        .select_related("definition", "programme_year", "result")
        .prefetch_related("steps")
        .order_by("status", "due_date")
    )


def programme_years(*, agreement: Agreement) -> list[ProgrammeYear]:
    return list(ProgrammeYear.objects.filter(agreement=agreement).order_by("number"))
