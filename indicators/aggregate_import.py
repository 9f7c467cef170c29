"""Aggregate indicator results from a file (issue 17): one row per indicator and period, with
the numerator and denominator (proportions, ratios) or the value and the number of cases
(continuous variables), read through the mapping step every import shares
(:mod:`comanage.core.master_imports`), each row recorded by the aggregate-result service
(:func:`indicators.services.result_record`, the same checks as the form and the API), the file
whole or not at all, in a job.

The period of a row is the programme year (its label or its first calendar year) and the
period ("annual", "Q1".."Q4", "2025 Q2"; empty is the year), or the period's first and last
days.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from agreements.models import Agreement, ProgrammeYear
from comanage.core import master_imports, uploads
from comanage.core.master_imports import CanonicalTable, Layout
from comanage.core.models import Job, Organization, User
from comanage.core.tabular.problems import Problems

from .models import IndicatorDefinition, Kind, ResultImport
from .selectors import Period, definitions_in_force, periods_for_year, result_current

JOB_KIND = "indicators.result_import"
FIELDS = (
    "indicator",
    "programme_year",
    "period",
    "period_start",
    "period_end",
    "numerator",
    "denominator",
    "value",
    "case_count",
    "source_note",
)
LABELS = master_imports.field_labels(FIELDS)
# What each column holds, for the upload page.
COLUMN_DOCS = [
    ("indicator", "required", "the indicator's key or its name, as set up here"),
    ("programme_year", "or dates", "the programme year's label or first year (2025)"),
    ("period", "optional", "annual (or empty) or Q1 to Q4 of that programme year"),
    ("period_start", "or year", "with the period's last day: its first day (any date style)"),
    ("period_end", "or year", "with the period's first day: its last day"),
    ("numerator", "proportions, ratios", "whole cases for a proportion"),
    ("denominator", "proportions, ratios", "whole cases for a proportion"),
    ("value", "continuous", "the measured value (a median length of stay)"),
    ("case_count", "continuous", "the number of cases the value is based on"),
    ("source_note", "optional", "where the figures come from; empty: the file's name"),
]
CANONICAL = Layout(
    key="comanage",
    label="Comanage results columns",
    columns={
        **{name: name for name in FIELDS},
        "indicator key": "indicator",
        "indicator name": "indicator",
        "measure": "indicator",
        "measure id": "indicator",
        "measure name": "indicator",
        "metric": "indicator",
        "year": "programme_year",
        "program year": "programme_year",
        "performance year": "programme_year",
        "quarter": "period",
        "reporting period start": "period_start",
        "start date": "period_start",
        "from": "period_start",
        "reporting period end": "period_end",
        "end date": "period_end",
        "through": "period_end",
        "met": "numerator",
        "num": "numerator",
        "eligible": "denominator",
        "den": "denominator",
        "denom": "denominator",
        "rate": "value",
        "result": "value",
        "score": "value",
        "n": "case_count",
        "cases": "case_count",
        "number of cases": "case_count",
        "notes": "source_note",
        "note": "source_note",
        "comments": "source_note",
        "source": "source_note",
    },
)
SPEC = master_imports.master_spec(
    model="indicators.resultimport",
    kind="results",
    layouts=[CANONICAL],
    names=FIELDS,
    labels=LABELS,
    required=("indicator",),
    kinds={
        "period_start": "date",
        "period_end": "date",
        "numerator": "amount",
        "denominator": "amount",
        "value": "amount",
        "case_count": "amount",
    },
)


# --------------------------------------------------------------------------------------------
# Reading the rows (no writes)


@dataclass(frozen=True)
class ResultRow:
    row: int
    definition: IndicatorDefinition
    programme_year: ProgrammeYear
    period: Period
    numerator: Decimal | None
    denominator: Decimal | None
    value: Decimal | None
    case_count: int | None
    source_note: str


@dataclass
class _Year:
    year: ProgrammeYear
    periods: list[Period]
    indicators: dict[str, IndicatorDefinition]


def _years(agreement: Agreement) -> list[_Year]:
    out = []
    for year in ProgrammeYear.objects.filter(agreement=agreement).order_by("start"):
        lookup: dict[str, IndicatorDefinition] = {}
        for definition in definitions_in_force(programme_year=year):
            lookup.setdefault(definition.key.casefold(), definition)
            lookup.setdefault(" ".join(definition.name.split()).casefold(), definition)
        out.append(_Year(year, periods_for_year(programme_year=year), lookup))
    return out


_QUARTER = re.compile(r"(?:^|\s)q([1-4])$")


def _period_named(year: _Year, text: str) -> Period | None:
    words = " ".join(text.split()).casefold()
    if words in ("", "annual", "year", "full year", "annually", year.periods[0].label.casefold()):
        return year.periods[0]
    match = _QUARTER.search(words)
    if match is None:
        return None
    return next((p for p in year.periods[1:] if p.label.endswith(f"Q{match.group(1)}")), None)


def _year_named(years: list[_Year], text: str) -> _Year | None:
    words = " ".join(text.split()).casefold()
    for year in years:
        if words in (year.year.label.casefold(), year.periods[0].label.casefold()):
            return year
    return next((y for y in years if str(y.year.start.year) == words), None)


def _period_of(values: dict[str, str], years: list[_Year], bad: Any) -> tuple[_Year, Period] | None:
    start, end = values.get("period_start", ""), values.get("period_end", "")
    if start or end:
        for year in years:
            for period in year.periods:
                if period.start.isoformat() == start and period.end.isoformat() == end:
                    return year, period
        bad(
            "period_end" if start else "period_start",
            f"no period of the agreement runs from {start or '(no first day)'} to "
            f"{end or '(no last day)'}: give a programme year's or a quarter's first and last days",
        )
        return None
    named = values.get("programme_year", "")
    if not named:
        bad("programme_year", "the row names no period: give the programme year (and period)")
        return None
    found = _year_named(years, named)
    if found is None:
        known = ", ".join(y.periods[0].label for y in years) or "none"
        bad("programme_year", f"“{named[:40]}” is not a programme year of this agreement ({known})")
        return None
    named_period = _period_named(found, values.get("period", ""))
    if named_period is None:
        bad("period", f"“{values['period'][:40]}” is not a period: annual, or Q1 to Q4")
        return None
    return found, named_period


def _number(values: dict[str, str], name: str, bad: Any) -> Decimal | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        bad(name, f"“{text[:40]}” is not a number")
        return None
    if not number.is_finite() or number < 0:
        bad(name, f"{text[:40]} is not a number of zero or more")
        return None
    return number


def parse_results(
    table: CanonicalTable, *, years: list[_Year], file_name: str
) -> tuple[list[ResultRow], Problems]:
    """Every row checked (the indicator, the period, the figures read as numbers); the problems
    name the row, the file's column and the reason. The aggregate-result service checks the
    figures against the indicator's kind when the rows are recorded."""
    problems = Problems()
    if not ({"programme_year", "period_start"} & set(table.sources)):
        problems.add(
            None,
            "",
            "no column gives the period: map the programme year (and the period), or the "
            "period's first and last days",
        )
    if "indicator" not in table.sources:
        problems.add(None, "indicator", "no column gives the indicator")
    if problems:
        return [], problems
    rows: list[ResultRow] = []
    seen: dict[tuple[int, str], int] = {}
    for number, values in zip(table.row_numbers, table.rows, strict=True):

        def bad(name: str, message: str, number: int = number) -> None:
            problems.add(number, table.source(name), message)

        found = _period_of(values, years, bad)
        figures = {
            name: _number(values, name, bad)
            for name in ("numerator", "denominator", "value", "case_count")
        }
        if found is None:
            continue
        year, period = found
        named = " ".join(values.get("indicator", "").split())
        definition = year.indicators.get(named.casefold())
        if definition is None:
            bad(
                "indicator",
                f"“{named[:60]}” is not an indicator of {year.periods[0].label}"
                if named
                else "the indicator is empty",
            )
            continue
        cases = figures["case_count"]
        if cases is not None and cases != cases.to_integral_value():
            bad("case_count", f"{cases} is not a whole number of cases")
            continue
        earlier = seen.setdefault((definition.pk, period.key), number)
        if earlier != number:
            bad("indicator", f"{definition.name} for {period.label} is also on row {earlier}")
            continue
        rows.append(
            ResultRow(
                row=number,
                definition=definition,
                programme_year=year.year,
                period=period,
                numerator=figures["numerator"],
                denominator=figures["denominator"],
                value=figures["value"],
                case_count=None if cases is None else int(cases),
                source_note=" ".join(values.get("source_note", "").split())
                or f"{file_name} row {number}",
            )
        )
    return rows, problems


