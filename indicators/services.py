"""Writing indicators: definitions (validated, frozen with the agreement), results (aggregate
entry and case-file imports, always as new versions), benchmarks and action plans; and the
year's incentive from the frozen terms (spec sections 2 and 3)."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from agreements.models import Agreement, AgreementTerms, ProgrammeYear
from agreements.selectors import terms_for_year
from comanage.core import uploads
from comanage.core.audit import event_record
from comanage.core.import_mappings import import_mapping_resolve, import_mappings_saved
from comanage.core.models import User
from comanage.core.money import round_money, round_places, to_decimal
from comanage.core.security import case_ids_for_storage
from comanage.core.serialise import jsonable
from comanage.core.tabular.header import csv_head_rows
from comanage.core.tabular.mapping import ColumnMapping
from comanage.core.tabular.step import mapping_step

from . import casefile, membership, scoring
from .criteria import (
    POPULATION_KEYS,
    MeasureDataError,
    MeasureDefinition,
    measure_definition_validate,
)
from .models import (
    ActionPlan,
    ActionPlanStatus,
    ActionStep,
    Benchmark,
    CaseImport,
    CaseMembership,
    ImportStatus,
    IndicatorDefinition,
    IndicatorResult,
    IndicatorTemplate,
    Kind,
    PeriodKind,
    ResultImport,
    ResultSource,
)
from .overrides import incentive_overrides_parse
from .selectors import (
    Period,
    definitions_for_terms,
    definitions_in_force,
    periods_for_year,
    results_annual_for_year,
    results_interim_latest,
)

FROZEN_MESSAGE = (
    "This agreement has been executed, so its indicators are frozen for the years already "
    "agreed. Record an amendment (a new terms version effective from a future date) and change "
    "the indicators of that version instead."
)


# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------


def measure_definition_of(definition: IndicatorDefinition | IndicatorTemplate) -> MeasureDefinition:
    """The engine's view of a stored definition (criteria as data, never code)."""
    populations = definition.populations or {}
    return MeasureDefinition(
        kind=definition.kind,  # type: ignore[arg-type]
        **{name: populations.get(name) for name in POPULATION_KEYS},
        multiplier=Decimal(definition.multiplier),
        observation_field=definition.observation_field or None,
        aggregate=definition.aggregate,  # type: ignore[arg-type]
    )


def indicator_terms_of(
    definition: IndicatorDefinition, *, weight: Decimal | None = None
) -> scoring.IndicatorTerms:
    return scoring.IndicatorTerms.standard(
        key=definition.key,
        name=definition.name,
        direction=definition.direction,  # type: ignore[arg-type]
        weight=weight if weight is not None else definition.weight,
        threshold=definition.threshold,
        target=definition.target,
        stretch=definition.stretch,
        minimum_denominator=definition.minimum_denominator,
        payouts=(definition.threshold_payout, definition.target_payout, definition.stretch_payout),
    )


def incentive_terms_of(terms: AgreementTerms) -> scoring.IncentiveTerms:
    return scoring.IncentiveTerms(
        pool=terms.incentive_pool or Decimal("0.00"),
        tier_mode=terms.tier_mode,  # type: ignore[arg-type]
        small_denominator_policy=terms.small_denominator_policy,  # type: ignore[arg-type]
    )


def definition_errors(definition: IndicatorDefinition) -> dict[str, list[str]]:
    """Problems of one definition, by form field: criteria, cut-points, payouts, fields."""
    errors: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    fields = definition.fields or {}
    if not isinstance(fields, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in fields.items()
    ):
        add("fields", "Give the case-file columns as an object of name -> type.")
        fields = {}
    unknown_kinds = sorted(k for k, v in fields.items() if v not in casefile._KINDS)
    for name in unknown_kinds:
        add("fields", f"Column {name!r}: type must be string, number, boolean or date.")
    populations = definition.populations or {}
    if not isinstance(populations, dict):
        add("populations", "Populations must be an object of population -> criteria.")
        populations = {}
    for name in populations:
        if name not in POPULATION_KEYS:
            add("populations", f"Unknown population {name!r}; use {', '.join(POPULATION_KEYS)}.")
    if not errors.get("populations"):
        for error in measure_definition_validate(measure_definition_of(definition), fields=fields):
            add("populations", str(error))
    if definition.date_field and definition.date_field not in fields:
        add("date_field", f"{definition.date_field!r} is not one of the case-file columns.")
    if definition.kind == Kind.CONTINUOUS_VARIABLE and not definition.observation_field:
        add("observation_field", "A continuous variable needs the column it aggregates.")
    terms = definition.terms
    policy = terms.small_denominator_policy if terms else "redistribute"
    check = scoring.terms_validate(
        terms=scoring.IncentiveTerms(pool=Decimal("0.00"), small_denominator_policy=policy),  # type: ignore[arg-type]
        indicators=[indicator_terms_of(definition, weight=Decimal(100))],
    )
    names = {"threshold": "threshold", "target": "target", "stretch": "stretch"}
    for refused in check:
        if refused.indicator is None:
            continue
        if refused.field.startswith("tiers."):
            tier, what = refused.field.split(".")[1:3]
            add(names[tier] if what == "cut_point" else f"{names[tier]}_payout", refused.message)
        else:
            add(refused.field, refused.message)
    if definition.weight is not None and not Decimal(0) < definition.weight <= 100:
        add("weight", "The weight is a percentage above 0 and at most 100.")
    return errors


