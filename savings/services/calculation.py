"""The calculation: ``savings_for_year`` gathers a programme year's inputs from the records and
calls the pure engine (:mod:`savings.engine`); ``savings_calculation_run`` stores the result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agreements.models import (
    AgreementTerms,
    Participation,
    ProgrammeYear,
)
from agreements.selectors import terms_for_year
from comanage.core.audit import event_record
from comanage.core.jobs import job_create, job_enqueue, job_progress
from comanage.core.models import Job, User
from comanage.core.money import ZERO, format_money, round_rational, to_decimal
from comanage.core.serialise import jsonable

from .. import columnar, engine, selectors
from ..models import (
    CalculationKind,
    DataImport,
    ImportKind,
    OpportunityStatus,
    SavingsCalculation,
    SavingsOpportunity,
)
from ..overrides import agreed_item_codes, savings_overrides_parse
from ..sources import sources as installed_sources
from .safeguards import safeguard_flags_raise

CALCULATION_JOB_KIND = "savings.calculation"


@dataclass(frozen=True, kw_only=True)
class SavingsComputation:
    """The engine result for a programme year plus the inputs that produced it."""

    programme_year_id: int
    result: engine.SavingsResult
    inputs: dict[str, Any]
    inputs_checksum: str
    projection: bool = False
    as_of: dt.date | None = None
    projected_gross_savings: Decimal | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def result_checksum(self) -> str:
        return self.result.checksum()


OVERRIDE_KEYS = {"terms", "quantity_pct", "prices", "already_distributed", "key_indicators_met"}
TERM_FIELDS = (
    "physician_share_pct",
    "admin_fee_monthly",
    "distribution_cap",
    "volume_cap_scope",
    "negative_opportunities",
    "quality_gate",
    "min_savings_threshold_pct",
    "leaver_policy",
    "reprice_baseline",
    "severity_tolerance_pct",
)


def _terms_for_year(programme_year: ProgrammeYear) -> AgreementTerms:
    try:
        return terms_for_year(programme_year=programme_year)
    except AgreementTerms.DoesNotExist:
        raise engine.SavingsInputError(
            f"no terms of the agreement are in force on {programme_year.start}"
        ) from None


def _engine_terms(
    terms: AgreementTerms, cap: Decimal, overrides: dict[str, Any]
) -> engine.SavingsTerms:
    values: dict[str, Any] = {
        "physician_share_pct": terms.physician_share_pct,
        "admin_fee_monthly": terms.admin_fee_monthly,
        "distribution_cap": cap,
        "volume_cap_scope": terms.volume_cap_scope,
        "negative_opportunities": terms.negative_opportunities,
        "quality_gate": terms.quality_gate,
        "min_savings_threshold_pct": terms.min_savings_threshold_pct,
        "leaver_policy": terms.leaver_policy,
        "reprice_baseline": terms.reprice_baseline,
        "severity_tolerance_pct": terms.severity_tolerance_pct,
    }
    for name, value in (overrides.get("terms") or {}).items():
        if name not in TERM_FIELDS:
            raise engine.SavingsInputError(f"unknown term to override: {name}")
        if name == "reprice_baseline":
            value = value if isinstance(value, bool) else str(value).lower() == "true"
        elif name in (
            "physician_share_pct",
            "admin_fee_monthly",
            "distribution_cap",
            "min_savings_threshold_pct",
            "severity_tolerance_pct",
        ):
            value = None if value in (None, "") else to_decimal(value)
        values[name] = value
    result = engine.SavingsTerms(**values)
    result.validate()
    return result


def _scale_quantities(frame: pd.DataFrame, quantity_pct: dict[str, Any]) -> pd.DataFrame:
    frame = frame.copy()
    for item, pct in quantity_pct.items():
        factor = to_decimal(str(pct)) / 100
        if factor < 0:
            raise engine.SavingsInputError(f"quantity change for {item} must not go below 0%")
        mask = frame["item_code"] == item
        frame.loc[mask, "quantity"] = [
            str(Decimal(q) * factor) for q in frame.loc[mask, "quantity"]
        ]
    return frame


def _scale_quantity_columns(
    usage: engine.UsageColumns, quantity_pct: dict[str, Any]
) -> engine.UsageColumns | None:
    """:func:`_scale_quantities` on typed columns, exactly: each factor ``pct / 100`` is an
    integer at ``10**d``, every quantity moves to ``quantity_digits + max(d)``. ``None`` when
    the products would not fit in 64 bits (the caller then takes the text path)."""
    factors: dict[str, tuple[int, int]] = {}
    for item, pct in quantity_pct.items():
        factor = to_decimal(str(pct)) / 100
        if factor < 0:
            raise engine.SavingsInputError(f"quantity change for {item} must not go below 0%")
        sign, digits, exponent = factor.as_tuple()
        integer = int("".join(map(str, digits)) or "0")
        if not isinstance(exponent, int):
            return None
        factors[str(item)] = (integer * 10 ** max(exponent, 0), max(-exponent, 0))
    extra = max((d for _, d in factors.values()), default=0)
    multiplier = np.full(len(usage.item_values), 10**extra, dtype=object)
    for position, value in enumerate(usage.item_values):
        if value in factors:
            scaled_factor, places = factors[value]
            multiplier[position] = scaled_factor * 10 ** (extra - places)
    largest = int(np.abs(usage.quantity).max()) if len(usage) else 0
    if largest * max(multiplier.tolist(), default=1) >= 2**62:
        return None
    scaled = usage.quantity * multiplier.astype(np.int64)[np.asarray(usage.item_code)]
    return dataclasses.replace(
        usage, quantity=scaled, quantity_digits=usage.quantity_digits + extra
    )


def _same_period(usage: engine.UsageColumns, start: dt.date, days: int) -> engine.UsageColumns:
    """Rows in the first ``days`` days from ``start`` (the base year's same months)."""
    return usage.up_to(start + dt.timedelta(days=days - 1))


def _already_distributed(programme_year: ProgrammeYear) -> tuple[Decimal, list[dict[str, Any]]]:
    """What earlier years of the term paid to the practice (spec 4 split step 3).

    Per earlier year: the distributions recorded as paid in the adjudication app when there are
    any; otherwise the ``amount_paid`` of that year's latest stored savings calculation;
    otherwise nothing. Each year's source is recorded in the inputs.
    """
    total = ZERO
    sources: list[dict[str, Any]] = []
    earlier = ProgrammeYear.objects.filter(
        agreement_id=programme_year.agreement_id, number__lt=programme_year.number
    ).order_by("number")
    for year in earlier:
        paid = installed_sources().distributions_paid(year)
        if paid is not None:
            source = "adjudication payments"
        if paid is None:
            calc = selectors.calculation_latest(programme_year=year)
            if calc is not None:
                paid, source = calc.amount_paid, f"savings calculation #{calc.pk}"
        if paid is None:
            paid, source = ZERO, "nothing recorded"
        total += to_decimal(paid)
        sources.append({"year": year.number, "amount": str(paid), "source": source})
    return total, sources


def _key_indicators(programme_year: ProgrammeYear) -> list[engine.KeyIndicatorOutcome]:
    return list(installed_sources().key_indicators(programme_year))


def _import_record(data_import: DataImport | None) -> dict[str, Any] | None:
    if data_import is None:
        return None
    record: dict[str, Any] = {
        "id": data_import.pk,
        "file": data_import.original_name,
        "sha256": data_import.sha256,
        "version": data_import.version,
        "rows": data_import.row_count,
    }
    if data_import.mapping_used:
        # Which mapping (and version) read the file; a canonical file has none (and its
        # record, so the inputs' checksum, is as before).
        used = data_import.mapping_used
        record["mapping"] = {
            "id": used.get("mapping_id"),
            "name": used.get("name", ""),
            "version": used.get("version"),
            "label": data_import.mapping_label,
        }
    return record


@dataclass(frozen=True)
class _YearFiles:
    """The current imports a programme year is computed from."""

    base_years: list[int]
    base: list[DataImport]
    current: DataImport
    prices: DataImport
    prior_year: ProgrammeYear | None
    prior: DataImport | None


def _year_files(programme_year: ProgrammeYear, opportunities: list[Any]) -> _YearFiles:
    """Base-year usage (the current import of each opportunity's base year), the year's usage
    and price file, and year N-1's usage for the baseline reset; a missing one is named."""
    agreement = programme_year.agreement
    base_years = sorted({o.base_year for o in opportunities})
    base_imports = []
    for year in base_years:
        found = selectors.import_current(agreement=agreement, kind=ImportKind.USAGE, base_year=year)
        if found is None:
            raise engine.SavingsInputError(f"base-year {year} usage has not been imported")
        base_imports.append(found)
    current_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.USAGE, programme_year=programme_year
    )
    if current_import is None:
        raise engine.SavingsInputError(f"{programme_year.label}: usage has not been imported")
    price_import = selectors.import_current(
        agreement=agreement, kind=ImportKind.PRICES, programme_year=programme_year
    )
    if price_import is None:
        raise engine.SavingsInputError(
            f"{programme_year.label}: the price file is missing; the year cannot be calculated"
        )
    prior_year = ProgrammeYear.objects.filter(
        agreement=agreement, number=programme_year.number - 1
    ).first()
    prior_import = None
    if prior_year is not None:
        prior_import = selectors.import_current(
            agreement=agreement, kind=ImportKind.USAGE, programme_year=prior_year
        )
        if prior_import is None:
            raise engine.SavingsInputError(
                f"{prior_year.label}: usage is needed for the baseline reset and is missing"
            )
    return _YearFiles(
        base_years=base_years,
        base=base_imports,
        current=current_import,
        prices=price_import,
        prior_year=prior_year,
        prior=prior_import,
    )


