"""Population criteria stored as data and evaluated vectorised over a frame of cases.

Spec section 3: criteria are structured data (field, operator, value, combined with all/any),
never code that gets executed, and every case's membership of every population is kept so a
reviewer can drill from a score down to the cases behind it.

A criteria tree is plain JSON:

* leaf: ``{"field": "age", "op": ">=", "value": 18}``
* leaf against another column: ``{"field": "admit_date", "op": "<", "value_field": "cutoff"}``
* date window: ``{"field": "readmit_date", "op": "within_days", "value": 30,
  "of": "discharge_date"}`` (``"direction"``: ``after`` (default), ``before`` or ``either``)
* groups: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``
* an empty tree (``{}`` or ``None``) matches every row.

A leaf may force how its column is read with ``"type"``: ``string``, ``number``, ``boolean``
or ``date``; otherwise the column's dtype decides, and for text columns (CSV) the operator and
value do (``{"op": ">=", "value": 18}`` reads the column as numbers).

Text matching: ``=``, ``!=`` and ``in`` compare text exactly (case matters: codes such as
``TKA`` are codes); ``contains`` ignores case (it searches free text).

Null semantics: a null never matches a comparison (``=``, ``!=``, ``in``, ``not_in``,
``between``, ``contains``, the field-to-field and date-window operators, ``is_true`` and
``is_false``); only ``is_null`` matches it. In text columns a blank string is a null (a CSV cell
left empty). ``not`` negates the match, so ``{"not": {"field": "age", "op": ">=",
"value": 18}}`` does match a row with no age; write ``{"field": "age", "op": "<", "value": 18}``
to keep such rows out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from comanage.core.money import round_money
from comanage.core.tabular.words import FALSE_WORDS, TRUE_WORDS

Criteria = Mapping[str, Any]

COMPARISON_OPS = frozenset({"=", "!=", ">", ">=", "<", "<="})
ORDERING_OPS = frozenset({">", ">=", "<", "<="})
LIST_OPS = frozenset({"in", "not_in"})
NULLARY_OPS = frozenset({"is_null", "not_null", "is_true", "is_false"})
OPERATORS = COMPARISON_OPS | LIST_OPS | NULLARY_OPS | {"between", "contains", "within_days"}
GROUP_KEYS = ("all", "any", "not")
LEAF_KEYS = frozenset({"field", "op", "value", "value_field", "of", "direction", "type"})
KINDS = ("string", "number", "boolean", "date")
WITHIN_DIRECTIONS = ("after", "before", "either")

# Names that field-type mappings (ORM metadata, import layouts) may use for the four kinds.
_KIND_ALIASES = {
    "string": "string", "str": "string", "text": "string", "char": "string",
    "number": "number", "integer": "number", "int": "number", "decimal": "number",
    "float": "number", "numeric": "number",
    "boolean": "boolean", "bool": "boolean",
    "date": "date", "datetime": "date", "timestamp": "date",
}  # fmt: skip

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class CriteriaError:
    """One problem in a criteria tree: where (a JSON path such as ``$.all[1].op``) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class CriteriaInvalid(ValueError):
    """The tree itself is malformed; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[CriteriaError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


class CriteriaDataError(ValueError):
    """The data cannot be read the way the criteria need (spec section 3: bad data is an error
    the user sees, not a silent drop)."""

    def __init__(self, message: str, *, field_name: str | None = None) -> None:
        self.field_name = field_name
        super().__init__(message)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _kind_of_type_name(type_name: str | None) -> str | None:
    if type_name is None:
        return None
    return _KIND_ALIASES.get(str(type_name).strip().lower())


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | Decimal | dt.date)


def _value_fits_kind(value: object, kind: str) -> bool:
    """Whether a literal can be compared with a column of ``kind``."""
    if kind == "number":
        return _is_number(value) or (isinstance(value, str) and bool(_NUMBER.match(value.strip())))
    if kind == "boolean":
        return isinstance(value, bool) or (
            isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS
        )
    if kind == "date":
        return isinstance(value, dt.date) or (
            isinstance(value, str) and bool(_ISO_DATE.match(value.strip()))
        )
    return isinstance(value, str | int | Decimal) and not isinstance(value, bool)


def criteria_validate(
    tree: Criteria | None, *, fields: Mapping[str, str] | None = None
) -> list[CriteriaError]:
    """Every problem in ``tree``: unknown operators, unknown fields, wrongly shaped values.

    ``fields`` maps the available field names to their types (``string``, ``number``,
    ``boolean``, ``date`` and common aliases); when given, unknown fields and values that do not
    fit the field's type are reported too.
    """
    errors: list[CriteriaError] = []
    if tree is None:
        return errors
    _validate_node(tree, "$", fields, errors)
    return errors


def _validate_node(
    node: object, path: str, fields: Mapping[str, str] | None, errors: list[CriteriaError]
) -> None:
    if not isinstance(node, Mapping):
        errors.append(CriteriaError(path, f"expected an object, got {type(node).__name__}"))
        return
    if not node:
        return
    group_keys = [k for k in GROUP_KEYS if k in node]
    if group_keys:
        if len(node) != 1:
            extra = sorted(str(k) for k in node if k != group_keys[0])
            errors.append(
                CriteriaError(
                    path, f"a group has exactly one key ({group_keys[0]!r}); also found {extra}"
                )
            )
            return
        key = group_keys[0]
        child = node[key]
        if key == "not":
            _validate_node(child, f"{path}.not", fields, errors)
            return
        if not isinstance(child, list):
            errors.append(CriteriaError(f"{path}.{key}", "expected a list of conditions"))
            return
        for i, item in enumerate(child):
            _validate_node(item, f"{path}.{key}[{i}]", fields, errors)
        return
    _validate_leaf(node, path, fields, errors)


def _validate_field_name(
    name: object, path: str, fields: Mapping[str, str] | None, errors: list[CriteriaError]
) -> str | None:
    """Check a field reference; return its kind when known."""
    if not isinstance(name, str) or not name:
        errors.append(CriteriaError(path, "expected a field name"))
        return None
    if fields is not None:
        if name not in fields:
            known = ", ".join(sorted(fields)[:20])
            errors.append(CriteriaError(path, f"unknown field {name!r} (available: {known})"))
            return None
        return _kind_of_type_name(fields[name])
    return None


def _validate_leaf(
    node: Mapping[str, Any],
    path: str,
    fields: Mapping[str, str] | None,
    errors: list[CriteriaError],
) -> None:
    unknown = sorted(str(k) for k in node if k not in LEAF_KEYS)
    if unknown:
        errors.append(
            CriteriaError(
                path,
                f"unknown keys {unknown}; a condition has field, op and value (or a group "
                "all/any/not)",
            )
        )
    if "field" not in node:
        errors.append(CriteriaError(path, "missing 'field'"))
        kind = None
    else:
        kind = _validate_field_name(node["field"], f"{path}.field", fields, errors)
    forced = node.get("type")
    if forced is not None:
        if forced not in KINDS:
            errors.append(CriteriaError(f"{path}.type", f"type must be one of {list(KINDS)}"))
        else:
            kind = forced
    op = node.get("op")
    if op is None:
        errors.append(CriteriaError(path, "missing 'op'"))
        return
    if op not in OPERATORS:
        errors.append(
            CriteriaError(f"{path}.op", f"unknown operator {op!r}; use one of {sorted(OPERATORS)}")
        )
        return
    has_value = "value" in node
    value = node.get("value")
    vpath = f"{path}.value"

    if "value_field" in node:
        if op not in COMPARISON_OPS:
            errors.append(
                CriteriaError(
                    f"{path}.value_field", f"value_field only works with {sorted(COMPARISON_OPS)}"
                )
            )
        if has_value:
            errors.append(CriteriaError(path, "give either 'value' or 'value_field', not both"))
        other = _validate_field_name(node["value_field"], f"{path}.value_field", fields, errors)
        if kind and other and kind != other:
            errors.append(
                CriteriaError(path, f"cannot compare a {kind} field with a {other} field")
            )
        return
    if op != "within_days":
        for extra_key in ("of", "direction"):
            if extra_key in node:
                errors.append(
                    CriteriaError(f"{path}.{extra_key}", f"only within_days takes {extra_key!r}")
                )

    if op in NULLARY_OPS:
        if has_value:
            errors.append(CriteriaError(vpath, f"{op} takes no value"))
        if op in ("is_true", "is_false") and kind not in (None, "boolean"):
            errors.append(CriteriaError(f"{path}.op", f"{op} needs a boolean field, not {kind}"))
        return
    if not has_value:
        errors.append(CriteriaError(path, f"{op} needs a 'value'"))
        return
    if op in COMPARISON_OPS:
        if value is None or not _is_scalar(value):
            errors.append(
                CriteriaError(vpath, f"{op} needs a single value (use is_null for nulls)")
            )
        elif op in ORDERING_OPS and isinstance(value, bool):
            errors.append(CriteriaError(vpath, f"{op} cannot order booleans"))
        elif kind and not _value_fits_kind(value, kind):
            errors.append(CriteriaError(vpath, f"{value!r} is not a {kind}"))
    elif op in LIST_OPS:
        if not isinstance(value, list | tuple) or not value:
            errors.append(CriteriaError(vpath, f"{op} needs a non-empty list of values"))
        else:
            for i, item in enumerate(value):
                if item is None or not _is_scalar(item):
                    errors.append(CriteriaError(f"{vpath}[{i}]", "expected a single value"))
                elif kind and not _value_fits_kind(item, kind):
                    errors.append(CriteriaError(f"{vpath}[{i}]", f"{item!r} is not a {kind}"))
    elif op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            errors.append(CriteriaError(vpath, "between needs [low, high]"))
        elif any(v is None or not _is_scalar(v) or isinstance(v, bool) for v in value):
            errors.append(CriteriaError(vpath, "between needs two single values"))
        elif kind and not all(_value_fits_kind(v, kind) for v in value):
            errors.append(CriteriaError(vpath, f"{list(value)!r} are not both {kind}s"))
        elif _is_number(value[0]) and _is_number(value[1]) and value[0] > value[1]:
            errors.append(CriteriaError(vpath, f"low {value[0]} is above high {value[1]}"))
    elif op == "contains":
        if not isinstance(value, str) or not value:
            errors.append(CriteriaError(vpath, "contains needs a non-empty string"))
        if kind not in (None, "string"):
            errors.append(CriteriaError(f"{path}.op", f"contains needs a text field, not {kind}"))
    elif op == "within_days":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            errors.append(CriteriaError(vpath, "within_days needs a whole number of days ≥ 0"))
        if "of" not in node:
            errors.append(CriteriaError(path, "within_days needs 'of' (the reference date field)"))
        else:
            of_kind = _validate_field_name(node["of"], f"{path}.of", fields, errors)
            if of_kind not in (None, "date"):
                errors.append(CriteriaError(f"{path}.of", f"{node['of']!r} is not a date field"))
        if kind not in (None, "date"):
            errors.append(CriteriaError(f"{path}.field", "within_days needs a date field"))
        direction = node.get("direction", "after")
        if direction not in WITHIN_DIRECTIONS:
            errors.append(
                CriteriaError(
                    f"{path}.direction", f"direction must be one of {list(WITHIN_DIRECTIONS)}"
                )
            )


def criteria_fields(tree: Criteria | None) -> set[str]:
    """The field names a (valid) tree reads."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if not isinstance(node, Mapping):
            return
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    walk(child)
        if "not" in node:
            walk(node["not"])
        for key in ("field", "value_field", "of"):
            if isinstance(node.get(key), str):
                found.add(node[key])

    walk(tree)
    return found


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
    is_true = words.isin(TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
    is_false = words.isin(FALSE_WORDS).fillna(False).to_numpy(dtype=bool)
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
            if word in TRUE_WORDS:
                return True
            if word in FALSE_WORDS:
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


# --------------------------------------------------------------------------------------------
# Measures and their populations (spec section 3)
# --------------------------------------------------------------------------------------------

MeasureKind = Literal["proportion", "ratio", "continuous_variable"]

# Population flags kept per case, in the order the spec walks them; keys double as count names.
POPULATIONS = (
    "initial_population",
    "denominator",
    "denominator_exclusion",
    "numerator",
    "denominator_exception",
    "numerator_exclusion",
)
CV_POPULATIONS = ("initial_population", "measure_population", "measure_population_exclusion")

# Why a case is (or is not) counted; stored as a categorical so a million rows stay cheap.
REASONS = (
    "not in initial population",
    "not in denominator",
    "excluded: denominator exclusion",
    "excepted: denominator exception (numerator not met)",
    "not in numerator: numerator exclusion",
    "in denominator: numerator not met",
    "in numerator",
    "not in measure population",
    "excluded: measure population exclusion",
    "in measure population",
    "not in numerator",
)


class MeasureDataError(ValueError):
    """The case file cannot be scored as it is (duplicate ids, missing observations...)."""


# The criteria trees a measure may carry, in the order the spec walks them (section 3).
POPULATION_KEYS = (
    "initial_population",
    "denominator",
    "denominator_exclusions",
    "numerator",
    "denominator_exceptions",
    "numerator_exclusions",
    "measure_population",
    "measure_population_exclusions",
)


@dataclass(frozen=True)
class MeasureDefinition:
    """How one indicator is computed from case rows.

    ``None`` for a criteria means "not defined": the initial population, denominator and measure
    population then take every case they are given, exclusions/exceptions take none. A
    proportion needs ``numerator``. A ratio divides the numerator count (or the sum of
    ``numerator_value_field`` over the numerator cases) by the denominator count (or the sum of
    ``denominator_value_field``), times ``multiplier`` (e.g. 1000 for "per 1,000 line days").
    A continuous variable aggregates ``observation_field`` over the measure population.
    """

    kind: MeasureKind = "proportion"
    initial_population: Criteria | None = None
    denominator: Criteria | None = None
    denominator_exclusions: Criteria | None = None
    numerator: Criteria | None = None
    denominator_exceptions: Criteria | None = None
    numerator_exclusions: Criteria | None = None
    numerator_value_field: str | None = None
    denominator_value_field: str | None = None
    multiplier: Decimal = Decimal(1)
    measure_population: Criteria | None = None
    measure_population_exclusions: Criteria | None = None
    observation_field: str | None = None
    aggregate: Literal["median", "mean"] = "median"

    def criteria_items(self) -> list[tuple[str, Criteria | None]]:
        return [(name, getattr(self, name)) for name in POPULATION_KEYS]


def measure_definition_validate(
    definition: MeasureDefinition, *, fields: Mapping[str, str] | None = None
) -> list[CriteriaError]:
    """Every problem in a definition; paths start with the population name."""
    errors: list[CriteriaError] = []
    if definition.kind not in ("proportion", "ratio", "continuous_variable"):
        errors.append(CriteriaError("$.kind", f"unknown measure kind {definition.kind!r}"))
        return errors
    for name, tree in definition.criteria_items():
        for error in criteria_validate(tree, fields=fields):
            errors.append(CriteriaError(f"{name}{error.path[1:]}", error.message))
    if definition.kind == "proportion" and definition.numerator is None:
        errors.append(CriteriaError("numerator", "a proportion measure needs a numerator"))
    if definition.kind == "ratio":
        if definition.numerator is None and definition.numerator_value_field is None:
            errors.append(
                CriteriaError("numerator", "a ratio needs numerator criteria or a value field")
            )
        if isinstance(definition.multiplier, float) or not definition.multiplier > 0:
            errors.append(CriteriaError("multiplier", "multiplier must be a positive Decimal"))
    if definition.kind == "continuous_variable":
        if not definition.observation_field:
            errors.append(CriteriaError("observation_field", "a continuous variable needs one"))
        if definition.aggregate not in ("median", "mean"):
            errors.append(CriteriaError("aggregate", "aggregate must be median or mean"))
    if fields is not None:
        for attr in ("numerator_value_field", "denominator_value_field", "observation_field"):
            name = getattr(definition, attr)
            if name is not None and name not in fields:
                errors.append(CriteriaError(attr, f"unknown field {name!r}"))
            elif name is not None and _kind_of_type_name(fields[name]) not in (None, "number"):
                errors.append(CriteriaError(attr, f"{name!r} is not a number field"))
    return errors


@dataclass(frozen=True)
class PopulationResult:
    """Every case's membership of every population, the counts and the score.

    ``cases`` has one row per case: the case id, a boolean column per population (named as in
    ``POPULATIONS``, or ``CV_POPULATIONS`` for continuous variables), ``in_denominator``,
    ``in_numerator`` and ``reason``. ``score`` is unrounded: a percentage for proportions,
    numerator ÷ denominator × multiplier for ratios, the aggregate for continuous variables;
    ``None`` when there is nothing to divide by (spec section 3: never 0% or 100%).
    """

    kind: MeasureKind
    cases: pd.DataFrame
    counts: dict[str, int]
    numerator_value: Decimal
    denominator_value: Decimal
    score: Decimal | None

    @property
    def display_score(self) -> Decimal | None:
        """The score half-up to two decimals (spec section 2: shown to two decimals)."""
        # Half-up to hundredths is the same rule as cents, so the one rounding helper serves.
        return None if self.score is None else round_money(self.score)

    @property
    def performance_denominator(self) -> int:
        """The number of cases the score divides by (the ``n`` minimum denominators test)."""
        if self.kind == "continuous_variable":
            return self.counts["measure_population"] - self.counts["measure_population_exclusion"]
        if self.kind == "ratio":
            return self.counts["denominator"] - self.counts["denominator_exclusion"]
        return (
            self.counts["denominator"]
            - self.counts["denominator_exclusion"]
            - self.counts["denominator_exception"]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (Decimals as strings); the case table is left to the caller."""
        return {
            "kind": self.kind,
            "counts": dict(self.counts),
            "numerator_value": str(self.numerator_value),
            "denominator_value": str(self.denominator_value),
            "performance_denominator": self.performance_denominator,
            "score": None if self.score is None else str(self.score),
            "display_score": None if self.display_score is None else str(self.display_score),
        }


def proportion_score(
    *,
    numerator: int,
    denominator: int,
    denominator_exclusions: int = 0,
    denominator_exceptions: int = 0,
    numerator_exclusions: int = 0,
) -> Decimal | None:
    """The unrounded percentage from aggregate counts (spec section 3, aggregate entry).

    Same formula as the case-level engine: (NUMER − NUMEX) ÷ (DENOM − DENEX − DENEXCEP) × 100;
    ``None`` for a zero denominator. Counts that cannot be true together (a numerator above its
    denominator, negative counts) raise ``MeasureDataError`` rather than produce a score.
    """
    counts = {
        "numerator": numerator,
        "denominator": denominator,
        "denominator_exclusions": denominator_exclusions,
        "denominator_exceptions": denominator_exceptions,
        "numerator_exclusions": numerator_exclusions,
    }
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise MeasureDataError(f"{name} must be a whole number ≥ 0, not {count!r}")
    performance_denominator = denominator - denominator_exclusions - denominator_exceptions
    performance_numerator = numerator - numerator_exclusions
    if performance_denominator < 0:
        raise MeasureDataError(
            f"exclusions and exceptions ({denominator_exclusions + denominator_exceptions}) "
            f"exceed the denominator ({denominator})"
        )
    if performance_numerator < 0:
        raise MeasureDataError(
            f"numerator exclusions ({numerator_exclusions}) exceed the numerator ({numerator})"
        )
    if performance_numerator > performance_denominator:
        raise MeasureDataError(
            f"numerator ({performance_numerator}) is above the denominator "
            f"({performance_denominator})"
        )
    if performance_denominator == 0:
        return None
    return Decimal(performance_numerator) * 100 / Decimal(performance_denominator)


def _check_case_ids(view: FrameView, case_id_field: str) -> None:
    if case_id_field in view.checked_case_ids:
        return
    ids = view.series(case_id_field)
    missing = _blank_or_null(ids)
    if missing.any():
        raise MeasureDataError(f"{int(missing.sum())} case(s) have no {case_id_field}")
    duplicated = ids.duplicated(keep=False).to_numpy(dtype=bool)
    if duplicated.any():
        examples = sorted({str(v) for v in ids[duplicated].head(10)})
        raise MeasureDataError(
            f"duplicate {case_id_field}: {', '.join(examples)} (one row per case is required)"
        )
    view.checked_case_ids.add(case_id_field)


def _mask_or(tree: Criteria | None, view: FrameView, default: bool, name: str) -> np.ndarray:
    if tree is None:
        return np.full(len(view), default, dtype=bool)
    try:
        return criteria_mask(tree, view)
    except CriteriaInvalid as exc:
        raise CriteriaInvalid(
            [CriteriaError(f"{name}{e.path[1:]}", e.message) for e in exc.errors]
        ) from exc


_MAX_DECIMALS = 6
_MAX_MAGNITUDE = 1e9


def _scaled_integers(values: np.ndarray) -> tuple[np.ndarray, int] | None:
    """Float observations as integers of ``10**-k``: the fewest decimals (at most six) that give
    back every value as written (2.3 -> 23 with k = 1), so sums and means are exact. ``None``
    when a value needs more decimals or is too large; the caller then goes value by value."""
    if not np.isfinite(values).all() or (np.abs(values) >= _MAX_MAGNITUDE).any():
        return None
    for decimals in range(_MAX_DECIMALS + 1):
        scaled = np.rint(values * 10**decimals)  # whole numbers; not money
        if (scaled / 10**decimals == values).all():
            return scaled.astype(np.int64), decimals
    return None


def _integer_sum(values: np.ndarray) -> int:
    """Exact even where int64 would overflow."""
    if len(values) and int(np.abs(values).max()) * len(values) >= 2**63:
        return int(values.astype(object).sum())
    return int(values.sum())


def _exact_decimals(values: np.ndarray) -> list[Decimal]:
    """Each float as the decimal it was read from (its shortest repr)."""
    return [Decimal(repr(float(v))) for v in values]


def _float_sum(values: np.ndarray) -> Decimal:
    scaled = _scaled_integers(values)
    if scaled is None:
        return sum(_exact_decimals(values), Decimal(0))
    integers, decimals = scaled
    return Decimal(_integer_sum(integers)).scaleb(-decimals)


def _decimal_sum(view: FrameView, name: str, mask: np.ndarray) -> Decimal:
    """Exact: integer columns as integers, float columns as the decimals they were read from."""
    column = view.column(name, "number")
    missing = mask & ~column.valid
    if missing.any():
        raise MeasureDataError(f"{int(missing.sum())} counted case(s) have no {name}")
    series = view.series(name)
    if pd.api.types.is_integer_dtype(series.dtype):
        return Decimal(_integer_sum(series.to_numpy()[mask]))
    return _float_sum(column.values[mask])


def _aggregate(values: np.ndarray, exact_ints: bool, how: str) -> Decimal | None:
    """The median or mean of the observations, exact (no float arithmetic on the values)."""
    if len(values) == 0:
        return None
    decimals = 0
    if not exact_ints:
        scaled = _scaled_integers(values)
        if scaled is None:
            return _aggregate_decimals(_exact_decimals(values), how)
        values, decimals = scaled
    if how == "mean":
        return (Decimal(_integer_sum(values)) / Decimal(len(values))).scaleb(-decimals)
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return Decimal(int(ordered[middle])).scaleb(-decimals)
    low, high = Decimal(int(ordered[middle - 1])), Decimal(int(ordered[middle]))
    return ((low + high) / 2).scaleb(-decimals)


def _aggregate_decimals(values: list[Decimal], how: str) -> Decimal:
    if how == "mean":
        return sum(values, Decimal(0)) / Decimal(len(values))
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _reason_column(codes: np.ndarray) -> pd.Categorical:
    return pd.Categorical.from_codes(codes.astype("int8"), categories=list(REASONS))


def populations_evaluate(
    definition: MeasureDefinition,
    frame: pd.DataFrame | FrameView,
    *,
    case_id_field: str = "case_id",
) -> PopulationResult:
    """Evaluate every population of ``definition`` for every case (spec section 3).

    Raises ``CriteriaInvalid`` for a malformed definition, ``CriteriaDataError`` for unreadable
    or missing fields and ``MeasureDataError`` for duplicate or missing case ids.
    """
    errors = measure_definition_validate(definition)
    if errors:
        raise CriteriaInvalid(errors)
    view = _as_view(frame)
    _check_case_ids(view, case_id_field)
    if definition.kind == "continuous_variable":
        return _continuous_variable(definition, view, case_id_field)
    if definition.kind == "ratio":
        return _ratio(definition, view, case_id_field)
    return _proportion(definition, view, case_id_field)


def populations_evaluate_many(
    definitions: Mapping[str, MeasureDefinition],
    frame: pd.DataFrame,
    *,
    case_id_field: str = "case_id",
    field_types: Mapping[str, str] | None = None,
    case_ids_checked: bool = False,
) -> dict[str, PopulationResult]:
    """Evaluate several measures over one frame, reading each column only once.

    ``case_ids_checked``: the caller has already refused empty and repeated case ids (the case
    file validation does), so the engine does not hash a million ids a second time.
    """
    view = FrameView(frame, field_types=field_types)
    if case_ids_checked:
        view.checked_case_ids.add(case_id_field)
    return {
        key: populations_evaluate(definition, view, case_id_field=case_id_field)
        for key, definition in definitions.items()
    }


def _proportion(
    definition: MeasureDefinition, view: FrameView, case_id_field: str
) -> PopulationResult:
    # Spec section 3, in order:
    # 1. initial population; 2. denominator within it;
    # 3. denominator exclusions, removed before the numerator is looked at;
    # 4. numerator among the remaining denominator;
    # 5. denominator exceptions only among cases that did NOT meet the numerator (a case with a
    #    documented reason that met the numerator stays: example D);
    # 6. numerator exclusions among the numerator;
    # 7. score = (NUMER - NUMEX) / (DENOM - DENEX - DENEXCEP), from integer counts.
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    denom = ipp & _mask_or(definition.denominator, view, True, "denominator")
    denex = denom & _mask_or(
        definition.denominator_exclusions, view, False, "denominator_exclusions"
    )
    eligible = denom & ~denex
    numer = eligible & _mask_or(definition.numerator, view, False, "numerator")
    denexcep = (
        eligible
        & ~numer
        & _mask_or(definition.denominator_exceptions, view, False, "denominator_exceptions")
    )
    numex = numer & _mask_or(definition.numerator_exclusions, view, False, "numerator_exclusions")
    in_denominator = eligible & ~denexcep
    in_numerator = numer & ~numex

    counts = {
        "initial_population": int(ipp.sum()),
        "denominator": int(denom.sum()),
        "denominator_exclusion": int(denex.sum()),
        "numerator": int(numer.sum()),
        "denominator_exception": int(denexcep.sum()),
        "numerator_exclusion": int(numex.sum()),
    }
    numerator_value = Decimal(counts["numerator"] - counts["numerator_exclusion"])
    denominator_value = Decimal(
        counts["denominator"] - counts["denominator_exclusion"] - counts["denominator_exception"]
    )
    score = None if denominator_value == 0 else numerator_value * 100 / denominator_value
    codes = np.select(
        [~ipp, ~denom, denex, denexcep, numex, ~numer],
        [0, 1, 2, 3, 4, 5],
        default=6,
    )
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "denominator": denom,
            "denominator_exclusion": denex,
            "numerator": numer,
            "denominator_exception": denexcep,
            "numerator_exclusion": numex,
            "in_denominator": in_denominator,
            "in_numerator": in_numerator,
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult("proportion", cases, counts, numerator_value, denominator_value, score)


def _ratio(definition: MeasureDefinition, view: FrameView, case_id_field: str) -> PopulationResult:
    # A ratio divides two separately defined counts (spec section 3); both come from the
    # initial population, each with its own exclusions; there are no exceptions.
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    denom = ipp & _mask_or(definition.denominator, view, True, "denominator")
    denex = denom & _mask_or(
        definition.denominator_exclusions, view, False, "denominator_exclusions"
    )
    numer = ipp & _mask_or(definition.numerator, view, True, "numerator")
    numex = numer & _mask_or(definition.numerator_exclusions, view, False, "numerator_exclusions")
    in_denominator = denom & ~denex
    in_numerator = numer & ~numex
    counts = {
        "initial_population": int(ipp.sum()),
        "denominator": int(denom.sum()),
        "denominator_exclusion": int(denex.sum()),
        "numerator": int(numer.sum()),
        "denominator_exception": 0,
        "numerator_exclusion": int(numex.sum()),
    }
    if definition.numerator_value_field:
        numerator_value = _decimal_sum(view, definition.numerator_value_field, in_numerator)
    else:
        numerator_value = Decimal(int(in_numerator.sum()))
    if definition.denominator_value_field:
        denominator_value = _decimal_sum(view, definition.denominator_value_field, in_denominator)
    else:
        denominator_value = Decimal(int(in_denominator.sum()))
    multiplier = Decimal(definition.multiplier)
    score = None if denominator_value == 0 else numerator_value * multiplier / denominator_value
    codes = np.select([~ipp, numex, ~numer], [0, 4, 10], default=6)
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "denominator": denom,
            "denominator_exclusion": denex,
            "numerator": numer,
            "denominator_exception": np.zeros(len(view), dtype=bool),
            "numerator_exclusion": numex,
            "in_denominator": in_denominator,
            "in_numerator": in_numerator,
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult("ratio", cases, counts, numerator_value, denominator_value, score)


def _continuous_variable(
    definition: MeasureDefinition, view: FrameView, case_id_field: str
) -> PopulationResult:
    # One observation per case in the measure population, then median or mean (spec section 3).
    ipp = _mask_or(definition.initial_population, view, True, "initial_population")
    msrpopl = ipp & _mask_or(definition.measure_population, view, True, "measure_population")
    msrpoplex = msrpopl & _mask_or(
        definition.measure_population_exclusions, view, False, "measure_population_exclusions"
    )
    observed = msrpopl & ~msrpoplex
    name = str(definition.observation_field)
    column = view.column(name, "number")
    missing = observed & ~column.valid
    if missing.any():
        ids = view.series(case_id_field)[missing].head(10).astype(str).tolist()
        raise MeasureDataError(
            f"{int(missing.sum())} case(s) in the measure population have no {name}: "
            f"{', '.join(ids)}"
        )
    series = view.series(name)
    exact_ints = pd.api.types.is_integer_dtype(series.dtype)
    values = series.to_numpy()[observed] if exact_ints else column.values[observed]
    score = _aggregate(values, exact_ints, definition.aggregate)
    counts = {
        "initial_population": int(ipp.sum()),
        "measure_population": int(msrpopl.sum()),
        "measure_population_exclusion": int(msrpoplex.sum()),
    }
    codes = np.select([~ipp, ~msrpopl, msrpoplex], [0, 7, 8], default=9)
    cases = pd.DataFrame(
        {
            case_id_field: view.case_ids(case_id_field),
            "initial_population": ipp,
            "measure_population": msrpopl,
            "measure_population_exclusion": msrpoplex,
            "in_denominator": observed,
            "in_numerator": observed,
            "observation": np.where(observed, column.values, np.nan),
            "reason": _reason_column(codes),
        }
    )
    return PopulationResult(
        "continuous_variable",
        cases,
        counts,
        Decimal(0) if score is None else score,
        Decimal(int(observed.sum())),
        score,
    )


__all__ = [
    "COMPARISON_OPS",
    "OPERATORS",
    "POPULATIONS",
    "Criteria",
    "CriteriaDataError",
    "CriteriaError",
    "CriteriaInvalid",
    "FrameView",
    "MeasureDataError",
    "MeasureDefinition",
    "PopulationResult",
    "criteria_evaluate",
    "criteria_fields",
    "criteria_mask",
    "criteria_validate",
    "measure_definition_validate",
    "populations_evaluate",
    "populations_evaluate_many",
    "proportion_score",
]
