"""The typed read model of a stored savings calculation (savings/read_models.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from comanage.core.read_models import StoredShapeError
from comanage.core.serialise import jsonable
from savings.read_models import OpportunityResult, PhysicianShare, SavingsResult
from tests.savings.test_engine import example_a  # noqa: F401 - the fixture

# Keys the engine added after calculations were first stored.
NEWER_KEYS = ("rule_notes", "fees_not_covered", "withheld_no_entitled")


def test_it_reads_every_stored_figure_back_exactly(example_a):  # noqa: F811
    stored = example_a.to_dict()
    read = SavingsResult.from_stored(stored)
    # Every field, nested rows included, turns back into the very JSON that was stored.
    assert jsonable(read) == stored
    assert read.gross_savings == example_a.gross_savings
    assert isinstance(read.gross_savings, Decimal)
    assert read.year_start == dt.date(2025, 1, 1)
    assert all(isinstance(o, OpportunityResult) for o in read.opportunities)
    assert all(isinstance(p, PhysicianShare) for p in read.physicians)
    assert read.opportunity("A").counted_savings == example_a.opportunity("A").counted_savings
    adams = read.physicians[0]
    assert read.physician(adams.physician_id) == adams
    assert adams.safeguards.base_cases == example_a.physicians[0].safeguards.base_cases


def test_an_older_stored_shape_reads_with_explicit_defaults(example_a):  # noqa: F811
    stored = example_a.to_dict()
    for key in NEWER_KEYS:
        stored.pop(key)
    for opportunity in stored["opportunities"]:
        opportunity.pop("before_joining_cases")
        opportunity.pop("can_earn")
    read = SavingsResult.from_stored(stored)
    assert read.rule_notes == ()
    assert read.fees_not_covered == Decimal("0")
    assert read.withheld_no_entitled == Decimal("0")
    assert {o.before_joining_cases for o in read.opportunities} == {0}
    assert {o.can_earn for o in read.opportunities} == {None}
    # The figures that were stored are read as stored.
    assert read.amount_paid == example_a.amount_paid
    assert read.physician_pool == example_a.physician_pool


def test_a_missing_figure_is_an_error_naming_it(example_a):  # noqa: F811
    stored = example_a.to_dict()
    del stored["gross_savings"]
    with pytest.raises(StoredShapeError, match="gross_savings"):
        SavingsResult.from_stored(stored)


def test_a_float_figure_is_refused(example_a):  # noqa: F811
    stored = example_a.to_dict()
    stored["gross_savings"] = 12.5
    with pytest.raises(StoredShapeError, match="float"):
        SavingsResult.from_stored(stored)


def test_physician_rows_say_the_entitlement_in_words(example_a):  # noqa: F811
    read = SavingsResult.from_stored(example_a.to_dict())
    labels = {p.entitlement: p.entitlement_label for p in read.physicians}
    assert labels["full"] == "Full year"
    assert all("_" not in label for label in labels.values())
