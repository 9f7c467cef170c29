"""A usage file prepared once for every calculation that reads it, and a year's aggregate
built from it.

Parsing a file, checking that the rows of each case agree, reducing rows to cases and summing
quantities and line costs by (case type, item) depend on the file alone, not on the terms, the
opportunities, the participants or a what-if's overrides; yet every calculation did all of it
again over every row. :func:`usage_prepare` does that work once (the service keeps the result
per applied import, ``savings.columnar``) and :func:`_aggregate_year` builds a year's figures
from the prepared form with work proportional to cases and (case type, item) pairs, not rows:

* the cases, ordered by physician then date, with the fields eligibility needs;
* the rows of cases not opted out, in that case order, as (case type, item) keys with exact
  integer quantities and line costs, and their exact totals per key;
* a year's eligible sums are those totals for the opportunities' case types, less the rows of
  cases outside a participant's window: for each physician a run of cases at the start and at
  the end of their (date-ordered) cases, so only the rows of those cases are read.

A what-if on quantities multiplies each item's sums by its exact integer factor
(:meth:`PreparedUsage.quantities_scaled`): the sum of ``quantity x factor`` is ``factor`` times
the sum of the quantities, to the last digit, so no row is touched. Every path (text frames,
typed columns, prepared) goes through :func:`usage_prepare`, so they give one set of figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from comanage.core.money import to_decimal

from .inputs import _INT64_MAX, COST_SCALE_DIGITS, SavingsInputError
from .usage import UsageColumns, _group_sum, _parse_any, _ParsedUsage, _YearAggregate

# Bump when the prepared arrays change meaning: stored copies of another version are rebuilt.
PREPARED_VERSION = 1

_INT_ARRAYS = (
    "case_type",
    "case_npi",
    "case_day",
    "case_severity",
    "case_rows",
    "npi_cases",
    "row_key",
    "row_quantity",
    "row_cost",
    "total_key",
    "total_rows",
    "pair_key",
)
_BOOL_ARRAYS = ("case_federal", "case_opted_out", "case_has_notice")


@dataclass(frozen=True, eq=False, kw_only=True)
class PreparedUsage:
    """One usage file reduced to what :func:`_aggregate_year` reads (see the module text).

    Codes index the sorted ``*_values``; a row's key is ``case type x len(item_values) + item``.
    Amounts are exact integers: quantities at ``10**qty_digits``, line costs at
    ``10**(qty_digits + COST_SCALE_DIGITS)``, severities at ``10**severity_digits``.
    """

    rows: int  # every row of the file, opted-out cases included
    type_values: tuple[str, ...]
    npi_values: tuple[str, ...]
    item_values: tuple[str, ...]
    qty_digits: int
    severity_digits: int
    # One entry per case, ordered by (physician code, case day).
    case_type: np.ndarray
    case_npi: np.ndarray
    case_day: np.ndarray
    case_federal: np.ndarray
    case_opted_out: np.ndarray
    case_has_notice: np.ndarray
    case_severity: np.ndarray
    case_rows: np.ndarray  # offsets (cases + 1) into the row arrays
    npi_cases: np.ndarray  # offsets (physicians + 1) into the case arrays
    # The rows of cases not opted out, in case order.
    row_key: np.ndarray
    row_quantity: np.ndarray  # int64, or Python ints (object) beyond 64 bits
    row_cost: np.ndarray
    # Their totals per key (keys ascending); the sums as Python ints (exact at any size).
    total_key: np.ndarray
    total_quantity: tuple[int, ...]
    total_cost: tuple[int, ...]
    total_rows: np.ndarray
    # Every key with a row, opted-out cases included (which items the price list must price).
    pair_key: np.ndarray
    # A what-if's exact integer factor per item (``None``: as recorded).
    quantity_factor: tuple[int, ...] | None = None
    # Lookups derived once and shared by the what-if copies of this file.
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def cases(self) -> int:
        return int(self.case_day.size)

    @property
    def nbytes(self) -> int:
        """The memory its arrays take (what a process's cache counts)."""
        return sum(int(getattr(self, n).nbytes) for n in (*_INT_ARRAYS, *_BOOL_ARRAYS))

    @property
    def persistable(self) -> bool:
        """Whether every array is plain int64 (a file beyond 64 bits stays in memory only)."""
        return self.row_quantity.dtype != object and self.row_cost.dtype != object

    def _pair(self, key: int) -> tuple[str, str]:
        n_items = len(self.item_values)
        return self.type_values[key // n_items], self.item_values[key % n_items]

    def total_pairs(self) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] | None = self._memo.get("total_pairs")
        if found is None:
            found = self._memo["total_pairs"] = [self._pair(int(k)) for k in self.total_key]
        return found

    def item_pairs(self) -> frozenset[tuple[str, str]]:
        found: frozenset[tuple[str, str]] | None = self._memo.get("item_pairs")
        if found is None:
            found = self._memo["item_pairs"] = frozenset(self._pair(int(k)) for k in self.pair_key)
        return found

    def quantities_scaled(self, quantity_pct: Mapping[str, Any]) -> PreparedUsage:
        """A what-if: each item's quantities at ``pct`` percent, exactly. Every factor
        ``pct / 100`` is an integer at ``10**d``; all quantities move to ``qty_digits +
        max(d)`` (as the typed columns did, so the figures are the same to the last digit)."""
        factors: dict[str, tuple[int, int]] = {}
        for item, pct in quantity_pct.items():
            factor = to_decimal(str(pct)) / 100
            if factor < 0:
                raise SavingsInputError(f"quantity change for {item} must not go below 0%")
            _sign, figures, exponent = factor.as_tuple()
            if not isinstance(exponent, int):
                raise SavingsInputError(f"quantity change for {item} must be a number")
            integer = int("".join(map(str, figures)) or "0")
            factors[str(item)] = (integer * 10 ** max(exponent, 0), max(-exponent, 0))
        extra = max((d for _, d in factors.values()), default=0)
        current = self.quantity_factor or (1,) * len(self.item_values)
        scaled = []
        for position, value in enumerate(self.item_values):
            integer, digits = factors.get(value, (1, 0))
            scaled.append(current[position] * integer * 10 ** (extra - digits))
        return dataclasses.replace(
            self, quantity_factor=tuple(scaled), qty_digits=self.qty_digits + extra
        )

    # Storage (``savings.columnar``): named arrays and a small header, nothing pickled.

    def arrays(self) -> dict[str, np.ndarray]:
        out = {name: np.asarray(getattr(self, name), dtype=np.int64) for name in _INT_ARRAYS}
        out.update({name: getattr(self, name).astype(np.uint8) for name in _BOOL_ARRAYS})
        return out

    def header(self) -> dict[str, Any]:
        if self.quantity_factor is not None:
            raise ValueError("a what-if's copy is not stored")
        return {
            "version": PREPARED_VERSION,
            "rows": self.rows,
            "type_values": list(self.type_values),
            "npi_values": list(self.npi_values),
            "item_values": list(self.item_values),
            "qty_digits": self.qty_digits,
            "severity_digits": self.severity_digits,
            "total_quantity": [str(v) for v in self.total_quantity],
            "total_cost": [str(v) for v in self.total_cost],
        }

    @classmethod
    def from_stored(
        cls, header: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> PreparedUsage | None:
        """The inverse of :meth:`header` and :meth:`arrays`; ``None`` for another version or
        arrays that do not fit together."""
        if header.get("version") != PREPARED_VERSION:
            return None
        try:
            values: dict[str, Any] = {
                name: np.asarray(arrays[name], dtype=np.int64) for name in _INT_ARRAYS
            }
            values.update({name: np.asarray(arrays[name]).view(bool) for name in _BOOL_ARRAYS})
            prepared = cls(
                rows=int(header["rows"]),
                type_values=tuple(str(v) for v in header["type_values"]),
                npi_values=tuple(str(v) for v in header["npi_values"]),
                item_values=tuple(str(v) for v in header["item_values"]),
                qty_digits=int(header["qty_digits"]),
                severity_digits=int(header["severity_digits"]),
                total_quantity=tuple(int(v) for v in header["total_quantity"]),
                total_cost=tuple(int(v) for v in header["total_cost"]),
                **values,
            )
        except (KeyError, TypeError, ValueError):
            return None
        return prepared if prepared.consistent() else None

    def consistent(self) -> bool:
        """The arrays' lengths and offsets agree (a stored copy is checked before use)."""
        cases, rows, totals = self.cases, self.row_key.size, self.total_key.size
        keys = len(self.type_values) * len(self.item_values)

        def within(values: np.ndarray, limit: int) -> bool:
            return not values.size or (int(values.min()) >= 0 and int(values.max()) < limit)

        per_case = (
            self.case_type,
            self.case_npi,
            self.case_federal,
            self.case_opted_out,
            self.case_has_notice,
            self.case_severity,
        )
        return (
            all(a.size == cases for a in per_case)
            and self.case_rows.size == cases + 1
            and self.npi_cases.size == len(self.npi_values) + 1
            and int(self.case_rows[-1]) == rows
            and int(self.npi_cases[-1]) == cases
            and self.row_quantity.size == rows
            and self.row_cost.size == rows
            and len(self.total_quantity) == totals
            and len(self.total_cost) == totals
            and self.total_rows.size == totals
            and int(self.total_rows.sum()) == rows
            and rows <= self.rows
            and within(self.case_type, len(self.type_values))
            and within(self.case_npi, len(self.npi_values))
            and within(self.row_key, keys)
            and within(self.total_key, keys)
            and within(self.pair_key, keys)
            and bool((np.diff(self.case_rows) >= 0).all())
            and bool((np.diff(self.npi_cases) >= 0).all())
        )


def usage_prepare(
    usage: pd.DataFrame | UsageColumns | PreparedUsage, *, label: str
) -> PreparedUsage:
    """Parse and check a usage file once (raises :class:`SavingsInputError` naming ``label``)."""
    if isinstance(usage, PreparedUsage):
        return usage
    parsed = _parse_any(usage, label=label)
    if parsed is None:
        empty = np.zeros(0, dtype=np.int64)
        return PreparedUsage(
            rows=0,
            type_values=(),
            npi_values=(),
            item_values=(),
            qty_digits=0,
            severity_digits=0,
            case_type=empty,
            case_npi=empty,
            case_day=empty,
            case_federal=np.zeros(0, dtype=bool),
            case_opted_out=np.zeros(0, dtype=bool),
            case_has_notice=np.zeros(0, dtype=bool),
            case_severity=empty,
            case_rows=np.zeros(1, dtype=np.int64),
            npi_cases=np.zeros(1, dtype=np.int64),
            row_key=empty,
            row_quantity=empty,
            row_cost=empty,
            total_key=empty,
            total_quantity=(),
            total_cost=(),
            total_rows=empty,
            pair_key=empty,
        )
    return _prepared_from_parsed(parsed)


def _line_costs(quantity: np.ndarray, unit_cost: np.ndarray) -> np.ndarray:
    """quantity x unit cost per row, exact: int64 when no product can overflow, else ints."""
    max_qty = int(np.abs(quantity).max()) if quantity.size else 0
    max_cost = int(np.abs(unit_cost).max()) if unit_cost.size else 0
    if max_qty * max_cost >= _INT64_MAX:
        return np.asarray(
            [int(q) * int(c) for q, c in zip(quantity, unit_cost, strict=True)], dtype=object
        )
    return quantity * unit_cost


def _bound(values: np.ndarray) -> int:
    """An upper bound of any sum of ``values`` (chooses int64 or Python ints in sums)."""
    if not values.size:
        return 0
    return max(abs(int(values.max())), abs(int(values.min()))) * int(values.size)


def _key_sums(
    keys: np.ndarray, quantity: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, list[int], list[int], np.ndarray]:
    """Per distinct key (ascending): exact quantity and cost sums, and the number of rows."""
    distinct, counts = np.unique(keys, return_counts=True)
    qty = _group_sum(keys, quantity, _bound(quantity))
    line = _group_sum(keys, cost, _bound(cost))
    return (
        distinct.astype(np.int64),
        [qty[int(k)] for k in distinct],
        [line[int(k)] for k in distinct],
        counts.astype(np.int64),
    )


def _prepared_from_parsed(parsed: _ParsedUsage) -> PreparedUsage:
    n_items = len(parsed.item_values)
    n_cases = parsed.n_cases
    order = np.lexsort((parsed.case_day, parsed.case_npi_code))  # physician, then date
    rank = np.empty(n_cases, dtype=np.int64)
    rank[order] = np.arange(n_cases, dtype=np.int64)
    # A row's case type is its case's (the rows of a case agree; parsing checked it).
    row_key_all = parsed.case_type_code[parsed.case_codes] * n_items + parsed.item_code
    keep = ~parsed.case_opted_out[parsed.case_codes]
    row_case = rank[parsed.case_codes[keep]]
    row_order = np.argsort(row_case, kind="stable")
    row_key = row_key_all[keep][row_order]
    quantity = parsed.quantity[keep][row_order]
    cost = _line_costs(quantity, parsed.unit_cost[keep][row_order])
    case_rows = np.zeros(n_cases + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_case, minlength=n_cases), out=case_rows[1:])
    case_npi = parsed.case_npi_code[order]
    npi_cases = np.zeros(len(parsed.npi_values) + 1, dtype=np.int64)
    np.cumsum(np.bincount(case_npi, minlength=len(parsed.npi_values)), out=npi_cases[1:])
    total_key, total_quantity, total_cost, total_rows = _key_sums(row_key, quantity, cost)
    return PreparedUsage(
        rows=int(parsed.case_codes.size),
        type_values=tuple(parsed.type_values),
        npi_values=tuple(parsed.npi_values),
        item_values=tuple(parsed.item_values),
        qty_digits=parsed.qty_digits,
        severity_digits=parsed.severity_digits,
        case_type=parsed.case_type_code[order],
        case_npi=case_npi,
        case_day=parsed.case_day[order],
        case_federal=parsed.case_federal[order],
        case_opted_out=parsed.case_opted_out[order],
        case_has_notice=parsed.case_has_notice[order],
        case_severity=parsed.case_severity[order],
        case_rows=case_rows,
        npi_cases=npi_cases,
        row_key=row_key,
        row_quantity=quantity,
        row_cost=cost,
        total_key=total_key,
        total_quantity=tuple(total_quantity),
        total_cost=tuple(total_cost),
        total_rows=total_rows,
        pair_key=np.unique(row_key_all).astype(np.int64),
    )


# --------------------------------------------------------------------------------------------
# A year's aggregate from the prepared form


def _outside_rows(
    prepared: PreparedUsage, first_lookup: np.ndarray, last_lookup: np.ndarray
) -> np.ndarray:
    """The rows (of cases not opted out) dated outside their physician's window: per physician
    the cases before the first day and after the last, two runs of their date-ordered cases."""
    day, case_rows, npi_cases = prepared.case_day, prepared.case_rows, prepared.npi_cases
    runs: list[np.ndarray] = []
    for npi in range(len(prepared.npi_values)):
        lo, hi = int(npi_cases[npi]), int(npi_cases[npi + 1])
        if lo == hi:
            continue
        first, last = int(first_lookup[npi]), int(last_lookup[npi])
        if int(day[lo]) >= first and int(day[hi - 1]) <= last:
            continue
        before = lo + int(np.searchsorted(day[lo:hi], first, side="left"))
        after = lo + int(np.searchsorted(day[lo:hi], last, side="right"))
        if after <= before:  # an empty window: every case is outside it
            runs.append(np.arange(case_rows[lo], case_rows[hi], dtype=np.int64))
            continue
        runs.append(np.arange(case_rows[lo], case_rows[before], dtype=np.int64))
        runs.append(np.arange(case_rows[after], case_rows[hi], dtype=np.int64))
    return np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)


