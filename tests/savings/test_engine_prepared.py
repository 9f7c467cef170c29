"""The prepared form of a usage file (``savings.engine.prepared``) against a row-by-row count.

A year's aggregate is built from cases ordered by physician and date, totals per (case type,
item) and the rows of cases outside a window subtracted; here every figure is recounted from
the rows in plain Python with Decimals, for random files with several rows per case (on
different days), opted-out cases, physicians outside the programme, and windows that are open,
start or end inside the year, or are empty. Also: the stored form reads back to the same
aggregate, and a quantity what-if on the sums equals scaling every row.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from fractions import Fraction

import pandas as pd
import pytest

from savings.engine import PreparedUsage, SavingsInputError, usage_prepare
from savings.engine.prepared import _aggregate_year

D = Decimal
START = dt.date(2025, 1, 1)
TYPES = ("CATH", "PCI", "EP")
ITEMS = ("A1", "A2", "B1", "B2", "C1")
NPIS = ("N1", "N2", "N3", "N4")


def _random_file(rng: random.Random) -> pd.DataFrame:
    rows = []
    for case in range(rng.randint(0, 40)):
        day = rng.randint(0, 364)
        fields = {
            "case_id": f"C{case}",
            "case_type": rng.choice(TYPES),
            "physician_npi": rng.choice(NPIS),
            "payer": "medicare",
            "federal_program": rng.choice(["true", "false"]),
            "notice_date": rng.choice(["", "2025-01-01"]),
            "reviewed": "true",
            "opted_out": "true" if rng.random() < 0.15 else "false",
        }
        for _ in range(rng.randint(1, 4)):
            row_day = min(364, day + rng.choice([0, 0, 0, 1, 5]))
            rows.append(
                {
                    **fields,
                    "service_date": (START + dt.timedelta(days=row_day)).isoformat(),
                    "item_code": rng.choice(ITEMS),
                    "quantity": rng.choice(["0", "1", "2", "3", "0.5", "1.25"]),
                    "unit_cost": f"{rng.randint(1, 99999) / 100:.2f}",
                    "severity_weight": rng.choice(["1.5", "2.0", "2.25"]),
                }
            )
    rng.shuffle(rows)
    columns = [
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
    ]
    return pd.DataFrame(rows, columns=columns, dtype=str)


def _random_windows(rng: random.Random) -> dict[str, tuple[int, int]]:
    windows = {}
    for npi in NPIS[:-1]:  # the last physician is not in the programme
        kind = rng.choice(["open", "joins", "leaves", "both", "empty"])
        first, last = -(2**62), 2**62
        if kind in ("joins", "both"):
            first = (START + dt.timedelta(days=rng.randint(0, 364))).toordinal()
        if kind in ("leaves", "both"):
            last = (START + dt.timedelta(days=rng.randint(0, 364))).toordinal()
        if kind == "empty":
            first = (START + dt.timedelta(days=200)).toordinal()
            last = first - rng.randint(1, 150)
        windows[npi] = (first, last)
    return windows


def _by_hand(frame: pd.DataFrame, case_types, windows, factor=None):
    """Every figure recounted from the rows: (sums, eligible per type, outside per npi)."""
    cases: dict[str, list[dict]] = {}
    for row in frame.to_dict("records"):
        cases.setdefault(row["case_id"], []).append(row)
    sums: dict[tuple[str, str], list[Fraction]] = {}
    eligible: dict[str, int] = {}
    outside: dict[str, tuple[int, int]] = {}
    severity: dict[str, tuple[int, Fraction]] = {}
    for rows in cases.values():
        first = rows[0]
        day = min(dt.date.fromisoformat(r["service_date"]).toordinal() for r in rows)
        start, end = (windows or {}).get(first["physician_npi"], (-(2**62), 2**62))
        relevant = first["case_type"] in case_types
        opted_out = first["opted_out"] == "true"
        if relevant and not opted_out and (day < start or day > end):
            before, after = outside.get(first["physician_npi"], (0, 0))
            outside[first["physician_npi"]] = (before + (day < start), after + (day > end))
        if not relevant or opted_out or day < start or day > end:
            continue
        eligible[first["case_type"]] = eligible.get(first["case_type"], 0) + 1
        npi = first["physician_npi"]
        count, total = severity.get(npi, (0, Fraction(0)))
        severity[npi] = (count + 1, total + max(Fraction(D(r["severity_weight"])) for r in rows))
        for r in rows:
            qty = Fraction(D(r["quantity"])) * Fraction((factor or {}).get(r["item_code"], 1))
            entry = sums.setdefault((first["case_type"], r["item_code"]), [Fraction(0)] * 2)
            entry[0] += qty
            entry[1] += qty * Fraction(D(r["unit_cost"]))
    return sums, eligible, outside, severity


@pytest.mark.parametrize("seed", range(60))
def test_a_years_aggregate_is_the_rows_counted_by_hand(seed):
    rng = random.Random(seed)
    frame = _random_file(rng)
    case_types = frozenset(rng.sample(TYPES, rng.randint(1, 3)))
    windows = None if seed % 5 == 0 else _random_windows(rng)
    prepared = usage_prepare(frame, label="programme year")
    stored = PreparedUsage.from_stored(prepared.header(), prepared.arrays())
    assert stored is not None
    factor = {"A1": D("0.9"), "B2": D("1.125"), "C1": D("0")} if seed % 3 == 0 else None

    sums, eligible, outside, severity = _by_hand(frame, case_types, windows, factor)
    for usage in (prepared, stored):
        if factor:
            usage = usage.quantities_scaled({k: v * 100 for k, v in factor.items()})
        agg = _aggregate_year(
            usage, label="programme year", case_types=case_types, window_by_npi=windows
        )
        assert set(agg.item_sums) == set(sums)
        for (case_type, item), (qty, cost) in sums.items():
            assert agg.quantity(case_type, item) == qty
            assert agg.cost(case_type, item) == cost
        assert agg.eligible == eligible
        assert agg.outside_by_physician == {k: v for k, v in outside.items() if any(v)}
        counted = {
            npi: (cases, Fraction(sev, 10**agg.severity_digits))
            for npi, (cases, sev, _federal, _no_notice) in agg.by_physician.items()
            if cases
        }
        assert counted == severity


def test_the_stored_form_refuses_arrays_that_do_not_fit():
    prepared = usage_prepare(_random_file(random.Random(7)), label="programme year")
    assert prepared.cases
    header, arrays = prepared.header(), prepared.arrays()
    assert PreparedUsage.from_stored({**header, "version": -1}, arrays) is None
    assert PreparedUsage.from_stored(header, {**arrays, "row_key": arrays["row_key"][:-1]}) is None
    wrong = arrays["case_npi"].copy()
    wrong[0] = len(prepared.npi_values)
    assert PreparedUsage.from_stored(header, {**arrays, "case_npi": wrong}) is None
    assert PreparedUsage.from_stored({**header, "total_cost": []}, arrays) is None


def test_one_case_many_rows_is_checked_when_the_file_is_prepared():
    frame = _random_file(random.Random(3))
    first = frame["case_id"] == frame["case_id"].iloc[0]
    frame.loc[first.idxmax(), "physician_npi"] = "N9"
    if first.sum() == 1:
        frame = pd.concat([frame, frame[first].assign(physician_npi="N1")])
    with pytest.raises(SavingsInputError, match="rows of a case disagree"):
        usage_prepare(frame, label="programme year")


def test_a_negative_quantity_what_if_is_refused():
    prepared = usage_prepare(_random_file(random.Random(5)), label="programme year")
    with pytest.raises(SavingsInputError, match="below 0%"):
        prepared.quantities_scaled({"A1": "-1"})
