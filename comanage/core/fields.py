"""Typed decimal model fields, one per kind of figure: money, percent, hours, measure, cost.

A model says what a column holds (``amount = money_field()``) instead of splatting a dict of
digits into ``models.DecimalField(**MONEY)``, and mypy (with django-stubs) sees a ``DecimalField``
that reads a ``Decimal``, or ``Decimal | None`` with ``null=True``: the helper's overloads do
what the django-stubs plugin does for a ``DecimalField(...)`` written out in the class body.
The options a decimal column of this project takes are typed too, so a misspelt one is a
mypy error rather than a ``TypeError`` at import.

Migrations record the field's own arguments (``max_digits``, ``decimal_places``, validators,
...), never these helpers: changing a kind's digits here is a schema change that
``makemigrations`` picks up like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, NamedTuple, TypedDict, Unpack, overload

from django.db import models

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.db.models.expressions import Combinable

    # What django-stubs makes of ``models.DecimalField(...)`` in a model body (without and
    # with ``null=True``): what may be assigned, and what is read.
    DecimalColumn: TypeAlias = models.DecimalField[str | float | Decimal | Combinable, Decimal]
    NullableDecimalColumn: TypeAlias = models.DecimalField[
        str | float | Decimal | Combinable | None, Decimal | None
    ]

__all__ = [
    "COST",
    "HOURS",
    "MEASURE",
    "MONEY",
    "PERCENT",
    "DecimalKind",
    "Digits",
    "DecimalOptions",
    "cost_field",
    "hours_field",
    "measure_field",
    "money_field",
    "percent_field",
]


class Digits(NamedTuple):
    """A decimal column's size: digits in all, and of them after the point."""

    max_digits: int
    decimal_places: int


# Amounts of money: dollars and cents up to 999,999,999,999.99 (rounded by core.money).
MONEY: Final = Digits(14, 2)
# Percentages and shares (physician share, weights, payouts, tolerances): 0.0001 %.
PERCENT: Final = Digits(7, 4)
# Hours of management duties (time sheets, FMV fixed hours, duty requirements).
HOURS: Final = Digits(7, 2)
# An indicator's figures: thresholds, baselines, numerators, denominators, results, benchmarks.
MEASURE: Final = Digits(14, 4)
# A cost file's quantities and unit costs, at the 4 places the savings engine computes with.
COST: Final = Digits(16, 4)


class DecimalOptions(TypedDict, total=False):
    """The options a decimal column takes here besides its digits and ``null``."""

    blank: bool
    default: Decimal | Callable[[], Decimal]
    validators: Sequence[Callable[[Any], None]]
    help_text: str
    editable: bool
    db_index: bool
    unique: bool


class DecimalKind:
    """A kind of decimal column: called like a field class, it returns a ``DecimalField`` of
    its digits (``money_field("maximum incentive", null=True, blank=True)``)."""

    def __init__(self, name: str, digits: Digits) -> None:
        self.name = name
        self.digits = digits

    def __repr__(self) -> str:
        return f"<{self.name} {self.digits.max_digits},{self.digits.decimal_places}>"

    @overload
    def __call__(
        self,
        verbose_name: str | None = None,
        *,
        null: Literal[False] = False,
        **options: Unpack[DecimalOptions],
    ) -> DecimalColumn: ...

    @overload
    def __call__(
        self,
        verbose_name: str | None = None,
        *,
        null: Literal[True],
        **options: Unpack[DecimalOptions],
    ) -> NullableDecimalColumn: ...

    def __call__(
        self,
        verbose_name: str | None = None,
        *,
        null: bool = False,
        **options: Unpack[DecimalOptions],
    ) -> DecimalColumn | NullableDecimalColumn:
        return models.DecimalField(
            verbose_name,
            max_digits=self.digits.max_digits,
            decimal_places=self.digits.decimal_places,
            null=null,
            **options,
        )


money_field: Final = DecimalKind("money_field", MONEY)
percent_field: Final = DecimalKind("percent_field", PERCENT)
hours_field: Final = DecimalKind("hours_field", HOURS)
measure_field: Final = DecimalKind("measure_field", MEASURE)
cost_field: Final = DecimalKind("cost_field", COST)
