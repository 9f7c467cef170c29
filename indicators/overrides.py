"""What-if overrides of a co-management incentive, read strictly (spec section 2).

``{"results": {key: {"score": "1.2", "denominator": 13}}, "weights": {key: "25"},
"tier_mode": "linear", "small_denominator_policy": "zero", "pool": "400000.00"}``

Every key, indicator key and value is checked before anything is computed; a bad one is an
``InputError`` naming its path (``overrides.results.ssi.score``). The result is the same
overrides normalised (decimals as plain strings, counts as ints), so it can be hashed and stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agreements.models import SmallDenominatorPolicy, TierMode
from comanage.core.inputs import (
    Digits,
    decimal_text,
    parse_choice,
    parse_decimal,
    parse_int,
    parse_mapping,
    parse_money,
)

INCENTIVE_OVERRIDE_KEYS = ("pool", "results", "small_denominator_policy", "tier_mode", "weights")
RESULT_KEYS = ("denominator", "score")
# A score as stored on an indicator result (max_digits 24, decimal_places 12).
SCORE_DIGITS: Digits = {"max_digits": 24, "decimal_places": 12}
WEIGHT_DIGITS: Digits = {"max_digits": 7, "decimal_places": 4}


def incentive_overrides_parse(
    *, indicator_keys: Iterable[str], overrides: Mapping[str, Any] | None, field: str = "overrides"
) -> dict[str, Any]:
    """The overrides normalised, or ``InputError`` naming the first bad field."""
    if overrides is None:
        return {}
    data = parse_mapping(overrides, field=field, allowed=INCENTIVE_OVERRIDE_KEYS)
    keys = list(indicator_keys)
    out: dict[str, Any] = {}
    if "pool" in data:
        pool = parse_money(data["pool"], field=f"{field}.pool")
        out["pool"] = decimal_text(pool)  # type: ignore[arg-type]
    if "tier_mode" in data:
        out["tier_mode"] = parse_choice(
            data["tier_mode"], field=f"{field}.tier_mode", choices=TierMode.values
        )
    if "small_denominator_policy" in data:
        out["small_denominator_policy"] = parse_choice(
            data["small_denominator_policy"],
            field=f"{field}.small_denominator_policy",
            choices=SmallDenominatorPolicy.values,
        )
    if "weights" in data:
        weights = parse_mapping(data["weights"], field=f"{field}.weights", allowed=keys)
        out["weights"] = {
            key: decimal_text(
                parse_decimal(
                    value,
                    field=f"{field}.weights.{key}",
                    min_value=0,  # type: ignore[arg-type]
                    max_value=100,
                    **WEIGHT_DIGITS,
                )
            )
            for key, value in weights.items()
        }
    if "results" in data:
        results = parse_mapping(data["results"], field=f"{field}.results", allowed=keys)
        parsed: dict[str, Any] = {}
        for key, spec in results.items():
            where = f"{field}.results.{key}"
            spec = parse_mapping(spec, field=where, allowed=RESULT_KEYS)
            entry: dict[str, Any] = {}
            if "score" in spec:
                score = parse_decimal(
                    spec["score"], field=f"{where}.score", allow_blank=True, **SCORE_DIGITS
                )
                entry["score"] = None if score is None else decimal_text(score)
            if "denominator" in spec:
                entry["denominator"] = parse_int(
                    spec["denominator"],
                    field=f"{where}.denominator",
                    min_value=0,
                    max_value=2_000_000_000,
                    allow_blank=True,
                )
            parsed[key] = entry
        out["results"] = parsed
    return out