def definitions_check(*, terms: AgreementTerms) -> list[str]:
    """Problems of the set of indicators of a terms version (weights must sum to exactly 100)."""
    definitions = list(definitions_for_terms(terms=terms))
    if not definitions:
        return ["No indicators yet."]
    problems = [
        str(e)
        for e in scoring.terms_validate(
            terms=incentive_terms_of(terms), indicators=[indicator_terms_of(d) for d in definitions]
        )
        if e.indicator is None
    ]
    return problems


def definition_is_frozen(*, terms: AgreementTerms, today: dt.date | None = None) -> bool:
    """Executed agreements freeze every version already in force (or the original one);
    only an amendment not yet effective may still change."""
    today = today or timezone.localdate()
    if not terms.agreement.is_frozen:
        return False
    return terms.version == 1 or terms.effective_from <= today


def _refuse_if_frozen(terms: AgreementTerms) -> None:
    if definition_is_frozen(terms=terms):
        raise ValidationError(FROZEN_MESSAGE)


def definition_save(
    *, definition: IndicatorDefinition, user: User | None = None
) -> IndicatorDefinition:
    """Create or update a definition after checking it; refused when frozen."""
    _refuse_if_frozen(definition.terms)
    definition.agreement_id = definition.terms.agreement_id
    definition.organization_id = definition.terms.organization_id
    errors = definition_errors(definition)
    clash = IndicatorDefinition.objects.filter(terms=definition.terms, key=definition.key)
    if definition.pk:
        clash = clash.exclude(pk=definition.pk)
    if clash.exists():
        errors.setdefault("key", []).append("Another indicator of these terms has this key.")
    if errors:
        raise ValidationError(errors)
    if not definition.pk and not definition.position:
        last = IndicatorDefinition.objects.filter(terms=definition.terms).aggregate(
            m=Max("position")
        )["m"]
        definition.position = (last or 0) + 1
    definition.save()
    return definition


def definition_delete(*, definition: IndicatorDefinition) -> None:
    _refuse_if_frozen(definition.terms)
    if definition.results.exists():
        raise ValidationError("This indicator has results; it cannot be deleted.")
    definition.delete()


_TEMPLATE_FIELDS = (
    "key",
    "name",
    "description",
    "kind",
    "unit",
    "direction",
    "populations",
    "fields",
    "date_field",
    "numerator_definition",
    "denominator_definition",
    "observation_field",
    "aggregate",
    "multiplier",
    "minimum_denominator",
    "threshold",
    "target",
    "stretch",
    "threshold_payout",
    "target_payout",
    "stretch_payout",
)


def definition_from_template(
    *,
    template: IndicatorTemplate,
    terms: AgreementTerms,
    weight: Decimal | None = None,
    key: str | None = None,
    user: User | None = None,
) -> IndicatorDefinition:
    """Copy a library template into an agreement's terms (the copy is the agreement's own)."""
    values = {name: getattr(template, name) for name in _TEMPLATE_FIELDS}
    values["populations"] = json.loads(json.dumps(template.populations))
    values["fields"] = dict(template.fields)
    if key:
        values["key"] = key
    definition = IndicatorDefinition(
        **values,
        terms=terms,
        agreement_id=terms.agreement_id,
        organization_id=terms.organization_id,
        template=template,
        weight=weight if weight is not None else template.suggested_weight,
        is_key_quality_indicator=template.is_key_quality_indicator,
    )
    return definition_save(definition=definition, user=user)


def definitions_copy_to_terms(
    *, source: AgreementTerms, target: AgreementTerms
) -> list[IndicatorDefinition]:
    """Carry the indicators over to an amendment (a new terms version) to be changed there."""
    if source.agreement_id != target.agreement_id:
        raise ValidationError("Both terms versions must belong to the same agreement.")
    _refuse_if_frozen(target)
    copies = []
    with transaction.atomic():
        for definition in definitions_for_terms(terms=source):
            benchmarks = list(definition.benchmarks.all())
            definition.pk = None
            definition.id = None
            definition._state.adding = True
            definition.terms = target
            definition.save()
            for benchmark in benchmarks:
                benchmark.pk = None
                benchmark.id = None
                benchmark._state.adding = True
                benchmark.definition = definition
                benchmark.save()
            copies.append(definition)
    return copies


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

_COMPARED = ("value", "numerator", "denominator", "case_count", "source", "source_note")


def _result_version(
    *,
    definition: IndicatorDefinition,
    programme_year: ProgrammeYear,
    period: Period,
    values: dict[str, Any],
    user: User | None,
) -> IndicatorResult:
    """Write a new current version; the old one stays, and the new one says what changed."""
    previous = (
        IndicatorResult.objects.select_for_update()
        .filter(
            definition=definition, period_start=period.start, period_end=period.end, is_current=True
        )
        .first()
    )
    changes: dict[str, list[Any]] = {}
    version = 1
    if previous is not None:
        version = previous.version + 1
        for name in _COMPARED:
            old, new = getattr(previous, name), values.get(name)
            if isinstance(old, Decimal) and new is not None:
                differs = to_decimal(new) != old
            else:
                differs = old != new
            if differs:
                changes[name] = [jsonable(old), jsonable(new)]
        IndicatorResult.objects.filter(pk=previous.pk).update(is_current=False)
    return IndicatorResult.objects.create(
        organization_id=definition.organization_id,
        definition=definition,
        programme_year=programme_year,
        period_kind=period.kind,
        period_start=period.start,
        period_end=period.end,
        period_label=period.label,
        version=version,
        previous=previous,
        changes=changes,
        created_by=user,
        **values,
    )


