"""Strict parsing of user input: the one way numbers, booleans, text and override mappings are
read from requests, forms and JSON bodies.

Bad input is a 400 naming the field, never a 500 (an ``InvalidOperation`` deep in an engine, a
PostgreSQL error on a NUL byte) and never a silent guess (``bool("maybe")`` is ``True``; an
unknown key ignored is a scenario that did not model what the user asked for). Every helper
raises :class:`InputError`, a Django ``ValidationError`` keyed by the field's dotted path
(``overrides.results.ssi.score``), so:

* a service raises it and the API's exception handler answers 400 with ``field`` set;
* a serializer turns it into its own error with :func:`as_drf_error`;
* a form adds it with ``form.add_error`` or uses the form fields below.

Decimals are finite, with a bounded number of digits and decimal places, in plain or exponent
notation ("1e3" is 1000); a float (JSON numbers arrive as floats) is read through its shortest
repr, so ``12.5`` is ``Decimal("12.5")``, then held to the same bounds. Money is refused, never
rounded, when it has more places than cents: rounding money happens only in
``comanage/core/money.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

from django import forms
from django.core.exceptions import ValidationError

# Plain or exponent notation; no "NaN", "Infinity", "0x", "1_000", spaces inside or unicode digits.
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?\Z", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d{1,18}\Z", re.ASCII)
TRUE_VALUES = frozenset({"true", "1", "yes", "on"})
FALSE_VALUES = frozenset({"false", "0", "no", "off"})
# Default bounds for a decimal with no narrower domain rule: 20 significant digits.
DEFAULT_MAX_DIGITS = 20
DEFAULT_DECIMAL_PLACES = 10


class Digits(TypedDict):
    """``max_digits`` and ``decimal_places`` for :func:`parse_decimal`, passed as ``**digits``."""

    max_digits: int
    decimal_places: int


class InputError(ValidationError):
    """A bad value in ``field`` (a dotted path); it is ``ValidationError({field: [message]})``."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        self.field = field
        self.reason = message
        super().__init__({field: [ValidationError(message, code=code)]})

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


def as_drf_error(error: ValidationError) -> Any:
    """A Django ``ValidationError`` (an ``InputError`` included) as DRF's, fields kept."""
    from rest_framework import serializers

    detail = error.message_dict if hasattr(error, "error_dict") else error.messages
    return serializers.ValidationError(detail)


def _join(field: str, key: object) -> str:
    return f"{field}.{key}" if field else str(key)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_nul(value: Any, *, field: str) -> Any:
    """Refuse a NUL character in any string, mapping key included (PostgreSQL cannot store it
    in text or jsonb), at any depth. Returns ``value`` unchanged."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(
                field, "must not contain a NUL character (\\u0000).", "null_characters_not_allowed"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                raise InputError(
                    field,
                    f"key {_show(key)} contains a NUL character (\\u0000).",
                    "null_characters_not_allowed",
                )
            refuse_nul(item, field=_join(field, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            refuse_nul(item, field=f"{field}[{index}]")
    return value


def _as_decimal(value: Any, *, field: str, max_digits: int) -> Decimal:
    """The number a Decimal, an int, a finite float (its shortest repr) or a numeric string
    stands for; anything else is refused."""
    if isinstance(value, bool):
        raise InputError(field, f"must be a number, not {_show(value)}.")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        if abs(value) >= 10**max_digits:
            raise InputError(field, f"{_show(value)} has too many digits.", "max_digits")
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InputError(field, f"{_show(value)} is not a finite number.")
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip()
        if "\x00" in text or not _DECIMAL_RE.match(text):
            raise InputError(field, f"{_show(value)} is not a number.")
        try:
            return Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - the pattern rules this out
            raise InputError(field, f"{_show(value)} is not a number.") from exc
    raise InputError(field, f"must be a number, not {type(value).__name__}.")


def parse_decimal(
    value: Any,
    *,
    field: str,
    min_value: Decimal | int | None = None,
    max_value: Decimal | int | None = None,
    max_digits: int = DEFAULT_MAX_DIGITS,
    decimal_places: int = DEFAULT_DECIMAL_PLACES,
    allow_blank: bool = False,
) -> Decimal | None:
    """A finite decimal within ``max_digits`` / ``decimal_places`` and the bounds.

    Accepts a Decimal, an int, a finite float (via its shortest repr) or a string in plain or
    exponent notation (surrounding spaces allowed). ``-0`` reads as 0. With ``allow_blank``,
    ``None`` and ``""`` give ``None``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        if allow_blank:
            return None
        raise InputError(field, "is required.", "required")
    number = _as_decimal(value, field=field, max_digits=max_digits)
    if not number.is_finite():
        raise InputError(field, f"{_show(value)} is not a finite number.")
    if number.is_zero():
        zero_exponent = number.as_tuple().exponent
        assert isinstance(zero_exponent, int)  # finite
        number = Decimal(0).scaleb(min(0, zero_exponent))  # -0 and 0E+9 alike
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    places = max(0, -exponent)
    whole_digits = max(0, len(digits) + exponent) if not number.is_zero() else 0
    if places > decimal_places:
        raise InputError(
            field,
            f"{_show(value)} has more than {decimal_places} decimal places.",
            "max_decimal_places",
        )
    if whole_digits > max_digits - decimal_places:
        raise InputError(
            field,
            f"{_show(value)} is too large: at most "
            f"{max_digits - decimal_places} digits before the point.",
            "max_whole_digits",
        )
    if min_value is not None and number < min_value:
        raise InputError(field, f"{_show(value)} is below the minimum of {min_value}.", "min_value")
    if max_value is not None and number > max_value:
        raise InputError(field, f"{_show(value)} is above the maximum of {max_value}.", "max_value")
    return number


