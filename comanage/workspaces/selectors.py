"""Reads for the cross-app pages: a fixed number of queries however many agreements there are.

Figures come from what the apps have stored: adjudication runs (``CalculationRun.results``),
savings calculations (``SavingsCalculation``), indicator results and approved time sheets. When a
closed year has no adjudication run yet, the incentive is worked out by the indicators app's
pure scoring engine from the stored results (marked *provisional*); the fixed fee by the
agreements app's pure ``fees.fee_schedule``. No engine here: only loading, grouping and calling.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.fields.json import KT

from adjudication.models import (
    FROZEN_STATUSES,
    AdjudicationReport,
    CalculationRun,
    Distribution,
    PaymentKind,
    PaymentLine,
    ReportStatus,
)
from adjudication.read_models import RunTotals
from agreements import fees
from agreements import setup as agreement_setup
from agreements.models import (
    Agreement,
    AgreementKind,
    AgreementStatus,
    AgreementTerms,
    ComplianceFlag,
    ManagementDuty,
    Participation,
    ProgrammeYear,
    TimeEntry,
    TimeSheet,
    TimeSheetStatus,
)
from agreements.selectors import terms_pick
from comanage.core.models import Job, JobStatus
from comanage.core.read_models import stored_key
from indicators import scoring
from indicators.models import IndicatorDefinition, IndicatorResult, PeriodKind
from indicators.read_models import IncentiveRead, IndicatorOutcomeRead
from indicators.services import incentive_terms_of, indicator_terms_of
from savings.models import CalculationKind, SavingsCalculation, SavingsOpportunity
from savings.read_models import OpportunityResult, SavingsResult

ZERO = Decimal("0.00")


def _savings_key(name: str) -> str:
    return stored_key(SavingsResult, name, column="result")


def _totals_key(name: str) -> str:
    return stored_key(RunTotals, name, column="results")


def _incentive_key(name: str) -> str:
    """A field of the incentive a co-management run stores (``CalculationRun.read.incentive``)."""
    return stored_key(IncentiveRead, name, column="figures__incentive")


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


# --------------------------------------------------------------------------------------------
# Per agreement and year
# --------------------------------------------------------------------------------------------


@dataclass
class YearFigures:
    """One programme year's headline figures, as stored by the apps."""

    year: ProgrammeYear
    incentive_pool: Decimal | None = None
    incentive_earned: Decimal | None = None
    # What the earned figure rests on, in the report's own words: "calculated" (a run, no
    # report yet), "draft", "with counsel", "approved", "authorised", "paid"; or
    # "provisional" (stored results, no run) and "projection" (year to date); or "".
    incentive_basis: str = ""
    incentive_detail: scoring.IncentiveResult | None = None
    gross_savings: Decimal | None = None
    amount_paid: Decimal | None = None
    savings_ytd: Decimal | None = None
    savings_projected: Decimal | None = None
    savings_as_of: dt.date | None = None
    cap: Decimal | None = None
    cap_used: Decimal | None = None
    cap_headroom: Decimal | None = None
    opportunities: tuple[OpportunityResult, ...] = ()
    report_id: int | None = None
    report_status: str = ""
    report_status_label: str = ""
    run_total: Decimal | None = None

    @property
    def basis_tone(self) -> str:
        return basis_tone(self.incentive_basis)


REPORT_BASIS = {
    ReportStatus.DRAFT: "draft",
    ReportStatus.IN_REVIEW: "draft",
    ReportStatus.RETURNED: "draft",
    ReportStatus.SUBMITTED: "with counsel",
    ReportStatus.APPROVED: "approved",
    ReportStatus.AUTHORISED: "authorised",
    ReportStatus.PAID: "paid",
}


def basis_tone(basis: str) -> str:
    """The badge colour of a basis: green only once counsel has approved the figure."""
    if basis in ("approved", "authorised", "paid"):
        return "ok"
    return "warn" if basis == "projection" else "info"


