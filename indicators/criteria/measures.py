"""Measures and their populations (spec section 3): a measure definition, the populations each
case belongs to and why, and the score."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from comanage.core.money import round_money

from .evaluation import FrameView, _as_view, _blank_or_null, criteria_mask
from .validation import (
    Criteria,
    CriteriaError,
    CriteriaInvalid,
    _kind_of_type_name,
    criteria_validate,
)

# --------------------------------------------------------------------------------------------
# Measures and their populations (spec section 3)
# --------------------------------------------------------------------------------------------

MeasureKind = Literal["proportion", "ratio", "continuous_variable"]

# Population flags kept per case, in the order the spec walks them; keys double as count names.
POPULATIONS = (
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "numerator",
    "denominator_exception",
    "numerator_exclusion",
)
CV_POPULATIONS = ("initial_population", "measure_population", "measure_population_exclusion")

# Why a case is (or is not) counted; stored as a categorical so a million rows stay cheap.
REASONS = (
    "not in initial population",
    "not in denominator",
    "excluded: denominator exclusion",
    "excepted: denominator exception (numerator not met)",
    "not in numerator: numerator exclusion",
    "in denominator: numerator not met",
    "in numerator",
    "not in measure population",
    "excluded: measure population exclusion",
    "in measure population",
    "not in numerator",
)


class MeasureDataError(ValueError):
    """The case file cannot be scored as it is (duplicate ids, missing observations...)."""


# The criteria trees a measure may carry, in the order the spec walks them (section 3).
POPULATION_KEYS = (
    "initial_population",
    "denominator",
    "denominator_exclusions",
    "numerator",
    "denominator_exceptions",
    "numerator_exclusions",
    "measure_population",
    "measure_population_exclusions",
)


@dataclass(frozen=True)
class MeasureDefinition:
    """How one indicator is computed from case rows.

    ``None`` for a criteria means "not defined": the initial population, denominator and measure
    population then take every case they are given, exclusions/exceptions take none. A
    proportion needs ``numerator``. A ratio divides the numerator count (or the sum of
    ``numerator_value_field`` over the numerator cases) by the denominator count (or the sum of
    ``denominator_value_field``), times ``multiplier`` (e.g. 1000 for "per 1,000 line days").
    A continuous variable aggregates ``observation_field`` over the measure population.
    """

    kind: MeasureKind = "proportion"
    initial_population: Criteria | None = None
    denominator: Criteria | None = None
    denominator_exclusions: Criteria | None = None
    numerator: Criteria | None = None
    denominator_exceptions: Criteria | None = None
    numerator_exclusions: Criteria | None = None
    numerator_value_field: str | None = None
    denominator_value_field: str | None = None
    multiplier: Decimal = Decimal(1)
    measure_population: Criteria | None = None
    measure_population_exclusions: Criteria | None = None
    observation_field: str | None = None
    aggregate: Literal["median", "mean"] = "median"

    def criteria_items(self) -> list[tuple[str, Criteria | None]]:
        return [(name, getattr(self, name)) for name in POPULATION_KEYS]


def measure_definition_validate(
    definition: MeasureDefinition, *, fields: Mapping[str, str] | None = None
) -> list[CriteriaError]:
    """Every problem in a definition; paths start with the population name."""
    errors: list[CriteriaError] = []
    if definition.kind not in ("proportion", "ratio", "continuous_variable"):
        errors.append(CriteriaError("$.kind", f"unknown measure kind {definition.kind!r}"))
        return errors
    for name, tree in definition.criteria_items():
        for error in criteria_validate(tree, fields=fields):
            errors.append(CriteriaError(f"{name}{error.path[1:]}", error.message))
    if definition.kind == "proportion" and definition.numerator is None:
        errors.append(CriteriaError("numerator", "a proportion measure needs a numerator"))
    if definition.kind == "ratio":
        if definition.numerator is None and definition.numerator_value_field is None:
            errors.append(
                CriteriaError("numerator", "a ratio needs numerator criteria or a value field")
            )
        if isinstance(definition.multiplier, float) or not definition.multiplier > 0:
            errors.append(CriteriaError("multiplier", "multiplier must be a positive Decimal"))
    if definition.kind == "continuous_variable":
        if not definition.observation_field:
            errors.append(CriteriaError("observation_field", "a continuous variable needs one"))
        if definition.aggregate not in ("median", "mean"):
            errors.append(CriteriaError("aggregate", "aggregate must be median or mean"))
    if fields is not None:
        for attr in ("numerator_value_field", "denominator_value_field", "observation_field"):
            name = getattr(definition, attr)
            if name is not None and name not in fields:
                errors.append(CriteriaError(attr, f"unknown field {name!r}"))
            elif name is not None and _kind_of_type_name(fields[name]) not in (None, "number"):
                errors.append(CriteriaError(attr, f"{name!r} is not a number field"))
    return errors


@dataclass(frozen=True)
class PopulationResult:
    """Every case's membership of every population, the counts and the score.

    ``cases`` has one row per case: the case id, a boolean column per population (named as in
    ``POPULATIONS``, or ``CV_POPULATIONS`` for continuous variables), ``in_denominator``,
    ``in_numerator`` and ``reason``. ``score`` is unrounded: a percentage for proportions,
    numerator ÷ denominator × multiplier for ratios, the aggregate for continuous variables;
    ``None`` when there is nothing to divide by (spec section 3: never 0% or 100%).
    """

    kind: MeasureKind
    cases: pd.DataFrame
    counts: dict[str, int]
    numerator_value: Decimal
    denominator_value: Decimal
    score: Decimal | None

    @property
    def display_score(self) -> Decimal | None:
        """The score half-up to two decimals (spec section 2: shown to two decimals)."""
        # Half-up to hundredths is the same rule as cents, so the one rounding helper serves.
        return None if self.score is None else round_money(self.score)

    @property
    def performance_denominator(self) -> int:
        """The number of cases the score divides by (the ``n`` minimum denominators test)."""
        if self.kind == "continuous_variable":
            return self.counts["measure_population"] - self.counts["measure_population_exclusion"]
        if self.kind == "ratio":
            return self.counts["denominator"] - self.counts["denominator_exclusion"]
        return (
            self.counts["denominator"]
            - self.counts["denominator_exclusion"]
            - self.counts["denominator_exception"]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (Decimals as strings); the case table is left to the caller."""
        return {
            "kind": self.kind,
            "counts": dict(self.counts),
            "numerator_value": str(self.numerator_value),
            "denominator_value": str(self.denominator_value),
            "performance_denominator": self.performance_denominator,
            "score": None if self.score is None else str(self.score),
            "display_score": None if self.display_score is None else str(self.display_score),
        }