def parse_money(
    value: Any,
    *,
    field: str,
    allow_negative: bool = False,
    max_value: Decimal | None = None,
    allow_blank: bool = False,
) -> Decimal | None:
    """An amount in dollars and cents (at most 12 digits before the point, 2 after), not
    negative unless ``allow_negative``. More than cents is refused, not rounded."""
    return parse_decimal(
        value,
        field=field,
        min_value=None if allow_negative else 0,
        max_value=max_value,
        max_digits=14,
        decimal_places=2,
        allow_blank=allow_blank,
    )


def parse_int(
    value: Any,
    *,
    field: str,
    min_value: int | None = None,
    max_value: int | None = None,
    allow_blank: bool = False,
) -> int | None:
    """A whole number: an int, a float with no fraction, or a string of digits."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if allow_blank:
            return None
        raise InputError(field, "is required.", "required")
    if isinstance(value, bool):
        raise InputError(field, f"must be a whole number, not {_show(value)}.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        number = int(value)
    elif isinstance(value, str) and _INT_RE.match(value.strip()):
        number = int(value.strip())
    else:
        raise InputError(field, f"{_show(value)} is not a whole number.")
    if min_value is not None and number < min_value:
        raise InputError(field, f"{number} is below the minimum of {min_value}.", "min_value")
    if max_value is not None and number > max_value:
        raise InputError(field, f"{number} is above the maximum of {max_value}.", "max_value")
    return number


def parse_bool(value: Any, *, field: str) -> bool:
    """``true``/``false`` (JSON) or the usual form values: true/false, 1/0, yes/no, on/off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
    raise InputError(field, f"must be true or false, not {_show(value)}.")


def parse_choice(value: Any, *, field: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    if not isinstance(value, str) or value not in allowed:
        raise InputError(
            field, f"{_show(value)} is not one of: {', '.join(allowed)}.", "invalid_choice"
        )
    return value


def parse_text(value: Any, *, field: str, max_length: int = 200) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be text, not {type(value).__name__}.")
    refuse_nul(value, field=field)
    if len(value) > max_length:
        raise InputError(field, f"is longer than {max_length} characters.", "max_length")
    return value


def parse_mapping(
    value: Any, *, field: str, allowed: Iterable[str] | None = None, max_items: int = 500
) -> dict[str, Any]:
    """A JSON object with text keys (no NUL), only ``allowed`` keys when given; unknown keys
    are refused, naming them."""
    if not isinstance(value, Mapping):
        raise InputError(field, f"must be an object of name: value, not {type(value).__name__}.")
    if len(value) > max_items:
        raise InputError(field, f"has more than {max_items} entries.")
    for key in value:
        if not isinstance(key, str) or not key.strip():
            raise InputError(field, f"{_show(key)} is not a valid name.")
        if "\x00" in key:
            raise InputError(
                field,
                f"key {_show(key)} contains a NUL character (\\u0000).",
                "null_characters_not_allowed",
            )
    if allowed is not None:
        known = set(allowed)
        unknown = sorted(set(value) - known)
        if unknown:
            raise InputError(
                field,
                f"unknown key(s): {', '.join(_show(k) for k in unknown)}; "
                f"expected some of: {', '.join(sorted(known))}.",
                "unknown_keys",
            )
    return dict(value)


def decimal_text(value: Decimal) -> str:
    """A parsed decimal as plain text for JSON (no exponent), e.g. Decimal('1E+3') -> '1000'."""
    return f"{value:f}"


class StrictDecimalFormField(forms.DecimalField):
    """A form DecimalField that always bounds digits and places (Django leaves them open when
    ``max_digits`` is not given, so "1e400" reaches the service)."""

    def __init__(
        self,
        *,
        max_digits: int = DEFAULT_MAX_DIGITS,
        decimal_places: int = DEFAULT_DECIMAL_PLACES,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)

    def to_python(self, value: Any) -> Decimal | None:  # type: ignore[override]  # stub: int
        if value in self.empty_values:
            return None
        try:
            return parse_decimal(
                value,
                field="value",
                max_digits=self.max_digits or 20,
                decimal_places=self.decimal_places or 0,
            )
        except InputError as exc:
            raise ValidationError(exc.reason, code="invalid") from exc


class StrictBooleanFormField(forms.NullBooleanField):
    """A yes/no form value read strictly: blank is None, anything unrecognised is an error."""

    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]
        if value in (None, ""):
            return None
        try:
            return parse_bool(value, field="value")
        except InputError as exc:
            raise ValidationError(exc.reason, code="invalid") from exc

    def validate(self, value: Any) -> None:
        if value is None and self.required:
            raise ValidationError(self.error_messages["required"], code="required")
