"""A stored value as a person reads it (comanage/core/display.py and its template filters)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.template import Context, Template

from agreements.models import AgreementTerms, ComplianceFlag
from comanage.core import display

terms = AgreementTerms._meta


def test_labels_are_words_not_field_names():
    assert display.field_label(terms.get_field("physician_share_pct")) == "Physicians' share (%)"
    assert display.field_label(terms.get_field("severity_tolerance_pct")) == (
        "Severity tolerance (%)"
    )
    assert display.field_label(terms.get_field("annual_fixed_fee")) == "Annual fixed fee"


def test_values_are_formatted_money_percentages_choices_and_yes_no():
    value = display.field_value
    assert value(terms.get_field("annual_fixed_fee"), Decimal("400000.00")) == "$400,000.00"
    assert value(terms.get_field("physician_share_pct"), Decimal("50.0000")) == "50.00%"
    assert value(terms.get_field("reprice_baseline"), True) == "Yes"
    assert value(terms.get_field("min_savings_threshold_pct"), None) == "—"
    assert value(terms.get_field("tier_mode"), "step") == "Step"
    # A code stored without choices reads as words.
    assert value(ComplianceFlag._meta.get_field("kind"), "logs_missing") == "Logs missing"


def test_one_date_style_for_dates_datetimes_and_iso_strings():
    assert display.format_date(dt.date(2025, 1, 1)) == "Jan 1, 2025"
    assert display.format_date("2025-12-31") == "Dec 31, 2025"
    # 02:30 UTC on Dec 2 is the evening of Dec 1 in New York (the installation's zone).
    assert display.format_date(dt.datetime(2026, 12, 2, 2, 30, tzinfo=dt.UTC)) == (
        "Dec 1, 2026 9:30 PM"
    )
    assert display.format_month("2025-03-01") == "March 2025"


def test_template_filters_format_figures_and_refuse_floats():
    out = Template(
        "{{ a|number }} {{ b|fraction_pct }} {{ c|pct }} {{ d|day }} {{ e|plain }}"
    ).render(
        Context(
            {
                "a": Decimal("8500.0000"),
                "b": Decimal("0.879121"),
                "c": Decimal("25.0000"),
                "d": "2024-01-01",
                "e": "all_or_nothing",
            }
        )
    )
    assert out == "8,500.00 87.91% 25.00% Jan 1, 2024 All or nothing"
    import pytest

    from comanage.core.money import FloatMoneyError

    with pytest.raises(FloatMoneyError):
        Template("{{ x|number }}").render(Context({"x": 1.5}))