def proportion_score(
    *,
    numerator: int,
    denominator: int,
    denominator_exclusions: int = 0,
    denominator_exceptions: int = 0,
    numerator_exclusions: int = 0,
) -> Decimal | None:
    """The unrounded percentage from aggregate counts (spec section 3, aggregate entry).

    Same formula as the case-level engine: (NUMER − NUMEX) ÷ (DENOM − DENEX − DENEXCEP) × 100;
    ``None`` for a zero denominator. Counts that cannot be true together (a numerator above its
    denominator, negative counts) raise ``MeasureDataError`` rather than produce a score.
    """
    counts = {
        "numerator": numerator,
        "denominator": denominator,
        "denominator_exclusions": denominator_exclusions,
        "denominator_exceptions": denominator_exceptions,
        "numerator_exclusions": numerator_exclusions,
    }
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise MeasureDataError(f"{name} must be a whole number ≥ 0, not {count!r}")
    performance_denominator = denominator - denominator_exclusions - denominator_exceptions
    performance_numerator = numerator - numerator_exclusions
    if performance_denominator < 0:
        raise MeasureDataError(
            f"exclusions and exceptions ({denominator_exclusions + denominator_exceptions}) "
            f"exceed the denominator ({denominator})"
        )
    if performance_numerator < 0:
        raise MeasureDataError(
            f"numerator exclusions ({numerator_exclusions}) exceed the numerator ({numerator})"
        )
    if performance_numerator > performance_denominator:
        raise MeasureDataError(
            f"numerator ({performance_numerator}) is above the denominator "
            f"({performance_denominator})"
        )
    if performance_denominator == 0:
        return None
    return Decimal(performance_numerator) * 100 / Decimal(performance_denominator)


