"""A calculation run read back from its stored JSON as typed figures (``CalculationRun.read``).

A run stores ``results`` (the totals, all strings), ``figures`` (each engine's ``to_dict()``:
``incentive``, ``savings``, ``fixed_fee``), ``flags``, ``diff`` and its ``inputs``. ``RunRead``
gives them as attributes with types: ``run.read.totals.total_to_pay`` is a ``Decimal``,
``run.read.incentive`` an ``IncentiveRead`` (or ``None`` for a shared-savings run),
``run.read.savings`` a ``SavingsResult``, ``run.read.fmv`` the FMV opinion the run was
calculated under (``FMVRead``, ``None`` when none covered the year), ``run.read.participants``
the co-management physicians the fees were split among. Totals that only one kind of agreement
records (or that older runs lack, such as the FMV headroom) are ``None``; an FMV opinion
recorded before its fixed portion was stored reads it as ``None``. See
``comanage/core/read_models.py``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any

from comanage.core.read_models import ReadModel
from indicators.read_models import IncentiveRead
from savings.read_models import SavingsResult


@dataclass(frozen=True, kw_only=True)
class RunTotals(ReadModel):
    """``CalculationRun.results``: every total is ``None`` where the run's kind records none."""

    kind: str = ""
    total_to_pay: Decimal | None = None
    # Co-management
    incentive_pool: Decimal | None = None
    incentive_earned: Decimal | None = None
    fixed_fee_annual: Decimal | None = None
    fixed_fee_payable: Decimal | None = None
    fixed_fee_held: Decimal | None = None
    total_compensation: Decimal | None = None
    fmv_total_max: Decimal | None = None
    fmv_headroom: Decimal | None = None
    # Shared savings
    gross_savings: Decimal | None = None
    admin_fees: Decimal | None = None
    net_savings: Decimal | None = None
    physician_pool: Decimal | None = None
    hospital_share: Decimal | None = None
    pool_after_quality_gate: Decimal | None = None
    withheld_by_quality_gate: Decimal | None = None
    distribution_cap: Decimal | None = None
    already_distributed: Decimal | None = None
    amount_paid: Decimal | None = None
    withheld_by_cap: Decimal | None = None
    cumulative_distributed: Decimal | None = None
    cap_headroom: Decimal | None = None
    hospital_keeps: Decimal | None = None
    total_expected_cost: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class FixedFeeLine(ReadModel):
    """One month of the fixed management fee (``agreements.fees.InstalmentLine``)."""

    month: dt.date
    instalment: Decimal
    required_hours: Decimal
    approved_hours: Decimal
    status: str
    amount_payable: Decimal
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class RunFlag(ReadModel):
    source: str = ""
    code: str = ""
    subject: str = ""
    message: str = ""
    blocking: bool = False


@dataclass(frozen=True, kw_only=True)
class FigureChange(ReadModel):
    """One figure that differs from the previous version: its stored path, old and new value
    as stored (``None`` where absent). ``adjudication.changes`` names it in words."""

    path: str
    old: Any = None
    new: Any = None


@dataclass(frozen=True, kw_only=True)
class FMVRead(ReadModel):
    """``CalculationRun.inputs["fmv"]``: the FMV opinion covering the year, as the run recorded
    it (``agreements.services.fmv.fmv_opinion_figures``). Only the maximum is always there."""

    id: int | None = None
    valuator: str = ""
    issue_date: dt.date | None = None
    effective_start: dt.date | None = None
    effective_end: dt.date | None = None
    total_max_annual: Decimal
    fixed_mode: str = ""
    fixed_annual: Decimal | None = None
    fixed_hours: Decimal | None = None
    hourly_rate: Decimal | None = None
    fixed_portion: Decimal | None = None
    max_incentive: Decimal | None = None
    rate_p25: Decimal | None = None
    rate_p50: Decimal | None = None
    rate_p75: Decimal | None = None
    rate_p90: Decimal | None = None
    justification: str = ""


@dataclass(frozen=True, kw_only=True)
class AgreementRead(ReadModel):
    """``CalculationRun.inputs["context"]["agreement"]``: the agreement as the run named it."""

    id: int
    name: str
    kind: str = ""
    practice: str = ""
    service_line: str = ""
    term_start: dt.date | None = None
    term_end: dt.date | None = None


