"""What-if overrides of a shared-savings year, read strictly (spec section 4).

``{"terms": {field: value}, "quantity_pct": {item: percent of recorded quantity},
"prices": {item: unit cost}, "already_distributed": amount, "key_indicators_met": bool}``

Every key and value is checked before a job is queued or anything computed: unknown keys and
items, non-finite or unbounded numbers, negative prices, amounts and quantities (the spec's
acquisition costs, fees, caps and quantities are never negative), a physician share above 50%,
booleans other than true/false, and NUL characters (PostgreSQL cannot store them) are each an
``InputError`` naming the field (``overrides.prices.CLOSE-01``). The result is the same
overrides normalised (decimals as plain strings), safe to hash and store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from agreements.models import LeaverPolicy, NegativeOpportunities, QualityGate, VolumeCapScope
from comanage.core.inputs import (
    Digits,
    InputError,
    decimal_text,
    parse_bool,
    parse_choice,
    parse_decimal,
    parse_mapping,
    parse_money,
    refuse_nul,
)

SAVINGS_OVERRIDE_KEYS = (
    "already_distributed",
    "key_indicators_met",
    "prices",
    "quantity_pct",
    "terms",
)
PERCENT_DIGITS: Digits = {"max_digits": 7, "decimal_places": 4}
COST_DIGITS: Digits = {"max_digits": 16, "decimal_places": 4}
MAX_PHYSICIAN_SHARE = Decimal("50")
# A what-if volume: up to ten times the recorded quantity.
MAX_QUANTITY_PCT = Decimal("1000")
MONEY_TERMS = ("admin_fee_monthly", "distribution_cap")
PERCENT_TERMS = ("min_savings_threshold_pct", "physician_share_pct", "severity_tolerance_pct")
CHOICE_TERMS = {
    "volume_cap_scope": VolumeCapScope,
    "negative_opportunities": NegativeOpportunities,
    "quality_gate": QualityGate,
    "leaver_policy": LeaverPolicy,
}
TERM_KEYS = (*MONEY_TERMS, *PERCENT_TERMS, *CHOICE_TERMS, "reprice_baseline")


def _terms(value: Any, field: str) -> dict[str, Any]:
    data = parse_mapping(value, field=field, allowed=TERM_KEYS)
    out: dict[str, Any] = {}
    for name, raw in data.items():
        where = f"{field}.{name}"
        if name in MONEY_TERMS:
            out[name] = decimal_text(parse_money(raw, field=where))  # type: ignore[arg-type]
        elif name in PERCENT_TERMS:
            top = MAX_PHYSICIAN_SHARE if name == "physician_share_pct" else Decimal(100)
            number = parse_decimal(
                raw,
                field=where,
                min_value=0,
                max_value=top,
                allow_blank=name == "min_savings_threshold_pct",
                **PERCENT_DIGITS,
            )
            out[name] = None if number is None else decimal_text(number)
        elif name in CHOICE_TERMS:
            out[name] = parse_choice(raw, field=where, choices=CHOICE_TERMS[name].values)
        else:
            out[name] = parse_bool(raw, field=where)
    return out


def _items(value: Any, field: str, item_codes: set[str] | None) -> dict[str, Any]:
    data = parse_mapping(value, field=field)
    if item_codes is not None:
        unknown = sorted(set(data) - item_codes)
        if unknown:
            raise InputError(
                field,
                f"no agreed savings opportunity uses item(s) "
                f"{', '.join(repr(u) for u in unknown[:10])}.",
                "unknown_keys",
            )
    return data


def savings_overrides_parse(
    *,
    overrides: Mapping[str, Any] | None,
    item_codes: Iterable[str] | None = None,
    field: str = "overrides",
) -> dict[str, Any]:
    """The overrides normalised, or ``InputError`` naming the first bad field.

    ``item_codes``: the items of the agreement's agreed opportunities; items outside them are
    refused (a price or volume change of an item no opportunity uses models nothing)."""
    if overrides is None:
        return {}
    refuse_nul(overrides, field=field)
    data = parse_mapping(overrides, field=field, allowed=SAVINGS_OVERRIDE_KEYS)
    items = set(item_codes) if item_codes is not None else None
    out: dict[str, Any] = {}
    if "terms" in data:
        out["terms"] = _terms(data["terms"], f"{field}.terms")
    if "quantity_pct" in data:
        where = f"{field}.quantity_pct"
        out["quantity_pct"] = {
            item: decimal_text(
                parse_decimal(
                    pct,
                    field=f"{where}.{item}",
                    min_value=0,  # type: ignore[arg-type]
                    max_value=MAX_QUANTITY_PCT,
                    **PERCENT_DIGITS,
                )
            )
            for item, pct in _items(data["quantity_pct"], where, items).items()
        }
    if "prices" in data:
        where = f"{field}.prices"
        out["prices"] = {
            item: decimal_text(
                parse_decimal(
                    cost,
                    field=f"{where}.{item}",
                    min_value=0,  # type: ignore[arg-type]
                    **COST_DIGITS,
                )
            )
            for item, cost in _items(data["prices"], where, items).items()
        }
    if "already_distributed" in data:
        out["already_distributed"] = decimal_text(
            parse_money(  # type: ignore[arg-type]
                data["already_distributed"], field=f"{field}.already_distributed"
            )
        )
    if "key_indicators_met" in data:
        out["key_indicators_met"] = parse_bool(
            data["key_indicators_met"], field=f"{field}.key_indicators_met"
        )
    return out


def agreed_item_codes(*, agreement: Any) -> set[str]:
    """The items of the agreement's agreed savings opportunities."""
    from .models import OpportunityStatus, SavingsOpportunity

    codes: set[str] = set()
    for item_codes in SavingsOpportunity.objects.filter(
        agreement=agreement, status=OpportunityStatus.AGREED
    ).values_list("item_codes", flat=True):
        codes.update(str(c) for c in item_codes or [])
    return codes