def result_record(
    *,
    definition: IndicatorDefinition,
    programme_year: ProgrammeYear,
    period: Period,
    source_note: str,
    numerator: Decimal | None = None,
    denominator: Decimal | None = None,
    value: Decimal | None = None,
    case_count: int | None = None,
    user: User | None = None,
    result_import: ResultImport | None = None,
) -> IndicatorResult:
    """Aggregate entry (spec section 3): numerator and denominator, or value and case count.
    ``result_import``: the results file the figures come from (recorded on the version).

    Proportions take whole counts and refuse a numerator above its denominator; a zero
    denominator gives no score. Ratios divide the two figures (times the multiplier).
    Continuous variables take the value and the number of cases.
    """
    if programme_year.agreement_id != definition.agreement_id:
        raise ValidationError("The programme year belongs to another agreement.")
    if period not in periods_for_year(programme_year=programme_year):
        raise ValidationError("The period is not one of the programme year's periods.")
    if not source_note.strip():
        raise ValidationError({"source_note": ["Note where the figures come from."]})
    counts: dict[str, Any] = {}
    if definition.kind == Kind.CONTINUOUS_VARIABLE:
        if value is None or case_count is None:
            raise ValidationError("Enter the value and the number of cases it is based on.")
        score: Decimal | None = to_decimal(value)
        numerator = denominator = None
    else:
        if numerator is None or denominator is None:
            raise ValidationError("Enter both the numerator and the denominator.")
        numerator, denominator = to_decimal(numerator), to_decimal(denominator)
        if numerator < 0 or denominator < 0:
            raise ValidationError("Counts cannot be negative.")
        if definition.kind == Kind.PROPORTION:
            if numerator != numerator.to_integral_value() or (
                denominator != denominator.to_integral_value()
            ):
                raise ValidationError("A proportion counts whole cases.")
            try:
                score = casefile_score(int(numerator), int(denominator))
            except MeasureDataError as exc:
                raise ValidationError({"numerator": [str(exc)]}) from exc
            case_count = int(denominator)
            counts = {"numerator": int(numerator), "denominator": int(denominator)}
        else:
            score = (
                None
                if denominator == 0
                else numerator * Decimal(definition.multiplier) / denominator
            )
            if case_count is None:
                case_count = int(denominator)
    values = {
        "source": ResultSource.AGGREGATE,
        "source_note": source_note.strip()[:300],
        "numerator": numerator,
        "denominator": denominator,
        "case_count": case_count,
        "value": None if score is None else _quantize_score(score),
        "counts": counts,
        "result_import": result_import,
    }
    with transaction.atomic():
        result = _result_version(
            definition=definition,
            programme_year=programme_year,
            period=period,
            values=values,
            user=user,
        )
        event_record(
            organization=definition.agreement.organization,
            name="indicator.result",
            actor=user,
            obj=result,
            summary=f"{definition.name} {period.label}: v{result.version}",
        )
    return result


def casefile_score(numerator: int, denominator: int) -> Decimal | None:
    from .criteria import proportion_score

    return proportion_score(numerator=numerator, denominator=denominator)


_SCORE_PLACES = 12


def _quantize_score(score: Decimal) -> Decimal:
    # Stored to 12 places: far below the cut-point comparison's resolution, so 94.996 stays
    # below 95 (spec section 2) while the column stays a fixed-size decimal.
    return round_places(score, _SCORE_PLACES)


# --------------------------------------------------------------------------------------------
# Case-file imports
# --------------------------------------------------------------------------------------------


def import_dedupe_key(*, agreement: Agreement, period: Period, sha256: str) -> str:
    return f"indicator-import:{agreement.pk}:{period.key}:{sha256}"[:128]


def _import_inputs(
    definitions: list[IndicatorDefinition],
) -> tuple[dict[str, MeasureDefinition], casefile.FileSpec]:
    measures = {d.key: measure_definition_of(d) for d in definitions}
    spec = casefile.casefile_spec(
        measures, {d.key: d.fields for d in definitions}, {d.key: d.date_field for d in definitions}
    )
    return measures, spec


def import_spec(
    *, programme_year: ProgrammeYear, keys: list[str] | None = None
) -> casefile.FileSpec:
    """The columns a case file for this year (and these indicators) must have."""
    return _import_inputs(import_definitions(programme_year=programme_year, keys=keys))[1]


def import_definitions(
    *, programme_year: ProgrammeYear, keys: list[str] | None = None
) -> list[IndicatorDefinition]:
    """The indicators a case file is evaluated against: every one in force, or those named
    (a registry file may feed only some indicators)."""
    definitions = definitions_in_force(programme_year=programme_year)
    if keys:
        unknown = sorted(set(keys) - {d.key for d in definitions})
        if unknown:
            raise ValidationError(f"Unknown indicator(s) for this year: {', '.join(unknown)}")
        definitions = [d for d in definitions if d.key in keys]
    return definitions


