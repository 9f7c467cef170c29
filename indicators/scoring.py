"""The pay-for-performance incentive of a co-management agreement (spec section 2, example C).

Pure functions over dataclasses: the service loads the frozen terms and the year's indicator
results, calls ``incentive_compute`` and stores the returned ``IncentiveResult``, which carries
every intermediate figure (tier met, payout, policy applied, weight used) so the adjudication
report can show how each dollar was earned.

Decisions the spec leaves open, documented here:

* **No score** (a zero denominator, spec section 3) is treated like an insufficient
  denominator: the agreement's ``small_denominator_policy`` applies to it, and the report says
  so with status ``no_score``.
* An indicator with a ``minimum_denominator`` but no reported denominator cannot show it met
  the minimum, so it is ``insufficient_denominator``.
* Under ``redistribute`` with no scored indicator at all there is nothing to redistribute to:
  the earned total is 0.00.
* ``incentive_compute`` refuses results missing for an indicator (a data gap must not silently
  become a redistribution); ``year_to_date_projection`` treats them as ``no_score``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Any, Literal

from comanage.core.money import allocate_largest_remainder, round_money, to_decimal
from comanage.core.serialise import fields_jsonable

Direction = Literal["higher_is_better", "lower_is_better"]
TierMode = Literal["step", "linear"]
SmallDenominatorPolicy = Literal["redistribute", "zero", "hold_harmless"]
Status = Literal["scored", "insufficient_denominator", "no_score"]

DIRECTIONS = ("higher_is_better", "lower_is_better")
TIER_MODES = ("step", "linear")
POLICIES = ("redistribute", "zero", "hold_harmless")
STANDARD_TIER_NAMES = ("threshold", "target", "stretch")
STANDARD_PAYOUTS = (Decimal(50), Decimal(75), Decimal(100))
HUNDRED = Decimal(100)

# Sums of weight × payout are done at this precision so they are exact (weights and payouts
# carry at most ~30 significant digits) and therefore independent of indicator order.
_EXACT_PRECISION = 80


def _decimal_field(obj: object, name: str) -> None:
    object.__setattr__(obj, name, to_decimal(getattr(obj, name)))


@dataclass(frozen=True)
class Tier:
    """A cut-point and the share of the indicator's weight paid when it is met (percent)."""

    name: str
    cut_point: Decimal
    payout_pct: Decimal

    def __post_init__(self) -> None:
        _decimal_field(self, "cut_point")
        _decimal_field(self, "payout_pct")


@dataclass(frozen=True)
class IndicatorTerms:
    """One indicator's frozen terms for a programme year.

    ``tiers`` run from the easiest to the hardest (threshold, target, stretch). ``weight`` is a
    percentage of the pool; all the agreement's weights sum to exactly 100.
    """

    key: str
    name: str
    direction: Direction
    weight: Decimal
    tiers: tuple[Tier, ...]
    minimum_denominator: int | None = None

    def __post_init__(self) -> None:
        _decimal_field(self, "weight")
        object.__setattr__(self, "tiers", tuple(self.tiers))

    @classmethod
    def standard(
        cls,
        *,
        key: str,
        name: str,
        direction: Direction,
        weight: object,
        threshold: object,
        target: object,
        stretch: object,
        minimum_denominator: int | None = None,
        payouts: Sequence[object] = STANDARD_PAYOUTS,
    ) -> IndicatorTerms:
        """Threshold / target / stretch tiers with the default 50 / 75 / 100 payouts."""
        cuts = (threshold, target, stretch)
        tiers = tuple(
            Tier(name=tier_name, cut_point=to_decimal(cut), payout_pct=to_decimal(payout))
            for tier_name, cut, payout in zip(STANDARD_TIER_NAMES, cuts, payouts, strict=True)
        )
        return cls(
            key=key,
            name=name,
            direction=direction,
            weight=to_decimal(weight),
            tiers=tiers,
            minimum_denominator=minimum_denominator,
        )

    def target_tier(self) -> Tier | None:
        """The tier named ``target`` (what ``hold_harmless`` pays)."""
        return next((t for t in self.tiers if t.name == "target"), None)


