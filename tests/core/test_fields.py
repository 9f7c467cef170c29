"""The typed decimal field helpers (``comanage/core/fields.py``): each kind gives the digits the
columns always had, passes its options through, and the models use them instead of splats."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from comanage.core.fields import (
    cost_field,
    hours_field,
    measure_field,
    money_field,
    percent_field,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kind", "max_digits", "decimal_places"),
    [
        (money_field, 14, 2),
        (percent_field, 7, 4),
        (hours_field, 7, 2),
        (measure_field, 14, 4),
        (cost_field, 16, 4),
    ],
)
def test_each_kind_has_its_digits(kind, max_digits, decimal_places):
    field = kind()
    assert isinstance(field, models.DecimalField)
    assert (field.max_digits, field.decimal_places) == (max_digits, decimal_places)
    assert field.null is False
    assert field.verbose_name is None


def test_options_reach_the_field_and_its_deconstruction():
    field = money_field(
        "maximum incentive",
        null=True,
        blank=True,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Per programme year.",
    )
    _, path, args, kwargs = field.deconstruct()
    # What a migration records: the field's own arguments, not the helper.
    assert path == "django.db.models.DecimalField"
    assert args == []
    assert kwargs == {
        "verbose_name": "maximum incentive",
        "max_digits": 14,
        "decimal_places": 2,
        "null": True,
        "blank": True,
        "default": Decimal("0"),
        "validators": [MinValueValidator(Decimal("0"))],
        "help_text": "Per programme year.",
    }
    with pytest.raises(ValidationError):
        field.clean(Decimal("-1"), None)


def test_a_value_beyond_the_kind_is_refused():
    with pytest.raises(ValidationError):
        money_field().clean(Decimal("0.001"), None)
    with pytest.raises(ValidationError):
        percent_field().clean(Decimal("1000"), None)
    assert hours_field().clean(Decimal("12.50"), None) == Decimal("12.50")


def test_the_models_use_the_helpers_not_digit_splats():
    splat = re.compile(r"DecimalField\(\s*(\"[^\"]*\",\s*)?\*\*")
    model_files = [p for p in ROOT.glob("**/models.py") if ".venv" not in p.parts]
    assert ROOT / "agreements" / "models.py" in model_files
    offenders = [str(p.relative_to(ROOT)) for p in model_files if splat.search(p.read_text())]
    assert not offenders


@pytest.mark.parametrize(
    ("model", "field", "digits", "null"),
    [
        ("agreements.AgreementTerms", "annual_fixed_fee", (14, 2), True),
        ("agreements.AgreementTerms", "physician_share_pct", (7, 4), False),
        ("agreements.TimeEntry", "hours", (7, 2), False),
        ("indicators.IndicatorDefinition", "baseline_value", (14, 4), True),
        ("savings.UsageRow", "unit_cost", (16, 4), False),
        ("adjudication.PaymentLine", "paid_amount", (14, 2), True),
    ],
)
def test_model_columns_keep_their_digits(model, field, digits, null):
    column = apps.get_model(model)._meta.get_field(field)
    assert (column.max_digits, column.decimal_places) == digits
    assert column.null is null