def _check_case_ids(view: FrameView, case_id_field: str) -> None:
    if case_id_field in view.checked_case_ids:
        return
    ids = view.series(case_id_field)
    missing = _blank_or_null(ids)
    if missing.any():
        raise MeasureDataError(f"{int(missing.sum())} case(s) have no {case_id_field}")
    duplicated = ids.duplicated(keep=False).to_numpy(dtype=bool)
    if duplicated.any():
        examples = sorted({str(v) for v in ids[duplicated].head(10)})
        raise MeasureDataError(
            f"duplicate {case_id_field}: {', '.join(examples)} (one row per case is required)"
        )
    view.checked_case_ids.add(case_id_field)


def _mask_or(tree: Criteria | None, view: FrameView, default: bool, name: str) -> np.ndarray:
    if tree is None:
        return np.full(len(view), default, dtype=bool)
    try:
        return criteria_mask(tree, view)
    except CriteriaInvalid as exc:
        raise CriteriaInvalid(
            [CriteriaError(f"{name}{e.path[1:]}", e.message) for e in exc.errors]
        ) from exc


_MAX_DECIMALS = 6
_MAX_MAGNITUDE = 1e9


def _scaled_integers(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Float observations as integers of ``10**-k``: the fewest decimals (at most six) that give
    back every value as written (2.3 -> 23 with k = 1), so sums and means are exact. ``None``
    when a value needs more decimals or is too large; the caller then goes value by value."""
    if not np.isfinite(values).all() or (np.abs(values) >= _MAX_MAGNITUDE).any():
        return None
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = np.rint(values * 10**decimals)  # whole numbers; not money
        if (scaled / 10**decimals == values).all():
            return scaled.astype(np.int64), decimals
    return None


def _integer_sum(values: np.ndarray) -> int:
    """Exact even where int64 would overflow."""
    if len(values) and int(np.abs(values).max()) * len(values) >= 2**63:
        return int(values.astype(object).sum())
    return int(values.sum())


def _exact_decimals(values: np.ndarray) -> list[Decimal]:
    """Each float as the decimal it was read from (its shortest repr)."""
    return [Decimal(repr(float(v))) for v in values]


def _float_sum(values: np.ndarray) -> Decimal:
    scaled = _scaled_integers(values)
    if scaled is None:
        return sum(_exact_decimals(values), Decimal(0))
    integers, decimals = scaled
    return Decimal(_integer_sum(integers)).scaleb(-decimals)


def _decimal_sum(view: FrameView, name: str, mask: np.ndarray) -> Decimal:
    """Exact: integer columns as integers, float columns as the decimals they were read from."""
    column = view.column(name, "number")
    missing = mask & ~column.valid
    if missing.any():
        raise MeasureDataError(f"{int(missing.sum())} counted case(s) have no {name}")
    series = view.series(name)
    if pd.api.types.is_integer_dtype(series.dtype):
        return Decimal(_integer_sum(series.to_numpy()[mask]))
    return _float_sum(column.values[mask])


def _aggregate(values: np.ndarray, exact_ints: bool, how: str) -> Decimal | None:
    """The median or mean of the observations, exact (no float arithmetic on the values)."""
    if len(values) == 0:
        return None
    decimals = 0
    if not exact_ints:
        scaled = _scaled_integers(values)
        if scaled is None:
            return _aggregate_decimals(_exact_decimals(values), how)
        values, decimals = scaled
    if how == "mean":
        return (Decimal(_integer_sum(values)) / Decimal(len(values))).scaleb(-decimals)
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(int(ordered[middle])).scaleb(-decimals)
    low, high = Decimal(int(ordered[middle - 1])), Decimal(int(ordered[middle]))
    return ((low + high) / 2).scaleb(-decimals)


def _aggregate_decimals(values: list[Decimal], how: str) -> Decimal:
    if how == "mean":
        return sum(values, Decimal(0)) / Decimal(len(values))
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _reason_column(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype("int8"), categories=list(REASONS))


def populations_evaluate(
    definition: MeasureDefinition,
    frame: pd.DataFrame | FrameView,
    *,
    case_id_field: str = "case_id",
) -> PopulationResult:
    """Evaluate every population of ``definition`` for every case (spec section 3).

    Raises ``CriteriaInvalid`` for a malformed definition, ``CriteriaDataError`` for unreadable
    or missing fields and ``MeasureDataError`` for duplicate or missing case ids.
    """
    errors = measure_definition_validate(definition)
    if errors:
        raise CriteriaInvalid(errors)
    view = _as_view(frame)
    _check_case_ids(view, case_id_field)
    if definition.kind == "continuous_variable":
        return _continuous_variable(definition, view, case_id_field)
    if definition.kind == "ratio":
        return _ratio(definition, view, case_id_field)
    return _proportion(definition, view, case_id_field)


def populations_evaluate_many(
    definitions: Mapping[str, MeasureDefinition],
    frame: pd.DataFrame,
    *,
    case_id_field: str = "case_id",
    field_types: Mapping[str, str] | None = None,
    case_ids_checked: bool = False,
) -> dict[str, PopulationResult]:
    """Evaluate several measures over one frame, reading each column only once.

    ``case_ids_checked``: the caller has already refused empty and repeated case ids (the case
    file validation does), so the engine does not hash a million ids a second time.
    """
    view = FrameView(frame, field_types=field_types)
    if case_ids_checked:
        view.checked_case_ids.add(case_id_field)
    return {
        key: populations_evaluate(definition, view, case_id_field=case_id_field)
        for key, definition in definitions.items()
    }


def _proportion(
    definition: MeasureDefinition, view: FrameView, case_id_field: str
) -> PopulationResult:
    # Spec section 3, in order:
    # 1. initial population; 2. denominator within it;
    # 3. denominator exclusions, removed before the numerator is looked at;
    # 4. numerator among the remaining denominator;
    # 5. denominator exceptions only among cases that did NOT meet the numerator (a case with a
    #    documented reason that met the numerator stays: example D);
    # 6. numerator exclusions among the numerator;
    # 7. score = (NUMER - NUMEX) / (DENOM - DENEX - DENEXCEP), from integer counts.
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    denom = ipp & _mask_or(definition.denominator, view, True, "denominator")
    denex = denom & _mask_or(
        definition.denominator_exclusions, view, False, "denominator_exclusions"
    )
    eligible = denom & ~denex
    numer = eligible & _mask_or(definition.numerator, view, False, "numerator")
    denexcep = (
        eligible
        & ~numer
        & _mask_or(definition.denominator_exceptions, view, False, "denominator_exceptions")
    )
    numex = numer & _mask_or(definition.numerator_exclusions, view, False, "numerator_exclusions")
    in_denominator = eligible & ~denexcep
    in_numerator = numer & ~numex

    counts = {
        "initial_population": int(ipp.sum()),
        "denominator": int(denom.sum()),
        "denominator_exclusion": int(denex.sum()),
        "numerator": int(numer.sum()),
        "denominator_exception": int(denexcep.sum()),
        "numerator_exclusion": int(numex.sum()),
    }
    numerator_value = Decimal(counts["numerator"] - counts["numerator_exclusion"])
    denominator_value = Decimal(
        counts["denominator"] - counts["denominator_exclusion"] - counts["denominator_exception"]
    )
    score = None if denominator_value == 0 else numerator_value * 100 / denominator_value
    codes = np.select(
        [~ipp, ~denom, denex, denexcep, numex, ~numer],
        [0, 1, 2, 3, 4, 5],
        default=6,
    )
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "denominator": denom,
            "denominator_exclusion": denex,
            "numerator": numer,
            "denominator_exception": denexcep,
            "numerator_exclusion": numex,
            "in_denominator": in_denominator,
            "in_numerator": in_numerator,
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult("proportion", cases, counts, numerator_value, denominator_value, score)


def _ratio(definition: MeasureDefinition, view: FrameView, case_id_field: str) -> PopulationResult:
    # A ratio divides two separately defined counts (spec section 3); both come from the
    # initial population, each with its own exclusions; there are no exceptions.
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    denom = ipp & _mask_or(definition.denominator, view, True, "denominator")
    denex = denom & _mask_or(
        definition.denominator_exclusions, view, False, "denominator_exclusions"
    )
    numer = ipp & _mask_or(definition.numerator, view, True, "numerator")
    numex = numer & _mask_or(definition.numerator_exclusions, view, False, "numerator_exclusions")
    in_denominator = denom & ~denex
    in_numerator = numer & ~numex
    counts = {
        "initial_population": int(ipp.sum()),
        "denominator": int(denom.sum()),
        "denominator_exclusion": int(denex.sum()),
        "numerator": int(numer.sum()),
        "denominator_exception": 0,
        "numerator_exclusion": int(numex.sum()),
    }
    if definition.numerator_value_field:
        numerator_value = _decimal_sum(view, definition.numerator_value_field, in_numerator)
    else:
        numerator_value = Decimal(int(in_numerator.sum()))
    if definition.denominator_value_field:
        denominator_value = _decimal_sum(view, definition.denominator_value_field, in_denominator)
    else:
        denominator_value = Decimal(int(in_denominator.sum()))
    multiplier = Decimal(definition.multiplier)
    score = None if denominator_value == 0 else numerator_value * multiplier / denominator_value
    codes = np.select([~ipp, numex, ~numer], [0, 4, 10], default=6)
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "denominator": denom,
            "denominator_exclusion": denex,
            "numerator": numer,
            "denominator_exception": np.zeros(len(view), dtype=bool),
            "numerator_exclusion": numex,
            "in_denominator": in_denominator,
            "in_numerator": in_numerator,
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult("ratio", cases, counts, numerator_value, denominator_value, score)


def _continuous_variable(
    definition: MeasureDefinition, view: FrameView, case_id_field: str
) -> PopulationResult:
    # One observation per case in the measure population, then median or mean (spec section 3).
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    msrpopl = ipp & _mask_or(definition.measure_population, view, True, "measure_population")
    msrpoplex = msrpopl & _mask_or(
        definition.measure_population_exclusions, view, False, "measure_population_exclusions"
    )
    observed = msrpopl & ~msrpoplex
    name = str(definition.observation_field)
    column = view.column(name, "number")
    missing = observed & ~column.valid
    if missing.any():
        ids = view.series(case_id_field)[missing].head(10).astype(str).tolist()
        raise MeasureDataError(
            f"{int(missing.sum())} case(s) in the measure population have no {name}: "
            f"{', '.join(ids)}"
        )
    series = view.series(name)
    exact_ints = pd.api.types.is_integer_dtype(series.dtype)
    values = series.to_numpy()[observed] if exact_ints else column.values[observed]
    score = _aggregate(values, exact_ints, definition.aggregate)
    counts = {
        "initial_population": int(ipp.sum()),
        "measure_population": int(msrpopl.sum()),
        "measure_population_exclusion": int(msrpoplex.sum()),
    }
    codes = np.select([~ipp, ~msrpopl, msrpoplex], [0, 7, 8], default=9)
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "measure_population": msrpopl,
            "measure_population_exclusion": msrpoplex,
            "in_denominator": observed,
            "in_numerator": observed,
            "observation": np.where(observed, column.values, np.nan),
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult(
        "continuous_variable",
        cases,
        counts,
        Decimal(0) if score is None else score,
        Decimal(int(observed.sum())),
        score,
    )
