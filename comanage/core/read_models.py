"""Typed read models: stored JSON figures read back as frozen dataclasses.

The engines' results are stored as canonical JSON (Decimals as strings, dates ISO, tuples as
lists: ``comanage/core/serialise.py``). Pages, PDFs and selectors read them through a read model
(``savings/read_models.py``, ``indicators/read_models.py``, ``adjudication/read_models.py``)
so that a figure is an attribute with a type (``calculation.read.gross_savings`` is a
``Decimal``), never a string key into a dict.

``ReadModel.from_stored`` converts each field by its annotation: ``Decimal`` from its string,
``date`` from ISO, ``tuple[Row, ...]`` into typed rows, ``X | None`` keeping ``None``. Stored
shapes written before a field existed lack its key: such a field declares its default (``None``
or an explicit zero), and the model reads the older shape with that default. A key the model
does not know is ignored (a newer shape read by older code). A required key that is missing
is an error naming the model and the key, never a silent blank.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Self, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class StoredShapeError(ValueError):
    """A stored figure that cannot be read as its model says (a missing key, a bad value)."""


class ReadModel:
    """Base of the read models (frozen dataclasses): ``from_stored`` parses the stored JSON."""

    @classmethod
    def from_stored(cls, data: Mapping[str, Any] | None) -> Self:
        return _read(cls, data or {})


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(model: type) -> dict[str, Any]:
    if model not in _HINTS:
        _HINTS[model] = get_type_hints(model)
    return _HINTS[model]


def _read(model: type[T], data: Any) -> T:
    if not isinstance(data, Mapping):
        raise StoredShapeError(f"{model.__name__}: expected an object, got {type(data).__name__}")
    hints = _hints(model)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(model):  # type: ignore[arg-type]
        if field.name in data:
            try:
                values[field.name] = _convert(hints[field.name], data[field.name])
            except (StoredShapeError, InvalidOperation, ValueError, TypeError) as exc:
                raise StoredShapeError(f"{model.__name__}.{field.name}: {exc}") from exc
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise StoredShapeError(f"{model.__name__}: the stored figures lack {field.name!r}")
    return model(**values)


def _convert(hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = (a for a in get_args(hint) if a is not type(None))
        return _convert(inner, value)
    if origin is tuple:
        inner = get_args(hint)[0]
        return tuple(_convert(inner, v) for v in value or ())
    if origin is dict:
        inner = get_args(hint)[1]
        return {str(k): _convert(inner, v) for k, v in (value or {}).items()}
    if origin is typing.Literal or hint is Any:
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _read(hint, value)
    scalar = _SCALARS.get(hint)
    return value if scalar is None else scalar(value)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, float):
        raise StoredShapeError(f"refusing float {value!r}: figures are Decimals")
    return Decimal(str(value))


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise StoredShapeError(f"expected true or false, got {value!r}")
    return value


def _str(value: Any) -> str:
    return "" if value is None else str(value)


_SCALARS: dict[Any, Any] = {Decimal: _decimal, dt.date: _date, bool: _bool, int: int, str: _str}


def stored_key(model: type, name: str, *, column: str) -> str:
    """The ORM path (``result__cap_headroom``) of a read model's top-level field inside the
    JSON ``column``, for a query that reads one figure without loading the whole document. A
    name the model does not have is an error at once, not an empty column on a page."""
    if name not in {f.name for f in dataclasses.fields(model)}:
        raise StoredShapeError(f"{model.__name__} has no field {name!r}")
    return f"{column}__{name}"
