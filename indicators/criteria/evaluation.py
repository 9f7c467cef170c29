"""Evaluating a criteria tree vectorised over a frame of cases: reading columns, then a mask per
leaf and group."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .validation import (
    _FALSE_WORDS,
    _ISO_DATE,
    _NUMBER,
    _TRUE_WORDS,
    COMPARISON_OPS,
    LIST_OPS,
    ORDERING_OPS,
    Criteria,
    CriteriaDataError,
    CriteriaError,
    CriteriaInvalid,
    _is_number,
    _kind_of_type_name,
    criteria_fields,
    criteria_validate,
)

# --------------------------------------------------------------------------------------------
# Reading columns
# --------------------------------------------------------------------------------------------


@dataclass
class _Column:
    """A column read as one kind: values plus a mask of rows that are not null."""

    kind: str
    values: Any  # numpy array (number, date, boolean) or pandas string Series (string)
    valid: np.ndarray


def _samples(series: pd.Series, mask: np.ndarray, limit: int = 5) -> list[str]:
    return [repr(v) for v in series[mask].head(limit).tolist()]


class FrameView:
    """A frame plus the columns already read as numbers/dates/booleans/text.

    Reading a text column as numbers or dates is the expensive part of an evaluation, so one
    view is shared by every criteria tree evaluated over the same frame (all populations of a
    measure, or several measures via ``populations_evaluate_many``). The frame must not be
    changed while a view over it is in use.
    """

    def __init__(self, frame: pd.DataFrame, *, field_types: Mapping[str, str] | None = None):
        self.frame = frame
        self.field_types = dict(field_types or {})
        self._cache: dict[tuple[str, str], _Column] = {}
        self.checked_case_ids: set[str] = set()

    def __len__(self) -> int:
        return len(self.frame)

    def series(self, name: str) -> pd.Series:
        if name not in self.frame.columns:
            raise CriteriaDataError(f"missing required field {name!r}", field_name=name)
        return self.frame[name]

    def case_ids(self, name: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
        """The case id column without its index (result tables are positional)."""
        return self.series(name).array

    def declared_kind(self, name: str) -> str | None:
        """The kind the column's dtype or the declared field types imply, if any."""
        declared = _kind_of_type_name(self.field_types.get(name))
        if declared:
            return declared
        dtype = self.series(name).dtype
        if pd.api.types.is_bool_dtype(dtype):
            return "boolean"
        if pd.api.types.is_numeric_dtype(dtype):
            return "number"
        if pd.api.types.is_datetime64_any_dtype(dtype):
            return "date"
        return None

    def column(self, name: str, kind: str) -> _Column:
        key = (name, kind)
        if key not in self._cache:
            reader = {
                "number": _read_number,
                "date": _read_date,
                "boolean": _read_boolean,
                "string": _read_string,
            }[kind]
            self._cache[key] = reader(self.series(name), name)
        return self._cache[key]


def _is_text(series: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(series.dtype)
        or pd.api.types.is_bool_dtype(series.dtype)
        or pd.api.types.is_datetime64_any_dtype(series.dtype)
    )


def _blank_or_null(series: pd.Series) -> np.ndarray:
    if _is_text(series):
        text = series if pd.api.types.is_string_dtype(series.dtype) else series.astype("string")
        return (text.isna() | (text.str.strip() == "")).fillna(True).to_numpy(dtype=bool)
    return series.isna().to_numpy(dtype=bool)


def _read_string(series: pd.Series, name: str) -> _Column:
    text = series if pd.api.types.is_string_dtype(series.dtype) else series.astype("string")
    return _Column("string", text, ~_blank_or_null(text))