def _item_sums(
    prepared: PreparedUsage,
    relevant_type: np.ndarray,
    first_lookup: np.ndarray,
    last_lookup: np.ndarray,
) -> dict[tuple[str, str], tuple[int, int]]:
    """(case type, item) -> exact (quantity, line cost) sums over the eligible rows: the
    totals of the relevant case types less the rows of cases outside a window."""
    n_items = len(prepared.item_values)
    outside = _outside_rows(prepared, first_lookup, last_lookup)
    removed: dict[int, tuple[int, int, int]] = {}
    if outside.size:
        keys = prepared.row_key[outside]
        relevant = relevant_type[keys // n_items]
        keys = keys[relevant]
        if keys.size:
            found = _key_sums(
                keys,
                prepared.row_quantity[outside][relevant],
                prepared.row_cost[outside][relevant],
            )
            removed = {int(k): (q, c, int(n)) for k, q, c, n in zip(*found, strict=True)}
    factor = prepared.quantity_factor
    pairs = prepared.total_pairs()
    total_key = prepared.total_key
    wanted = np.flatnonzero(relevant_type[total_key // n_items]).tolist()
    sums: dict[tuple[str, str], tuple[int, int]] = {}
    total_quantity, total_cost, total_rows = (
        prepared.total_quantity,
        prepared.total_cost,
        prepared.total_rows,
    )
    for index in wanted:
        qty, cost = total_quantity[index], total_cost[index]
        key = int(total_key[index])
        less = removed.get(key)
        if less is not None:
            if int(total_rows[index]) == less[2]:
                continue  # no eligible row is left for this key
            qty, cost = qty - less[0], cost - less[1]
        if factor is not None:
            scale = factor[key % n_items]
            qty, cost = qty * scale, cost * scale
        sums[pairs[index]] = (qty, cost)
    return sums


def _empty_aggregate() -> _YearAggregate:
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


def _aggregate_year(
    usage: pd.DataFrame | UsageColumns | PreparedUsage,
    *,
    label: str,
    case_types: frozenset[str],
    window_by_npi: Mapping[str, tuple[int, int]] | None,
) -> _YearAggregate:
    """Reduce a usage file to the integer sums every figure of spec 4 is built from.

    Steps: (1) prepare (parse, check, reduce to cases; see :func:`usage_prepare`);
    (2) eligibility per case (spec 4 step 1); (3) exact sums of quantity and line cost over
    eligible rows by (case type, item); (4) per-physician counts for the safeguards.
    ``window_by_npi`` maps a participant's NPI to its participation window (ordinals,
    inclusive); ``None`` for the base year, which stays as identified at signing.
    """
    prepared = usage_prepare(usage, label=label)
    if prepared.cases == 0:
        return _empty_aggregate()
    type_values = prepared.type_values
    npi_values = prepared.npi_values
    case_type_code = prepared.case_type
    case_npi_code = prepared.case_npi
    case_day = prepared.case_day
    case_federal = prepared.case_federal
    case_opted_out = prepared.case_opted_out
    case_severity = prepared.case_severity
    n_cases = prepared.cases

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

    item_sums = _item_sums(prepared, relevant_type, first_lookup, last_lookup)

    # Per physician, for the safeguards.
    n_npi = len(npi_values)
    elig_npi = case_npi_code[case_eligible]
    elig_counts = np.bincount(elig_npi, minlength=n_npi)
    fed_counts = np.bincount(case_npi_code[case_eligible & case_federal], minlength=n_npi)
    notice_scope = case_relevant & ~case_outside & ~prepared.case_has_notice
    no_notice = np.bincount(case_npi_code[notice_scope], minlength=n_npi)
    max_sev = int(np.abs(case_severity).max())
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
        qty_digits=prepared.qty_digits,
        cost_digits=COST_SCALE_DIGITS,
        cases_of_type=count_by_type(np.ones(n_cases, dtype=bool)),
        eligible=count_by_type(case_eligible),
        federal_eligible=count_by_type(case_eligible & case_federal),
        opted_out=count_by_type(case_relevant & case_opted_out),
        before_joining=count_by_type(case_relevant & ~case_opted_out & case_pre_join),
        post_termination=count_by_type(case_relevant & ~case_opted_out & case_post_term),
        outside_by_physician=outside_by_physician,
        by_physician=by_physician,
        severity_digits=prepared.severity_digits,
        first_day=int(case_day.min()),
        last_day=int(case_day.max()),
        item_codes=prepared.item_pairs(),
    )
