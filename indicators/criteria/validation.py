"""Criteria trees: the vocabulary (operators, kinds), the errors, and checking a tree before it is
stored."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

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

_TRUE_WORDS = TRUE_WORDS
_FALSE_WORDS = FALSE_WORDS
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
            isinstance(value, str) and value.strip().lower() in _TRUE_WORDS + _FALSE_WORDS
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
