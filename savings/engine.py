"""The shared-savings (gainsharing) engine: spec section 4, pure and deterministic.

No ORM and no Django here. The service layer loads an agreement's frozen terms and the uploaded
usage files, calls :func:`savings_compute`, and stores :meth:`SavingsResult.to_dict` (and its
:meth:`SavingsResult.checksum`) in the adjudication run.

How exactness is kept
---------------------
* Per-row work (parsing, eligibility, grouping) is done with pandas/numpy on integers only:
  ``unit_cost`` becomes integer ten-thousandths of a dollar (costs have at most 4 decimals;
  more is refused), ``quantity`` an integer scaled by ``10**q`` where ``q`` is the most decimal
  places any quantity in the frame has (usually 0), and line cost = quantity x unit cost is an
  exact int64 (scale ``10**(4+q)``). Sums are int64 group sums; if they could overflow, the sums
  fall back to Python integers. Strings are parsed once per distinct value with ``Decimal``
  (``pd.factorize``), never through float. Floats in money columns are refused.
* Everything after the grouping is a handful of numbers per opportunity, carried as exact
  ``fractions.Fraction``. "Cost per case" is therefore the exact rational
  (total / cases, e.g. 464,263.79 / 455), never a rounded figure. Rounding happens only at the
  spec's named points, half-up to cents via :func:`comanage.core.money.round_rational`:
  capped savings per opportunity, the physician pool, the sliding quality gate, and the
  per-capita split (floored, leftover cents in order, via ``allocate_in_order``).
* Figures that the spec does not round (per-case costs, volume factors, raw savings, expected
  and actual cost) are reported rounded half-up to :data:`RATE_PLACES` decimals (per-case, factor)
  or cents (totals) **for display only**; downstream steps use the exact values.

Interpretations (documented so the adjudication can cite them)
-------------------------------------------------------------
* Eligibility (spec 4 step 1 and the edge case "whose cases count") is decided per case: its case
  type, whether the patient opted out, and whether its date lies inside its physician's
  participation window, join date to leave or termination date, both inclusive. The window
  applies to the programme year and to year N-1; the base year stays as identified at signing.
* One case, many rows (edge case): a case is dated by its earliest service date, and all its rows
  must agree on case type, physician, federal flag, notice and opt-out; rows that disagree are
  refused (:class:`SavingsInputError` naming the case), as the import refuses them.
* Baseline reset: year N baseline per case = min(original base-year baseline, year N-1 actual
  per case), both priced at year N prices (or both as recorded when ``reprice_baseline`` is off).
  The "actual" is the unfloored actual per case of year N-1's eligible cases. Base-year cases for
  the volume cap are then year N-1's eligible (and federal eligible) cases.
* An opportunity earns only if identified at signing, or added by amendment with
  ``effective_from_year`` <= the programme year; otherwise its figures are shown but not counted.
* The minimum-savings threshold compares gross savings (after ``negative_opportunities``) with
  the exact percentage of the expected cost of the opportunities that can earn that year
  (counted, with a baseline and base-year cases); the threshold shown is rounded to cents.
* The split runs pool (rounded) -> quality gate (``sliding`` rounded half-up) -> cap -> per
  capita. When nobody is entitled, nothing is paid, the cap is not consumed, and a blocking flag
  says why.
* Every edge case that decided a figure leaves a :class:`RuleNote` (rule id, plain English) in
  :attr:`SavingsResult.rule_notes`, so the report can say which rule applied.
* Safeguards (per physician) look at the physician's eligible cases of the opportunities' case
  types in the programme year against the base year; the notice check looks at all their cases of
  those case types up to their termination (an opted-out case must also have a notice).
* A physician terminated for cause on or before the year end forfeits the year's share; a
  voluntary leaver (leave date, or termination not for cause, inside the year) gets days/year
  under ``pro_rata`` and nothing under ``forfeit``; a joiner gets days/year under both policies
  (``leaver_policy`` is for leavers only). Leftover cents go in (last name, first name, NPI)
  order, never by a database id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import IO, Any, Literal

import numpy as np
import pandas as pd

from agreements.fees import fee_month_count
from comanage.core.money import ZERO, allocate_in_order, floor_money, round_rational, to_decimal
from comanage.core.serialise import fields_jsonable

RULES_VERSION = "savings-engine/2"
RATE_PLACES = 10
COST_SCALE_DIGITS = 4
_INT64_MAX = np.iinfo(np.int64).max

USAGE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "service_date",
    "case_type",
    "physician_npi",
    "payer",
    "federal_program",
    "item_code",
    "quantity",
    "unit_cost",
    "severity_weight",
    "notice_date",
    "reviewed",
    "opted_out",
)

VolumeCapScope = Literal["all_payors", "federal_only"]
NegativeOpportunities = Literal["net", "floor_at_zero"]
QualityGate = Literal["all_or_nothing", "sliding"]
LeaverPolicy = Literal["pro_rata", "forfeit"]
BaselineSource = Literal["original", "prior_year", "none"]
Entitlement = Literal[
    "full",
    "pro_rata_joiner",
    "pro_rata_leaver",
    "forfeited_leaver",
    "forfeited_for_cause",
    "not_participating",
]


class SavingsInputError(ValueError):
    """The inputs cannot produce a year's figures (missing price, bad column, bad terms)."""


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, kw_only=True)
class Opportunity:
    """A savings opportunity: a set of items for one or more case types (spec 4)."""

    key: str
    name: str
    case_types: tuple[str, ...]
    item_codes: tuple[str, ...]
    savings_target: Decimal = ZERO
    floor_per_case: Decimal | None = None
    identified_at_signing: bool = True
    effective_from_year: int | None = None

    def earns_in(self, year: int) -> bool:
        if self.identified_at_signing:
            return True
        return self.effective_from_year is not None and year >= self.effective_from_year


@dataclass(frozen=True, kw_only=True)
class Participant:
    """A participating physician. Dates are inclusive: the leave/termination day still counts."""

    physician_id: str
    npi: str
    last_name: str
    first_name: str
    join_date: dt.date
    leave_date: dt.date | None = None
    termination_date: dt.date | None = None
    for_cause: bool = False

    @property
    def last_day(self) -> dt.date | None:
        days = [d for d in (self.leave_date, self.termination_date) if d is not None]
        return min(days) if days else None

    def window(self) -> tuple[int, int]:
        """The participation window as ordinals, inclusive (edge case "whose cases count")."""
        last = self.last_day
        return self.join_date.toordinal(), (
            last.toordinal() if last is not None else np.iinfo(np.int64).max
        )


