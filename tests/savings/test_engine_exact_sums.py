"""The engine's per-opportunity sums (``_YearAggregate.cost_total`` / ``priced_total``) add
scaled integers and divide once; they must equal, exactly, the per-item Fraction sums they
replaced (a what-if's figures may not move by a cent, nor by a digit of a rate)."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction
from types import SimpleNamespace

import pytest

from savings.engine.usage import _YearAggregate

TYPES = ["CT0", "CT1", "CT2"]
ITEMS = [f"I{i}" for i in range(40)]


def _aggregate(seed: int, *, qty_digits: int, cost_digits: int) -> SimpleNamespace:
    rng = random.Random(seed)
    sums: dict[tuple[str, str], tuple[int, int]] = {}
    for case_type in TYPES:
        for item in ITEMS:
            if rng.random() < 0.3:
                continue  # no row of this pair
            quantity = 0 if rng.random() < 0.1 else rng.randint(-(10**6), 10**9)
            # Sums beyond int64 come from object arrays: exact Python ints.
            cost = quantity * rng.randint(1, 10**6) * (10**12 if rng.random() < 0.1 else 1)
            sums[(case_type, item)] = (quantity, cost)
    return SimpleNamespace(item_sums=sums, qty_digits=qty_digits, cost_digits=cost_digits)


def _per_item_cost(agg, case_types, items) -> Fraction:
    return sum((_YearAggregate.cost(agg, t, i) for t in case_types for i in items), Fraction(0))


def _per_item_priced(agg, case_types, items, prices) -> Fraction:
    total = Fraction(0)
    for case_type in case_types:
        for item in items:
            quantity = _YearAggregate.quantity(agg, case_type, item)
            if quantity:
                total += quantity * prices[item]
    return total


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(("qty_digits", "cost_digits"), [(0, 0), (4, 4), (2, 6)])
def test_sums_equal_the_per_item_fractions(seed, qty_digits, cost_digits):
    agg = _aggregate(seed, qty_digits=qty_digits, cost_digits=cost_digits)
    rng = random.Random(seed + 100)
    # Prices as the engine reads them (exact decimals), with some non-decimal fractions too.
    prices = {
        item: Fraction(Decimal(f"{rng.randint(0, 99999)}.{rng.randint(0, 9999):04d}"))
        if rng.random() < 0.8
        else Fraction(rng.randint(1, 1000), rng.choice([3, 7, 12]))
        for item in ITEMS
    }
    for case_types in (TYPES, TYPES[:1], ["CT9"], []):
        items = rng.sample(ITEMS, 25)
        expected_cost = _per_item_cost(agg, case_types, items)
        expected_priced = _per_item_priced(agg, case_types, items, prices)
        assert _YearAggregate.cost_total(agg, case_types, iter(items)) == expected_cost
        assert _YearAggregate.priced_total(agg, case_types, items, prices) == expected_priced
    # The sums are not trivially zero.
    assert _YearAggregate.cost_total(agg, TYPES, ITEMS) != 0


def test_a_missing_price_of_an_item_with_a_quantity_is_still_an_error():
    agg = SimpleNamespace(
        item_sums={("CT0", "A"): (3, 30), ("CT0", "B"): (0, 0)}, qty_digits=0, cost_digits=0
    )
    # B has no quantity: its price is not needed, as before.
    assert _YearAggregate.priced_total(agg, ["CT0"], ["B"], {}) == 0
    with pytest.raises(KeyError):
        _YearAggregate.priced_total(agg, ["CT0"], ["A", "B"], {"B": Fraction(1)})