@dataclass
class _YearUsage:
    """The usage the engine reads: the base, current and prior years (cut to the same elapsed
    period for a projection as of ``as_of``, with the fee months elapsed)."""

    base: Any
    current: Any
    prior: Any
    as_of: dt.date | None = None
    fee_months: int | None = None


def _year_usage(
    files: _YearFiles,
    programme_year: ProgrammeYear,
    overrides: dict[str, Any],
    as_of: dt.date | None,
) -> _YearUsage:
    """The year and its what-ifs: each import prepared once (parsed, checked, summed) and kept
    (savings.columnar). A projection, or the stored form off: typed, exact columns from the
    database; a what-if on quantities rescales them exactly (text only beyond 64 bits)."""
    quantity_pct = overrides.get("quantity_pct")
    if as_of is None:
        prepared = columnar.year_usage(
            base_imports=files.base,
            current_import=files.current,
            prior_import=files.prior,
            quantity_pct=quantity_pct,
        )
        if prepared is not None:
            return _YearUsage(*prepared)
    base_parts = [selectors.usage_columns(data_import=i) for i in files.base]
    current_frame: Any = selectors.usage_columns(data_import=files.current)
    if quantity_pct:
        scaled = _scale_quantity_columns(current_frame, quantity_pct)
        current_frame = (
            scaled
            if scaled is not None
            else _scale_quantities(selectors.usage_frame(data_import=files.current), quantity_pct)
        )
    prior_frame = selectors.usage_columns(data_import=files.prior) if files.prior else None
    if as_of is None:
        return _YearUsage(engine.UsageColumns.concat(base_parts), current_frame, prior_frame)
    # A projection: usage to ``as_of`` against the same months of the base and prior years.
    as_of = min(max(as_of, programme_year.start), programme_year.end)
    elapsed = (as_of - programme_year.start).days + 1
    if isinstance(current_frame, engine.UsageColumns):
        current_frame = current_frame.up_to(as_of)
    else:
        current_frame = current_frame[current_frame["service_date"] <= as_of.isoformat()]
    base_frame = engine.UsageColumns.concat(
        [
            _same_period(part, i.period_start, elapsed)
            for part, i in zip(base_parts, files.base, strict=True)
        ]
    )
    if prior_frame is not None and files.prior_year is not None:
        prior_frame = _same_period(prior_frame, files.prior_year.start, elapsed)
    from agreements.fees import fee_months_elapsed

    # Edge case "fee months" (spec 4): twelve fees for a twelve-month year whatever day it
    # starts on, one per started month for a shorter year; the engine applies and notes it.
    return _YearUsage(
        base_frame,
        current_frame,
        prior_frame,
        as_of=as_of,
        fee_months=fee_months_elapsed(programme_year.start, as_of),
    )


