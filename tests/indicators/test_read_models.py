"""The typed read model of a stored incentive (indicators/read_models.py)."""

from __future__ import annotations

from decimal import Decimal

from comanage.core.serialise import jsonable
from indicators.read_models import IncentiveRead
from tests.indicators.test_scoring import compute


def test_it_reads_every_stored_figure_of_the_incentive_back_exactly():
    result = compute("redistribute")
    stored = jsonable(result)
    read = IncentiveRead.from_stored(stored)
    assert jsonable(read) == stored
    assert read.earned_total == result.earned_total
    vte = read.outcome("vte")
    assert vte is not None and isinstance(vte.score, Decimal)
    assert vte.status_label == "Scored"
    assert read.outcome("readmit").status_label == "Too few cases to score"
    assert read.payout_rate == result.weighted_payout_sum * 100 / result.payout_divisor


def test_an_older_stored_incentive_lacking_the_projection_keys_reads_as_none_recorded():
    stored = jsonable(compute("zero"))
    for key in ("is_projection", "as_of", "notes"):
        stored.pop(key)
    for indicator in stored["indicators"]:
        indicator.pop("policy_applied")
        indicator.pop("note")
    read = IncentiveRead.from_stored(stored)
    assert (read.is_projection, read.as_of, read.notes) == (False, None, ())
    assert {i.policy_applied for i in read.indicators} == {None}
    assert {i.note for i in read.indicators} == {""}
    assert read.earned_total == compute("zero").earned_total
