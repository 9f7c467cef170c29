"""Reading usage files and aggregating a year's usage per opportunity: parse once per distinct
value, then integers only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import IO, Any

import numpy as np
import pandas as pd

from comanage.core.money import to_decimal

from .inputs import _INT64_MAX, COST_SCALE_DIGITS, USAGE_COLUMNS, SavingsInputError

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

    def cost_total(self, case_types: Iterable[str], items: Iterable[str]) -> Fraction:
        """The sum of :meth:`cost` over every (case type, item) pair, exact: the scaled
        integers are added first and divided once (a what-if recomputes this for every
        opportunity, and a Fraction per item was most of the engine's time)."""
        get = self.item_sums.get
        items = tuple(items)
        total = 0
        for case_type in case_types:
            for item in items:
                entry = get((case_type, item))
                if entry is not None:
                    total += int(entry[1])
        return Fraction(total, 10 ** (self.qty_digits + self.cost_digits))

    def priced_total(
        self, case_types: Iterable[str], items: Iterable[str], prices: Mapping[str, Fraction]
    ) -> Fraction:
        """The sum of :meth:`quantity` x ``prices[item]`` over every pair with a quantity,
        exact: integer numerators are added per price denominator, then divided once."""
        get = self.item_sums.get
        items = tuple(items)
        by_denominator: dict[int, int] = {}
        for case_type in case_types:
            for item in items:
                entry = get((case_type, item))
                if entry is None or not entry[0]:
                    continue
                price = prices[item]
                denominator = price.denominator
                by_denominator[denominator] = (
                    by_denominator.get(denominator, 0) + int(entry[0]) * price.numerator
                )
        total = sum((Fraction(n, d) for d, n in by_denominator.items()), Fraction(0))
        return total / 10**self.qty_digits


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
