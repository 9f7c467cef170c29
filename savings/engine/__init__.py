"""The shared-savings (gainsharing) engine: spec section 4, pure and deterministic.

No ORM and no Django here. The service layer loads an agreement's frozen terms and the uploaded
usage files, calls :func:`savings_compute`, and stores :meth:`SavingsResult.to_dict` (and its
:meth:`SavingsResult.checksum`) in the adjudication run.

How exactness is kept
---------------------
* Per-row work (parsing, eligibility, grouping) is done with pandas/numpy on integers only:
  ``unit_cost`` becomes integer ten-thousandths of a dollar (costs have at most 4 decimals;
  more is refused), ``quantity`` an integer scaled by ``10**q`` where ``q`` is the most decimal
  places any quantity in the frame has (usually 0), and line cost = quantity x unit cost is an
  exact int64 (scale ``10**(4+q)``). Sums are int64 group sums; if they could overflow, the sums
  fall back to Python integers. Strings are parsed once per distinct value with ``Decimal``
  (``pd.factorize``), never through float. Floats in money columns are refused.
* Everything after the grouping is a handful of numbers per opportunity, carried as exact
  ``fractions.Fraction``. "Cost per case" is therefore the exact rational
  (total / cases, e.g. 464,263.79 / 455), never a rounded figure. Rounding happens only at the
  spec's named points, half-up to cents via :func:`comanage.core.money.round_rational`:
  capped savings per opportunity, the physician pool, the sliding quality gate, and the
  per-capita split (floored, leftover cents in order, via ``allocate_in_order``).
* Figures that the spec does not round (per-case costs, volume factors, raw savings, expected
  and actual cost) are reported rounded half-up to :data:`RATE_PLACES` decimals (per-case, factor)
  or cents (totals) **for display only**; downstream steps use the exact values.

Interpretations (documented so the adjudication can cite them)
-------------------------------------------------------------
* Eligibility (spec 4 step 1 and the edge case "whose cases count") is decided per case: its case
  type, whether the patient opted out, and whether its date lies inside its physician's
  participation window, join date to leave or termination date, both inclusive. The window
  applies to the programme year and to year N-1; the base year stays as identified at signing.
* One case, many rows (edge case): a case is dated by its earliest service date, and all its rows
  must agree on case type, physician, federal flag, notice and opt-out; rows that disagree are
  refused (:class:`SavingsInputError` naming the case), as the import refuses them.
* Baseline reset: year N baseline per case = min(original base-year baseline, year N-1 actual
  per case), both priced at year N prices (or both as recorded when ``reprice_baseline`` is off).
  The "actual" is the unfloored actual per case of year N-1's eligible cases. Base-year cases for
  the volume cap are then year N-1's eligible (and federal eligible) cases.
* An opportunity earns only if identified at signing, or added by amendment with
  ``effective_from_year`` <= the programme year; otherwise its figures are shown but not counted.
* The minimum-savings threshold compares gross savings (after ``negative_opportunities``) with
  the exact percentage of the expected cost of the opportunities that can earn that year
  (counted, with a baseline and base-year cases); the threshold shown is rounded to cents.
* The split runs pool (rounded) -> quality gate (``sliding`` rounded half-up) -> cap -> per
  capita. When nobody is entitled, nothing is paid, the cap is not consumed, and a blocking flag
  says why.
* Every edge case that decided a figure leaves a :class:`RuleNote` (rule id, plain English) in
  :attr:`SavingsResult.rule_notes`, so the report can say which rule applied.
* Safeguards (per physician) look at the physician's eligible cases of the opportunities' case
  types in the programme year against the base year; the notice check looks at all their cases of
  those case types up to their termination (an opted-out case must also have a notice).
* A physician terminated for cause on or before the year end forfeits the year's share; a
  voluntary leaver (leave date, or termination not for cause, inside the year) gets days/year
  under ``pro_rata`` and nothing under ``forfeit``; a joiner gets days/year under both policies
  (``leaver_policy`` is for leavers only). Leftover cents go in (last name, first name, NPI)
  order, never by a database id.

The package re-exports the public names of its modules, so `from savings.engine import X` and
`engine.X` keep working: `inputs` (the terms, opportunities, participants and key indicators
the service hands over), `results` (what a calculation returns), `usage` (reading and
parsing usage files), `prepared` (a file prepared once; a year's aggregate from it),
`calculation` (spec 4 steps and the split), `analysis` (design-phase opportunity analysis).
"""

from __future__ import annotations

from .analysis import (
    CaseTypeCost,
    CaseTypeVariation,
    ItemCost,
    OpportunityAnalysis,
    PhysicianCost,
    opportunity_analysis,
)
from .calculation import distribution_cap_from_opportunities, savings_compute
from .inputs import (
    COST_SCALE_DIGITS,
    RATE_PLACES,
    RULES_VERSION,
    USAGE_COLUMNS,
    BaselineSource,
    Entitlement,
    KeyIndicatorOutcome,
    LeaverPolicy,
    NegativeOpportunities,
    Opportunity,
    Participant,
    QualityGate,
    SavingsInputError,
    SavingsTerms,
    VolumeCapScope,
)
from .prepared import PREPARED_VERSION, PreparedUsage, usage_prepare
from .results import (
    RULE_IDS,
    Flag,
    OpportunityResult,
    PhysicianResult,
    PhysicianSafeguards,
    RuleNote,
    SavingsResult,
    rule_note,
)
from .usage import UsageColumns, price_list_from_csv, usage_frame_from_csv

__all__ = [
    "BaselineSource",
    "COST_SCALE_DIGITS",
    "CaseTypeCost",
    "CaseTypeVariation",
    "Entitlement",
    "Flag",
    "ItemCost",
    "KeyIndicatorOutcome",
    "LeaverPolicy",
    "NegativeOpportunities",
    "Opportunity",
    "OpportunityAnalysis",
    "OpportunityResult",
    "PREPARED_VERSION",
    "Participant",
    "PhysicianCost",
    "PhysicianResult",
    "PhysicianSafeguards",
    "PreparedUsage",
    "QualityGate",
    "RATE_PLACES",
    "RULES_VERSION",
    "RULE_IDS",
    "RuleNote",
    "SavingsInputError",
    "SavingsResult",
    "SavingsTerms",
    "USAGE_COLUMNS",
    "UsageColumns",
    "VolumeCapScope",
    "distribution_cap_from_opportunities",
    "opportunity_analysis",
    "price_list_from_csv",
    "rule_note",
    "savings_compute",
    "usage_frame_from_csv",
    "usage_prepare",
]