# --------------------------------------------------------------------------------------------
# Services


@transaction.atomic
def result_import_receive(
    *, organization: Organization, agreement: Agreement, upload: Any, user: User | None
) -> ResultImport:
    """Keep the uploaded file with its SHA-256, awaiting its mapping and confirmation (no
    result is recorded yet)."""
    if agreement.organization_id != organization.pk:
        raise ValidationError({"agreement": "Unknown agreement."}, code="invalid")
    facts = master_imports.upload_prepare(upload=upload, kind="results")
    result_import = ResultImport(
        organization=organization,
        agreement=agreement,
        uploaded_by=user,
        layout=CANONICAL.key,
        **facts,
    )
    master_imports.file_store(result_import, upload)
    master_imports.master_import_save(
        instance=result_import, user=user, event="indicator.results_file_uploaded"
    )
    return result_import


def result_import_preview(*, result_import: ResultImport) -> dict[str, Any]:
    """How the columns are read, the first rows and every row's problems."""
    return master_imports.master_import_preview(
        instance=result_import,
        required=("indicator",),
        labels=LABELS,
        check=lambda canonical: parse_results(
            canonical, years=_years(result_import.agreement), file_name=result_import.original_name
        )[1],
    )


def result_import_start(*, result_import: ResultImport, user: User | None) -> Job:
    from .tasks import result_import_task

    return master_imports.master_import_start(
        instance=result_import, user=user, job_kind=JOB_KIND, task=result_import_task
    )