@dataclass(frozen=True)
class IndicatorResult:
    """The year's result for one indicator: the unrounded score and the denominator n."""

    key: str
    score: Decimal | None
    denominator: int | None = None

    def __post_init__(self) -> None:
        if self.score is not None:
            _decimal_field(self, "score")


@dataclass(frozen=True)
class IncentiveTerms:
    """The agreement-level incentive terms: the fixed pool and the two policies."""

    pool: Decimal
    tier_mode: TierMode = "step"
    small_denominator_policy: SmallDenominatorPolicy = "redistribute"

    def __post_init__(self) -> None:
        _decimal_field(self, "pool")


@dataclass(frozen=True)
class TermsError:
    """One problem in the terms; ``indicator`` is the key (``None`` for agreement-level)."""

    indicator: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.indicator}.{self.field}" if self.indicator else self.field
        return f"{where}: {self.message}"


class TermsInvalid(ValueError):
    def __init__(self, errors: Sequence[TermsError]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(str(e) for e in self.errors))


def terms_validate(
    *, terms: IncentiveTerms, indicators: Sequence[IndicatorTerms]
) -> list[TermsError]:
    """Every problem in the incentive terms (spec section 2); empty when they are usable."""
    errors: list[TermsError] = []
    if terms.pool < 0 or terms.pool != round_money(terms.pool):
        errors.append(TermsError(None, "pool", "the pool is a non-negative amount in cents"))
    if terms.tier_mode not in TIER_MODES:
        errors.append(TermsError(None, "tier_mode", f"must be one of {list(TIER_MODES)}"))
    if terms.small_denominator_policy not in POLICIES:
        errors.append(
            TermsError(None, "small_denominator_policy", f"must be one of {list(POLICIES)}")
        )
    if not indicators:
        errors.append(TermsError(None, "indicators", "at least one indicator is needed"))
    keys = [i.key for i in indicators]
    for key in sorted({k for k in keys if keys.count(k) > 1}):
        errors.append(TermsError(key, "key", "indicator keys must be unique"))
    total_weight = sum((i.weight for i in indicators), Decimal(0))
    if indicators and total_weight != HUNDRED:
        errors.append(
            TermsError(
                None, "weight", f"weights must sum to exactly 100; they sum to {total_weight}"
            )
        )
    for indicator in indicators:
        errors.extend(_indicator_errors(indicator, terms))
    return errors


def _tier_order_errors(direction: str, easier: Tier, harder: Tier) -> list[tuple[str, str]]:
    """Two neighbouring tiers: cut points in the indicator's direction, payouts not falling."""
    errors = []
    if direction == "higher_is_better" and not easier.cut_point < harder.cut_point:
        errors.append(
            (
                f"tiers.{harder.name}.cut_point",
                f"higher is better: {easier.name} ({easier.cut_point}) must be below "
                f"{harder.name} ({harder.cut_point})",
            )
        )
    if direction == "lower_is_better" and not easier.cut_point > harder.cut_point:
        errors.append(
            (
                f"tiers.{harder.name}.cut_point",
                f"lower is better: {easier.name} ({easier.cut_point}) must be above "
                f"{harder.name} ({harder.cut_point})",
            )
        )
    if harder.payout_pct < easier.payout_pct:
        errors.append(
            (
                f"tiers.{harder.name}.payout_pct",
                f"payout must not fall from {easier.name} ({easier.payout_pct}%) to "
                f"{harder.name} ({harder.payout_pct}%)",
            )
        )
    return errors


