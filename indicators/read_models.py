"""The co-management incentive read back from its stored JSON as typed figures.

A calculation run stores ``indicators.scoring.IncentiveResult.to_dict()`` under
``CalculationRun.figures["incentive"]`` (``adjudication/read_models.py`` reads it through
``IncentiveRead``). Fields the engine leaves optional (the projection's ``as_of``, the notes, an
indicator's tier, policy and note) default to ``None`` or empty, so a run stored without them
reads as "none recorded". See ``comanage/core/read_models.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from comanage.core.read_models import ReadModel

STATUS_LABELS = {
    "scored": "Scored",
    "insufficient_denominator": "Too few cases to score",
    "no_score": "No score",
}


@dataclass(frozen=True, kw_only=True)
class IndicatorOutcomeRead(ReadModel):
    """How one indicator fared; ``earned`` is its share of the earned total."""

    key: str
    name: str
    direction: str
    weight: Decimal
    weight_used: Decimal
    score: Decimal | None = None
    display_score: Decimal | None = None
    denominator: int | None = None
    minimum_denominator: int | None = None
    status: str
    tier_met: str | None = None
    payout_pct: Decimal
    policy_applied: str | None = None
    earned: Decimal
    note: str = ""

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status.replace("_", " ").capitalize())


@dataclass(frozen=True, kw_only=True)
class IncentiveRead(ReadModel):
    """The incentive with every intermediate figure (spec section 2)."""

    pool: Decimal
    tier_mode: str
    small_denominator_policy: str
    scored_weight: Decimal
    weighted_payout_sum: Decimal
    payout_divisor: Decimal
    earned_total: Decimal
    unearned: Decimal
    indicators: tuple[IndicatorOutcomeRead, ...]
    is_projection: bool = False
    as_of: dt.date | None = None
    notes: tuple[str, ...] = ()

    def outcome(self, key: str) -> IndicatorOutcomeRead | None:
        return next((o for o in self.indicators if o.key == key), None)

    @property
    def payout_rate(self) -> Decimal | None:
        """Σ(weight × payout) as a percentage of the divisor (None when nothing was scored)."""
        if not self.payout_divisor:
            return None
        return self.weighted_payout_sum * 100 / self.payout_divisor