def result_import_discard(*, result_import: ResultImport, user: User | None) -> ResultImport:
    return master_imports.master_import_discard(
        instance=result_import, user=user, event="indicator.results_file_discarded"
    )


def _unchanged(row: ResultRow) -> bool:
    """The period's current result already holds these figures from this source."""
    current = result_current(definition=row.definition, start=row.period.start, end=row.period.end)
    if current is None or current.source != "aggregate" or current.source_note != row.source_note:
        return False
    if row.definition.kind == Kind.CONTINUOUS_VARIABLE:
        return (current.value, current.case_count) == (row.value, row.case_count)
    return (current.numerator, current.denominator) == (row.numerator, row.denominator)


def _record(
    row: ResultRow,
    user: User | None,
    canonical: CanonicalTable,
    problems: Problems,
    result_import: ResultImport,
):
    from .services import result_record

    try:
        return result_record(
            result_import=result_import,
            definition=row.definition,
            programme_year=row.programme_year,
            period=row.period,
            source_note=row.source_note,
            numerator=row.numerator,
            denominator=row.denominator,
            value=row.value,
            case_count=row.case_count,
            user=user,
        )
    except ValidationError as error:
        figure = "value" if row.definition.kind == Kind.CONTINUOUS_VARIABLE else "numerator"
        for name, messages in getattr(error, "message_dict", {"": error.messages}).items():
            column = canonical.source(name if name in FIELDS else figure)
            for message in messages:
                problems.add(row.row, column, f"{row.definition.name}: {message}")
        return None


@transaction.atomic
def result_import_apply(*, result_import: ResultImport, user: User | None) -> dict[str, int]:
    """Record every row as a new version of its indicator's result for its period, through
    the aggregate-result service (a row that repeats the current figures is left as it is).
    One problem anywhere: nothing is stored."""
    try:
        canonical = master_imports.canonical_of(result_import)
    except uploads.FileProblem as problem:
        raise master_imports.refused_reading(problem) from problem
    rows, problems = parse_results(
        canonical, years=_years(result_import.agreement), file_name=result_import.original_name
    )
    if problems:
        raise master_imports.ImportRefused(problems)
    counts = {"results_recorded": 0, "results_unchanged": 0}
    for row in rows:
        if _unchanged(row):
            counts["results_unchanged"] += 1
        elif _record(row, user, canonical, problems, result_import) is not None:
            counts["results_recorded"] += 1
    if problems:
        raise master_imports.ImportRefused(problems)  # (rolls back every row recorded)
    return counts
