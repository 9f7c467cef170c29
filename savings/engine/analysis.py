"""The design phase: where are the savings? (opportunity analysis over a base year's usage)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from comanage.core.money import round_rational
from comanage.core.serialise import fields_jsonable

from .inputs import _INT64_MAX, COST_SCALE_DIGITS
from .usage import UsageColumns, _group_sum, _parse_any

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