def case_import_create(
    *,
    agreement: Agreement,
    programme_year: ProgrammeYear,
    period: Period,
    data: bytes,
    filename: str,
    user: User | None,
    indicator_keys: list[str] | None = None,
) -> CaseImport:
    """Store the uploaded file (nothing is applied yet); the job validates and applies it."""
    if programme_year.agreement_id != agreement.pk:
        raise ValidationError("The programme year belongs to another agreement.")
    if period not in periods_for_year(programme_year=programme_year):
        raise ValidationError("The period is not one of the programme year's periods.")
    if not filename.lower().endswith((".csv", ".txt", ".xlsx")):
        raise ValidationError("Upload a CSV (UTF-8) or an Excel .xlsx file.")
    # Stored only: nothing parses the file here (the worker does, when the import runs).
    uploads.upload_size_check(kind="cases", size=len(data))
    digest = hashlib.sha256(data).hexdigest()
    case_import = CaseImport(
        organization_id=agreement.organization_id,
        agreement=agreement,
        programme_year=programme_year,
        period_kind=period.kind,
        period_start=period.start,
        period_end=period.end,
        period_label=period.label,
        original_name=filename[:255],
        sha256=digest,
        size=len(data),
        created_by=user,
        indicator_keys=[
            d.key for d in import_definitions(programme_year=programme_year, keys=indicator_keys)
        ],
    )
    case_import.file.save(f"{digest[:16]}-{filename[-80:]}", ContentFile(data), save=False)
    case_import.save()
    return case_import


CASES_KIND = "cases"


def case_import_mapping_step(
    *, case_import: CaseImport, sheet: str = "", header_row: int | None = None
) -> dict[str, Any]:
    """What the mapping form shows for a case file (a CSV's first rows; an Excel workbook is
    never opened in the web request: it is read with a saved mapping or its first sheet)."""
    spec = import_spec(
        programme_year=case_import.programme_year, keys=case_import.indicator_keys or None
    )
    if case_import.original_name.lower().endswith((".xlsx", ".xlsm")):
        return {"pending": True, "problems": [], "columns": [], "sheets": [], "saved": None}
    with case_import.file.open("rb") as handle:
        rows = csv_head_rows(handle)
    return mapping_step(
        rows,
        fields=casefile.casefile_fields(spec),
        saved=import_mappings_saved(kind=CASES_KIND),
        header_row=header_row,
    )


def case_import_map(
    *,
    case_import: CaseImport,
    user: User | None,
    mapping_id: Any = None,
    columns: dict[str, str] | None = None,
    date_format: str = "auto",
    save_as: str = "",
) -> CaseImport:
    """Record how the case file is read before it runs (see
    :func:`comanage.core.import_mappings.import_mapping_resolve`)."""
    if case_import.job_id:
        raise ValidationError("This case file was already started.")
    spec = import_spec(
        programme_year=case_import.programme_year, keys=case_import.indicator_keys or None
    )
    chosen, used = import_mapping_resolve(
        organization=case_import.organization,
        kind=CASES_KIND,
        fields=casefile.casefile_fields(spec),
        step_for=lambda _sheet, header_row: case_import_mapping_step(
            case_import=case_import, header_row=header_row
        ),
        user=user,
        mapping_id=mapping_id,
        columns=columns,
        date_format=date_format,
        save_as=save_as,
    )
    case_import.mapping = chosen if used else None
    case_import.mapping_used = used
    case_import.save(update_fields=["mapping", "mapping_used"])
    return case_import


def case_import_discard(*, case_import: CaseImport, user: User | None) -> None:
    """Discard a case file that was never applied (waiting to run, refused, or left behind by
    a job that failed): the record and its stored file go, nothing else changes, and the
    audit trail keeps what it was. An applied import's results stay: it cannot be discarded."""
    from django.db import OperationalError

    with transaction.atomic():
        try:
            with transaction.atomic():
                case_import = CaseImport.objects.select_for_update(nowait=True).get(
                    pk=case_import.pk
                )
        except OperationalError as exc:
            raise uploads.ImportNotDiscardable(uploads.RUNNING, code="running") from exc
        if case_import.status == ImportStatus.APPLIED or case_import.results.exists():
            raise uploads.ImportNotDiscardable(
                "This case file was applied: it cannot be discarded. Import a corrected file "
                "for the same period; its results become new versions.",
                code="applied",
            )
        uploads.import_job_release(job_id=case_import.job_id)
        name = case_import.file.name
        event_record(
            organization=case_import.agreement.organization,
            name="indicator.import_discarded",
            actor=user,
            obj=case_import,
            summary=f"{case_import.original_name} ({case_import.period_label}) "
            "discarded (never applied)",
            data={"sha256": case_import.sha256, "status": case_import.status, "file": name},
        )
        uploads.stored_file_remove_on_commit(case_import.file)
        case_import.delete()


def case_import_drop_duplicate(*, case_import: CaseImport) -> None:
    """An upload found to be a file already imported for its period, before anything was run
    from it: the record goes, and its stored file once that is stored."""
    uploads.stored_file_remove_on_commit(case_import.file)
    case_import.delete()


