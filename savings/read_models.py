"""A stored savings calculation read back as typed figures (``SavingsCalculation.read``).

``SavingsCalculation.result`` holds ``savings.engine.SavingsResult.to_dict()``. The engine's
result types are the one definition of that shape (``savings/engine/results.py``), defaults for
the fields added after calculations were first stored included: an older stored calculation reads
with ``rule_notes`` and ``flags`` empty, ``fees_not_covered`` and ``withheld_no_entitled`` zero
(no floor or withholding was recorded then), ``before_joining_cases`` zero and ``can_earn``
``None`` (unknown). The classes here add only the reading (``ReadModel.from_stored``, see
``comanage/core/read_models.py``) and what a page says in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from comanage.core.read_models import ReadModel
from savings.engine import results as engine
from savings.engine.inputs import KeyIndicatorOutcome, SavingsTerms

# The nested rows that need nothing more than the engine's own types.
SavingsFlag = engine.Flag
RuleNote = engine.RuleNote
PhysicianSafeguards = engine.PhysicianSafeguards
SavingsTermsRead = SavingsTerms
KeyIndicator = KeyIndicatorOutcome

__all__ = [
    "ENTITLEMENTS",
    "KeyIndicator",
    "OpportunityResult",
    "PhysicianSafeguards",
    "PhysicianShare",
    "RuleNote",
    "SavingsFlag",
    "SavingsResult",
    "SavingsTermsRead",
]

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
class OpportunityResult(engine.OpportunityResult, ReadModel):
    @property
    def volume_factor_pct(self) -> Decimal:
        """The applied volume factor as a percentage (0.879121 -> 87.9121)."""
        return self.applied_volume_factor * 100


@dataclass(frozen=True, kw_only=True)
class PhysicianShare(engine.PhysicianResult, ReadModel):
    """One physician's share of the pool. ``physician_id`` is the engine's id (a string)."""

    @property
    def entitlement_label(self) -> str:
        return ENTITLEMENTS.get(self.entitlement, self.entitlement.replace("_", " "))

    @property
    def name(self) -> str:
        return f"Dr {self.first_name} {self.last_name}".replace("  ", " ").strip()


@dataclass(frozen=True, kw_only=True)
class SavingsResult(engine.SavingsResult, ReadModel):
    # The same fields, read as the rows above (with their words for a page).
    opportunities: tuple[OpportunityResult, ...]
    physicians: tuple[PhysicianShare, ...]

    def physician(self, physician_id: object) -> PhysicianShare | None:
        wanted = str(physician_id)
        return next((p for p in self.physicians if p.physician_id == wanted), None)

    def opportunity(self, key: str) -> OpportunityResult | None:
        return next((o for o in self.opportunities if o.key == key), None)
