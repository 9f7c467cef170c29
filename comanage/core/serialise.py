"""The one place figures become JSON: Decimals as strings (never floats), dates ISO, dataclasses
as dicts, tuples as lists, sets sorted. Pure (no Django), so the calculation engines use it, and
``canonical_json`` gives the same bytes for the same data, which the calculation hash relies on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from comanage.core.money import round_places

_PLAIN = frozenset({str, int, bool})


def fields_jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass's own fields, converted: for its ``to_dict()`` (which ``jsonable`` calls for
    nested values, so ``to_dict`` itself must not call ``jsonable(self)``)."""
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def jsonable(value: Any) -> Any:
    """Convert ``value`` for JSON; a float or an unknown type is an error, never a guess."""
    if value is None or type(value) in _PLAIN:  # the bulk of any result: answered first
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if hasattr(value, "to_dict"):
            return jsonable(value.to_dict())
        return fields_jsonable(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, float):
        raise TypeError(f"refusing float {value!r}: figures are Decimals")
    if isinstance(value, bool | int | str) or value is None:
        return value
    raise TypeError(f"cannot serialise {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, Decimals as strings: the same data, the same bytes."""
    return json.dumps(jsonable(value), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------------------------------
# Number formats of every JSON the API returns (one rule; ``api_numbers``).
#
# Money is a string with two decimals ("400000.00", "0.00"); a percentage is a string with four
# decimals ("75.0000", "87.5000", "0.0000"), the precision percentages are stored at. Which
# values are money or percentages is said by the key, as an integrator reads them: ``*_pct`` /
# ``*percent*`` are percentages; ``amount``, ``total``, ``*_savings``, ``*_fee`` ... are money
# (``MONEY_KEY``). Per-case costs and unit prices are rates, not amounts: they keep their
# precision. Stored figures (and the calculation hash over them) are untouched; only what the
# API sends is formatted.

MONEY_PLACES = 2
PERCENT_PLACES = 4
PERCENT_KEY = re.compile(r"(^|_)pct($|_)|percent(?!ile)", re.IGNORECASE)
MONEY_KEY = re.compile(
    r"^(amount|total|earned|unearned|instalment|pool|fee|fees|savings|payable|paid"
    r"|distribution_cap|cap_headroom|cap_remaining_before|hospital_keeps|hospital_share"
    r"|already_distributed|cumulative_distributed|savings_target|paid_before|outstanding"
    r"|due|payments_total|admin_fee_monthly)$"
    r"|^(amount|total|paid|withheld|pool)_"
    r"|_(amount|total|earned|unearned|instalment|pool|fee|fees|savings|payable|paid|cap"
    r"|compensation)$",
    re.IGNORECASE,
)


def _fixed(value: Any, places: int) -> Any:
    """``value`` as a string with ``places`` decimals (half-up), when it is a number written
    as a string or a Decimal; anything else (None, text, ints, floats) as it is."""
    if isinstance(value, bool) or not isinstance(value, str | Decimal):
        return value
    try:
        number = Decimal(value)
    except ArithmeticError:
        return value
    if not number.is_finite():
        return value
    return str(round_places(number, places))


def money_text(value: Any) -> str | None:
    """Money for JSON: ``Decimal("5")`` -> ``"5.00"``; None stays None."""
    return (
        None
        if value is None
        else _fixed(value if isinstance(value, str) else Decimal(value), MONEY_PLACES)
    )


def percent_text(value: Any) -> str | None:
    """A percentage for JSON: ``"87.500000000000"`` -> ``"87.5000"``; None stays None."""
    return (
        None
        if value is None
        else _fixed(value if isinstance(value, str) else Decimal(value), PERCENT_PLACES)
    )


def number_kind(key: str) -> str | None:
    """``"percent"``, ``"money"`` or None, from a JSON key."""
    if PERCENT_KEY.search(key):
        return "percent"
    if MONEY_KEY.search(key):
        return "money"
    return None


def api_numbers(value: Any, key: str = "") -> Any:
    """``value`` with every money and percentage value formatted by the one rule, walking
    dicts and lists (a list's items take the key of the list)."""
    if isinstance(value, Mapping):
        return {k: api_numbers(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [api_numbers(v, key) for v in value]
    kind = number_kind(key) if key else None
    if kind == "percent":
        return _fixed(value, PERCENT_PLACES)
    if kind == "money":
        return _fixed(value, MONEY_PLACES)
    return value