@dataclass
class AgreementGlance:
    agreement: Agreement
    years: list[ProgrammeYear]
    current_year: ProgrammeYear | None
    last_closed_year: ProgrammeYear | None
    terms: AgreementTerms | None
    open_flags: int = 0
    blocking_flags: int = 0
    figures: dict[int, YearFigures] = field(default_factory=dict)  # by programme year id
    hours_approved: Decimal = ZERO
    hours_required: Decimal = ZERO
    fee_schedule: list[fees.InstalmentLine] = field(default_factory=list)
    distributed_paid: Decimal = ZERO  # distributions recorded as paid, over the term

    @property
    def cap_not_yet_paid(self) -> Decimal:
        """What the cap already counts beyond the payments recorded: years computed but not
        paid yet and the current year's projection."""
        fig = self.cap_figures
        if fig is None or fig.cap_used is None:
            return ZERO
        return max(fig.cap_used - self.distributed_paid, ZERO)

    @property
    def is_co_management(self) -> bool:
        return self.agreement.kind == AgreementKind.CO_MANAGEMENT

    def _of(self, year: ProgrammeYear | None) -> YearFigures | None:
        return self.figures.get(year.pk) if year is not None else None

    @property
    def current(self) -> YearFigures | None:
        return self._of(self.current_year)

    @property
    def last_closed(self) -> YearFigures | None:
        return self._of(self.last_closed_year)

    @property
    def projected_incentive(self) -> Decimal | None:
        cur = self.current
        return cur.incentive_earned if cur and cur.incentive_basis == "projection" else None

    @property
    def incentive_pool(self) -> Decimal | None:
        return self.terms.incentive_pool if self.terms and self.is_co_management else None

    @property
    def earned_incentive(self) -> Decimal | None:
        last = self.last_closed
        return last.incentive_earned if last else None

    @property
    def earned_basis(self) -> str:
        last = self.last_closed
        return last.incentive_basis if last else ""

    @property
    def earned_basis_tone(self) -> str:
        return basis_tone(self.earned_basis)

    @property
    def savings_ytd(self) -> Decimal | None:
        cur = self.current
        if cur is None:
            return None
        return cur.savings_ytd if cur.savings_ytd is not None else cur.gross_savings

    @property
    def savings_last_year(self) -> Decimal | None:
        last = self.last_closed
        return last.gross_savings if last else None

    @property
    def savings_to_date(self) -> Decimal | None:
        """Gross savings over the term so far: closed years plus the current year to date."""
        if self.is_co_management:
            return None
        total, seen = ZERO, False
        for year in self.years:
            fig = self.figures.get(year.pk)
            if fig is None:
                continue
            value = fig.gross_savings if fig.gross_savings is not None else fig.savings_ytd
            if value is not None:
                total += value
                seen = True
        return total if seen else None

    @property
    def cap_figures(self) -> YearFigures | None:
        """The latest year with a savings calculation (cap used and headroom are cumulative)."""
        for year in reversed(self.years):
            fig = self.figures.get(year.pk)
            if fig is not None and fig.cap is not None:
                return fig
        return None

    @property
    def fee_payable(self) -> Decimal:
        return sum((ln.amount_payable for ln in self.fee_schedule), ZERO)

    @property
    def fee_due(self) -> Decimal:
        return sum((ln.instalment for ln in self.fee_schedule), ZERO)


def _current_year(years: list[ProgrammeYear], today: dt.date) -> ProgrammeYear | None:
    for year in years:
        if year.start <= today <= year.end:
            return year
    started = [y for y in years if y.start <= today]
    return started[-1] if started else (years[0] if years else None)


def _last_closed(years: list[ProgrammeYear], today: dt.date) -> ProgrammeYear | None:
    closed = [y for y in years if y.end < today]
    return closed[-1] if closed else None


def _incentive(
    terms: AgreementTerms,
    definitions: list[IndicatorDefinition],
    results: dict[int, Mapping[str, Any]],
    *,
    projection_as_of: dt.date | None,
) -> scoring.IncentiveResult | None:
    """Call the indicators app's scoring engine on stored results (None when it can't score)."""
    if not definitions:
        return None
    engine_results = []
    for definition in definitions:
        row = results.get(definition.pk)
        if row is None:
            if projection_as_of is None:
                return None  # a closed year with a missing annual result is not scored
            continue
        engine_results.append(
            scoring.IndicatorResult(
                key=definition.key, score=row["value"], denominator=row["case_count"]
            )
        )
    try:
        if projection_as_of is not None:
            return scoring.year_to_date_projection(
                terms=incentive_terms_of(terms),
                results=engine_results,
                indicators=[indicator_terms_of(d) for d in definitions],
                as_of=projection_as_of,
            )
        return scoring.incentive_compute(
            terms=incentive_terms_of(terms),
            results=engine_results,
            indicators=[indicator_terms_of(d) for d in definitions],
        )
    except (scoring.TermsInvalid, ValueError):
        return None