def _read_number(series: pd.Series, name: str) -> _Column:
    if pd.api.types.is_bool_dtype(series.dtype):
        raise CriteriaDataError(f"field {name!r} holds booleans, not numbers", field_name=name)
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        return _Column("number", values, ~np.isnan(values))
    blank = _blank_or_null(series)
    text = series.astype("string").str.strip().str.replace(",", "", regex=False)
    numbers = pd.to_numeric(text, errors="coerce")
    values = np.asarray(numbers.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    bad = np.isnan(values) & ~blank
    if bad.any():
        raise CriteriaDataError(
            f"field {name!r} has {int(bad.sum())} value(s) that are not numbers, e.g. "
            f"{', '.join(_samples(series, bad))}",
            field_name=name,
        )
    return _Column("number", values, ~blank)


def _read_date(series: pd.Series, name: str) -> _Column:
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        blank = _blank_or_null(series)
        source = series.astype("string").str.strip() if _is_text(series) else series
        parsed = pd.to_datetime(source, format="ISO8601", errors="coerce")
        bad = parsed.isna().to_numpy(dtype=bool) & ~blank
        if bad.any():
            raise CriteriaDataError(
                f"field {name!r} has {int(bad.sum())} value(s) that are not ISO dates, e.g. "
                f"{', '.join(_samples(series, bad))}",
                field_name=name,
            )
    if getattr(parsed.dtype, "tz", None) is not None:
        # Compare wall-clock dates in the data's own zone: criteria values are naive dates.
        parsed = parsed.dt.tz_localize(None)
    values = parsed.to_numpy(dtype="datetime64[us]")
    return _Column("date", values, ~np.isnat(values))


def _read_boolean(series: pd.Series, name: str) -> _Column:
    if pd.api.types.is_bool_dtype(series.dtype):
        valid = ~series.isna().to_numpy(dtype=bool)
        return _Column("boolean", series.fillna(False).to_numpy(dtype=bool), valid)
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        valid = ~np.isnan(numbers)
        bad = valid & (numbers != 0) & (numbers != 1)
        if bad.any():
            raise CriteriaDataError(
                f"field {name!r} has {int(bad.sum())} number(s) other than 0/1 where a yes/no is "
                f"expected, e.g. {', '.join(_samples(series, bad))}",
                field_name=name,
            )
        return _Column("boolean", numbers == 1, valid)
    blank = _blank_or_null(series)
    words = series.astype("string").str.strip().str.lower()
    is_true = words.isin(_TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
    is_false = words.isin(_FALSE_WORDS).fillna(False).to_numpy(dtype=bool)
    bad = ~(is_true | is_false | blank)
    if bad.any():
        raise CriteriaDataError(
            f"field {name!r} has {int(bad.sum())} value(s) that are not true/false, e.g. "
            f"{', '.join(_samples(series, bad))}",
            field_name=name,
        )
    return _Column("boolean", is_true, ~blank)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def _literal(value: object, kind: str, *, where: str) -> Any:
    """A criteria value converted to what the column of ``kind`` is compared with."""
    try:
        if kind == "number":
            if isinstance(value, str):
                value = value.strip().replace(",", "")
                if not _NUMBER.match(value):
                    raise ValueError
            # Criteria cut-offs (ages, days, counts) are compared with float64 columns; they are
            # measurement thresholds, not money.
            return float(value)  # type: ignore[arg-type]
        if kind == "date":
            if isinstance(value, dt.datetime):
                return np.datetime64(value.replace(tzinfo=None), "us")
            if isinstance(value, dt.date):
                return np.datetime64(value, "us")
            return np.datetime64(pd.Timestamp(str(value).strip()).to_datetime64(), "us")
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in _TRUE_WORDS:
                return True
            if word in _FALSE_WORDS:
                return False
            raise ValueError
        return str(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CriteriaDataError(f"{where}: {value!r} is not a {kind}") from exc


def _sniff_text_kind(view: FrameView, name: str) -> str:
    """For a field-to-field comparison of two text columns: number, date or text."""
    series = view.series(name)
    sample = series.dropna().astype("string").str.strip()
    sample = sample[sample != ""].head(50)
    if len(sample) and sample.str.match(_NUMBER.pattern).all():
        return "number"
    if len(sample) and sample.str.match(_ISO_DATE.pattern).all():
        return "date"
    return "string"


def _leaf_kind(node: Mapping[str, Any], view: FrameView) -> str:
    """Decide how a leaf reads its column: forced type, then dtype, then operator and value."""
    if node.get("type"):
        return str(node["type"])
    op = node["op"]
    name = node["field"]
    declared = view.declared_kind(name)
    if declared:
        return declared
    if op in ("is_true", "is_false"):
        return "boolean"
    if op == "within_days":
        return "date"
    if op == "contains" or op in ("is_null", "not_null"):
        return "string"
    if "value_field" in node:
        other = view.declared_kind(node["value_field"])
        return other or _sniff_text_kind(view, name)
    value = node["value"]
    probe = value[0] if isinstance(value, list | tuple) and value else value
    if isinstance(probe, bool):
        return "boolean"
    if _is_number(probe):
        return "number"
    if isinstance(probe, dt.date):
        return "date"
    if isinstance(probe, str) and (op in ORDERING_OPS or op == "between"):
        if _NUMBER.match(probe.strip()):
            return "number"
        if _ISO_DATE.match(probe.strip()):
            return "date"
    return "string"


def _compare(values: Any, op: str, other: Any) -> np.ndarray:
    if op == "=":
        result = values == other
    elif op == "!=":
        result = values != other
    elif op == ">":
        result = values > other
    elif op == ">=":
        result = values >= other
    elif op == "<":
        result = values < other
    else:
        result = values <= other
    if isinstance(result, pd.Series):
        return result.fillna(False).to_numpy(dtype=bool)
    return np.asarray(result, dtype=bool)


def _evaluate_leaf(node: Mapping[str, Any], view: FrameView, path: str) -> np.ndarray:
    op = node["op"]
    name = node["field"]
    kind = _leaf_kind(node, view)
    if op in ("is_null", "not_null"):
        null = ~view.column(name, kind).valid
        return null if op == "is_null" else ~null
    column = view.column(name, kind)
    if op in ("is_true", "is_false"):
        wanted = column.values if op == "is_true" else ~column.values
        return wanted & column.valid
    if "value_field" in node:
        other = view.column(node["value_field"], kind)
        return _compare(column.values, op, other.values) & column.valid & other.valid
    if op == "within_days":
        # Step 1: both dates read; step 2: the window [of, of + N days] (or before/either);
        # step 3: a null on either side never matches.
        of = view.column(node["of"], "date")
        days = np.timedelta64(int(node["value"]), "D")
        direction = node.get("direction", "after")
        delta = column.values - of.values
        if direction == "after":
            hit = (delta >= np.timedelta64(0, "D")) & (delta <= days)
        elif direction == "before":
            hit = (delta <= np.timedelta64(0, "D")) & (delta >= -days)
        else:
            hit = (delta >= -days) & (delta <= days)
        return np.asarray(hit, dtype=bool) & column.valid & of.valid
    where = f"{path}.value"
    value = node["value"]
    if op in COMPARISON_OPS:
        return _compare(column.values, op, _literal(value, kind, where=where)) & column.valid
    if op in LIST_OPS:
        wanted = [_literal(v, kind, where=f"{where}[{i}]") for i, v in enumerate(value)]
        if kind == "string":
            hit = column.values.isin(wanted).fillna(False).to_numpy(dtype=bool)
        else:
            hit = np.isin(column.values, np.asarray(wanted, dtype=column.values.dtype))
        return (hit if op == "in" else ~hit) & column.valid
    if op == "between":
        low = _literal(value[0], kind, where=f"{where}[0]")
        high = _literal(value[1], kind, where=f"{where}[1]")
        return (
            _compare(column.values, ">=", low)
            & _compare(column.values, "<=", high)
            & (column.valid)
        )
    if op == "contains":
        hit = column.values.str.contains(str(value), case=False, regex=False)
        return hit.fillna(False).to_numpy(dtype=bool) & column.valid
    raise CriteriaInvalid([CriteriaError(f"{path}.op", f"unknown operator {op!r}")])


def _evaluate_node(node: Mapping[str, Any] | None, view: FrameView, path: str) -> np.ndarray:
    if not node:
        return np.ones(len(view), dtype=bool)
    if "all" in node:
        result = np.ones(len(view), dtype=bool)
        for i, child in enumerate(node["all"]):
            result &= _evaluate_node(child, view, f"{path}.all[{i}]")
        return result
    if "any" in node:
        result = np.zeros(len(view), dtype=bool)
        for i, child in enumerate(node["any"]):
            result |= _evaluate_node(child, view, f"{path}.any[{i}]")
        return result
    if "not" in node:
        return ~_evaluate_node(node["not"], view, f"{path}.not")
    return _evaluate_leaf(node, view, path)


def _as_view(frame: pd.DataFrame | FrameView) -> FrameView:
    return frame if isinstance(frame, FrameView) else FrameView(frame)


def criteria_mask(tree: Criteria | None, frame: pd.DataFrame | FrameView) -> np.ndarray:
    """Like ``criteria_evaluate`` but returns a plain numpy boolean array (no index)."""
    errors = criteria_validate(tree)
    if errors:
        raise CriteriaInvalid(errors)
    view = _as_view(frame)
    missing = sorted(f for f in criteria_fields(tree) if f not in view.frame.columns)
    if missing:
        raise CriteriaDataError(f"missing required field(s): {', '.join(missing)}")
    return _evaluate_node(tree, view, "$")


def criteria_evaluate(tree: Criteria | None, frame: pd.DataFrame | FrameView) -> pd.Series:
    """Which rows of ``frame`` match ``tree``: a boolean Series on the frame's index.

    Raises ``CriteriaInvalid`` for a malformed tree and ``CriteriaDataError`` when a field is
    missing or its values cannot be read as the criteria need (e.g. "abc" in a number column).
    """
    view = _as_view(frame)
    return pd.Series(criteria_mask(tree, view), index=view.frame.index, dtype=bool)