def _participants(agreement: Any) -> list[engine.Participant]:
    return [
        engine.Participant(
            physician_id=str(p.physician_id),
            npi=p.physician.npi,
            last_name=p.physician.last_name,
            first_name=p.physician.first_name,
            join_date=p.join_date,
            leave_date=p.leave_date,
            termination_date=p.termination_date,
            for_cause=p.for_cause,
        )
        for p in Participation.objects.filter(agreement=agreement).select_related("physician")
    ]


def _engine_opportunity(o: Any) -> engine.Opportunity:
    return engine.Opportunity(
        key=o.key,
        name=o.name,
        case_types=tuple(o.case_types),
        item_codes=tuple(o.item_codes),
        savings_target=o.savings_target,
        floor_per_case=o.floor_per_case,
        identified_at_signing=o.identified_at_signing,
        effective_from_year=o.effective_from_year.start.year if o.effective_from_year else None,
    )


def _distributed_before(
    programme_year: ProgrammeYear, overrides: dict[str, Any], given: Decimal | None
) -> tuple[Decimal, list[dict[str, Any]]]:
    """What earlier years paid, and where the figure comes from: an override, the caller, or
    the stored years (:func:`_already_distributed`)."""
    if "already_distributed" in overrides:
        return to_decimal(str(overrides["already_distributed"])), [{"source": "override"}]
    if given is not None:
        return to_decimal(given), [{"source": "given by the caller"}]
    return _already_distributed(programme_year)