@dataclass(frozen=True, kw_only=True)
class SavingsTerms:
    """The frozen savings terms of an agreement for one programme year (spec 4)."""

    physician_share_pct: Decimal = Decimal("50")
    admin_fee_monthly: Decimal
    distribution_cap: Decimal
    volume_cap_scope: VolumeCapScope = "all_payors"
    negative_opportunities: NegativeOpportunities = "net"
    quality_gate: QualityGate = "all_or_nothing"
    min_savings_threshold_pct: Decimal | None = None
    leaver_policy: LeaverPolicy = "pro_rata"
    reprice_baseline: bool = True
    severity_tolerance_pct: Decimal = Decimal("10")

    def validate(self) -> None:
        problems = []
        share = to_decimal(self.physician_share_pct)
        if not Decimal(0) <= share <= Decimal(50):
            problems.append(f"physician share {share}% must be between 0% and 50%")
        for name in ("admin_fee_monthly", "distribution_cap"):
            amount = to_decimal(getattr(self, name))
            if amount < 0 or amount != round_rational(amount):
                problems.append(f"{name} {amount} must be a non-negative amount in cents")
        choices = {
            "volume_cap_scope": ("all_payors", "federal_only"),
            "negative_opportunities": ("net", "floor_at_zero"),
            "quality_gate": ("all_or_nothing", "sliding"),
            "leaver_policy": ("pro_rata", "forfeit"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}")
        threshold = self.min_savings_threshold_pct
        if threshold is not None and to_decimal(threshold) < 0:
            problems.append("min_savings_threshold_pct must not be negative")
        if to_decimal(self.severity_tolerance_pct) < 0:
            problems.append("severity_tolerance_pct must not be negative")
        if problems:
            raise SavingsInputError("; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class KeyIndicatorOutcome:
    """A key quality indicator compared with its baseline; the caller decides ``met``."""

    key: str
    name: str
    met: bool
    baseline: Decimal | None = None
    result: Decimal | None = None
    tolerance_pct: Decimal | None = None


# --------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, kw_only=True)
class Flag:
    """Something for the programme committee or counsel; the engine reports, never decides."""

    code: str
    subject: str
    message: str
    blocking: bool = False


# The spec's rules an edge case may cite (``../shared/spec/domain.md`` section 4, "Edge cases").
RULE_IDS: dict[str, str] = {
    "4.edge.whose-cases": "Whose cases count",
    "4.edge.one-case-many-rows": "One case, many rows",
    "4.edge.no-base-case": "No base-year case",
    "4.edge.reset-without-repricing": "Reset without repricing",
    "4.edge.fee-months": "Fee months",
    "4.edge.order-of-split": "Order of the split",
    "4.edge.nobody-entitled": "Nobody entitled",
    "4.edge.leavers-and-joiners": "Leavers and joiners",
    "4.edge.leftover-cents": "Leftover cents",
}


@dataclass(frozen=True, kw_only=True)
class RuleNote:
    """Which rule decided a figure, in plain English, for the report (spec 4 edge cases)."""

    rule: str  # a key of RULE_IDS
    title: str
    subject: str
    text: str


def rule_note(rule: str, subject: str, text: str) -> RuleNote:
    return RuleNote(rule=rule, title=RULE_IDS[rule], subject=subject, text=text)


@dataclass(frozen=True, kw_only=True)
class OpportunityResult:
    key: str
    name: str
    earns: bool
    case_types: tuple[str, ...]
    item_codes: tuple[str, ...]
    cases_of_type: int
    opted_out_cases: int
    before_joining_cases: int
    post_termination_cases: int
    eligible_cases: int
    federal_eligible_cases: int
    original_base_cases: int
    base_cases: int
    base_federal_cases: int
    original_baseline_per_case: Decimal | None
    prior_year_per_case: Decimal | None
    baseline_source: BaselineSource
    baseline_per_case: Decimal | None
    expected_cost: Decimal
    actual_cost: Decimal
    actual_per_case: Decimal | None
    floor_per_case: Decimal | None
    effective_actual_per_case: Decimal | None
    raw_savings: Decimal
    volume_factor: Decimal
    federal_volume_factor: Decimal | None
    applied_volume_factor: Decimal
    capped_savings: Decimal
    counted_savings: Decimal
    can_earn: bool
    savings_target: Decimal
    flags: tuple[Flag, ...]


@dataclass(frozen=True, kw_only=True)
class PhysicianSafeguards:
    base_cases: int
    current_cases: int
    base_average_severity: Decimal | None
    current_average_severity: Decimal | None
    severity_change_pct: Decimal | None
    severity_flag: bool
    base_federal_cases: int
    current_federal_cases: int
    federal_rise_flag: bool
    cases_without_notice: int
    notice_flag: bool


@dataclass(frozen=True, kw_only=True)
class PhysicianResult:
    physician_id: str
    npi: str
    last_name: str
    first_name: str
    entitlement: Entitlement
    participation_days: int
    year_days: int
    weight: Decimal
    amount: Decimal
    safeguards: PhysicianSafeguards


@dataclass(frozen=True, kw_only=True)
class SavingsResult:
    rules_version: str
    year_start: dt.date
    year_end: dt.date
    terms: SavingsTerms
    first_programme_year: bool
    opportunities: tuple[OpportunityResult, ...]
    total_expected_cost: Decimal
    gross_savings: Decimal
    min_savings_threshold_amount: Decimal | None
    min_savings_threshold_met: bool
    fee_months: int
    admin_fees: Decimal
    net_savings: Decimal
    physician_pool: Decimal
    hospital_share: Decimal
    key_indicators: tuple[KeyIndicatorOutcome, ...]
    key_indicators_met: int
    quality_factor: Decimal
    pool_after_quality_gate: Decimal
    withheld_by_quality_gate: Decimal
    distribution_cap: Decimal
    already_distributed: Decimal
    cap_remaining_before: Decimal
    amount_paid: Decimal
    withheld_by_cap: Decimal
    withheld_no_entitled: Decimal
    cumulative_distributed: Decimal
    cap_headroom: Decimal
    hospital_keeps: Decimal
    physicians: tuple[PhysicianResult, ...]
    cases_without_notice: int
    flags: tuple[Flag, ...]
    rule_notes: tuple[RuleNote, ...] = ()
    # Net savings never go below zero (split step 1): the administrator fees that gross savings
    # did not cover, which the floor at zero absorbs (zero when gross savings cover the fees).
    fees_not_covered: Decimal = ZERO

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, dates ISO, tuples as lists; stable key order."""
        return fields_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON: same inputs, same figures, same checksum."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def physician(self, physician_id: str) -> PhysicianResult:
        return next(p for p in self.physicians if p.physician_id == physician_id)

    def opportunity(self, key: str) -> OpportunityResult:
        return next(o for o in self.opportunities if o.key == key)


# --------------------------------------------------------------------------------------------
# Reading files (tests and the demo; the importer owns validation of uploads)


def usage_frame_from_csv(path_or_buffer: str | IO[Any]) -> pd.DataFrame:
    """Read a canonical usage CSV with every column as string, so no amount passes via float."""
    frame = pd.read_csv(path_or_buffer, dtype=str, engine="pyarrow", keep_default_na=False)
    missing = [c for c in USAGE_COLUMNS if c not in frame.columns]
    if missing:
        raise SavingsInputError(f"usage file lacks columns: {', '.join(missing)}")
    return frame


def price_list_from_csv(path_or_buffer: str | IO[Any]) -> dict[str, Decimal]:
    """Read ``item_code,unit_cost`` into a price list of exact Decimals."""
    frame = pd.read_csv(path_or_buffer, dtype=str, engine="pyarrow", keep_default_na=False)
    prices: dict[str, Decimal] = {}
    for item, cost in zip(frame["item_code"], frame["unit_cost"], strict=True):
        if item in prices:
            raise SavingsInputError(f"price list has item {item} twice")
        prices[str(item)] = to_decimal(str(cost))
    return prices


# --------------------------------------------------------------------------------------------
# Per-row work: parse once per distinct value, then integers only


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _parse_uniques(
    series: pd.Series, parse: Callable[[Any], Any], column: str, label: str
) -> tuple[np.ndarray, list[Any]]:
    """Factorize ``series`` and parse each distinct value once; returns (codes, parsed uniques).

    Missing values get the code -1 (pandas' convention) and are handled by the caller.
    """
    codes, uniques = pd.factorize(series, sort=True, use_na_sentinel=True)
    parsed: list[Any] = []
    # Blank strings are missing too (CSV read with keep_default_na=False); they get code -1.
    remap = np.full(len(uniques) + 1, -1, dtype=np.int64)
    bad = []
    for index, raw in enumerate(uniques):
        if _is_missing(raw):
            continue
        try:
            parsed.append(parse(raw))
        except (ValueError, TypeError, InvalidOperation):
            bad.append(str(raw))
            continue
        remap[index] = len(parsed) - 1
    if bad:
        shown = ", ".join(sorted(bad)[:5])
        raise SavingsInputError(f"{label}: column {column} has unreadable values: {shown}")
    codes = remap[np.asarray(codes, dtype=np.int64)]  # -1 indexes the trailing -1
    return np.asarray(codes, dtype=np.int64), parsed


def _exact_decimal(raw: Any) -> Decimal:
    if isinstance(raw, float | np.floating):
        raise TypeError("float amounts are refused")
    if isinstance(raw, np.integer):
        raw = int(raw)
    value = to_decimal(raw)
    if not value.is_finite():
        raise ValueError("not finite")
    return value


def _parse_date(raw: Any) -> int:
    if isinstance(raw, pd.Timestamp):
        return raw.date().toordinal()
    if isinstance(raw, dt.datetime):
        return raw.date().toordinal()
    if isinstance(raw, dt.date):
        return raw.toordinal()
    if isinstance(raw, str):
        return dt.date.fromisoformat(raw.strip()).toordinal()
    raise TypeError("not a date")


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _parse_bool(raw: Any) -> bool:
    if isinstance(raw, bool | np.bool_):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")


def _scaled_column(
    series: pd.Series, column: str, label: str, *, digits: int | None
) -> tuple[np.ndarray, int]:
    """Exact integers ``value * 10**digits`` for a decimal column (``digits=None``: as needed)."""
    if pd.api.types.is_float_dtype(series.dtype):
        raise SavingsInputError(f"{label}: column {column} is float; pass strings or Decimals")
    codes, values = _parse_uniques(series, _exact_decimal, column, label)
    if (codes < 0).any():
        raise SavingsInputError(f"{label}: column {column} has missing values")
    needed = max((max(0, -v.as_tuple().exponent) for v in values), default=0)
    if digits is None:
        digits = needed
    elif needed > digits:
        raise SavingsInputError(f"{label}: column {column} has more than {digits} decimals")
    scaled = [int(v.scaleb(digits)) for v in values]
    if any(abs(s) > _INT64_MAX for s in scaled):
        raise SavingsInputError(f"{label}: column {column} has values too large")
    lookup = np.asarray(scaled, dtype=np.int64) if scaled else np.zeros(0, dtype=np.int64)
    return lookup[codes], digits


@dataclass(frozen=True)
class _YearAggregate:
    """One year's usage reduced to exact integers per case type / item / physician."""

    # (case_type, item_code) -> (quantity sum scaled by 10**qty_digits, line cost scaled)
    item_sums: dict[tuple[str, str], tuple[int, int]]
    qty_digits: int
    cost_digits: int
    # case_type -> counts
    cases_of_type: dict[str, int]
    eligible: dict[str, int]
    federal_eligible: dict[str, int]
    opted_out: dict[str, int]
    before_joining: dict[str, int]
    post_termination: dict[str, int]
    # physician npi -> (cases before joining, cases after leaving), of the case types, not
    # opted out (edge case "whose cases count")
    outside_by_physician: dict[str, tuple[int, int]]
    # physician npi -> (eligible cases, severity sum scaled, federal eligible, cases w/o notice)
    by_physician: dict[str, tuple[int, int, int, int]]
    severity_digits: int
    first_day: int | None
    last_day: int | None
    item_codes: frozenset[tuple[str, str]]

    def quantity(self, case_type: str, item: str) -> Fraction:
        qty, _cost = self.item_sums.get((case_type, item), (0, 0))
        return Fraction(qty, 10**self.qty_digits)

    def cost(self, case_type: str, item: str) -> Fraction:
        _qty, cost = self.item_sums.get((case_type, item), (0, 0))
        return Fraction(cost, 10 ** (self.qty_digits + self.cost_digits))


class _Groups:
    """Rows grouped by an integer key, sorted once, reduced with numpy ``reduceat``.

    Cheaper than repeated ``DataFrame.groupby`` (which re-hashes the key every call) and exact
    for integers: int64 sums are exact below 2**63 (callers check a bound), and object arrays
    of Python ints are exact at any size.
    """

    def __init__(self, keys: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.int64)
        if keys.size and bool((keys[1:] >= keys[:-1]).all()):
            self.order: np.ndarray | None = None  # already grouped, as imports usually are
            ordered = keys
        else:
            self.order = np.argsort(keys, kind="stable")
            ordered = keys[self.order]
        if ordered.size:
            self.starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        else:
            self.starts = np.zeros(0, dtype=np.int64)
        self.keys = ordered[self.starts]

    def _sorted(self, values: np.ndarray) -> np.ndarray:
        return values if self.order is None else values[self.order]

    def min(self, values: np.ndarray) -> np.ndarray:
        return (
            np.minimum.reduceat(self._sorted(values), self.starts) if self.starts.size else values
        )

    def max(self, values: np.ndarray) -> np.ndarray:
        return (
            np.maximum.reduceat(self._sorted(values), self.starts) if self.starts.size else values
        )

    def sum(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(self._sorted(values), self.starts) if self.starts.size else values


def _group_sum(keys: np.ndarray, values: np.ndarray, bound: int) -> dict[int, int]:
    """Exact integer group sums; int64 when ``bound`` proves no overflow, Python ints if not."""
    if keys.size == 0:
        return {}
    if bound >= _INT64_MAX:
        values = np.asarray([int(v) for v in values], dtype=object)
    top = int(keys.max())
    if int(keys.min()) >= 0 and top < 4 * keys.size + 1024:
        # Dense key space (case type x item, physicians): unbuffered add needs no sort.
        totals = np.zeros(top + 1, dtype=values.dtype)
        np.add.at(totals, keys, values)
        present = np.zeros(top + 1, dtype=bool)
        present[keys] = True
        return {int(k): int(totals[k]) for k in np.flatnonzero(present)}
    groups = _Groups(keys)
    return {int(k): int(v) for k, v in zip(groups.keys, groups.sum(values), strict=True)}


@dataclass(frozen=True)
class _ParsedUsage:
    """A usage frame as integer arrays: one entry per case (``case_*``) or per row."""

    n_cases: int
    case_codes: np.ndarray  # row -> case index
    type_values: list[str]
    case_type_code: np.ndarray
    npi_values: list[str]
    case_npi_code: np.ndarray
    case_day: np.ndarray
    case_federal: np.ndarray
    case_opted_out: np.ndarray
    case_has_notice: np.ndarray
    case_severity: np.ndarray
    severity_digits: int
    quantity: np.ndarray
    qty_digits: int
    unit_cost: np.ndarray
    item_values: list[str]
    item_code: np.ndarray


def _check_case_rows(
    by_case: _Groups,
    fields: Mapping[str, np.ndarray],
    case_name: Callable[[int], str],
    *,
    label: str,
) -> None:
    """Edge case "one case, many rows": every row of a case must agree on the case's fields.

    ``fields`` are per-row integer/boolean arrays; a case whose rows hold two values of one field
    is refused, naming the case and the fields (the first few cases)."""
    if not by_case.starts.size:
        return
    bad: dict[int, list[str]] = {}
    for name, values in fields.items():
        values = np.asarray(values, dtype=np.int64)
        differs = by_case.min(values) != by_case.max(values)
        for case in np.flatnonzero(differs)[:10]:
            bad.setdefault(int(by_case.keys[case]), []).append(name)
    if bad:
        shown = "; ".join(
            f"case {case_name(case)} ({', '.join(names)})"
            for case, names in sorted(bad.items())[:5]
        )
        raise SavingsInputError(f"{label}: the rows of a case disagree on its case fields: {shown}")


@dataclass(frozen=True, kw_only=True)
class UsageColumns:
    """A usage file already typed and exact: the fast path from the database.

    The text path (:func:`usage_frame_from_csv`, any ``DataFrame`` of strings) parses every value
    itself; the database already holds typed, validated values, so the service hands them over
    as integer arrays instead (one entry per row):

    * text columns dictionary-encoded: ``*_code`` (int, an index into ``*_values``); any order of
      ``*_values`` (the engine sorts them, as the text path does);
    * ``service_day`` and dates as proleptic ordinals (``date.toordinal()``);
    * ``quantity``, ``unit_cost`` and ``severity`` as exact integers ``value * 10**digits``
      (``unit_cost`` always at :data:`COST_SCALE_DIGITS`), so nothing passes through float.

    Both paths give identical figures (tests compare ``to_dict()`` on example A and random data).
    """

    case_code: np.ndarray
    case_values: Sequence[str]
    case_type_code: np.ndarray
    case_type_values: Sequence[str]
    npi_code: np.ndarray
    npi_values: Sequence[str]
    item_code: np.ndarray
    item_values: Sequence[str]
    service_day: np.ndarray
    federal: np.ndarray
    opted_out: np.ndarray
    has_notice: np.ndarray
    severity: np.ndarray
    severity_digits: int
    quantity: np.ndarray
    quantity_digits: int
    unit_cost: np.ndarray

    def __len__(self) -> int:
        return int(len(self.case_code))

    def select(self, mask: np.ndarray) -> UsageColumns:
        """The rows where ``mask`` is true (e.g. a projection's days to date)."""
        arrays = {
            name: getattr(self, name)[mask]
            for name in (
                "case_code",
                "case_type_code",
                "npi_code",
                "item_code",
                "service_day",
                "federal",
                "opted_out",
                "has_notice",
                "severity",
                "quantity",
                "unit_cost",
            )
        }
        return UsageColumns(
            **arrays,
            case_values=self.case_values,
            case_type_values=self.case_type_values,
            npi_values=self.npi_values,
            item_values=self.item_values,
            severity_digits=self.severity_digits,
            quantity_digits=self.quantity_digits,
        )

    def up_to(self, day: dt.date) -> UsageColumns:
        """Rows with a service date on or before ``day``."""
        return self.select(self.service_day <= day.toordinal())

    @classmethod
    def concat(cls, parts: Sequence[UsageColumns]) -> UsageColumns:
        """Several files as one (several base years); a case id shared by two files is one
        case, as when their frames are concatenated."""
        if len(parts) == 1:
            return parts[0]

        def merged(code: str, values: str) -> tuple[np.ndarray, list[str]]:
            union: dict[str, int] = {}
            pieces = []
            for part in parts:
                vals = getattr(part, values)
                lookup = np.asarray([union.setdefault(v, len(union)) for v in vals], dtype=np.int64)
                pieces.append(
                    lookup[np.asarray(getattr(part, code), dtype=np.int64)]
                    if len(vals)
                    else np.zeros(0, dtype=np.int64)
                )
            return np.concatenate(pieces), list(union)

        sev_digits = max(p.severity_digits for p in parts)
        qty_digits = max(p.quantity_digits for p in parts)
        case_code, case_values = merged("case_code", "case_values")
        type_code, type_values = merged("case_type_code", "case_type_values")
        npi_code, npi_values = merged("npi_code", "npi_values")
        item_code, item_values = merged("item_code", "item_values")

        def joined(name: str, rescale: int | None = None) -> np.ndarray:
            arrays = []
            for part in parts:
                values = getattr(part, name)
                if rescale is not None:
                    own = part.severity_digits if name == "severity" else part.quantity_digits
                    values = values * 10 ** (rescale - own)
                arrays.append(values)
            return np.concatenate(arrays)

        return cls(
            case_code=case_code,
            case_values=case_values,
            case_type_code=type_code,
            case_type_values=type_values,
            npi_code=npi_code,
            npi_values=npi_values,
            item_code=item_code,
            item_values=item_values,
            service_day=joined("service_day"),
            federal=joined("federal"),
            opted_out=joined("opted_out"),
            has_notice=joined("has_notice"),
            severity=joined("severity", sev_digits),
            severity_digits=sev_digits,
            quantity=joined("quantity", qty_digits),
            quantity_digits=qty_digits,
            unit_cost=joined("unit_cost"),
        )


def _sorted_codes(codes: np.ndarray, values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Re-label dictionary codes so the used values are in sorted order (as ``_parse_uniques``
    gives them): the per-case "smallest code" then picks the same value on both paths."""
    codes = np.asarray(codes, dtype=np.int64)
    used: Sequence[int] = (
        np.flatnonzero(np.bincount(codes, minlength=len(values))).tolist() if codes.size else []
    )
    ordered = sorted(used, key=lambda i: values[i])
    remap = np.full(len(values), -1, dtype=np.int64)
    remap[np.asarray(ordered, dtype=np.int64)] = np.arange(len(ordered), dtype=np.int64)
    return remap[codes], [str(values[i]) for i in ordered]


def _parse_columns(usage: UsageColumns, *, label: str) -> _ParsedUsage | None:
    """The fast path: typed columns to the same integer arrays :func:`_parse_usage` gives."""
    if len(usage) == 0:
        return None
    arrays = (
        usage.case_type_code,
        usage.npi_code,
        usage.item_code,
        usage.service_day,
        usage.federal,
        usage.opted_out,
        usage.has_notice,
        usage.severity,
        usage.quantity,
        usage.unit_cost,
    )
    if any(len(a) != len(usage) for a in arrays):
        raise SavingsInputError(f"{label}: usage columns differ in length")
    # Case index order is internal: first appearance, as the text path.
    case_codes, _ = pd.factorize(np.asarray(usage.case_code, dtype=np.int64), sort=False)
    case_codes = np.asarray(case_codes, dtype=np.int64)
    n_cases = int(case_codes.max()) + 1
    by_case = _Groups(case_codes)
    type_codes, type_values = _sorted_codes(usage.case_type_code, usage.case_type_values)
    npi_codes, npi_values = _sorted_codes(usage.npi_code, usage.npi_values)
    item_codes, item_values = _sorted_codes(usage.item_code, usage.item_values)
    first_row = np.full(n_cases, -1, dtype=np.int64)
    first_row[case_codes[::-1]] = np.arange(len(case_codes) - 1, -1, -1)
    _check_case_rows(
        by_case,
        {
            "case_type": type_codes,
            "physician_npi": npi_codes,
            "federal_program": usage.federal,
            "notice_date": usage.has_notice,
            "opted_out": usage.opted_out,
        },
        lambda case: str(usage.case_values[int(usage.case_code[first_row[case]])]),
        label=label,
    )
    return _ParsedUsage(
        n_cases=n_cases,
        case_codes=case_codes,
        type_values=type_values,
        case_type_code=by_case.min(type_codes),
        npi_values=npi_values,
        case_npi_code=by_case.min(npi_codes),
        case_day=by_case.min(np.asarray(usage.service_day, dtype=np.int64)),
        case_federal=by_case.max(np.asarray(usage.federal, dtype=bool)),
        case_opted_out=by_case.max(np.asarray(usage.opted_out, dtype=bool)),
        case_has_notice=by_case.max(np.asarray(usage.has_notice, dtype=bool)),
        case_severity=by_case.max(np.asarray(usage.severity, dtype=np.int64)),
        severity_digits=usage.severity_digits,
        quantity=np.asarray(usage.quantity, dtype=np.int64),
        qty_digits=usage.quantity_digits,
        unit_cost=np.asarray(usage.unit_cost, dtype=np.int64),
        item_values=item_values,
        item_code=item_codes,
    )


def _parse_any(usage: pd.DataFrame | UsageColumns, *, label: str) -> _ParsedUsage | None:
    if isinstance(usage, UsageColumns):
        return _parse_columns(usage, label=label)
    return _parse_usage(usage, label=label)


def _parse_usage(usage: pd.DataFrame, *, label: str) -> _ParsedUsage | None:
    """Parse the canonical columns exactly; ``None`` for an empty frame.

    A case's fields are reduced from its rows deterministically (earliest date, any row opted
    out or federal, codes by sorted value) so the row order can never change a figure.
    """
    required = [c for c in USAGE_COLUMNS if c not in ("payer", "reviewed")]
    missing = [c for c in required if c not in usage.columns]
    if missing:
        raise SavingsInputError(f"{label}: usage lacks columns: {', '.join(missing)}")
    if len(usage) == 0:
        return None
    # Case index order is internal (every output is grouped by type, item or physician), so the
    # cheaper first-appearance order is fine here.
    case_codes, case_uniques = pd.factorize(usage["case_id"], sort=False, use_na_sentinel=True)
    case_codes = np.asarray(case_codes, dtype=np.int64)
    if (case_codes < 0).any():
        raise SavingsInputError(f"{label}: column case_id has missing values")
    n_cases = len(case_uniques)

    by_case = _Groups(case_codes)
    per_case_min = by_case.min
    per_case_max = by_case.max

    type_codes, type_values = _parse_uniques(usage["case_type"], str, "case_type", label)
    if (type_codes < 0).any():
        raise SavingsInputError(f"{label}: column case_type has missing values")
    case_type_code = per_case_min(type_codes)

    npi_codes, npi_values = _parse_uniques(
        usage["physician_npi"], lambda v: str(v).strip(), "physician_npi", label
    )
    if (npi_codes < 0).any():
        raise SavingsInputError(f"{label}: column physician_npi has missing values")
    case_npi_code = per_case_min(npi_codes)

    date_codes, date_values = _parse_uniques(
        usage["service_date"], _parse_date, "service_date", label
    )
    if (date_codes < 0).any():
        raise SavingsInputError(f"{label}: column service_date has missing values")
    case_day = per_case_min(np.asarray(date_values, dtype=np.int64)[date_codes])

    def bool_column(column: str, *, missing_as: bool | None) -> np.ndarray:
        codes, values = _parse_uniques(usage[column], _parse_bool, column, label)
        if (codes < 0).any() and missing_as is None:
            raise SavingsInputError(f"{label}: column {column} has missing values")
        lookup = np.asarray([*values, bool(missing_as)], dtype=bool)
        return lookup[codes]  # code -1 picks the trailing "missing" entry

    federal = bool_column("federal_program", missing_as=None)
    opted_out = bool_column("opted_out", missing_as=False)
    notice_codes, _ = _parse_uniques(usage["notice_date"], _parse_date, "notice_date", label)
    _check_case_rows(
        by_case,
        {
            "case_type": type_codes,
            "physician_npi": npi_codes,
            "federal_program": federal,
            "notice_date": notice_codes,
            "opted_out": opted_out,
        },
        lambda case: str(case_uniques[case]),
        label=label,
    )
    case_federal = per_case_max(federal)
    case_opted_out = per_case_max(opted_out)
    case_has_notice = per_case_max(notice_codes >= 0)
    severity, severity_digits = _scaled_column(
        usage["severity_weight"], "severity_weight", label, digits=None
    )
    case_severity = per_case_max(severity)

    # Rows: exact integer quantity and cost, line cost = qty * cost.
    quantity, qty_digits = _scaled_column(usage["quantity"], "quantity", label, digits=None)
    unit_cost, _ = _scaled_column(usage["unit_cost"], "unit_cost", label, digits=COST_SCALE_DIGITS)
    item_codes_raw, item_values = _parse_uniques(usage["item_code"], str, "item_code", label)
    if (item_codes_raw < 0).any():
        raise SavingsInputError(f"{label}: column item_code has missing values")
    return _ParsedUsage(
        n_cases=n_cases,
        case_codes=case_codes,
        type_values=type_values,
        case_type_code=case_type_code,
        npi_values=npi_values,
        case_npi_code=case_npi_code,
        case_day=case_day,
        case_federal=case_federal,
        case_opted_out=case_opted_out,
        case_has_notice=case_has_notice,
        case_severity=case_severity,
        severity_digits=severity_digits,
        quantity=quantity,
        qty_digits=qty_digits,
        unit_cost=unit_cost,
        item_values=item_values,
        item_code=item_codes_raw,
    )


def _aggregate_year(
    usage: pd.DataFrame | UsageColumns,
    *,
    label: str,
    case_types: frozenset[str],
    window_by_npi: Mapping[str, tuple[int, int]] | None,
) -> _YearAggregate:
    """Reduce a usage frame to the integer sums every figure of spec 4 is built from.

    Steps: (1) parse (see ``_parse_usage``); (2) eligibility per case (spec 4 step 1);
    (3) int64 group sums of quantity and line cost over eligible rows by (case type, item);
    (4) per-physician counts for the safeguards. ``window_by_npi`` maps a participant's NPI to
    its participation window (ordinals, inclusive); ``None`` for the base year, which stays as
    identified at signing.
    """
    parsed = _parse_any(usage, label=label)
    if parsed is None:
        return _YearAggregate(
            item_sums={},
            qty_digits=0,
            cost_digits=COST_SCALE_DIGITS,
            cases_of_type={},
            eligible={},
            federal_eligible={},
            opted_out={},
            before_joining={},
            post_termination={},
            outside_by_physician={},
            by_physician={},
            severity_digits=0,
            first_day=None,
            last_day=None,
            item_codes=frozenset(),
        )
    n_cases = parsed.n_cases
    case_codes = parsed.case_codes
    type_values = parsed.type_values
    case_type_code = parsed.case_type_code
    npi_values = parsed.npi_values
    case_npi_code = parsed.case_npi_code
    case_day = parsed.case_day
    case_federal = parsed.case_federal
    case_opted_out = parsed.case_opted_out
    case_has_notice = parsed.case_has_notice
    case_severity = parsed.case_severity
    severity_digits = parsed.severity_digits
    quantity = parsed.quantity
    qty_digits = parsed.qty_digits
    unit_cost = parsed.unit_cost
    item_values = parsed.item_values
    item_codes_raw = parsed.item_code

    # Spec 4 step 1 and the edge case "whose cases count": eligible = of an opportunity's case
    # type, not opted out, dated inside the physician's participation window (join date to
    # leave or termination date, inclusive). A physician not in the programme has no window
    # (their cases are flagged below).
    relevant_type = np.asarray([t in case_types for t in type_values], dtype=bool)
    case_relevant = relevant_type[case_type_code]
    windows = window_by_npi or {}
    open_window = (np.iinfo(np.int64).min, np.iinfo(np.int64).max)
    first_lookup = np.asarray([windows.get(n, open_window)[0] for n in npi_values], dtype=np.int64)
    last_lookup = np.asarray([windows.get(n, open_window)[1] for n in npi_values], dtype=np.int64)
    case_pre_join = case_day < first_lookup[case_npi_code]
    case_post_term = case_day > last_lookup[case_npi_code]
    case_outside = case_pre_join | case_post_term
    case_eligible = case_relevant & ~case_opted_out & ~case_outside

    def count_by_type(mask: np.ndarray) -> dict[str, int]:
        counts = np.bincount(case_type_code[mask], minlength=len(type_values))
        return {t: int(c) for t, c in zip(type_values, counts, strict=True) if c}

    row_eligible = case_eligible[case_codes]
    row_type = case_type_code[case_codes]
    qty_e = quantity[row_eligible]
    cost_e = unit_cost[row_eligible]
    max_qty = int(np.abs(qty_e).max()) if qty_e.size else 0
    max_cost = int(np.abs(cost_e).max()) if cost_e.size else 0
    if max_qty * max_cost >= _INT64_MAX:
        line = np.asarray(
            [int(q) * int(c) for q, c in zip(qty_e, cost_e, strict=True)], dtype=object
        )
    else:
        line = qty_e * cost_e
    n_items = len(item_values)
    group_key = row_type[row_eligible] * n_items + item_codes_raw[row_eligible]
    n_e = int(row_eligible.sum())
    qty_sums = _group_sum(group_key, qty_e, max_qty * n_e)
    cost_sums = _group_sum(group_key, line, max_qty * max_cost * n_e)
    item_sums = {
        (type_values[k // n_items], item_values[k % n_items]): (qty_sums[k], cost_sums[k])
        for k in qty_sums
    }
    all_pairs = np.unique(row_type * n_items + item_codes_raw)
    item_pairs = frozenset(
        (type_values[int(k) // n_items], item_values[int(k) % n_items]) for k in all_pairs
    )

    # Per physician, for the safeguards.
    n_npi = len(npi_values)
    elig_npi = case_npi_code[case_eligible]
    elig_counts = np.bincount(elig_npi, minlength=n_npi)
    fed_counts = np.bincount(case_npi_code[case_eligible & case_federal], minlength=n_npi)
    notice_scope = case_relevant & ~case_outside & ~case_has_notice
    no_notice = np.bincount(case_npi_code[notice_scope], minlength=n_npi)
    max_sev = int(np.abs(case_severity).max()) if n_cases else 0
    sev_sums = _group_sum(elig_npi, case_severity[case_eligible], max_sev * n_cases)
    by_physician = {
        npi: (int(elig_counts[i]), sev_sums.get(i, 0), int(fed_counts[i]), int(no_notice[i]))
        for i, npi in enumerate(npi_values)
        if elig_counts[i] or no_notice[i] or fed_counts[i]
    }

    in_scope = case_relevant & ~case_opted_out
    before = np.bincount(case_npi_code[in_scope & case_pre_join], minlength=n_npi)
    after = np.bincount(case_npi_code[in_scope & case_post_term], minlength=n_npi)
    outside_by_physician = {
        npi: (int(before[i]), int(after[i]))
        for i, npi in enumerate(npi_values)
        if before[i] or after[i]
    }

    return _YearAggregate(
        item_sums=item_sums,
        qty_digits=qty_digits,
        cost_digits=COST_SCALE_DIGITS,
        cases_of_type=count_by_type(np.ones(n_cases, dtype=bool)),
        eligible=count_by_type(case_eligible),
        federal_eligible=count_by_type(case_eligible & case_federal),
        opted_out=count_by_type(case_relevant & case_opted_out),
        before_joining=count_by_type(case_relevant & ~case_opted_out & case_pre_join),
        post_termination=count_by_type(case_relevant & ~case_opted_out & case_post_term),
        outside_by_physician=outside_by_physician,
        by_physician=by_physician,
        severity_digits=severity_digits,
        first_day=int(case_day.min()),
        last_day=int(case_day.max()),
        item_codes=item_pairs,
    )


# --------------------------------------------------------------------------------------------
# Per-opportunity figures (spec 4 steps 1-6, baseline reset)


def _prices_as_fractions(prices: Mapping[str, Any]) -> dict[str, Fraction]:
    out = {}
    for item, price in prices.items():
        try:
            out[str(item)] = Fraction(to_decimal(price))
        except (TypeError, ValueError) as exc:
            raise SavingsInputError(f"price of item {item}: {exc}") from exc
    return out


def _per_case_cost(
    agg: _YearAggregate, opp: Opportunity, *, prices: Mapping[str, Fraction] | None
) -> Fraction | None:
    """The opportunity's cost per eligible case of a year, exact.

    ``prices`` given: utilisation per case (quantity of each item / eligible cases) priced at
    those prices (spec 4 step 2, ``reprice_baseline``). ``None``: the recorded acquisition cost
    per case. ``None`` is returned when the year has no eligible case (undefined, not zero).
    """
    cases = sum(agg.eligible.get(t, 0) for t in opp.case_types)
    if cases == 0:
        return None
    total = Fraction(0)
    for case_type in opp.case_types:
        for item in opp.item_codes:
            if prices is None:
                total += agg.cost(case_type, item)
            else:
                qty = agg.quantity(case_type, item)
                if qty:
                    total += qty * prices[item]
    return total / cases


def _rate(value: Fraction | None) -> Decimal | None:
    return None if value is None else round_rational(value, places=RATE_PLACES)


def _opportunity_figures(
    *,
    opp: Opportunity,
    terms: SavingsTerms,
    year: int,
    base: _YearAggregate,
    prior: _YearAggregate | None,
    current: _YearAggregate,
    prices: Mapping[str, Fraction],
    year_label: str,
    base_label: str,
    prior_label: str,
) -> tuple[OpportunityResult, Fraction, Fraction, list[RuleNote]]:
    """Spec 4 steps 1-6 for one opportunity. Returns the result, the exact expected cost (of an
    opportunity that can earn; else 0), the savings counted towards gross (before the
    ``negative_opportunities`` policy), and the rule notes of the edge cases that applied."""
    flags: list[Flag] = []
    notes: list[RuleNote] = []
    earns = opp.earns_in(year)
    if not earns:
        flags.append(
            Flag(
                code="not_effective",
                subject=opp.key,
                message="not identified at signing and not yet effective by amendment;"
                " shown for information, not counted",
            )
        )
    # Step 1: eligible cases of the programme year.
    eligible = sum(current.eligible.get(t, 0) for t in opp.case_types)
    federal_eligible = sum(current.federal_eligible.get(t, 0) for t in opp.case_types)

    # Step 2 and baseline reset: both candidates priced the same way.
    pricing = prices if terms.reprice_baseline else None
    original_pc = _per_case_cost(base, opp, prices=pricing)
    original_base_cases = sum(base.eligible.get(t, 0) for t in opp.case_types)
    prior_pc = _per_case_cost(prior, opp, prices=pricing) if prior is not None else None
    if prior is not None:
        base_cases = sum(prior.eligible.get(t, 0) for t in opp.case_types)
        base_federal = sum(prior.federal_eligible.get(t, 0) for t in opp.case_types)
    else:
        base_cases = original_base_cases
        base_federal = sum(base.federal_eligible.get(t, 0) for t in opp.case_types)
    source: BaselineSource
    if original_pc is None:
        baseline_pc, source = None, "none"
    elif prior_pc is not None and prior_pc < original_pc:
        baseline_pc, source = prior_pc, "prior_year"
    else:
        baseline_pc, source = original_pc, "original"

    # Step 3: expected and actual cost (actual at recorded acquisition cost).
    actual = sum((current.cost(t, i) for t in opp.case_types for i in opp.item_codes), Fraction(0))
    actual_pc = actual / eligible if eligible else None
    expected = baseline_pc * eligible if baseline_pc is not None else Fraction(0)

    # Step 4: floor, effective actual per case = max(actual, min(floor, baseline)).
    floor = Fraction(to_decimal(opp.floor_per_case)) if opp.floor_per_case is not None else None
    effective_pc = actual_pc
    if actual_pc is not None and floor is not None and baseline_pc is not None:
        effective_pc = max(actual_pc, min(floor, baseline_pc))

    # Steps 5-6: raw savings, then the volume cap.
    raw = Fraction(0)
    volume_factor = Fraction(0)
    federal_factor: Fraction | None = None
    applied = Fraction(0)
    can_earn = True
    if eligible == 0:
        can_earn = False
        flags.append(
            Flag(
                code="no_eligible_cases",
                subject=opp.key,
                message="no eligible cases this year: savings are 0",
            )
        )
    if baseline_pc is None or base_cases == 0:
        # Edge case "no base-year case": never a zero baseline; the opportunity cannot earn.
        can_earn = False
        where = prior_label if prior is not None else base_label
        flags.append(
            Flag(
                code="no_base_cases",
                subject=opp.key,
                message=f"no eligible case in {where}: the opportunity cannot earn",
            )
        )
        notes.append(
            rule_note(
                "4.edge.no-base-case",
                opp.key,
                f"{opp.name}: no eligible case in {where}, cannot earn in {year_label}.",
            )
        )
    elif prior is not None and not terms.reprice_baseline:
        notes.append(
            rule_note(
                "4.edge.reset-without-repricing",
                opp.key,
                f"{opp.name}: baseline per case {_show(baseline_pc)} = the lower of the"
                f" original recorded cost per case ({_show(original_pc)}) and {prior_label}'s"
                f" actual cost per case ({_show(prior_pc)}), neither repriced.",
            )
        )
    if eligible and baseline_pc is not None and effective_pc is not None:
        raw = (baseline_pc - effective_pc) * eligible
        volume_factor = min(Fraction(1), Fraction(base_cases, eligible))
        if terms.volume_cap_scope == "federal_only":
            federal_share = Fraction(federal_eligible, eligible)
            if federal_eligible:
                federal_factor = min(Fraction(1), Fraction(base_federal, federal_eligible))
                if base_federal == 0:
                    flags.append(
                        Flag(
                            code="no_base_federal_cases",
                            subject=opp.key,
                            message="no base-year federal cases: the federal portion"
                            " of the savings earns nothing",
                        )
                    )
            else:
                federal_factor = Fraction(1)
            applied = federal_share * federal_factor + (1 - federal_share)
        else:
            applied = volume_factor
    if not can_earn:
        applied = Fraction(0)
    capped = round_rational(raw * applied)
    if volume_factor < 1 and can_earn:
        flags.append(
            Flag(
                code="volume_cap_applied",
                subject=opp.key,
                message=f"{eligible} eligible cases over {base_cases} base-year cases",
            )
        )
    counted = Fraction(capped) if earns else Fraction(0)
    pre_join = sum(current.before_joining.get(t, 0) for t in opp.case_types)
    post_term = sum(current.post_termination.get(t, 0) for t in opp.case_types)

    result = OpportunityResult(
        key=opp.key,
        name=opp.name,
        earns=earns,
        case_types=tuple(opp.case_types),
        item_codes=tuple(opp.item_codes),
        cases_of_type=sum(current.cases_of_type.get(t, 0) for t in opp.case_types),
        opted_out_cases=sum(current.opted_out.get(t, 0) for t in opp.case_types),
        before_joining_cases=pre_join,
        post_termination_cases=post_term,
        eligible_cases=eligible,
        federal_eligible_cases=federal_eligible,
        original_base_cases=original_base_cases,
        base_cases=base_cases,
        base_federal_cases=base_federal,
        original_baseline_per_case=_rate(original_pc),
        prior_year_per_case=_rate(prior_pc),
        baseline_source=source,
        baseline_per_case=_rate(baseline_pc),
        expected_cost=round_rational(expected),
        actual_cost=round_rational(actual),
        actual_per_case=_rate(actual_pc),
        floor_per_case=opp.floor_per_case,
        effective_actual_per_case=_rate(effective_pc),
        raw_savings=round_rational(raw),
        volume_factor=round_rational(volume_factor, places=RATE_PLACES),
        federal_volume_factor=_rate(federal_factor),
        applied_volume_factor=round_rational(applied, places=RATE_PLACES),
        capped_savings=capped,
        counted_savings=round_rational(counted),
        can_earn=can_earn,
        savings_target=opp.savings_target,
        flags=tuple(flags),
    )
    # Edge case "order of the split": the threshold's basis is the expected cost of the
    # opportunities that can earn that year.
    return result, (expected if earns and can_earn else Fraction(0)), counted, notes


def _show(value: Fraction | None) -> str:
    return "none" if value is None else f"{round_rational(value):,}"


def _check_prices(
    *,
    opportunities: Sequence[Opportunity],
    prices: Mapping[str, Fraction],
    years: Iterable[tuple[_YearAggregate, bool]],
) -> None:
    """A price missing for an item the year uses blocks the calculation: name every one."""
    missing: set[str] = set()
    for agg, needs_price in years:
        if not needs_price:
            continue
        for opp in opportunities:
            for case_type in opp.case_types:
                for item in opp.item_codes:
                    if (case_type, item) in agg.item_codes and item not in prices:
                        missing.add(item)
    if missing:
        raise SavingsInputError(
            "the price list has no price for item(s) used this year: " + ", ".join(sorted(missing))
        )


# --------------------------------------------------------------------------------------------
# Per physician: entitlement weight (spec 4 split step 5-6) and safeguards


def _participation(
    p: Participant, *, year_start: dt.date, year_end: dt.date, leaver_policy: LeaverPolicy
) -> tuple[Entitlement, int, int]:
    """(entitlement, days participated, days that count for the share)."""
    start = max(p.join_date, year_start)
    end = year_end
    if p.last_day is not None:
        end = min(end, p.last_day)
    days = max(0, (end - start).days + 1)
    if days == 0:
        return "not_participating", 0, 0
    if p.for_cause and p.termination_date is not None and p.termination_date <= year_end:
        return "forfeited_for_cause", days, 0
    if end < year_end:
        if leaver_policy == "forfeit":
            return "forfeited_leaver", days, 0
        return "pro_rata_leaver", days, days
    if start > year_start:
        return "pro_rata_joiner", days, days
    return "full", days, days


def _safeguards(
    *, npi: str, base: _YearAggregate, current: _YearAggregate, tolerance_pct: Decimal
) -> PhysicianSafeguards:
    b_cases, b_sev, b_fed, _ = base.by_physician.get(npi, (0, 0, 0, 0))
    c_cases, c_sev, c_fed, c_no_notice = current.by_physician.get(npi, (0, 0, 0, 0))
    b_avg = Fraction(b_sev, b_cases * 10**base.severity_digits) if b_cases else None
    c_avg = Fraction(c_sev, c_cases * 10**current.severity_digits) if c_cases else None
    change = None
    if b_avg and c_avg is not None:
        change = (c_avg - b_avg) / b_avg * 100
    severity_flag = change is not None and abs(change) > Fraction(to_decimal(tolerance_pct))
    return PhysicianSafeguards(
        base_cases=b_cases,
        current_cases=c_cases,
        base_average_severity=_rate(b_avg),
        current_average_severity=_rate(c_avg),
        severity_change_pct=None if change is None else round_rational(change),
        severity_flag=severity_flag,
        base_federal_cases=b_fed,
        current_federal_cases=c_fed,
        federal_rise_flag=c_fed > b_fed,
        cases_without_notice=c_no_notice,
        notice_flag=c_no_notice > 0,
    )


def _day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def _period_label(start: dt.date, end: dt.date) -> str:
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    return f"{_day(start)} - {_day(end)}"


def _entitlement_note(
    p: Participant,
    entitlement: Entitlement,
    days: int,
    year_days: int,
    policy: LeaverPolicy,
    year_start: dt.date,
) -> RuleNote | None:
    """Edge case "leavers and joiners" (and a forfeit for cause), in plain English."""
    subject = f"physician:{p.physician_id}"
    share = f"{days} of {year_days} days"
    if entitlement == "pro_rata_joiner":
        text = f"Dr {p.last_name}: joined {_day(p.join_date)}, {share}."
    elif entitlement == "pro_rata_leaver":
        joined = f"joined {_day(p.join_date)}, " if p.join_date > year_start else ""
        text = (
            f"Dr {p.last_name}: {joined}left {_day(p.last_day)}, {share}"  # type: ignore[arg-type]
            f" (leaver_policy {policy})."
        )
    elif entitlement == "forfeited_leaver":
        text = (
            f"Dr {p.last_name}: left {_day(p.last_day)}; no share under"  # type: ignore[arg-type]
            f" leaver_policy {policy} ({share} participated)."
        )
    elif entitlement == "forfeited_for_cause":
        text = (
            f"Dr {p.last_name}: terminated for cause on"
            f" {_day(p.termination_date)}; forfeits the year's share."  # type: ignore[arg-type]
        )
    else:
        return None
    return rule_note("4.edge.leavers-and-joiners", subject, text)


# --------------------------------------------------------------------------------------------
# The calculation


def savings_compute(
    *,
    terms: SavingsTerms,
    opportunities: Sequence[Opportunity],
    participants: Sequence[Participant],
    year_start: dt.date,
    year_end: dt.date,
    base_usage: pd.DataFrame | UsageColumns,
    current_usage: pd.DataFrame | UsageColumns,
    current_prices: Mapping[str, Any],
    prior_usage: pd.DataFrame | UsageColumns | None = None,
    fee_months: int | None = None,
    already_distributed: Decimal = ZERO,
    key_indicators: Sequence[KeyIndicatorOutcome] = (),
    year_label: str | None = None,
    base_year_label: str = "the base year",
    prior_year_label: str = "the prior programme year",
) -> SavingsResult:
    """Compute a programme year's shared savings and its split (spec section 4).

    ``base_usage`` is the original base year (before the agreement); ``prior_usage`` is year
    N-1's usage (``None`` in the first programme year) and drives the baseline reset and the
    volume cap's base-year cases. ``current_prices`` is year N's price file. ``fee_months``:
    months of administrator fee charged to the year (``None``: the spec's rule, see
    :func:`fee_month_count`; a projection passes the months elapsed). The labels name the
    periods in the rule notes. ``already_distributed``: paid to the
    practice in earlier years of the term. Raises :class:`SavingsInputError` on unusable input.
    """
    terms.validate()
    if year_end < year_start:
        raise SavingsInputError("the programme year ends before it starts")
    if fee_months is not None and fee_months < 0:
        raise SavingsInputError("fee_months must not be negative")
    already = to_decimal(already_distributed)
    if already < 0:
        raise SavingsInputError("already_distributed must not be negative")
    keys = [o.key for o in opportunities]
    if len(set(keys)) != len(keys):
        raise SavingsInputError("opportunity keys must be unique")
    ids = [p.physician_id for p in participants]
    if len(set(ids)) != len(ids):
        raise SavingsInputError("physician ids must be unique")

    case_types = frozenset(t for o in opportunities for t in o.case_types)
    windows: dict[str, tuple[int, int]] = {}
    for p in participants:
        if str(p.npi) in windows:
            raise SavingsInputError(f"physician NPI {p.npi} takes part twice")
        windows[str(p.npi)] = p.window()

    def aggregate(
        frame: pd.DataFrame | UsageColumns, label: str, *, window: bool
    ) -> _YearAggregate:
        return _aggregate_year(
            frame, label=label, case_types=case_types, window_by_npi=windows if window else None
        )

    # Edge case "whose cases count": the base year stays as identified at signing; year N-1 and
    # year N count a physician's cases only inside the participation window.
    base = aggregate(base_usage, "base year", window=False)
    prior = aggregate(prior_usage, "prior year", window=True) if prior_usage is not None else None
    current = aggregate(current_usage, "programme year", window=True)
    if (current.first_day is not None and current.first_day < year_start.toordinal()) or (
        current.last_day is not None and current.last_day > year_end.toordinal()
    ):
        raise SavingsInputError(
            f"programme-year usage has cases outside {year_start.isoformat()}"
            f"..{year_end.isoformat()}"
        )
    prices = _prices_as_fractions(current_prices)
    _check_prices(
        opportunities=opportunities,
        prices=prices,
        years=[(current, True), (base, terms.reprice_baseline)]
        + ([(prior, terms.reprice_baseline)] if prior is not None else []),
    )
    notes: list[RuleNote] = []
    year_label = year_label or _period_label(year_start, year_end)

    # Edge case "fee months": twelve fees for a year of twelve months whatever day it starts
    # on; a shorter year, one per started month.
    if fee_months is None:
        fee_months = fee_month_count(year_start, year_end)
        if year_start.day != 1 or fee_months != 12:
            notes.append(
                rule_note(
                    "4.edge.fee-months",
                    "agreement",
                    f"{year_label} runs {_day(year_start)} to {_day(year_end)}:"
                    f" {fee_months} monthly administrator fee(s)"
                    + (
                        ", one per started month (a short year)."
                        if fee_months < 12
                        else ", whatever day it starts on."
                    ),
                )
            )

    year = year_start.year
    opp_results: list[OpportunityResult] = []
    total_expected = Fraction(0)
    gross = Fraction(0)
    for opp in opportunities:
        result, expected, counted, opp_notes = _opportunity_figures(
            opp=opp,
            terms=terms,
            year=year,
            base=base,
            prior=prior,
            current=current,
            prices=prices,
            year_label=year_label,
            base_label=base_year_label,
            prior_label=prior_year_label,
        )
        opp_results.append(result)
        notes.extend(opp_notes)
        total_expected += expected
        # Spec 4 step 7: net the opportunities, or count only those that saved.
        gross += counted if terms.negative_opportunities == "net" else max(counted, Fraction(0))
    flags: list[Flag] = [f for r in opp_results for f in r.flags]

    # The split, steps 4 (threshold) and 1 (fees, net). Edge case "order of the split": the
    # threshold compares gross savings after the negative_opportunities policy with the
    # expected cost of the opportunities that can earn that year.
    threshold_amount: Decimal | None = None
    threshold_met = True
    if terms.min_savings_threshold_pct is not None:
        threshold = total_expected * Fraction(to_decimal(terms.min_savings_threshold_pct)) / 100
        threshold_amount = round_rational(threshold)
        threshold_met = gross >= threshold
        notes.append(
            rule_note(
                "4.edge.order-of-split",
                "agreement",
                f"Minimum-savings threshold: gross savings {round_rational(gross):,} (after"
                f" {terms.negative_opportunities}) {'meet' if threshold_met else 'fall below'}"
                f" {terms.min_savings_threshold_pct}% of the expected cost of the opportunities"
                f" that can earn ({round_rational(total_expected):,}), i.e. {threshold_amount:,}"
                + ("." if threshold_met else ": nothing is shared."),
            )
        )
        if not threshold_met:
            flags.append(
                Flag(
                    code="below_min_savings_threshold",
                    subject="agreement",
                    message=f"gross savings below {terms.min_savings_threshold_pct}%"
                    f" of expected cost ({threshold_amount}): nothing is shared",
                )
            )
    gross_d = round_rational(gross)
    fees = to_decimal(terms.admin_fee_monthly) * fee_months
    net = max(ZERO, gross_d - fees)
    shareable = net if threshold_met else ZERO

    # Edge case "order of the split": pool (rounded) -> quality gate -> cap -> per capita.
    # Step 2: the physician pool, half-up to cents (55,888.005 -> 55,888.01 in example A).
    pool = round_rational(
        Fraction(shareable) * Fraction(to_decimal(terms.physician_share_pct)) / 100
    )
    hospital_share = net - pool

    # Step 5: the quality gate (sliding: pool x share of key indicators met, half-up to cents).
    indicators = tuple(key_indicators)
    met = sum(1 for k in indicators if k.met)
    if not indicators:
        quality_factor = Fraction(1)
    elif terms.quality_gate == "all_or_nothing":
        quality_factor = Fraction(1 if met == len(indicators) else 0)
    else:
        quality_factor = Fraction(met, len(indicators))
    pool_after_gate = round_rational(Fraction(pool) * quality_factor)
    if quality_factor < 1:
        missed = ", ".join(k.key for k in indicators if not k.met)
        flags.append(
            Flag(
                code="quality_gate",
                subject="agreement",
                message=f"key indicators not met ({missed}): pool reduced to"
                f" {pool_after_gate} under {terms.quality_gate}",
            )
        )
        if terms.quality_gate == "sliding" and pool:
            notes.append(
                rule_note(
                    "4.edge.order-of-split",
                    "agreement",
                    f"Sliding quality gate: {met} of {len(indicators)} key indicators met;"
                    f" pool {pool:,} x {met}/{len(indicators)} = {pool_after_gate:,}"
                    " (rounded half-up to cents), before the distribution cap.",
                )
            )

    # Step 3: the distribution cap over the term; the excess stays with the hospital.
    cap = to_decimal(terms.distribution_cap)
    remaining = max(ZERO, cap - already)
    after_cap = min(pool_after_gate, remaining)
    if after_cap < pool_after_gate:
        flags.append(
            Flag(
                code="distribution_cap_binding",
                subject="agreement",
                message=f"pool {pool_after_gate} exceeds the cap headroom {remaining}",
            )
        )

    # Step 6: per capita, weighted by days participated; leftover cents by name order.
    physician_rows = []
    weights: list[int] = []
    year_days = (year_end - year_start).days + 1
    for p in participants:
        entitlement, days, counted_days = _participation(
            p, year_start=year_start, year_end=year_end, leaver_policy=terms.leaver_policy
        )
        physician_rows.append((p, entitlement, days))
        weights.append(counted_days)
        note = _entitlement_note(p, entitlement, days, year_days, terms.leaver_policy, year_start)
        if note is not None:
            notes.append(note)
        before, after = current.outside_by_physician.get(str(p.npi), (0, 0))
        if before or after:
            parts = []
            if before:
                parts.append(f"{before} case(s) before joining on {_day(p.join_date)}")
            if after and p.last_day is not None:
                how = "termination" if p.last_day == p.termination_date else "leaving"
                parts.append(f"{after} case(s) after {how} on {_day(p.last_day)}")
            notes.append(
                rule_note(
                    "4.edge.whose-cases",
                    f"physician:{p.physician_id}",
                    f"Dr {p.last_name}: {' and '.join(parts)} not eligible in {year_label}.",
                )
            )
    payable = after_cap
    withheld_no_entitled = ZERO
    if after_cap > 0 and sum(weights) == 0:
        # Edge case "nobody entitled": nothing is paid, the hospital keeps the pool, the cap is
        # not consumed, and a blocking compliance flag says why.
        why = (
            "all participants were terminated for cause or forfeited their share"
            if participants
            else "the programme has no participants"
        )
        flags.append(
            Flag(
                code="no_entitled_physicians",
                subject="agreement",
                message=f"no physician is entitled to a share ({why}): nothing is paid,"
                f" the hospital keeps {after_cap}, the distribution cap is not consumed",
                blocking=True,
            )
        )
        notes.append(
            rule_note(
                "4.edge.nobody-entitled",
                "agreement",
                f"No physician entitled ({why}): the pool of {after_cap:,} stays with the"
                " hospital and the distribution cap is not consumed.",
            )
        )
        withheld_no_entitled = after_cap
        payable = ZERO
    # Edge case "leftover cents": last name, first name, then NPI (never a database id).
    order = sorted(
        range(len(participants)),
        key=lambda i: (
            participants[i].last_name,
            participants[i].first_name,
            str(participants[i].npi),
        ),
    )
    # Only entitled physicians take part: a zero weight must not receive a leftover cent.
    entitled = [i for i in order if weights[i] > 0]
    position = {index: pos for pos, index in enumerate(sorted(entitled))}
    shares = allocate_in_order(
        payable, [weights[i] for i in sorted(entitled)], [position[i] for i in entitled]
    )
    amounts = [ZERO] * len(participants)
    for index, share in zip(sorted(entitled), shares, strict=True):
        amounts[index] = share
    total_weight = sum(weights)
    cent_takers = [
        i for i in entitled if amounts[i] != floor_money(payable * weights[i] / total_weight)
    ]
    if cent_takers:
        names = ", ".join(
            f"Dr {participants[i].last_name} (NPI {participants[i].npi})" for i in cent_takers
        )
        notes.append(
            rule_note(
                "4.edge.leftover-cents",
                "physicians",
                f"{len(cent_takers)} leftover cent(s) went one each to {names}, in order of last"
                " name, first name, then NPI.",
            )
        )
    physicians = []
    for (p, entitlement, days), weight, amount in zip(
        physician_rows, weights, amounts, strict=True
    ):
        guard = _safeguards(
            npi=str(p.npi), base=base, current=current, tolerance_pct=terms.severity_tolerance_pct
        )
        physicians.append(
            PhysicianResult(
                physician_id=p.physician_id,
                npi=str(p.npi),
                last_name=p.last_name,
                first_name=p.first_name,
                entitlement=entitlement,
                participation_days=days,
                year_days=year_days,
                weight=round_rational(Fraction(weight, year_days), places=RATE_PLACES),
                amount=amount,
                safeguards=guard,
            )
        )
        subject = f"physician:{p.physician_id}"
        if guard.severity_flag:
            flags.append(
                Flag(
                    code="severity_change",
                    subject=subject,
                    message=f"average case weight {guard.base_average_severity} ->"
                    f" {guard.current_average_severity}"
                    f" ({guard.severity_change_pct}%), beyond"
                    f" ±{terms.severity_tolerance_pct}%",
                )
            )
        if guard.federal_rise_flag:
            flags.append(
                Flag(
                    code="federal_case_rise",
                    subject=subject,
                    message=f"federal-payer cases {guard.base_federal_cases} ->"
                    f" {guard.current_federal_cases}",
                )
            )
        if guard.notice_flag:
            flags.append(
                Flag(
                    code="missing_patient_notice",
                    subject=subject,
                    message=f"{guard.cases_without_notice} case(s) without a patient notice record",
                )
            )
    known = {str(p.npi) for p in participants}
    strangers = sorted(n for n in current.by_physician if n not in known)
    if strangers:
        flags.append(
            Flag(
                code="cases_of_non_participants",
                subject="agreement",
                message="eligible cases of physicians not in the programme: "
                + ", ".join(strangers),
            )
        )

    return SavingsResult(
        rules_version=RULES_VERSION,
        year_start=year_start,
        year_end=year_end,
        terms=terms,
        first_programme_year=prior is None,
        opportunities=tuple(opp_results),
        total_expected_cost=round_rational(total_expected),
        gross_savings=gross_d,
        min_savings_threshold_amount=threshold_amount,
        min_savings_threshold_met=threshold_met,
        fee_months=fee_months,
        admin_fees=fees,
        net_savings=net,
        physician_pool=pool,
        hospital_share=hospital_share,
        key_indicators=indicators,
        key_indicators_met=met,
        quality_factor=round_rational(quality_factor, places=RATE_PLACES),
        pool_after_quality_gate=pool_after_gate,
        withheld_by_quality_gate=pool - pool_after_gate,
        distribution_cap=cap,
        already_distributed=already,
        cap_remaining_before=remaining,
        amount_paid=payable,
        withheld_by_cap=pool_after_gate - after_cap,
        withheld_no_entitled=withheld_no_entitled,
        cumulative_distributed=already + payable,
        cap_headroom=max(ZERO, cap - already - payable),
        hospital_keeps=net - payable,
        physicians=tuple(physicians),
        cases_without_notice=sum(v[3] for v in current.by_physician.values()),
        flags=tuple(flags),
        rule_notes=tuple(notes),
        fees_not_covered=max(ZERO, fees - gross_d),
    )


def distribution_cap_from_opportunities(*, opportunities: Sequence[Opportunity]) -> Decimal:
    """The cap of spec 4 split step 3: total savings identified at signing."""
    return sum((o.savings_target for o in opportunities if o.identified_at_signing), ZERO)


# --------------------------------------------------------------------------------------------
# Design phase: where are the savings? (opportunity analysis)


@dataclass(frozen=True, kw_only=True)
class CaseTypeCost:
    case_type: str
    cases: int
    total_cost: Decimal
    cost_per_case: Decimal


@dataclass(frozen=True, kw_only=True)
class ItemCost:
    case_type: str
    item_code: str
    cases_using: int
    quantity: Decimal
    total_cost: Decimal
    average_unit_cost: Decimal | None
    cost_per_case: Decimal


@dataclass(frozen=True, kw_only=True)
class PhysicianCost:
    case_type: str
    npi: str
    cases: int
    total_cost: Decimal
    cost_per_case: Decimal


@dataclass(frozen=True, kw_only=True)
class CaseTypeVariation:
    """Spread of physicians' cost per case, and what matching the median / P25 would save."""

    case_type: str
    physicians: int
    minimum: Decimal
    p25: Decimal
    median: Decimal
    p75: Decimal
    maximum: Decimal
    potential_savings_at_median: Decimal
    potential_savings_at_p25: Decimal


@dataclass(frozen=True, kw_only=True)
class OpportunityAnalysis:
    case_types: tuple[CaseTypeCost, ...]
    items: tuple[ItemCost, ...]
    physicians: tuple[PhysicianCost, ...]
    variation: tuple[CaseTypeVariation, ...]

    def to_dict(self) -> dict[str, Any]:
        return fields_jsonable(self)


def _percentile(sorted_values: Sequence[Fraction], fraction: Fraction) -> Fraction:
    """Linear interpolation between closest ranks (numpy's default, Hyndman-Fan type 7), exact."""
    position = (len(sorted_values) - 1) * fraction
    lower = int(position)
    if lower + 1 >= len(sorted_values):
        return sorted_values[lower]
    weight = position - lower
    return sorted_values[lower] + weight * (sorted_values[lower + 1] - sorted_values[lower])


def opportunity_analysis(
    *,
    usage: pd.DataFrame | UsageColumns,
    case_types: Sequence[str] | None = None,
    item_codes: Sequence[str] | None = None,
    exclude_opted_out: bool = False,
) -> OpportunityAnalysis:
    """Cost per case by case type, item and physician, for choosing opportunities at design.

    Costs are recorded acquisition costs of ``item_codes`` (all items when ``None``); a case with
    none of those items still counts as a case. Potential savings at a target (the median or the
    25th percentile of physicians' cost per case, exact linear interpolation) = the sum over
    physicians above the target of (their cost per case - target) x their cases; physicians below
    the target contribute nothing. Per-case figures are shown to cents, totals rounded half-up.
    """
    parsed = _parse_any(usage, label="analysis")
    if parsed is None:
        return OpportunityAnalysis(case_types=(), items=(), physicians=(), variation=())
    wanted_types = None if case_types is None else set(case_types)
    wanted_items = None if item_codes is None else set(item_codes)
    type_ok = np.asarray(
        [wanted_types is None or t in wanted_types for t in parsed.type_values], dtype=bool
    )
    case_in = type_ok[parsed.case_type_code]
    if exclude_opted_out:
        case_in &= ~parsed.case_opted_out
    item_ok = np.asarray(
        [wanted_items is None or i in wanted_items for i in parsed.item_values], dtype=bool
    )
    row_in = case_in[parsed.case_codes] & item_ok[parsed.item_code]
    cost_scale = 10 ** (parsed.qty_digits + COST_SCALE_DIGITS)

    qty = parsed.quantity[row_in]
    cost = parsed.unit_cost[row_in]
    max_qty = int(np.abs(qty).max()) if qty.size else 0
    max_cost = int(np.abs(cost).max()) if cost.size else 0
    if max_qty * max_cost >= _INT64_MAX:
        line = np.asarray([int(q) * int(c) for q, c in zip(qty, cost, strict=True)], dtype=object)
    else:
        line = qty * cost
    bound = max_qty * max_cost * int(row_in.sum())
    row_case = parsed.case_codes[row_in]
    row_type = parsed.case_type_code[row_case]
    n_types = len(parsed.type_values)
    n_items = len(parsed.item_values)
    n_npi = len(parsed.npi_values)

    # Cases per case type and per (case type, physician), from the case table.
    type_cases = np.bincount(parsed.case_type_code[case_in], minlength=n_types)
    phys_key_cases = parsed.case_type_code[case_in] * n_npi + parsed.case_npi_code[case_in]
    phys_cases = dict(zip(*np.unique(phys_key_cases, return_counts=True), strict=True))

    type_cost = _group_sum(row_type, line, bound)
    item_key = row_type * n_items + parsed.item_code[row_in]
    item_cost = _group_sum(item_key, line, bound)
    item_qty = _group_sum(item_key, qty, max_qty * int(row_in.sum()))
    item_cases = dict(
        zip(
            *np.unique(
                np.unique(item_key * parsed.n_cases + row_case) // parsed.n_cases,
                return_counts=True,
            ),
            strict=True,
        )
    )
    phys_cost = _group_sum(row_type * n_npi + parsed.case_npi_code[row_case], line, bound)

    type_rows = []
    for t, name in enumerate(parsed.type_values):
        if not type_cases[t]:
            continue
        total = Fraction(type_cost.get(t, 0), cost_scale)
        type_rows.append(
            CaseTypeCost(
                case_type=name,
                cases=int(type_cases[t]),
                total_cost=round_rational(total),
                cost_per_case=round_rational(total / int(type_cases[t])),
            )
        )
    item_rows = []
    for key in sorted(item_cost):
        t, i = divmod(key, n_items)
        total = Fraction(item_cost[key], cost_scale)
        quantity = Fraction(item_qty[key], 10**parsed.qty_digits)
        item_rows.append(
            ItemCost(
                case_type=parsed.type_values[t],
                item_code=parsed.item_values[i],
                cases_using=int(item_cases[key]),
                quantity=round_rational(quantity, places=4),
                total_cost=round_rational(total),
                average_unit_cost=round_rational(total / quantity, places=4) if quantity else None,
                cost_per_case=round_rational(total / int(type_cases[t])),
            )
        )
    phys_rows = []
    per_type: dict[int, list[tuple[Fraction, int]]] = {}
    for key in sorted(int(k) for k in phys_cases):
        t, n = divmod(key, n_npi)
        cases = int(phys_cases[key])
        total = Fraction(phys_cost.get(key, 0), cost_scale)
        per_type.setdefault(t, []).append((total / cases, cases))
        phys_rows.append(
            PhysicianCost(
                case_type=parsed.type_values[t],
                npi=parsed.npi_values[n],
                cases=cases,
                total_cost=round_rational(total),
                cost_per_case=round_rational(total / cases),
            )
        )
    variation = []
    for t, entries in sorted(per_type.items()):
        values = sorted(pc for pc, _ in entries)
        median = _percentile(values, Fraction(1, 2))
        p25 = _percentile(values, Fraction(1, 4))

        def potential(target: Fraction, entries: list[tuple[Fraction, int]] = entries) -> Decimal:
            return round_rational(
                sum(((pc - target) * n for pc, n in entries if pc > target), Fraction(0))
            )

        variation.append(
            CaseTypeVariation(
                case_type=parsed.type_values[t],
                physicians=len(values),
                minimum=round_rational(values[0]),
                p25=round_rational(p25),
                median=round_rational(median),
                p75=round_rational(_percentile(values, Fraction(3, 4))),
                maximum=round_rational(values[-1]),
                potential_savings_at_median=potential(median),
                potential_savings_at_p25=potential(p25),
            )
        )
    return OpportunityAnalysis(
        case_types=tuple(type_rows),
        items=tuple(item_rows),
        physicians=tuple(phys_rows),
        variation=tuple(variation),
    )