@dataclass(frozen=True, kw_only=True)
class ProgrammeYearRead(ReadModel):
    """``CalculationRun.inputs["context"]["programme_year"]``."""

    id: int
    number: int
    start: dt.date
    end: dt.date
    label: str


@dataclass(frozen=True, kw_only=True)
class TermsRead(ReadModel):
    """``CalculationRun.inputs["context"]["terms"]``: the frozen terms the run used, the fields
    the reports show (a term not recorded, or not of this kind of agreement, is ``None``)."""

    version: int | None = None
    effective_from: dt.date | None = None
    annual_fixed_fee: Decimal | None = None
    incentive_pool: Decimal | None = None
    hours_shortfall_policy: str | None = None
    distribution_method: str | None = None
    physician_share_pct: Decimal | None = None
    admin_fee_monthly: Decimal | None = None
    volume_cap_scope: str | None = None
    negative_opportunities: str | None = None
    quality_gate: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunContext(ReadModel):
    """``CalculationRun.inputs["context"]``: what the run was for and under which terms."""

    agreement: AgreementRead
    programme_year: ProgrammeYearRead
    terms: TermsRead = TermsRead()


@dataclass(frozen=True, kw_only=True)
class ParticipantRead(ReadModel):
    """``CalculationRun.inputs["participants"]``: a physician the co-management fees were
    split among (``adjudication.calculation.ParticipantShare``)."""

    physician_id: int
    last_name: str = ""
    first_name: str = ""
    participation_days: int = 0
    year_days: int = 0
    ownership_pct: Decimal | None = None
    npi: str = ""

    @property
    def name(self) -> str:
        return " ".join(f"Dr {self.first_name} {self.last_name}".split())


class RunRead:
    """A run's stored JSON, each part parsed when first read (a list of runs reads only their
    totals, never every physician of every savings figure)."""

    def __init__(
        self,
        *,
        kind: str,
        results: dict[str, Any] | None,
        figures: dict[str, Any] | None,
        flags: list[dict[str, Any]] | None = None,
        diff: list[dict[str, Any]] | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.kind = kind
        self._results = results or {}
        self._figures = figures or {}
        self._flags = flags or []
        self._diff = diff or []
        self._inputs = inputs or {}

    @classmethod
    def from_run(cls, run: Any) -> RunRead:
        """A stored run, or an unsaved ``calculation.Payload`` (which has the same parts)."""
        return cls(
            kind=run.kind,
            results=run.results,
            figures=run.figures,
            flags=run.flags,
            diff=getattr(run, "diff", None),
            inputs=run.inputs,
        )

    @cached_property
    def totals(self) -> RunTotals:
        return RunTotals.from_stored(self._results)

    @cached_property
    def incentive(self) -> IncentiveRead | None:
        stored = self._figures.get("incentive")
        return IncentiveRead.from_stored(stored) if stored else None

    @cached_property
    def savings(self) -> SavingsResult | None:
        stored = self._figures.get("savings")
        return SavingsResult.from_stored(stored) if stored else None

    @cached_property
    def fixed_fee_lines(self) -> tuple[FixedFeeLine, ...]:
        lines = (self._figures.get("fixed_fee") or {}).get("lines", [])
        return tuple(FixedFeeLine.from_stored(line) for line in lines)

    @cached_property
    def flags(self) -> tuple[RunFlag, ...]:
        return tuple(RunFlag.from_stored(f) for f in self._flags)

    @cached_property
    def context(self) -> RunContext:
        return RunContext.from_stored(self._inputs.get("context"))

    @cached_property
    def fmv(self) -> FMVRead | None:
        stored = self._inputs.get("fmv")
        return FMVRead.from_stored(stored) if stored else None

    @cached_property
    def participants(self) -> tuple[ParticipantRead, ...]:
        return tuple(ParticipantRead.from_stored(p) for p in self._inputs.get("participants") or ())

    @property
    def savings_inputs(self) -> dict[str, Any]:
        """The savings service's record of its inputs (the files and their SHA-256): a shape
        the savings app owns, so it stays a mapping (``{}`` for a co-management run)."""
        stored = self._inputs.get("savings")
        return stored if isinstance(stored, dict) else {}

    @cached_property
    def changes(self) -> tuple[FigureChange, ...]:
        return tuple(FigureChange.from_stored(d) for d in self._diff)