def _key_indicators_for(
    programme_year: ProgrammeYear, overrides: dict[str, Any], *, projection: bool
) -> tuple[list[engine.KeyIndicatorOutcome], list[str]]:
    """The key quality indicators' outcomes, and those a projection assumes met.

    In-year, an indicator not measured yet is no evidence of harm: the projection assumes it
    met (and says so); the year's calculation takes the outcomes as they are. The what-if
    override ``key_indicators_met`` sets every one."""
    indicators = _key_indicators(programme_year)
    assumed_met: list[str] = []
    if projection:
        assumed_met = [k.key for k in indicators if k.result is None and not k.met]
        indicators = [
            dataclasses.replace(k, met=True) if k.key in assumed_met else k for k in indicators
        ]
    if "key_indicators_met" in overrides:
        met = overrides["key_indicators_met"] is True  # parsed strictly above
        indicators = [dataclasses.replace(k, met=met) for k in indicators]
    return indicators, assumed_met


def savings_for_year(
    *,
    programme_year: ProgrammeYear,
    overrides: dict[str, Any] | None = None,
    already_distributed: Decimal | None = None,
    as_of: dt.date | None = None,
) -> SavingsComputation:
    """Gather a programme year's inputs from the records and run the engine (spec 4).

    * terms in force on the year's first day; the distribution cap is the terms' cap, or the
      sum of the targets identified at signing when the terms leave it empty;
    * the agreed opportunities; base-year usage (the current import of their base year),
      year N-1's usage for the baseline reset, the year's usage and price file (current
      imports); participants; key quality indicators (``indicators.services`` when present);
    * ``already_distributed`` defaults to what earlier years paid (see
      :func:`_already_distributed`);
    * ``as_of`` makes a projection: usage to that date against the same months of the base and
      prior years, fees for the months elapsed, and a full-year run rate of gross savings.

    ``overrides`` (what-if, nothing stored changes): ``terms`` {field: value},
    ``quantity_pct`` {item: percent of recorded quantity}, ``prices`` {item: unit cost},
    ``already_distributed``, ``key_indicators_met`` (bool for every key indicator).
    Raises :class:`engine.SavingsInputError` with the reason a year cannot be computed.
    """
    agreement = programme_year.agreement
    terms_record = _terms_for_year(programme_year)
    opportunities = [
        o
        for o in selectors.opportunities_of(agreement=agreement)
        if o.status == OpportunityStatus.AGREED
    ]
    # Strict: unknown keys or items, negative prices, non-finite numbers, non-booleans and NUL
    # are each a 400 naming the field, before anything is computed or stored.
    overrides = savings_overrides_parse(
        overrides=overrides, item_codes={str(c) for o in opportunities for c in o.item_codes}
    )
    if not opportunities:
        raise engine.SavingsInputError("the agreement has no agreed savings opportunities")
    cap = terms_record.distribution_cap
    if cap is None:
        cap = sum((o.savings_target for o in opportunities if o.identified_at_signing), ZERO)
    terms = _engine_terms(terms_record, cap, overrides)
    files = _year_files(programme_year, opportunities)
    usage = _year_usage(files, programme_year, overrides, as_of)
    prices: dict[str, Any] = selectors.prices_of(data_import=files.prices)
    for item, cost in (overrides.get("prices") or {}).items():
        prices[str(item)] = to_decimal(str(cost))
    participants = _participants(agreement)
    engine_opportunities = [_engine_opportunity(o) for o in opportunities]
    already, distributed_sources = _distributed_before(
        programme_year, overrides, already_distributed
    )
    indicators, assumed_met = _key_indicators_for(
        programme_year, overrides, projection=as_of is not None
    )
    # The names the rule notes give the periods (part of the inputs: they are in the result).
    labels = {
        "year_label": programme_year.label,
        "base_year_label": "base year " + ", ".join(str(y) for y in files.base_years),
        "prior_year_label": (
            files.prior_year.label if files.prior_year is not None else "the prior year"
        ),
    }
    result = engine.savings_compute(
        terms=terms,
        opportunities=engine_opportunities,
        participants=participants,
        year_start=programme_year.start,
        year_end=programme_year.end,
        base_usage=usage.base,
        current_usage=usage.current,
        current_prices=prices,
        prior_usage=usage.prior,
        fee_months=usage.fee_months,
        already_distributed=already,
        key_indicators=indicators,
        **labels,
    )

    projected = None
    if usage.as_of is not None:  # a projection
        projected = round_rational(
            Fraction(result.gross_savings)
            * programme_year.days
            / ((usage.as_of - programme_year.start).days + 1)
        )
    inputs = {
        "rules_version": engine.RULES_VERSION,
        "agreement_id": agreement.pk,
        "programme_year": {
            "id": programme_year.pk,
            "number": programme_year.number,
            "start": programme_year.start.isoformat(),
            "end": programme_year.end.isoformat(),
        },
        "terms": {"id": terms_record.pk, "version": terms_record.version, **jsonable(terms)},
        "opportunities": [jsonable(o) for o in engine_opportunities],
        "participants": [jsonable(p) for p in participants],
        "base_usage": [_import_record(i) for i in files.base],
        "prior_usage": _import_record(files.prior),
        "usage": _import_record(files.current),
        "price_file": _import_record(files.prices),
        "fee_months": result.fee_months,
        "labels": labels,
        "already_distributed": str(already),
        "already_distributed_sources": distributed_sources,
        "key_indicators": [jsonable(k) for k in indicators],
        "overrides": jsonable(overrides),
        "as_of": usage.as_of.isoformat() if usage.as_of else None,
        "key_indicators_assumed_met_in_projection": assumed_met,
    }
    checksum = hashlib.sha256(
        json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    return SavingsComputation(
        programme_year_id=programme_year.pk,
        result=result,
        inputs=inputs,
        inputs_checksum=checksum,
        projection=usage.as_of is not None,
        as_of=usage.as_of,
        projected_gross_savings=projected,
    )


@transaction.atomic
def savings_calculation_run(
    *,
    programme_year: ProgrammeYear,
    user: User | None,
    kind: str = CalculationKind.YEAR,
    overrides: dict[str, Any] | None = None,
    as_of: dt.date | None = None,
    job_id: int | None = None,
) -> SavingsCalculation:
    """Compute and store. Idempotent: identical inputs return the stored calculation."""
    if kind == CalculationKind.PROJECTION and as_of is None:
        as_of = min(timezone.localdate(), programme_year.end)
    if kind != CalculationKind.PROJECTION:
        as_of = None
    if kind == CalculationKind.YEAR and overrides:
        raise ValidationError(
            {"overrides": "A programme-year calculation takes no overrides; run a scenario."}
        )
    if kind == CalculationKind.YEAR:
        _refuse_final_before_year_end(programme_year)
    if job_id is not None:
        job_progress(job_id, 10, "Gathering the year's data")
    computation = savings_for_year(programme_year=programme_year, overrides=overrides, as_of=as_of)
    if job_id is not None:
        job_progress(job_id, 80, "Storing the figures")
    existing = SavingsCalculation.objects.filter(
        programme_year=programme_year, kind=kind, inputs_checksum=computation.inputs_checksum
    ).first()
    if existing is not None:
        return existing
    result = computation.result
    calculation = SavingsCalculation.objects.create(
        organization=programme_year.organization,
        agreement=programme_year.agreement,
        programme_year=programme_year,
        kind=kind,
        as_of=as_of,
        overrides=computation.inputs["overrides"],
        inputs=computation.inputs,
        inputs_checksum=computation.inputs_checksum,
        result=result.to_dict(),
        result_checksum=result.checksum(),
        gross_savings=result.gross_savings,
        physician_pool=result.physician_pool,
        amount_paid=result.amount_paid,
        projected_gross_savings=computation.projected_gross_savings,
        created_by=user,
    )
    if kind == CalculationKind.YEAR:
        safeguard_flags_raise(calculation=calculation)
    event_record(
        organization=programme_year.organization,
        name="savings.calculated",
        actor=user,
        obj=calculation,
        summary=f"{calculation.get_kind_display()} {programme_year.label}: gross savings "
        f"{format_money(result.gross_savings)}, paid {format_money(result.amount_paid)}",
        data={"result_checksum": calculation.result_checksum},
    )
    return calculation


def _refuse_final_before_year_end(programme_year: ProgrammeYear) -> None:
    from agreements.services import programme_year_refuse_final_run

    programme_year_refuse_final_run(programme_year=programme_year)


def savings_calculation_start(
    *,
    programme_year: ProgrammeYear,
    user: User | None,
    kind: str = CalculationKind.YEAR,
    overrides: dict[str, Any] | None = None,
) -> Job:
    from ..tasks import savings_calculation_task

    if kind == CalculationKind.YEAR:
        _refuse_final_before_year_end(programme_year)
    if kind == CalculationKind.YEAR and overrides:
        raise ValidationError(
            {"overrides": "A programme-year calculation takes no overrides; run a scenario."}
        )
    # Checked before the job is stored: a bad value is the caller's 400 now, not a failed job
    # later (and a NUL would not even reach the job table on PostgreSQL).
    overrides = savings_overrides_parse(
        overrides=overrides, item_codes=agreed_item_codes(agreement=programme_year.agreement)
    )
    imports = DataImport.objects.filter(
        agreement_id=programme_year.agreement_id, is_current=True
    ).values_list("pk", flat=True)
    fingerprint = hashlib.sha256(
        json.dumps(
            {
                "imports": sorted(imports),
                "overrides": overrides or {},
                "kind": kind,
                "day": timezone.localdate().isoformat(),
                "opportunities": list(
                    SavingsOpportunity.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "savings_target")
                ),
                "terms": list(
                    AgreementTerms.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "version")
                ),
                "participations": list(
                    Participation.objects.filter(
                        agreement_id=programme_year.agreement_id
                    ).values_list("pk", "termination_date", "leave_date", "for_cause")
                ),
            },
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:32]
    job = job_create(
        organization=programme_year.organization,
        kind=CALCULATION_JOB_KIND,
        user=user,
        params={"programme_year_id": programme_year.pk, "kind": kind, "overrides": overrides or {}},
        dedupe_key=f"savings-calc:{programme_year.pk}:{fingerprint}",
    )
    job_enqueue(job=job, task=savings_calculation_task)
    return job
