"""The typed read model of a stored calculation run (adjudication/read_models.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adjudication.read_models import RunRead, RunTotals
from comanage.core.read_models import StoredShapeError, stored_key


def test_co_management_totals_read_as_decimals_and_the_savings_ones_as_none():
    totals = RunTotals.from_stored(
        {
            "kind": "co_management",
            "incentive_pool": "400000.00",
            "incentive_earned": "271000.00",
            "fixed_fee_annual": "120000.00",
            "fixed_fee_payable": "110000.00",
            "fixed_fee_held": "10000.00",
            "total_compensation": "381000.00",
            "total_to_pay": "381000.00",
        }
    )
    assert totals.total_to_pay == Decimal("381000.00")
    assert totals.incentive_earned == Decimal("271000.00")
    # A run stored before the FMV headroom was recorded, and the shared-savings totals.
    assert totals.fmv_headroom is None
    assert totals.gross_savings is None


def test_a_run_without_figures_reads_empty_parts():
    read = RunRead(kind="co_management", results={"kind": "co_management"}, figures={})
    assert read.incentive is None
    assert read.savings is None
    assert read.fixed_fee_lines == ()
    assert read.flags == ()
    assert read.changes == ()


def test_fixed_fee_lines_read_months_as_dates():
    read = RunRead(
        kind="co_management",
        results={},
        figures={
            "fixed_fee": {
                "lines": [
                    {
                        "month": "2025-03-01",
                        "instalment": "10000.00",
                        "required_hours": "20",
                        "approved_hours": "12.5",
                        "status": "held",
                        "amount_payable": "0.00",
                    }
                ]
            }
        },
    )
    (line,) = read.fixed_fee_lines
    assert line.month.isoformat() == "2025-03-01"
    assert line.approved_hours == Decimal("12.5")
    assert line.note == ""


def test_a_stored_key_names_a_field_of_the_model():
    assert stored_key(RunTotals, "total_to_pay", column="results") == "results__total_to_pay"
    with pytest.raises(StoredShapeError):
        stored_key(RunTotals, "total_to_pai", column="results")