def agreements_at_a_glance(
    *, today: dt.date, agreement_ids: Iterable[int] | None = None, with_opportunities: bool = False
) -> list[AgreementGlance]:
    """Every agreement's headline figures, in a fixed number of queries."""
    agreements_qs = Agreement.objects.select_related("practice").order_by("name")
    if agreement_ids is not None:
        agreements_qs = agreements_qs.filter(pk__in=list(agreement_ids))
    agreements = list(agreements_qs)
    ids = [a.pk for a in agreements]
    if not ids:
        return []

    years_by: dict[int, list[ProgrammeYear]] = defaultdict(list)
    for year in ProgrammeYear.objects.filter(agreement_id__in=ids).order_by("agreement", "number"):
        years_by[year.agreement_id].append(year)
    terms_by: dict[int, list[AgreementTerms]] = defaultdict(list)
    for terms in AgreementTerms.objects.filter(agreement_id__in=ids):
        terms_by[terms.agreement_id].append(terms)

    flags: dict[int, tuple[int, int]] = {}
    for counts in (
        ComplianceFlag.objects.filter(agreement_id__in=ids, resolved_at__isnull=True)
        .values("agreement_id")
        .annotate(n=Count("id"), blocking=Count("id", filter=Q(blocking=True)))
    ):
        flags[counts["agreement_id"]] = (counts["n"], counts["blocking"])

    # Savings: the latest stored calculation per (year, kind), only the figures we show.
    calc_fields = [
        "programme_year_id",
        "kind",
        "as_of",
        "gross_savings",
        "amount_paid",
        "projected_gross_savings",
    ]
    savings_qs = (
        SavingsCalculation.objects.filter(
            agreement_id__in=ids, kind__in=[CalculationKind.YEAR, CalculationKind.PROJECTION]
        )
        .order_by("-created_at", "-id")
        .values(
            *calc_fields,
            cap=KT(_savings_key("distribution_cap")),
            cap_used=KT(_savings_key("cumulative_distributed")),
            headroom=KT(_savings_key("cap_headroom")),
            **({"opps": KT(_savings_key("opportunities"))} if with_opportunities else {}),
        )
    )
    savings: dict[tuple[int, str], dict[str, Any]] = {}
    for row in savings_qs:
        savings.setdefault((row["programme_year_id"], row["kind"]), row)

    runs: dict[int, Mapping[str, Any]] = {}
    for row in (
        CalculationRun.objects.filter(agreement_id__in=ids)
        .order_by("programme_year_id", "-version")
        .values(
            "programme_year_id",
            "version",
            earned=KT(_totals_key("incentive_earned")),
            pool=KT(_totals_key("incentive_pool")),
            total=KT(_totals_key("total_to_pay")),
        )
    ):
        runs.setdefault(row["programme_year_id"], row)
    reports: dict[int, Mapping[str, Any]] = {}
    for row in (
        AdjudicationReport.objects.filter(agreement_id__in=ids)
        .exclude(status=ReportStatus.SUPERSEDED)
        .order_by("programme_year_id", "-version")
        .values("programme_year_id", "id", "status")
    ):
        reports.setdefault(row["programme_year_id"], row)

    definitions_by_terms: dict[int, list[IndicatorDefinition]] = defaultdict(list)
    for definition in IndicatorDefinition.objects.filter(agreement_id__in=ids).order_by(
        "position", "id"
    ):
        definitions_by_terms[definition.terms_id].append(definition)
    # year -> definition -> row
    annual: dict[int, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    interim: dict[int, dict[int, Mapping[str, Any]]] = defaultdict(dict)
    for row in (
        IndicatorResult.objects.filter(definition__agreement_id__in=ids, is_current=True)
        .order_by("period_start")
        .values("definition_id", "programme_year_id", "period_kind", "value", "case_count")
    ):
        target = annual if row["period_kind"] == PeriodKind.ANNUAL else interim
        target[row["programme_year_id"]][row["definition_id"]] = row  # latest quarter wins

    co_ids = [a.pk for a in agreements if a.kind == AgreementKind.CO_MANAGEMENT]
    required = dict(
        ManagementDuty.objects.filter(agreement_id__in=co_ids)
        .values("agreement_id")
        .annotate(total=Sum("required_monthly_hours"))
        .values_list("agreement_id", "total")
    )
    approved: dict[int, dict[dt.date, Decimal]] = defaultdict(dict)
    for row in (
        TimeEntry.objects.filter(
            timesheet__agreement_id__in=co_ids, timesheet__status=TimeSheetStatus.APPROVED
        )
        .values("timesheet__agreement_id", "timesheet__month")
        .annotate(total=Sum("hours"))
    ):
        approved[row["timesheet__agreement_id"]][row["timesheet__month"]] = row["total"]

    paid: dict[int, Decimal] = dict(
        PaymentLine.objects.filter(
            report__agreement_id__in=ids, kind=PaymentKind.DISTRIBUTION, paid_amount__isnull=False
        )
        .values("report__agreement_id")
        .annotate(total=Sum("paid_amount"))
        .values_list("report__agreement_id", "total")
    )

    status_labels = dict(ReportStatus.choices)
    glances = []
    for agreement in agreements:
        years = years_by.get(agreement.pk, [])
        current = _current_year(years, today)
        terms_list = terms_by.get(agreement.pk, [])
        glance = AgreementGlance(
            agreement=agreement,
            years=years,
            current_year=current,
            last_closed_year=_last_closed(years, today),
            terms=terms_pick(terms_list, else_first=True, on=current.start if current else today),
            open_flags=flags.get(agreement.pk, (0, 0))[0],
            blocking_flags=flags.get(agreement.pk, (0, 0))[1],
            distributed_paid=paid.get(agreement.pk) or ZERO,
        )
        for year in years:
            fig = YearFigures(year=year)
            year_terms = terms_pick(terms_list, else_first=True, on=year.start)
            run = runs.get(year.pk)
            report = reports.get(year.pk)
            if report:
                fig.report_id, fig.report_status = report["id"], report["status"]
                fig.report_status_label = status_labels.get(report["status"], report["status"])
            if run:
                fig.run_total = _dec(run["total"])
            if glance.is_co_management and year_terms is not None:
                fig.incentive_pool = year_terms.incentive_pool
                definitions = definitions_by_terms.get(year_terms.pk, [])
                if run and run["earned"] is not None:
                    fig.incentive_earned = _dec(run["earned"])
                    fig.incentive_basis = (
                        REPORT_BASIS.get(report["status"], "calculated") if report else "calculated"
                    )
                    fig.incentive_pool = _dec(run["pool"]) or fig.incentive_pool
                elif year.start <= today:
                    # An ended year without a run: provisional from the annual results; the
                    # current year: a projection to today from the interim ones.
                    ended = year.end < today
                    detail = _incentive(
                        year_terms,
                        definitions,
                        (annual if ended else interim).get(year.pk, {}),
                        projection_as_of=None if ended else today,
                    )
                    if detail is not None:
                        fig.incentive_earned = detail.earned_total
                        fig.incentive_basis = "provisional" if ended else "projection"
                        fig.incentive_detail = detail
            if not glance.is_co_management:
                year_calc = savings.get((year.pk, CalculationKind.YEAR))
                projection = savings.get((year.pk, CalculationKind.PROJECTION))
                shown = year_calc or projection
                if year_calc:
                    fig.gross_savings = year_calc["gross_savings"]
                    fig.amount_paid = year_calc["amount_paid"]
                if projection and not year_calc:
                    fig.savings_ytd = projection["gross_savings"]
                    fig.savings_projected = projection["projected_gross_savings"]
                    fig.savings_as_of = projection["as_of"]
                if shown:
                    fig.cap = _dec(shown["cap"])
                    fig.cap_used = _dec(shown["cap_used"])
                    fig.cap_headroom = _dec(shown["headroom"])
                    if with_opportunities and shown.get("opps"):
                        opps = shown["opps"]
                        stored = json.loads(opps) if isinstance(opps, str) else opps
                        fig.opportunities = tuple(OpportunityResult.from_stored(o) for o in stored)
            glance.figures[year.pk] = fig
        if glance.is_co_management and current is not None and glance.terms is not None:
            # The year's own instalments, for the months already over (hours to date).
            full = fees.fee_schedule(
                annual_fee=glance.terms.annual_fixed_fee or ZERO,
                months=fees.fee_months(current.start, current.end),
                required_hours=required.get(agreement.pk) or ZERO,
                approved_hours=approved.get(agreement.pk, {}),
                policy=glance.terms.hours_shortfall_policy,
            )
            glance.fee_schedule = [ln for ln in full if fees.month_end(ln.month) < today]
            glance.hours_approved = sum((ln.approved_hours for ln in glance.fee_schedule), ZERO)
            glance.hours_required = sum((ln.required_hours for ln in glance.fee_schedule), ZERO)
        glances.append(glance)
    return glances


@dataclass
class PortfolioTotals:
    agreements: int
    active: int
    projected_incentive: Decimal
    incentive_pool: Decimal
    earned_incentive: Decimal
    savings_to_date: Decimal
    savings_last_year: Decimal
    cap_headroom: Decimal
    open_flags: int
    blocking_flags: int


def portfolio_totals(glances: list[AgreementGlance]) -> PortfolioTotals:
    def total(values: Iterable[Decimal | None]) -> Decimal:
        return sum((v for v in values if v is not None), ZERO)

    return PortfolioTotals(
        agreements=len(glances),
        active=sum(1 for g in glances if g.agreement.status == AgreementStatus.ACTIVE),
        projected_incentive=total(g.projected_incentive for g in glances),
        incentive_pool=total(g.incentive_pool for g in glances),
        earned_incentive=total(g.earned_incentive for g in glances),
        savings_to_date=total(g.savings_to_date for g in glances),
        savings_last_year=total(g.savings_last_year for g in glances),
        cap_headroom=total(g.cap_figures.cap_headroom if g.cap_figures else None for g in glances),
        open_flags=sum(g.open_flags for g in glances),
        blocking_flags=sum(g.blocking_flags for g in glances),
    )


# --------------------------------------------------------------------------------------------
# One agreement in depth (the executive agreement page)
# --------------------------------------------------------------------------------------------


@dataclass
class IndicatorSeries:
    definition: IndicatorDefinition
    points: list[tuple[str, Decimal | None, int | None]]  # (period label, value, n)

    @property
    def chart_results(self) -> list[tuple[str, Decimal | None, str]]:
        """(label, value, why not scored) for the chart: a result under the minimum
        denominator is never shown as a tier met."""
        minimum = self.definition.minimum_denominator
        return [
            (
                label,
                value,
                "" if value is None else scoring.denominator_shortfall(minimum=minimum, n=n),
            )
            for label, value, n in self.points
        ]


def indicator_series(
    *, agreement: Agreement, terms: AgreementTerms | None
) -> list[IndicatorSeries]:
    """Each indicator of the terms in force with its annual and quarterly results across every
    terms version (matched by key): two queries."""
    if terms is None:
        return []
    definitions = list(IndicatorDefinition.objects.filter(terms=terms).order_by("position", "id"))
    keys = [d.key for d in definitions]
    by_key: dict[str, list[IndicatorResult]] = defaultdict(list)
    for result in (
        IndicatorResult.objects.filter(
            definition__agreement=agreement, definition__key__in=keys, is_current=True
        )
        .select_related("definition")
        .order_by("period_start", "-period_end")
    ):
        by_key[result.definition.key].append(result)
    return [
        IndicatorSeries(
            d, [(r.period_label, r.display_value, r.case_count) for r in by_key.get(d.key, [])]
        )
        for d in definitions
    ]


def opportunity_names(*, agreement: Agreement) -> list[tuple[str, str]]:
    return list(
        SavingsOpportunity.objects.filter(agreement=agreement)
        .order_by("key")
        .values_list("key", "name")
    )


# --------------------------------------------------------------------------------------------
# The administrator's work queue
# --------------------------------------------------------------------------------------------


@dataclass
class SetupItem:
    agreement: Agreement
    next_step: str
    missing: list[str]
    next_step_label: str = ""


def agreements_in_setup() -> list[SetupItem]:
    """Agreements not yet active, with the first setup step that still needs doing (the
    guided setup's own checklist, agreements/setup.py, so both say the same)."""
    agreements = list(
        Agreement.objects.filter(
            status__in=[
                AgreementStatus.DRAFT,
                AgreementStatus.IN_NEGOTIATION,
                AgreementStatus.EXECUTED,
            ]
        )
        .select_related("practice")
        .order_by("created_at", "name")
    )
    items = []
    for agreement in agreements:
        checklist = agreement_setup.setup_checklist(agreement=agreement)
        todo = [s for s in checklist if s.required and not s.done]
        step = todo[0] if todo else checklist[-1]
        items.append(
            SetupItem(
                agreement=agreement,
                next_step=step.key,
                missing=[s.label.lower() for s in todo if s.key != "execute"],
                next_step_label=step.label,
            )
        )
    return items


def jobs_needing_attention(*, since: dt.datetime) -> list[Job]:
    """Jobs queued or running, and jobs that failed since ``since``."""
    return list(
        Job.objects.filter(
            Q(status__in=[JobStatus.QUEUED, JobStatus.RUNNING])
            | Q(status=JobStatus.FAILED, created_at__gte=since)
        )
        .select_related("created_by")
        .order_by("-created_at")[:50]
    )


def jobs_recent(*, limit: int = 5) -> list[Job]:
    return list(
        Job.objects.filter(status=JobStatus.SUCCEEDED)
        .select_related("created_by")
        .order_by("-created_at")[:limit]
    )


@dataclass
class AdjudicationItem:
    year: ProgrammeYear
    action: str
    report_id: int | None = None
    report_status: str = ""
    report_status_label: str = ""
    run_id: int | None = None


def adjudication_to_prepare(*, today: dt.date) -> list[AdjudicationItem]:
    """Closed programme years without a run, or whose report is still with the administrator."""
    years = list(
        ProgrammeYear.objects.filter(end__lt=today)
        .select_related("agreement", "agreement__practice")
        .order_by("end", "agreement__name")
    )
    ids = [y.pk for y in years]
    runs: dict[int, int] = {}
    for row in (
        CalculationRun.objects.filter(programme_year_id__in=ids)
        .order_by("programme_year_id", "-version")
        .values("programme_year_id", "id")
    ):
        runs.setdefault(row["programme_year_id"], row["id"])
    reports: dict[int, Mapping[str, Any]] = {}
    for row in (
        AdjudicationReport.objects.filter(programme_year_id__in=ids)
        .exclude(status=ReportStatus.SUPERSEDED)
        .order_by("programme_year_id", "-version")
        .values("programme_year_id", "id", "status")
    ):
        reports.setdefault(row["programme_year_id"], row)
    labels = dict(ReportStatus.choices)
    items = []
    for year in years:
        report = reports.get(year.pk)
        run_id = runs.get(year.pk)
        if year.agreement.status not in (
            AgreementStatus.ACTIVE,
            AgreementStatus.EXPIRED,
            AgreementStatus.EXECUTED,
            AgreementStatus.TERMINATED,
        ):
            continue
        if report is None:
            action = "Run the calculation" if run_id is None else "Prepare the report"
        elif report["status"] in (
            ReportStatus.DRAFT,
            ReportStatus.RETURNED,
            ReportStatus.IN_REVIEW,
        ):
            action = {
                "draft": "Review and submit",
                "returned": "Address counsel's comments",
                "in_review": "Submit to counsel",
            }[report["status"]]
        elif report["status"] == ReportStatus.AUTHORISED:
            action = "Record payments"
        else:
            continue
        items.append(
            AdjudicationItem(
                year=year,
                action=action,
                run_id=run_id,
                report_id=report["id"] if report else None,
                report_status=report["status"] if report else "",
                report_status_label=labels.get(report["status"], "") if report else "",
            )
        )
    return items


def timesheets_awaiting_approval():
    return (
        TimeSheet.objects.filter(status=TimeSheetStatus.SUBMITTED)
        .select_related("agreement", "physician")
        .annotate(total_hours=Sum("entries__hours"))
        .order_by("month", "agreement__name")
    )


def flags_open():
    return (
        ComplianceFlag.objects.filter(resolved_at__isnull=True)
        .select_related("agreement", "physician", "programme_year")
        .order_by("-blocking", "-opened_at")
    )


# --------------------------------------------------------------------------------------------
# The physician's own data
# --------------------------------------------------------------------------------------------


@dataclass
class MonthStatus:
    month: dt.date
    status: str  # draft / submitted / approved / returned / missing
    label: str
    hours: Decimal | None
    timesheet_id: int | None


def physician_participations(*, physician_id: int) -> list[Participation]:
    return list(
        Participation.objects.filter(physician_id=physician_id)
        .select_related("agreement", "agreement__practice")
        .order_by("agreement__name")
    )


def physician_months(
    *, physician_id: int, agreement_ids: list[int], today: dt.date, months: int = 12
) -> dict[int, list[MonthStatus]]:
    """Per co-management agreement: the physician's last ``months`` months of time logs."""
    first = today.replace(day=1)
    span = []
    current = first
    for _ in range(months):
        span.append(current)
        current = (current - dt.timedelta(days=1)).replace(day=1)
    span.reverse()
    sheets = {
        (s.agreement_id, s.month): s
        for s in TimeSheet.objects.filter(
            physician_id=physician_id, agreement_id__in=agreement_ids, month__gte=span[0]
        ).annotate(total_hours=Sum("entries__hours"))
    }
    labels = dict(TimeSheetStatus.choices)
    out: dict[int, list[MonthStatus]] = {}
    for agreement_id in agreement_ids:
        rows = []
        for month in span:
            sheet = sheets.get((agreement_id, month))
            if sheet is None:
                rows.append(MonthStatus(month, "missing", "Not logged", None, None))
            else:
                rows.append(
                    MonthStatus(
                        month,
                        sheet.status,
                        labels.get(sheet.status, ""),
                        sheet.total_hours,
                        sheet.pk,
                    )
                )
        out[agreement_id] = rows
    return out


def physician_distributions(*, physician_id: int) -> list[Distribution]:
    """The physician's distributions on reports approved by counsel or later."""
    return list(
        Distribution.objects.filter(
            physician_id=physician_id, run__report__status__in=FROZEN_STATUSES
        )
        .select_related("run", "run__programme_year", "run__agreement", "run__report")
        .order_by("-run__programme_year__start", "run__agreement__name", "position")
    )


def physician_projection_rows(
    *, physician_id: int, agreement_ids: list[int]
) -> dict[int, dict[str, Any]]:
    """The physician's own line of the latest savings projection per agreement."""
    out: dict[int, dict[str, Any]] = {}
    for calc in (
        SavingsCalculation.objects.filter(
            agreement_id__in=agreement_ids, kind=CalculationKind.PROJECTION
        )
        .select_related("programme_year")
        .order_by("-created_at", "-id")
    ):
        if calc.agreement_id in out:
            continue
        out[calc.agreement_id] = {"calculation": calc, "row": calc.read.physician(physician_id)}
    return out


# --------------------------------------------------------------------------------------------
# Year-on-year trend of one agreement (executive page)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrendRow:
    """One programme year of an agreement's trend. ``earned`` is the incentive earned
    (co-management) or the physicians' share calculated (shared savings), with ``basis``
    saying what it rests on; ``paid`` is only what payment records say was paid."""

    label: str
    basis: str
    indicators_met: int | None
    indicators_scored: int | None
    indicators_total: int | None
    savings: Decimal | None
    savings_to_date: bool
    earned: Decimal | None
    paid: Decimal


def _indicator_counts(outcomes: Iterable[Any]) -> tuple[int, int, int]:
    """(met at threshold or better, scored, all): an indicator under its minimum denominator
    is not scored and never counted as met, whatever it is paid."""
    rows = list(outcomes)
    scored = [o for o in rows if o.status == "scored"]
    met = [o for o in scored if o.tier_met]
    return len(met), len(scored), len(rows)


def agreement_trend(*, glance: AgreementGlance, today: dt.date) -> list[TrendRow]:
    """Per programme year that has begun: indicators met, savings, incentive earned and paid."""
    years = [y for y in glance.years if glance.figures.get(y.pk) is not None]
    runs: dict[int, CalculationRun] = {}
    for latest in CalculationRun.objects.filter(programme_year__in=years).order_by(
        "programme_year_id", "-version"
    ):
        runs.setdefault(latest.programme_year_id, latest)
    paid_kind = PaymentKind.INCENTIVE if glance.is_co_management else PaymentKind.DISTRIBUTION
    paid = dict(
        PaymentLine.objects.filter(
            report__programme_year__in=years, kind=paid_kind, paid_on__isnull=False
        )
        .exclude(report__status=ReportStatus.SUPERSEDED)
        .values_list("report__programme_year_id")
        .annotate(s=Sum("paid_amount"))
    )
    rows = []
    for year in years:
        fig = glance.figures[year.pk]
        if year.start > today:
            continue
        met = scored = total = None
        if glance.is_co_management:
            run = runs.get(year.pk)
            incentive = run.read.incentive if run is not None else None
            outcomes: Iterable[Any] | None = incentive.indicators if incentive else None
            if outcomes is None and fig.incentive_detail is not None:
                outcomes = fig.incentive_detail.indicators
            if outcomes:
                met, scored, total = _indicator_counts(outcomes)
            earned, basis = fig.incentive_earned, fig.incentive_basis
        else:
            earned = fig.amount_paid  # the calculation's share for physicians, not a payment
            basis = (
                next((v for k, v in REPORT_BASIS.items() if k == fig.report_status), "calculated")
                if fig.report_status
                else ("calculated" if fig.gross_savings is not None else "")
            )
        savings = fig.gross_savings if fig.gross_savings is not None else fig.savings_ytd
        rows.append(
            TrendRow(
                label=year.label,
                basis=basis,
                indicators_met=met,
                indicators_scored=scored,
                indicators_total=total,
                savings=savings,
                savings_to_date=fig.gross_savings is None and fig.savings_ytd is not None,
                earned=earned,
                paid=paid.get(year.pk) or ZERO,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# Year-on-year trend of the whole portfolio (executive dashboard)
# --------------------------------------------------------------------------------------------


def _runs_outcomes(years: list[ProgrammeYear]) -> dict[int, list[IndicatorOutcomeRead] | None]:
    """The latest run's indicator outcomes per programme year, typed (None when the run has
    none)."""
    out: dict[int, list[IndicatorOutcomeRead] | None] = {}
    for row in (
        CalculationRun.objects.filter(programme_year__in=years)
        .order_by("programme_year_id", "-version")
        .values("programme_year_id", outcomes=KT(_incentive_key("indicators")))
    ):
        if row["programme_year_id"] in out:
            continue
        outcomes = row["outcomes"]
        stored = json.loads(outcomes) if isinstance(outcomes, str) else outcomes
        out[row["programme_year_id"]] = (
            None if stored is None else [IndicatorOutcomeRead.from_stored(o) for o in stored]
        )
    return out


def _payments_by_year(years: list[ProgrammeYear]) -> dict[tuple[int, str], Decimal]:
    """What payment records show as paid, per (programme year, payment kind)."""
    return {
        (row["report__programme_year_id"], row["kind"]): row["s"] or ZERO
        for row in PaymentLine.objects.filter(
            report__programme_year__in=years,
            kind__in=[PaymentKind.INCENTIVE, PaymentKind.DISTRIBUTION],
            paid_on__isnull=False,
        )
        .exclude(report__status=ReportStatus.SUPERSEDED)
        .values("report__programme_year_id", "kind")
        .annotate(s=Sum("paid_amount"))
    }


def agreement_trends(
    *, glances: list[AgreementGlance], today: dt.date
) -> dict[int, list[TrendRow]]:
    """``agreement_trend`` for many agreements at once (by agreement id), in a fixed number of
    queries: the same rows, the same rules (an indicator under its minimum denominator is never
    counted as met; paid is only what payment records show)."""
    years = [y for g in glances for y in g.years if g.figures.get(y.pk) is not None]
    if not years:
        return {g.agreement.pk: [] for g in glances}
    outcomes_by_year = _runs_outcomes(years)
    paid = _payments_by_year(years)
    trends: dict[int, list[TrendRow]] = {}
    for glance in glances:
        paid_kind = PaymentKind.INCENTIVE if glance.is_co_management else PaymentKind.DISTRIBUTION
        rows = []
        for year in glance.years:
            fig = glance.figures.get(year.pk)
            if fig is None or year.start > today:
                continue
            met = scored = total = None
            if glance.is_co_management:
                outcomes: list[Any] | None = outcomes_by_year.get(year.pk)
                if outcomes is None and fig.incentive_detail is not None:
                    outcomes = list(fig.incentive_detail.indicators)
                if outcomes:
                    met, scored, total = _indicator_counts(outcomes)
                earned, basis = fig.incentive_earned, fig.incentive_basis
            else:
                earned = fig.amount_paid
                basis = (
                    next(
                        (v for k, v in REPORT_BASIS.items() if k == fig.report_status), "calculated"
                    )
                    if fig.report_status
                    else ("calculated" if fig.gross_savings is not None else "")
                )
            rows.append(
                TrendRow(
                    label=year.label,
                    basis=basis,
                    indicators_met=met,
                    indicators_scored=scored,
                    indicators_total=total,
                    savings=fig.gross_savings if fig.gross_savings is not None else fig.savings_ytd,
                    savings_to_date=fig.gross_savings is None and fig.savings_ytd is not None,
                    earned=earned,
                    paid=paid.get((year.pk, paid_kind)) or ZERO,
                )
            )
        trends[glance.agreement.pk] = rows
    return trends


@dataclass
class PortfolioYear:
    """The organization's programme years that start in one calendar year, summed over its
    agreements. Each sum says what it adds: incentive earned whatever its basis but a
    projection (``incentive_bases`` lists them), a current year's projection apart;
    physicians' share and what the hospital keeps only of closed years with a savings
    calculation; gross savings including a current year to date (``savings_to_date``); paid
    only what payment records show as paid."""

    year: int
    agreements: int = 0
    indicators_met: int = 0
    indicators_scored: int = 0
    indicators_total: int = 0
    gross_savings: Decimal | None = None
    savings_to_date: bool = False
    physicians_share: Decimal | None = None
    hospital_keeps: Decimal | None = None
    distributions_paid: Decimal = ZERO
    incentive_earned: Decimal | None = None  # every basis but a projection
    incentive_projected: Decimal | None = None  # a current year to date: never earned yet
    incentive_paid: Decimal = ZERO
    incentive_bases: list[str] = field(default_factory=list)  # what the earned figures rest on
    share_bases: list[str] = field(default_factory=list)  # what the shares rest on


def _add(total: Decimal | None, value: Decimal | None) -> Decimal | None:
    if value is None:
        return total
    return (total or ZERO) + value


def _hospital_keeps(years: list[ProgrammeYear]) -> dict[int, Decimal]:
    """What the hospital keeps of each closed year's savings (net of administrator fees, less
    the physicians' share), from the latest year calculation."""
    out: dict[int, Decimal] = {}
    for row in (
        SavingsCalculation.objects.filter(programme_year__in=years, kind=CalculationKind.YEAR)
        .order_by("-created_at", "-id")
        .values("programme_year_id", keeps=KT(_savings_key("hospital_keeps")))
    ):
        if row["programme_year_id"] in out:
            continue
        keeps = _dec(row["keeps"])
        if keeps is not None:
            out[row["programme_year_id"]] = keeps
    return out


def portfolio_trend(*, glances: list[AgreementGlance], today: dt.date) -> list[PortfolioYear]:
    """Per calendar year in which programme years start (that have begun), across every
    agreement: indicators met of those scored, savings and their split, incentive earned and
    what was paid. Built from the same rows as each agreement's own trend."""
    trends = agreement_trends(glances=glances, today=today)
    ss_years = [y for g in glances if not g.is_co_management for y in g.years]
    keeps = _hospital_keeps(ss_years) if ss_years else {}
    by_year: dict[int, PortfolioYear] = {}
    for glance in glances:
        started = [y for y in glance.years if glance.figures.get(y.pk) and y.start <= today]
        for year, row in zip(started, trends.get(glance.agreement.pk, []), strict=True):
            total = by_year.setdefault(year.start.year, PortfolioYear(year=year.start.year))
            total.agreements += 1
            bases = total.incentive_bases if glance.is_co_management else total.share_bases
            projected = row.basis == "projection"
            if row.basis and row.earned is not None and not projected and row.basis not in bases:
                bases.append(row.basis)
            if glance.is_co_management:
                total.indicators_met += row.indicators_met or 0
                total.indicators_scored += row.indicators_scored or 0
                total.indicators_total += row.indicators_total or 0
                if projected:
                    total.incentive_projected = _add(total.incentive_projected, row.earned)
                else:
                    total.incentive_earned = _add(total.incentive_earned, row.earned)
                total.incentive_paid += row.paid
                continue
            total.gross_savings = _add(total.gross_savings, row.savings)
            total.savings_to_date = total.savings_to_date or row.savings_to_date
            total.physicians_share = _add(total.physicians_share, row.earned)
            total.hospital_keeps = _add(total.hospital_keeps, keeps.get(year.pk))
            total.distributions_paid += row.paid
    return [by_year[y] for y in sorted(by_year)]
