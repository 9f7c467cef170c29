"""The one place that rounds money.

Every monetary figure in Comanage is a ``decimal.Decimal``. Rounding happens only at the points
the spec names (``../shared/spec/domain.md``), always through these helpers:

* ``round_money``: half-up to cents (Python's default half-even moves a cent in example A).
* ``floor_money``: floor to cents, for instalments and allocations whose leftover is handed out.
* ``allocate_largest_remainder``: split a total in proportion to weights so the parts sum to it
  exactly; leftover cents go to the largest remainders, ties by position.
* ``allocate_in_order``: the same floor, but leftover cents go one each in a fixed order
  (the per-capita rule of spec section 4).
* ``monthly_instalments``: annual / 12 floored, the last month carries the remainder (example C).
* ``round_rational``: half-up rounding of an exact ``Fraction`` (engines that carry exact
  rationals through a chain of divisions round them here, never via float or a short context).
* ``round_places``: half-up to any number of places (rates, weights, compact labels).
* ``round_percentage``: a percentage half-up to two places for showing (92.305 -> 92.31),
  the same in tables, charts and PDFs.

Nothing else in the application calls ``.quantize(`` or ``round(``: a test
(``tests/core/test_rounding_in_one_place.py``) fails if anything does.

Floats are refused everywhere: a float near money is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class FloatMoneyError(TypeError):
    """Raised when a float reaches a money helper."""


def to_decimal(value: object) -> Decimal:
    """Convert ``value`` to Decimal exactly, refusing floats and garbage."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an amount")
    if isinstance(value, float):
        raise FloatMoneyError(f"refusing float {value!r} as money; pass a Decimal or a string")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip().replace(",", ""))
        except InvalidOperation as exc:
            raise ValueError(f"{value!r} is not a decimal amount") from exc
        if not result.is_finite():
            raise ValueError(f"{value!r} is not a finite amount")
        return result
    raise TypeError(f"cannot use {type(value).__name__} as money")


def round_money(value: object) -> Decimal:
    """Round half-up to cents."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def floor_money(value: object) -> Decimal:
    """Round down (towards minus infinity) to cents."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_FLOOR)


def round_places(value: object, places: int) -> Decimal:
    """Round half-up to ``places`` decimals (a rate, a weight, a label); never half-even."""
    if places < 0:
        raise ValueError("places must not be negative")
    return to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def round_percentage(value: object, places: int = 2) -> Decimal:
    """A percentage for showing, half-up to two decimals (spec 2: "shown to two decimals").

    Comparisons with cut-points use the unrounded score; this is for display only."""
    return round_places(value, places)


def _check_allocation_args(total: Decimal, weights: Sequence[Decimal]) -> Decimal:
    if total != total.quantize(CENT):
        raise ValueError(f"total {total} has fractions of a cent")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights, Decimal(0))
    if weights and weight_sum == 0 and total != 0:
        raise ValueError("cannot allocate a non-zero total over zero weights")
    return weight_sum


def _floored_shares(total: Decimal, weights: Sequence[Decimal], weight_sum: Decimal):
    """Floor each exact share to cents (towards zero in magnitude, so negatives work too)."""
    sign = Decimal(-1) if total < 0 else Decimal(1)
    magnitude = abs(total)
    exact = [magnitude * w / weight_sum for w in weights]
    floored = [floor_money(e) for e in exact]
    leftover_cents = int((magnitude - sum(floored, Decimal(0))) / CENT)
    return sign, exact, floored, leftover_cents


def allocate_largest_remainder(total: object, weights: Sequence[object]) -> list[Decimal]:
    """Split ``total`` (whole cents) in proportion to ``weights``; parts sum exactly to total.

    Each part is floored to cents; the leftover cents go one each to the parts with the largest
    remainders, ties broken by position (spec section 2: ties go in indicator order).
    """
    total_d = to_decimal(total)
    weights_d = [to_decimal(w) for w in weights]
    weight_sum = _check_allocation_args(total_d, weights_d)
    if not weights_d:
        if total_d != 0:
            raise ValueError("cannot allocate a non-zero total over no parts")
        return []
    if weight_sum == 0:
        return [ZERO for _ in weights_d]
    sign, exact, floored, leftover = _floored_shares(total_d, weights_d, weight_sum)
    order = sorted(range(len(weights_d)), key=lambda i: (-(exact[i] - floored[i]), i))
    for i in order[:leftover]:
        floored[i] += CENT
    return [sign * part for part in floored]


def allocate_in_order(
    total: object, weights: Sequence[object], order: Sequence[int] | None = None
) -> list[Decimal]:
    """Split ``total`` by ``weights``; floor each part, leftover cents one each in ``order``.

    ``order`` lists part indexes in the fixed order the leftover cents follow (spec section 4:
    physician last name, first name, id). Defaults to positional order.
    """
    total_d = to_decimal(total)
    weights_d = [to_decimal(w) for w in weights]
    weight_sum = _check_allocation_args(total_d, weights_d)
    if not weights_d:
        if total_d != 0:
            raise ValueError("cannot allocate a non-zero total over no parts")
        return []
    if weight_sum == 0:
        return [ZERO for _ in weights_d]
    sign, _exact, floored, leftover = _floored_shares(total_d, weights_d, weight_sum)
    sequence = list(order) if order is not None else list(range(len(weights_d)))
    if sorted(sequence) != list(range(len(weights_d))):
        raise ValueError("order must be a permutation of the part indexes")
    # The leftover is always fewer cents than there are parts.
    for i in sequence[:leftover]:
        floored[i] += CENT
    return [sign * part for part in floored]


def monthly_instalments(annual: object, months: int = 12) -> list[Decimal]:
    """Annual fee / months floored to cents; the last month carries the remainder (example C)."""
    annual_d = to_decimal(annual)
    if annual_d != annual_d.quantize(CENT):
        raise ValueError(f"annual fee {annual_d} has fractions of a cent")
    if months < 1:
        raise ValueError("at least one month")
    regular = floor_money(annual_d / months)
    return [regular] * (months - 1) + [annual_d - regular * (months - 1)]


def format_money(value: object, *, symbol: str = "$") -> str:
    """US format: $1,234.56, negatives as -$1,234.56."""
    amount = round_money(value)
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


def round_rational(value: Fraction | Decimal | int, *, places: int = 2) -> Decimal:
    """Round an exact rational half-up (ties away from zero, as ``round_money``) to ``places``.

    Exact for every input: 1/3 of a cent and a true half cent (e.g. 55,888.005) are decided
    on the rational value itself, so no intermediate decimal context can move a cent.
    ``places=2`` gives money; more places are for showing rates and per-case figures.
    """
    if isinstance(value, bool) or not isinstance(value, Fraction | Decimal | int):
        raise TypeError(f"cannot round {type(value).__name__} exactly; pass a Fraction or Decimal")
    if places < 0:
        raise ValueError("places must not be negative")
    exact = Fraction(value)
    scaled = abs(exact) * 10**places
    units, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        units += 1
    sign = -1 if exact < 0 else 1
    return Decimal(sign * units).scaleb(-places)
