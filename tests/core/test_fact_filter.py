"""A stored fact (a flag's data) as a person reads it: labels in words, figures without
trailing decimals or ten-place ratios, yes/no for booleans; floats refused like money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from comanage.core.money import FloatMoneyError
from comanage.core.templatetags.money import fact, fact_label


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("10.0000", "10"),
        ("2.0000000000", "2"),
        (Decimal("0.1549"), "0.15"),
        (1200, "1,200"),
        (True, "yes"),
        (False, "no"),
        (None, "—"),
        ("Dr Clark", "Dr Clark"),
        ("federal_case_rise", "Federal case rise"),
    ],
)
def test_a_fact_reads_as_a_person_writes_it(value, shown):
    assert fact(value) == shown


def test_a_fact_key_reads_as_words():
    assert fact_label("severity_change_pct") == "Severity change (%)"
    assert fact_label("base_federal_cases") == "Base federal cases"


def test_a_float_fact_is_refused():
    with pytest.raises(FloatMoneyError):
        fact(0.1)
