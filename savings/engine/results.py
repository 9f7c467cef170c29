"""What a savings calculation returns: every intermediate figure, per opportunity and per
physician, the flags and the rule notes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from comanage.core.money import ZERO
from comanage.core.serialise import fields_jsonable

from .inputs import BaselineSource, Entitlement, KeyIndicatorOutcome, SavingsTerms

# --------------------------------------------------------------------------------------------
# Outputs


@dataclass(frozen=True, kw_only=True)
class Flag:
    """Something for the programme committee or counsel; the engine reports, never decides."""

    code: str
    subject: str
    message: str
    blocking: bool = False


# The spec's rules an edge case may cite (``../shared/spec/domain.md`` section 4, "Edge cases").
RULE_IDS: dict[str, str] = {
    "4.edge.whose-cases": "Whose cases count",
    "4.edge.one-case-many-rows": "One case, many rows",
    "4.edge.no-base-case": "No base-year case",
    "4.edge.reset-without-repricing": "Reset without repricing",
    "4.edge.fee-months": "Fee months",
    "4.edge.order-of-split": "Order of the split",
    "4.edge.nobody-entitled": "Nobody entitled",
    "4.edge.leavers-and-joiners": "Leavers and joiners",
    "4.edge.leftover-cents": "Leftover cents",
}


@dataclass(frozen=True, kw_only=True)
class RuleNote:
    """Which rule decided a figure, in plain English, for the report (spec 4 edge cases)."""

    rule: str  # a key of RULE_IDS
    title: str
    subject: str
    text: str


def rule_note(rule: str, subject: str, text: str) -> RuleNote:
    return RuleNote(rule=rule, title=RULE_IDS[rule], subject=subject, text=text)


# These result types are also the stored shape's read model (``savings/read_models.py`` adds
# only the reading and the words for a page). A field added after calculations were first
# stored has a default, so an older stored calculation reads with it: ``before_joining_cases``
# zero, ``can_earn`` ``None`` (unknown; the engine always says ``True`` or ``False``), ``flags``
# and ``rule_notes`` empty, ``withheld_no_entitled`` and ``fees_not_covered`` zero.


@dataclass(frozen=True, kw_only=True)
class OpportunityResult:
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
    baseline_source: BaselineSource
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
    flags: tuple[Flag, ...] = ()


@dataclass(frozen=True, kw_only=True)
class PhysicianSafeguards:
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
class PhysicianResult:
    physician_id: str
    npi: str
    last_name: str
    first_name: str
    entitlement: Entitlement
    participation_days: int
    year_days: int
    weight: Decimal
    amount: Decimal
    safeguards: PhysicianSafeguards


@dataclass(frozen=True, kw_only=True)
class SavingsResult:
    rules_version: str
    year_start: dt.date
    year_end: dt.date
    terms: SavingsTerms
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
    key_indicators: tuple[KeyIndicatorOutcome, ...]
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
    physicians: tuple[PhysicianResult, ...]
    cases_without_notice: int
    flags: tuple[Flag, ...] = ()
    rule_notes: tuple[RuleNote, ...] = ()
    # Net savings never go below zero (split step 1): the administrator fees that gross savings
    # did not cover, which the floor at zero absorbs (zero when gross savings cover the fees).
    fees_not_covered: Decimal = ZERO

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: Decimals as strings, dates ISO, tuples as lists; stable key order."""
        return fields_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def checksum(self) -> str:
        """SHA-256 of the canonical JSON: same inputs, same figures, same checksum."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def physician(self, physician_id: str) -> PhysicianResult | None:
        return next((p for p in self.physicians if p.physician_id == physician_id), None)

    def opportunity(self, key: str) -> OpportunityResult | None:
        return next((o for o in self.opportunities if o.key == key), None)