def _tiers_errors(indicator: IndicatorTerms) -> list[tuple[str, str]]:
    """Unique tier names, payouts from 0 to 100 percent, and each tier harder than the last."""
    errors = []
    names = [t.name for t in indicator.tiers]
    if len(set(names)) != len(names):
        errors.append(("tiers", "tier names must be unique"))
    for tier in indicator.tiers:
        if not HUNDRED >= tier.payout_pct >= 0:
            errors.append(
                (f"tiers.{tier.name}.payout_pct", "payout must be between 0 and 100 percent")
            )
    for easier, harder in zip(indicator.tiers, indicator.tiers[1:], strict=False):
        errors.extend(_tier_order_errors(indicator.direction, easier, harder))
    return errors


def _indicator_errors(indicator: IndicatorTerms, terms: IncentiveTerms) -> list[TermsError]:
    errors: list[TermsError] = []

    def err(field_name: str, message: str) -> None:
        errors.append(TermsError(indicator.key, field_name, message))

    if indicator.direction not in DIRECTIONS:
        err("direction", f"must be one of {list(DIRECTIONS)}")
    if indicator.weight <= 0:
        err("weight", "must be above 0")
    if indicator.minimum_denominator is not None and indicator.minimum_denominator < 0:
        err("minimum_denominator", "must not be negative")
    if not indicator.tiers:
        err("tiers", "at least one tier is needed")
        return errors
    for field_name, message in _tiers_errors(indicator):
        err(field_name, message)
    if terms.small_denominator_policy == "hold_harmless" and indicator.target_tier() is None:
        err("tiers", "hold_harmless pays the target payout, so a tier named 'target' is needed")
    return errors


# --------------------------------------------------------------------------------------------
# Payout of one indicator
# --------------------------------------------------------------------------------------------


def _meets(score: Decimal, cut_point: Decimal, direction: str) -> bool:
    # Compared unrounded: 94.996 does not meet 95 (spec section 2).
    return score >= cut_point if direction == "higher_is_better" else score <= cut_point


def tier_payout(
    *, indicator: IndicatorTerms, score: Decimal, tier_mode: TierMode = "step"
) -> tuple[Tier | None, Decimal]:
    """The highest tier ``score`` meets and the payout percent it earns.

    ``step``: the payout of the highest tier met, 0 below the first. ``linear``: between two
    tiers, the payout is interpolated on the straight line joining them (spec example C: 92.5
    between 90 @ 75% and 95 @ 100% pays 87.5%); at or beyond the last tier, its payout.
    """
    score = to_decimal(score)
    met_index = -1
    for index, tier in enumerate(indicator.tiers):
        if _meets(score, tier.cut_point, indicator.direction):
            met_index = index
    if met_index < 0:
        return None, Decimal(0)
    met = indicator.tiers[met_index]
    payout = met.payout_pct
    if tier_mode == "linear" and met_index + 1 < len(indicator.tiers):
        # The fraction of the way from the met cut-point to the next one; both differences
        # carry the direction's sign, so the same formula serves lower-is-better.
        following = indicator.tiers[met_index + 1]
        fraction = (score - met.cut_point) / (following.cut_point - met.cut_point)
        payout = met.payout_pct + (following.payout_pct - met.payout_pct) * fraction
    return met, min(payout, HUNDRED)


# --------------------------------------------------------------------------------------------
# The incentive
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorOutcome:
    """How one indicator fared; ``earned`` is its share of the earned total."""

    key: str
    name: str
    direction: str
    weight: Decimal
    weight_used: Decimal
    score: Decimal | None
    display_score: Decimal | None
    denominator: int | None
    minimum_denominator: int | None
    status: Status
    tier_met: str | None
    payout_pct: Decimal
    policy_applied: SmallDenominatorPolicy | None
    earned: Decimal
    note: str

    def to_dict(self) -> dict[str, Any]:
        return fields_jsonable(self)


