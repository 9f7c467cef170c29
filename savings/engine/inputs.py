"""The engine's inputs: the terms, opportunities, participants and key quality indicators the
service hands over, the usage columns, and the error a bad input raises."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import numpy as np

from comanage.core.money import ZERO, round_rational, to_decimal

RULES_VERSION = "savings-engine/2"
RATE_PLACES = 10
COST_SCALE_DIGITS = 4
_INT64_MAX = np.iinfo(np.int64).max

USAGE_COLUMNS: tuple[str, ...] = (
    "case_id",
    "service_date",
    "case_type",
    "physician_npi",
    "payer",
    "federal_program",
    "item_code",
    "quantity",
    "unit_cost",
    "severity_weight",
    "notice_date",
    "reviewed",
    "opted_out",
)

VolumeCapScope = Literal["all_payors", "federal_only"]
NegativeOpportunities = Literal["net", "floor_at_zero"]
QualityGate = Literal["all_or_nothing", "sliding"]
LeaverPolicy = Literal["pro_rata", "forfeit"]
BaselineSource = Literal["original", "prior_year", "none"]
Entitlement = Literal[
    "full",
    "pro_rata_joiner",
    "pro_rata_leaver",
    "forfeited_leaver",
    "forfeited_for_cause",
    "not_participating",
]


class SavingsInputError(ValueError):
    """The inputs cannot produce a year's figures (missing price, bad column, bad terms)."""


# --------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True, kw_only=True)
class Opportunity:
    """A savings opportunity: a set of items for one or more case types (spec 4)."""

    key: str
    name: str
    case_types: tuple[str, ...]
    item_codes: tuple[str, ...]
    savings_target: Decimal = ZERO
    floor_per_case: Decimal | None = None
    identified_at_signing: bool = True
    effective_from_year: int | None = None

    def earns_in(self, year: int) -> bool:
        if self.identified_at_signing:
            return True
        return self.effective_from_year is not None and year >= self.effective_from_year


@dataclass(frozen=True, kw_only=True)
class Participant:
    """A participating physician. Dates are inclusive: the leave/termination day still counts."""

    physician_id: str
    npi: str
    last_name: str
    first_name: str
    join_date: dt.date
    leave_date: dt.date | None = None
    termination_date: dt.date | None = None
    for_cause: bool = False

    @property
    def last_day(self) -> dt.date | None:
        days = [d for d in (self.leave_date, self.termination_date) if d is not None]
        return min(days) if days else None

    def window(self) -> tuple[int, int]:
        """The participation window as ordinals, inclusive (edge case "whose cases count")."""
        last = self.last_day
        return self.join_date.toordinal(), (
            last.toordinal() if last is not None else np.iinfo(np.int64).max
        )


@dataclass(frozen=True, kw_only=True)
class SavingsTerms:
    """The frozen savings terms of an agreement for one programme year (spec 4)."""

    physician_share_pct: Decimal = Decimal("50")
    admin_fee_monthly: Decimal
    distribution_cap: Decimal
    volume_cap_scope: VolumeCapScope = "all_payors"
    negative_opportunities: NegativeOpportunities = "net"
    quality_gate: QualityGate = "all_or_nothing"
    min_savings_threshold_pct: Decimal | None = None
    leaver_policy: LeaverPolicy = "pro_rata"
    reprice_baseline: bool = True
    severity_tolerance_pct: Decimal = Decimal("10")

    def validate(self) -> None:
        problems = []
        share = to_decimal(self.physician_share_pct)
        if not Decimal(0) <= share <= Decimal(50):
            problems.append(f"physician share {share}% must be between 0% and 50%")
        for name in ("admin_fee_monthly", "distribution_cap"):
            amount = to_decimal(getattr(self, name))
            if amount < 0 or amount != round_rational(amount):
                problems.append(f"{name} {amount} must be a non-negative amount in cents")
        choices = {
            "volume_cap_scope": ("all_payors", "federal_only"),
            "negative_opportunities": ("net", "floor_at_zero"),
            "quality_gate": ("all_or_nothing", "sliding"),
            "leaver_policy": ("pro_rata", "forfeit"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}")
        threshold = self.min_savings_threshold_pct
        if threshold is not None and to_decimal(threshold) < 0:
            problems.append("min_savings_threshold_pct must not be negative")
        if to_decimal(self.severity_tolerance_pct) < 0:
            problems.append("severity_tolerance_pct must not be negative")
        if problems:
            raise SavingsInputError("; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class KeyIndicatorOutcome:
    """A key quality indicator compared with its baseline; the caller decides ``met``."""

    key: str
    name: str
    met: bool
    baseline: Decimal | None = None
    result: Decimal | None = None
    tolerance_pct: Decimal | None = None