@dataclass
class ImportOutcome:
    case_import: CaseImport
    results: list[IndicatorResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def case_import_apply(
    *, case_import: CaseImport, user: User | None = None, progress=None
) -> ImportOutcome:
    """Validate the whole file, evaluate every indicator, then store memberships and new result
    versions in one transaction. Raises ``casefile.CaseFileRefused`` (nothing stored)."""
    import time

    def step(percent: int, message: str) -> None:
        if progress:
            progress(percent, message)

    timings: dict[str, float] = {}
    started = time.perf_counter()
    definitions = import_definitions(
        programme_year=case_import.programme_year, keys=case_import.indicator_keys or None
    )
    if not definitions:
        problems = casefile.Problems()
        problems.add(None, "", "The agreement has no indicators for this programme year.")
        raise casefile.CaseFileRefused(problems)
    measures, spec = _import_inputs(definitions)
    step(5, "Reading the file")
    with case_import.file.open("rb") as handle:
        data = handle.read()
    used = case_import.mapping_used or {}
    frame = casefile.casefile_read(
        data,
        filename=case_import.original_name,
        mapping=ColumnMapping.from_json(used) if used.get("columns") else None,
        fields=casefile.casefile_fields(spec),
    )
    timings["parse"] = time.perf_counter() - started
    step(25, f"Checking {len(frame):,} rows")
    t = time.perf_counter()
    typed = casefile.casefile_validate(
        frame, spec=spec, period_start=case_import.period_start, period_end=case_import.period_end
    )
    timings["validate"] = time.perf_counter() - t
    step(45, "Evaluating the populations")
    t = time.perf_counter()
    evaluated = casefile.casefile_evaluate(typed, definitions=measures, spec=spec)
    timings["evaluate"] = time.perf_counter() - t
    step(60, "Storing each case's populations")
    t = time.perf_counter()
    codes = membership.codes_encode(
        [membership.flags_pack(evaluated[d.key].cases, kind=d.kind) for d in definitions]
    )
    case_ids = case_ids_for_storage(case_import.organization, typed[casefile.CASE_ID])
    with transaction.atomic():
        CaseMembership.objects.filter(case_import=case_import).delete()
        memberships_store(case_import=case_import, case_ids=case_ids, codes=codes)
        timings["store"] = time.perf_counter() - t
        step(90, "Recording the results")
        period = Period(
            case_import.period_kind,
            case_import.period_label,
            case_import.period_start,
            case_import.period_end,
        )
        results = []
        for index, definition in enumerate(definitions):
            population = evaluated[definition.key]
            score = population.score
            if definition.kind == Kind.CONTINUOUS_VARIABLE:
                numerator = denominator = None
            else:
                numerator, denominator = population.numerator_value, population.denominator_value
            values = {
                "source": ResultSource.CASE_FILE,
                "source_note": f"{case_import.original_name} (sha256 {case_import.sha256[:12]})",
                "numerator": numerator,
                "denominator": denominator,
                "case_count": population.performance_denominator,
                "value": None if score is None else _quantize_score(score),
                "counts": population.counts,
                "case_import": case_import,
                "indicator_index": index,
            }
            results.append(
                _result_version(
                    definition=definition,
                    programme_year=case_import.programme_year,
                    period=period,
                    values=values,
                    user=user,
                )
            )
        case_import.status = ImportStatus.APPLIED
        case_import.row_count = len(typed)
        case_import.indicator_keys = [d.key for d in definitions]
        case_import.summary = {
            d.key: {**evaluated[d.key].to_dict(), "version": r.version, "changes": r.changes}
            for d, r in zip(definitions, results, strict=True)
        }
        case_import.save(update_fields=["status", "row_count", "indicator_keys", "summary"])
        event_record(
            organization=case_import.agreement.organization,
            name="indicator.import_applied",
            actor=user,
            obj=case_import,
            summary=f"{case_import.original_name}: {len(typed):,} cases, "
            f"{len(definitions)} indicators",
        )
    timings["total"] = time.perf_counter() - started
    return ImportOutcome(case_import=case_import, results=results, timings=timings)


def memberships_store(*, case_import: CaseImport, case_ids: Any, codes: np.ndarray) -> int:
    """Bulk-load the cases (``case_ids`` in file order, a Series or array of text; ``codes``
    from ``membership.codes_encode``): PostgreSQL COPY (one round trip for a million rows),
    else ``bulk_create`` in batches. Measured in bench/indicators_bench.py."""
    count = len(case_ids)
    if count == 0:
        return 0
    if connection.vendor == "postgresql":
        _memberships_copy(case_import=case_import, case_ids=case_ids, codes=codes)
        return count
    id_text = np.asarray(case_ids, dtype=object)
    code_text = codes.astype(str)
    batch = 5000
    for offset in range(0, count, batch):
        CaseMembership.objects.bulk_create(
            [
                CaseMembership(
                    organization_id=case_import.organization_id,
                    case_import_id=case_import.pk,
                    row_number=offset + i + 2,
                    case_id=str(cid),
                    codes=code,
                )
                for i, (cid, code) in enumerate(
                    zip(
                        id_text[offset : offset + batch],
                        code_text[offset : offset + batch],
                        strict=True,
                    )
                )
            ]
        )
    return count


def _memberships_copy(*, case_import: CaseImport, case_ids: Any, codes: np.ndarray) -> None:
    """COPY in CSV format, written by pyarrow (C++, so any case id is quoted correctly) from
    Arrow columns built without a Python object per case: the ids are the file's own Arrow
    strings, the fixed-width codes are wrapped as strings in place."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    count = len(case_ids)
    # An Arrow-backed Series hands over its buffers (no copy); other input is converted once.
    ids = pa.array(case_ids, type=pa.string(), from_pandas=True)
    width = codes.dtype.itemsize
    code_bytes = np.ascontiguousarray(codes).view(np.uint8)
    offsets = np.arange(0, (count + 1) * width, width, dtype=np.int64)
    code_text = pa.Array.from_buffers(
        pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(code_bytes)]
    )
    table = pa.table(
        {
            "organization_id": pa.array(np.full(count, case_import.organization_id)),
            "case_import_id": pa.array(np.full(count, case_import.pk)),
            "row_number": pa.array(np.arange(2, count + 2)),
            "case_id": ids,
            "codes": code_text,
        }
    )
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, pacsv.WriteOptions(include_header=False))
    sink.seek(0)
    table_name = CaseMembership._meta.db_table
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(
            f"COPY {table_name} (organization_id, case_import_id, row_number, case_id, "
            "codes) FROM STDIN WITH (FORMAT csv)",
            sink,
        )


# --------------------------------------------------------------------------------------------
# Benchmarks and action plans
# --------------------------------------------------------------------------------------------


def benchmark_create(
    *,
    definition: IndicatorDefinition,
    source: str,
    value: Decimal,
    period: str = "",
    percentile: int | None = None,
    note: str = "",
) -> Benchmark:
    benchmark = Benchmark(
        organization_id=definition.organization_id,
        definition=definition,
        source=source,
        value=to_decimal(value),
        period=period,
        percentile=percentile,
        note=note,
    )
    benchmark.full_clean()
    benchmark.save()
    return benchmark


def result_below_target(result: IndicatorResult) -> bool:
    definition = result.definition
    if result.value is None:
        return False
    if definition.direction == "higher_is_better":
        return result.value < definition.target
    return result.value > definition.target


def action_plan_create(
    *,
    definition: IndicatorDefinition,
    programme_year: ProgrammeYear,
    title: str,
    owner: str,
    due_date: dt.date,
    result: IndicatorResult | None = None,
    steps: list[dict[str, Any]] | None = None,
    user: User | None = None,
) -> ActionPlan:
    """A plan for an indicator whose interim result is below target."""
    if result is None:
        result = results_interim_latest(
            programme_year=programme_year, definitions=[definition]
        ).get(definition.pk)
    if result is None or result.period_kind != PeriodKind.QUARTER:
        raise ValidationError(
            "An action plan follows an interim (quarterly) result; record one first."
        )
    if result.definition_id != definition.pk:
        raise ValidationError("That result belongs to another indicator.")
    if not result_below_target(result):
        raise ValidationError(
            f"The interim result ({result.display_value}) already meets the "
            f"target ({definition.target}); no action plan is needed."
        )
    with transaction.atomic():
        plan = ActionPlan(
            organization_id=definition.organization_id,
            definition=definition,
            programme_year=programme_year,
            result=result,
            title=title,
            owner=owner,
            due_date=due_date,
        )
        plan.full_clean()
        plan.save()
        for step in steps or []:
            action_step_add(
                plan=plan,
                description=step["description"],
                due_date=step["due_date"],
                owner=step.get("owner", ""),
            )
        event_record(
            organization=definition.agreement.organization,
            name="indicator.action_plan_opened",
            actor=user,
            obj=plan,
            summary=title,
        )
    return plan


def action_step_add(
    *, plan: ActionPlan, description: str, due_date: dt.date, owner: str = ""
) -> ActionStep:
    if plan.status == ActionPlanStatus.CLOSED:
        raise ValidationError("The plan is closed.")
    step = ActionStep(
        organization_id=plan.organization_id,
        plan=plan,
        description=description,
        due_date=due_date,
        owner=owner,
    )
    step.full_clean()
    step.save()
    return step


def action_step_complete(*, step: ActionStep, on: dt.date | None = None) -> ActionStep:
    step.done_on = on or timezone.localdate()
    step.save(update_fields=["done_on"])
    plan = step.plan
    if plan.status == ActionPlanStatus.OPEN:
        plan.status = ActionPlanStatus.IN_PROGRESS
        plan.save(update_fields=["status"])
    return step


def action_plan_close(
    *, plan: ActionPlan, note: str, on: dt.date | None = None, user: User | None = None
) -> ActionPlan:
    if plan.status == ActionPlanStatus.CLOSED:
        raise ValidationError("The plan is already closed.")
    if not note.strip():
        raise ValidationError({"closing_note": ["Say how the plan ended."]})
    plan.status = ActionPlanStatus.CLOSED
    plan.closed_on = on or timezone.localdate()
    plan.closing_note = note.strip()
    plan.save(update_fields=["status", "closed_on", "closing_note"])
    event_record(
        organization=plan.definition.agreement.organization,
        name="indicator.action_plan_closed",
        actor=user,
        obj=plan,
        summary=plan.title,
    )
    return plan


# --------------------------------------------------------------------------------------------
# The incentive (spec section 2) and the key indicators of the quality gate (section 4)
# --------------------------------------------------------------------------------------------


class IndicatorDataMissing(ValueError):
    """Some indicator of the year has no annual result yet."""

    def __init__(self, missing: list[str]):
        self.missing = missing
        super().__init__(f"no annual result yet for: {', '.join(missing)}")


@dataclass(frozen=True)
class IncentiveComputation:
    """The engine's result plus the JSON-serialisable inputs it was computed from."""

    result: scoring.IncentiveResult
    inputs: dict[str, Any]
    terms: AgreementTerms
    programme_year: ProgrammeYear
    definitions: tuple[IndicatorDefinition, ...]
    results: dict[str, IndicatorResult | None]

    def inputs_checksum(self) -> str:
        text = json.dumps(self.inputs, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _definition_input(definition: IndicatorDefinition, weight: Decimal) -> dict[str, Any]:
    return {
        "id": definition.pk,
        "key": definition.key,
        "name": definition.name,
        "kind": definition.kind,
        "direction": definition.direction,
        "weight": str(weight),
        "minimum_denominator": definition.minimum_denominator,
        "tiers": [
            ["threshold", str(definition.threshold), str(definition.threshold_payout)],
            ["target", str(definition.target), str(definition.target_payout)],
            ["stretch", str(definition.stretch), str(definition.stretch_payout)],
        ],
        "populations": definition.populations,
    }


def _result_input(
    result: IndicatorResult | None, score: Decimal | None, denominator: int | None, overridden: bool
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "score": None if score is None else str(score),
        "denominator": denominator,
        "overridden": overridden,
    }
    if result is not None:
        data |= {
            "result_id": result.pk,
            "version": result.version,
            "period": [result.period_start.isoformat(), result.period_end.isoformat()],
            "source": result.source,
            "source_note": result.source_note,
            "source_sha256": result.case_import.sha256 if result.case_import else None,
        }
        case_import = result.case_import
        used = case_import.mapping_used if case_import is not None else None
        if case_import is not None and used:
            # Which mapping (and version) read the case file, as the savings inputs say it; a
            # canonical file has none (and the inputs, so their checksum, are as before).
            data["mapping"] = {
                "id": used.get("mapping_id"),
                "name": used.get("name", ""),
                "version": used.get("version"),
                "label": case_import.mapping_label,
            }
    return data


def _incentive_inputs(
    *, programme_year: ProgrammeYear, overrides: Mapping[str, Any] | None, interim: bool
):
    terms = terms_for_year(programme_year=programme_year)
    definitions = definitions_in_force(programme_year=programme_year)
    # Strict: an unknown key, a non-finite or unbounded number is a 400 naming the field.
    overrides = incentive_overrides_parse(
        indicator_keys=[d.key for d in definitions], overrides=overrides
    )
    weights = {k: to_decimal(str(v)) for k, v in (overrides.get("weights") or {}).items()}
    result_overrides = overrides.get("results") or {}
    known = {d.key for d in definitions}
    unknown = sorted((set(weights) | set(result_overrides)) - known)
    if unknown:
        raise ValueError(f"overrides name unknown indicator(s): {', '.join(unknown)}")
    if interim:
        stored = results_interim_latest(programme_year=programme_year, definitions=definitions)
    else:
        stored = results_annual_for_year(programme_year=programme_year, definitions=definitions)
    base = incentive_terms_of(terms)
    incentive_terms = scoring.IncentiveTerms(
        pool=to_decimal(str(overrides.get("pool", base.pool))),
        tier_mode=overrides.get("tier_mode", base.tier_mode),
        small_denominator_policy=overrides.get(
            "small_denominator_policy", base.small_denominator_policy
        ),
    )
    indicator_terms, engine_results, definition_inputs, result_inputs = [], [], [], {}
    results_by_key: dict[str, IndicatorResult | None] = {}
    missing = []
    for definition in definitions:
        weight = weights.get(definition.key, definition.weight)
        indicator_terms.append(indicator_terms_of(definition, weight=weight))
        definition_inputs.append(_definition_input(definition, weight))
        result = stored.get(definition.pk)
        results_by_key[definition.key] = result
        if definition.key in result_overrides:
            spec = result_overrides[definition.key]
            score = None if spec.get("score") is None else to_decimal(str(spec["score"]))
            denominator = spec.get("denominator", result.case_count if result else None)
            overridden = True
        elif result is not None:
            score, denominator, overridden = result.value, result.case_count, False
        else:
            if not interim:
                missing.append(definition.name)
            continue
        engine_results.append(
            scoring.IndicatorResult(key=definition.key, score=score, denominator=denominator)
        )
        result_inputs[definition.key] = _result_input(result, score, denominator, overridden)
    if missing:
        raise IndicatorDataMissing(missing)
    inputs = {
        "programme_year": {
            "id": programme_year.pk,
            "number": programme_year.number,
            "start": programme_year.start.isoformat(),
            "end": programme_year.end.isoformat(),
        },
        "terms": {
            "id": terms.pk,
            "version": terms.version,
            "effective_from": terms.effective_from.isoformat(),
            "pool": str(incentive_terms.pool),
            "tier_mode": incentive_terms.tier_mode,
            "small_denominator_policy": incentive_terms.small_denominator_policy,
        },
        "definitions": definition_inputs,
        "results": result_inputs,
        "overrides": json.loads(json.dumps(overrides, default=str)),
        "basis": "interim" if interim else "annual",
    }
    return (
        terms,
        definitions,
        incentive_terms,
        indicator_terms,
        engine_results,
        inputs,
        results_by_key,
    )


def incentive_for_year(
    *, programme_year: ProgrammeYear, overrides: dict[str, Any] | None = None
) -> IncentiveComputation:
    """The year's incentive from the terms in force, their indicators and the annual results.

    ``overrides`` (what-if scenarios; nothing stored is touched): ``{"results": {key:
    {"score": "1.2", "denominator": 13}}, "weights": {key: "25"}, "tier_mode": "linear",
    "small_denominator_policy": "zero", "pool": "400000.00"}``. Raises
    ``IndicatorDataMissing`` when an indicator has no annual result and ``scoring.TermsInvalid``
    for unusable terms (e.g. weights not summing to 100).
    """
    return _incentive_computed(
        programme_year=programme_year,
        overrides=overrides,
        interim=False,
        compute=scoring.incentive_compute,
    )


def incentive_projection(
    *, programme_year: ProgrammeYear, as_of: dt.date | None = None
) -> IncentiveComputation:
    """The incentive if the year ended on ``as_of`` with the latest interim results
    (a projection: nothing is paid on it)."""
    return _incentive_computed(
        programme_year=programme_year,
        overrides=None,
        interim=True,
        compute=functools.partial(
            scoring.year_to_date_projection, as_of=as_of or timezone.localdate()
        ),
    )


def _incentive_computed(
    *,
    programme_year: ProgrammeYear,
    overrides: dict[str, Any] | None,
    interim: bool,
    compute: Callable[..., scoring.IncentiveResult],
) -> IncentiveComputation:
    """Load the year's inputs (annual or interim results), run ``compute`` (the engine's final
    or year-to-date calculation) over them and keep the inputs beside the result."""
    (
        terms,
        definitions,
        incentive_terms,
        indicator_terms,
        engine_results,
        inputs,
        results_by_key,
    ) = _incentive_inputs(programme_year=programme_year, overrides=overrides, interim=interim)
    result = compute(terms=incentive_terms, indicators=indicator_terms, results=engine_results)
    return IncentiveComputation(
        result=result,
        inputs=inputs,
        terms=terms,
        programme_year=programme_year,
        definitions=tuple(definitions),
        results=results_by_key,
    )


def key_indicator_met(
    *, direction: str, baseline: Decimal | None, result: Decimal | None, tolerance_pct: Decimal
) -> bool:
    """Not worse than baseline beyond the tolerance (relative to the baseline, spec section 4).

    No baseline or no result cannot show the safeguard holds, so it is not met."""
    if baseline is None or result is None:
        return False
    allowance = abs(baseline) * tolerance_pct / 100
    if direction == "higher_is_better":
        return result >= baseline - allowance
    return result <= baseline + allowance


@dataclass(frozen=True)
class KeyIndicatorOutcome:
    """A key quality indicator of a shared-savings agreement against its baseline (spec 4's
    quality gate; the adjudication app hands these to the savings calculation)."""

    key: str
    name: str
    met: bool
    baseline: Decimal | None
    result: Decimal | None
    tolerance_pct: Decimal | None


def key_indicator_outcomes(*, programme_year: ProgrammeYear) -> list[KeyIndicatorOutcome]:
    """The key quality indicators for the savings quality gate, from the annual results of the
    terms in force."""
    terms = terms_for_year(programme_year=programme_year)
    definitions = [
        d for d in definitions_in_force(programme_year=programme_year) if d.is_key_quality_indicator
    ]
    annual = results_annual_for_year(programme_year=programme_year, definitions=definitions)
    outcomes = []
    for definition in definitions:
        result = annual.get(definition.pk)
        tolerance = (
            definition.tolerance_pct
            if definition.tolerance_pct is not None
            else terms.quality_tolerance_pct
        )
        value = None if result is None or result.value is None else round_money(result.value)
        outcomes.append(
            KeyIndicatorOutcome(
                key=definition.key,
                name=definition.name,
                met=key_indicator_met(
                    direction=definition.direction,
                    baseline=definition.baseline_value,
                    result=None if result is None else result.value,
                    tolerance_pct=tolerance,
                ),
                baseline=definition.baseline_value,
                result=value,
                tolerance_pct=tolerance,
            )
        )
    return outcomes


__all__ = [
    "FROZEN_MESSAGE",
    "ImportOutcome",
    "IncentiveComputation",
    "IndicatorDataMissing",
    "KeyIndicatorOutcome",
    "action_plan_close",
    "action_plan_create",
    "action_step_add",
    "action_step_complete",
    "benchmark_create",
    "case_import_apply",
    "case_import_create",
    "definition_delete",
    "definition_errors",
    "definition_from_template",
    "definition_is_frozen",
    "definition_save",
    "definitions_check",
    "definitions_copy_to_terms",
    "import_dedupe_key",
    "import_spec",
    "incentive_for_year",
    "incentive_projection",
    "key_indicator_outcomes",
    "memberships_store",
    "result_record",
]