@dataclass(frozen=True)
class IncentiveResult:
    """The incentive with every intermediate figure (spec section 2).

    ``weighted_payout_sum`` is Σ(weight × payout); ``payout_divisor`` is what it is divided by
    (100 × 100, or scored weight × 100 under ``redistribute``); ``earned_total`` is
    pool × sum ÷ divisor half-up to cents.
    """

    pool: Decimal
    tier_mode: TierMode
    small_denominator_policy: SmallDenominatorPolicy
    scored_weight: Decimal
    weighted_payout_sum: Decimal
    payout_divisor: Decimal
    earned_total: Decimal
    unearned: Decimal
    indicators: tuple[IndicatorOutcome, ...]
    is_projection: bool = False
    as_of: dt.date | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def outcome(self, key: str) -> IndicatorOutcome:
        return next(o for o in self.indicators if o.key == key)

    def to_dict(self) -> dict[str, Any]:
        return fields_jsonable(self)


def denominator_shortfall(*, minimum: int | None, n: int | None) -> str:
    """Why a result with a score is still not scored (its n is under the minimum), or ``""``.

    The one wording used by the engine, the charts and the pages (spec section 3)."""
    if minimum is None:
        return ""
    if n is None:
        return f"denominator not reported; minimum is {minimum}"
    if n < minimum:
        return f"n = {n} is below the minimum of {minimum}"
    return ""


def _status(indicator: IndicatorTerms, result: IndicatorResult) -> tuple[Status, str]:
    if result.score is None:
        return "no_score", "no score (zero denominator or no data)"
    shortfall = denominator_shortfall(minimum=indicator.minimum_denominator, n=result.denominator)
    if shortfall:
        return "insufficient_denominator", shortfall
    return "scored", ""


def incentive_compute(
    *,
    terms: IncentiveTerms,
    indicators: Sequence[IndicatorTerms],
    results: Sequence[IndicatorResult] | Mapping[str, IndicatorResult],
) -> IncentiveResult:
    """The year's earned incentive and its split across the indicators (spec section 2).

    Raises ``TermsInvalid`` for unusable terms and ``ValueError`` when a result is missing or
    names an unknown indicator.
    """
    by_key = _results_by_key(results)
    known = {i.key for i in indicators}
    unknown = sorted(set(by_key) - known)
    if unknown:
        raise ValueError(f"results for unknown indicator(s): {', '.join(unknown)}")
    missing = [i.key for i in indicators if i.key not in by_key]
    if missing:
        raise ValueError(f"no result for indicator(s): {', '.join(missing)}")
    return _compute(terms=terms, indicators=indicators, by_key=by_key)


def year_to_date_projection(
    *,
    terms: IncentiveTerms,
    indicators: Sequence[IndicatorTerms],
    results: Sequence[IndicatorResult] | Mapping[str, IndicatorResult],
    as_of: dt.date,
) -> IncentiveResult:
    """The incentive if the programme year ended on ``as_of`` with the interim results.

    Same arithmetic as ``incentive_compute``, flagged ``is_projection``; an indicator without an
    interim result yet counts as ``no_score``. Projections are for dashboards only: nothing is
    paid on them (spec section 4: no interim payouts).
    """
    by_key = _results_by_key(results)
    unknown = sorted(set(by_key) - {i.key for i in indicators})
    if unknown:
        raise ValueError(f"results for unknown indicator(s): {', '.join(unknown)}")
    for indicator in indicators:
        by_key.setdefault(indicator.key, IndicatorResult(key=indicator.key, score=None))
    return _compute(terms=terms, indicators=indicators, by_key=by_key, as_of=as_of)


def _results_by_key(
    results: Sequence[IndicatorResult] | Mapping[str, IndicatorResult],
) -> dict[str, IndicatorResult]:
    items = list(results.values()) if isinstance(results, Mapping) else list(results)
    by_key: dict[str, IndicatorResult] = {}
    for result in items:
        if result.key in by_key:
            raise ValueError(f"two results for indicator {result.key}")
        by_key[result.key] = result
    return by_key


