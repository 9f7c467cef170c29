"""A stored savings calculation read back as typed figures (``SavingsCalculation.read``).

``SavingsCalculation.result`` holds ``savings.engine.SavingsResult.to_dict()``; these frozen
dataclasses mirror it with Decimals, dates and typed rows, for pages, PDFs and selectors. A
field the engine added after calculations were first stored has a default, so an older stored
calculation reads with that default: ``rule_notes`` and ``flags`` empty, ``fees_not_covered``
and ``withheld_no_entitled`` zero (no floor or withholding was recorded then),
``before_joining_cases`` zero and ``can_earn`` ``None`` (unknown). See
``comanage/core/read_models.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from comanage.core.money import ZERO
from comanage.core.read_models import ReadModel

# Entitlements as a reader says them (the engine's codes are ``savings.engine.Entitlement``).
ENTITLEMENTS = {
    "full": "Full year",
    "pro_rata_joiner": "Joined in the year (pro rata)",
    "pro_rata_leaver": "Left in the year (pro rata)",
    "forfeited_leaver": "Left: forfeited",
    "forfeited_for_cause": "Terminated for cause: forfeited",
    "not_participating": "Not participating this year",
}


@dataclass(frozen=True, kw_only=True)
class SavingsFlag(ReadModel):
    code: str
    subject: str
    message: str
    blocking: bool = False


@dataclass(frozen=True, kw_only=True)
class RuleNote(ReadModel):
    rule: str
    title: str
    subject: str
    text: str


@dataclass(frozen=True, kw_only=True)
class SavingsTermsRead(ReadModel):
    physician_share_pct: Decimal
    admin_fee_monthly: Decimal
    distribution_cap: Decimal
    volume_cap_scope: str
    negative_opportunities: str
    quality_gate: str
    min_savings_threshold_pct: Decimal | None = None
    leaver_policy: str
    reprice_baseline: bool
    severity_tolerance_pct: Decimal


@dataclass(frozen=True, kw_only=True)
class KeyIndicator(ReadModel):
    key: str
    name: str
    met: bool
    baseline: Decimal | None = None
    result: Decimal | None = None
    tolerance_pct: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class OpportunityResult(ReadModel):
    key: str
    name: str
    earns: bool
    case_types: tuple[str, ...]
    item_codes: tuple[str, ...]
    cases_of_type: int
    opted_out_cases: int
    before_joining_cases: int = 0
    post_termination_cases: int
    eligible_cases: int
    federal_eligible_cases: int
    original_base_cases: int
    base_cases: int
    base_federal_cases: int
    original_baseline_per_case: Decimal | None
    prior_year_per_case: Decimal | None
    baseline_source: str
    baseline_per_case: Decimal | None
    expected_cost: Decimal
    actual_cost: Decimal
    actual_per_case: Decimal | None
    floor_per_case: Decimal | None
    effective_actual_per_case: Decimal | None
    raw_savings: Decimal
    volume_factor: Decimal
    federal_volume_factor: Decimal | None
    applied_volume_factor: Decimal
    capped_savings: Decimal
    counted_savings: Decimal
    can_earn: bool | None = None
    savings_target: Decimal
    flags: tuple[SavingsFlag, ...] = ()

    @property
    def volume_factor_pct(self) -> Decimal:
        """The applied volume factor as a percentage (0.879121 -> 87.9121)."""
        return self.applied_volume_factor * 100


@dataclass(frozen=True, kw_only=True)
class PhysicianSafeguards(ReadModel):
    base_cases: int
    current_cases: int
    base_average_severity: Decimal | None
    current_average_severity: Decimal | None
    severity_change_pct: Decimal | None
    severity_flag: bool
    base_federal_cases: int
    current_federal_cases: int
    federal_rise_flag: bool
    cases_without_notice: int
    notice_flag: bool


@dataclass(frozen=True, kw_only=True)
class PhysicianShare(ReadModel):
    """One physician's share of the pool. ``physician_id`` is the engine's id (a string)."""

    physician_id: str
    npi: str
    last_name: str
    first_name: str
    entitlement: str
    participation_days: int
    year_days: int
    weight: Decimal
    amount: Decimal
    safeguards: PhysicianSafeguards

    @property
    def entitlement_label(self) -> str:
        return ENTITLEMENTS.get(self.entitlement, self.entitlement.replace("_", " "))

    @property
    def name(self) -> str:
        return f"Dr {self.first_name} {self.last_name}".replace("  ", " ").strip()


@dataclass(frozen=True, kw_only=True)
class SavingsResult(ReadModel):
    rules_version: str
    year_start: dt.date
    year_end: dt.date
    terms: SavingsTermsRead
    first_programme_year: bool
    opportunities: tuple[OpportunityResult, ...]
    total_expected_cost: Decimal
    gross_savings: Decimal
    min_savings_threshold_amount: Decimal | None
    min_savings_threshold_met: bool
    fee_months: int
    admin_fees: Decimal
    net_savings: Decimal
    physician_pool: Decimal
    hospital_share: Decimal
    key_indicators: tuple[KeyIndicator, ...]
    key_indicators_met: int
    quality_factor: Decimal
    pool_after_quality_gate: Decimal
    withheld_by_quality_gate: Decimal
    distribution_cap: Decimal
    already_distributed: Decimal
    cap_remaining_before: Decimal
    amount_paid: Decimal
    withheld_by_cap: Decimal
    withheld_no_entitled: Decimal = ZERO
    cumulative_distributed: Decimal
    cap_headroom: Decimal
    hospital_keeps: Decimal
    physicians: tuple[PhysicianShare, ...]
    cases_without_notice: int
    flags: tuple[SavingsFlag, ...] = ()
    rule_notes: tuple[RuleNote, ...] = ()
    fees_not_covered: Decimal = ZERO

    def physician(self, physician_id: object) -> PhysicianShare | None:
        wanted = str(physician_id)
        return next((p for p in self.physicians if p.physician_id == wanted), None)

    def opportunity(self, key: str) -> OpportunityResult | None:
        return next((o for o in self.opportunities if o.key == key), None)
