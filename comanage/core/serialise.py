"""The one place figures become JSON: Decimals as strings (never floats), dates ISO, dataclasses
as dicts, tuples as lists, sets sorted. Pure (no Django), so the calculation engines use it, and
``canonical_json`` gives the same bytes for the same data, which the calculation hash relies on.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def fields_jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass's own fields, converted: for its ``to_dict()`` (which ``jsonable`` calls for
    nested values, so ``to_dict`` itself must not call ``jsonable(self)``)."""
    return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def jsonable(value: Any) -> Any:
    """Convert ``value`` for JSON; a float or an unknown type is an error, never a guess."""
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