def _compute(
    *,
    terms: IncentiveTerms,
    indicators: Sequence[IndicatorTerms],
    by_key: Mapping[str, IndicatorResult],
    as_of: dt.date | None = None,
) -> IncentiveResult:
    errors = terms_validate(terms=terms, indicators=indicators)
    if errors:
        raise TermsInvalid(errors)
    policy = terms.small_denominator_policy

    # Step 1: status, tier and payout per indicator; unscored ones follow the policy
    # (redistribute: out of the divisor; zero: pays 0; hold_harmless: the target payout).
    rows = []
    for indicator in indicators:
        result = by_key[indicator.key]
        status, note = _status(indicator, result)
        tier: Tier | None = None
        policy_applied: SmallDenominatorPolicy | None = None
        if status == "scored":
            assert result.score is not None
            tier, payout = tier_payout(
                indicator=indicator, score=result.score, tier_mode=terms.tier_mode
            )
        else:
            policy_applied = policy
            target = indicator.target_tier()
            payout = target.payout_pct if policy == "hold_harmless" and target else Decimal(0)
            note = f"{note}; {policy} applied"
        rows.append((indicator, result, status, tier, payout, policy_applied, note))

    with localcontext() as exact:
        exact.prec = _EXACT_PRECISION
        # Step 2: Σ(weight × payout) and the divisor: 100 × 100, or the scored weight × 100
        # under redistribute (the unscored weight is shared pro rata among the scored ones).
        products = [row[0].weight * row[4] for row in rows]
        weighted_sum = sum(products, Decimal(0))
        scored_weight = sum((row[0].weight for row in rows if row[2] == "scored"), Decimal(0))
        divisor = scored_weight * HUNDRED if policy == "redistribute" else HUNDRED * HUNDRED
        # Step 3: earned total = pool × sum ÷ divisor, half-up to cents; never above the pool
        # because every payout is at most 100%.
        exact_total = terms.pool * weighted_sum / divisor if divisor else Decimal(0)
    earned_total = round_money(exact_total)

    # Step 4: split in proportion to weight × payout, floored, leftover cents to the largest
    # remainders, ties in indicator order (allocate_largest_remainder).
    if earned_total:
        parts = allocate_largest_remainder(earned_total, products)
    else:
        parts = [round_money(0) for _ in rows]

    outcomes = []
    for (indicator, result, status, tier, payout, policy_applied, note), part in zip(
        rows, parts, strict=True
    ):
        if policy == "redistribute":
            weight_used = (
                indicator.weight * HUNDRED / scored_weight
                if status == "scored" and scored_weight
                else Decimal(0)
            )
        else:
            weight_used = indicator.weight
        outcomes.append(
            IndicatorOutcome(
                key=indicator.key,
                name=indicator.name,
                direction=indicator.direction,
                weight=indicator.weight,
                weight_used=weight_used,
                score=result.score,
                display_score=None if result.score is None else round_money(result.score),
                denominator=result.denominator,
                minimum_denominator=indicator.minimum_denominator,
                status=status,
                tier_met=tier.name if tier else None,
                payout_pct=payout,
                policy_applied=policy_applied,
                earned=part,
                note=note,
            )
        )
    notes: tuple[str, ...] = ()
    if policy == "redistribute" and not scored_weight:
        notes = ("no indicator was scored: nothing to redistribute to, so nothing is earned",)
    return IncentiveResult(
        pool=terms.pool,
        tier_mode=terms.tier_mode,
        small_denominator_policy=policy,
        scored_weight=scored_weight,
        weighted_payout_sum=weighted_sum,
        payout_divisor=divisor,
        earned_total=earned_total,
        unearned=terms.pool - earned_total,
        indicators=tuple(outcomes),
        is_projection=as_of is not None,
        as_of=as_of,
        notes=notes,
    )


__all__ = [
    "IncentiveResult",
    "IncentiveTerms",
    "IndicatorOutcome",
    "IndicatorResult",
    "IndicatorTerms",
    "TermsError",
    "TermsInvalid",
    "Tier",
    "incentive_compute",
    "terms_validate",
    "tier_payout",
    "year_to_date_projection",
]
