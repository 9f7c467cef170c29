"""The cross-app pages: the executive dashboard (and one agreement in depth), the program
administrator's work queue and the physician's home. Thin: selectors read, charts draw."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone

from adjudication.selectors import statements_visible
from agreements.models import Agreement, AgreementKind, Physician
from comanage.core.charts import bar_chart, indicator_chart, line_chart, progress_bar_chart
from comanage.core.exports import csv_response
from comanage.core.jobs import job_live_state
from comanage.core.permissions import is_own_only
from comanage.core.versioning import data_version, page_cached
from comanage.core.views import org_view

from . import selectors

PAGE_SIZE = 25
# In the page cache keys: change it whenever the shape of a cached value changes, so a deploy
# never unpickles an entry written by the previous code.
CACHE_FORMAT = 5


def _today() -> dt.date:
    return timezone.localdate()


def _haystack(g: selectors.AgreementGlance) -> tuple[str, ...]:
    """What the dashboard's search looks in, lower-cased."""
    return (
        g.agreement.name.lower(),
        g.agreement.practice.name.lower(),
        g.agreement.service_line_label.lower(),
        g.agreement.get_status_display().lower(),
    )


def _matches(haystacks: list[tuple[str, ...]], query: str) -> list[int]:
    """The positions of the rows the search keeps (all of them for an empty search)."""
    query = query.strip().lower()
    return [i for i, hay in enumerate(haystacks) if not query or any(query in s for s in hay)]


def _search(
    glances: list[selectors.AgreementGlance], query: str
) -> list[selectors.AgreementGlance]:
    return [glances[i] for i in _matches([_haystack(g) for g in glances], query)]


def _money_or_blank(value: Decimal | None) -> str:
    return "" if value is None else f"{value:.2f}"


# --------------------------------------------------------------------------------------------
# Executive dashboard
# --------------------------------------------------------------------------------------------


def _portfolio_charts(glances: list[selectors.AgreementGlance]) -> dict[str, Any]:
    co = [g for g in glances if g.is_co_management and g.incentive_pool]
    ss = [g for g in glances if not g.is_co_management]
    charts: dict[str, Any] = {}
    if co:
        rows = [
            (g.agreement.name, g.earned_incentive, g.projected_incentive, g.incentive_pool)
            for g in co
        ]
        charts["incentive"] = bar_chart(
            title="Incentive: last year earned and this year projected, against the pool",
            categories=[r[0] for r in rows],
            series=[
                ("Earned (last closed year)", [r[1] for r in rows]),
                ("Projected (this year)", [r[2] for r in rows]),
                ("Pool", [r[3] for r in rows]),
            ],
            height=300,
        )
        charts["incentive_rows"] = rows
        hours = [
            (g.agreement.name, g.hours_approved, g.hours_required) for g in co if g.hours_required
        ]
        if hours:
            charts["hours"] = progress_bar_chart(
                title="Approved management hours this year against the hours required",
                items=hours,
                value_format="number",
                unit=" h",
            )
            charts["hours_rows"] = hours
    if ss:
        years = sorted({y.number for g in ss for y in g.years})
        series = []
        for number in years:
            values: list[Decimal | None] = []
            for g in ss:
                fig = next((g.figures[y.pk] for y in g.years if y.number == number), None)
                if fig is None:
                    values.append(None)
                else:
                    values.append(
                        fig.gross_savings if fig.gross_savings is not None else fig.savings_ytd
                    )
            series.append((f"Year {number}", values))
        charts["savings"] = bar_chart(
            title="Gross savings by agreement and programme year (current year to date)",
            categories=[g.agreement.name for g in ss],
            series=series,
            height=300,
        )
        charts["savings_rows"] = {
            "years": [s[0] for s in series],
            "rows": [(g.agreement.name, [s[1][i] for s in series]) for i, g in enumerate(ss)],
        }
        capped = [(g, g.cap_figures) for g in ss if g.cap_figures and g.cap_figures.cap]
        if capped:
            # Distributed is what has been paid; what the cap also counts (a computed year not
            # paid yet, this year's projection) is a bar of its own, never added to "paid".
            items = []
            for g, cap in capped:
                items.append((f"{g.agreement.name}: paid", g.distributed_paid, cap.cap))
                items.append(
                    (
                        f"{g.agreement.name}: paid, unpaid and projected",
                        cap.cap_used or Decimal("0"),
                        cap.cap,
                    )
                )
            charts["cap"] = progress_bar_chart(
                title="Distribution cap: paid, and counted with unpaid and projected amounts",
                items=items,
                value_format="money",
            )
            charts["cap_rows"] = [
                (
                    g.agreement.name,
                    g.distributed_paid,
                    g.cap_not_yet_paid,
                    cap.cap,
                    cap.cap_headroom,
                )
                for g, cap in capped
            ]
    return charts


def _portfolio(request: HttpRequest, today: dt.date, version: int | None = None) -> dict[str, Any]:
    """The portfolio's figures and charts: the same for every reader of the organization, so
    cached under its data version (any write to its rows makes a new entry)."""

    def compute() -> dict[str, Any]:
        glances = selectors.agreements_at_a_glance(today=today)
        charts = _portfolio_charts(glances)
        return {
            "glances": glances,
            "totals": selectors.portfolio_totals(glances),
            "charts": charts,
            # The charts and their table views, rendered once (the largest part of the page).
            "charts_html": render_to_string(
                "workspaces/_portfolio_charts.html", {"charts": charts}
            ),
            "trend_html": _portfolio_trend_html(
                glances,
                today,
                request.organization,  # type: ignore[attr-defined]
            ),
        }

    return page_cached(
        request.organization.pk,  # type: ignore[attr-defined]
        "executive-dashboard",
        CACHE_FORMAT,
        today.isoformat(),
        compute=compute,
        version=version,
    )


def _portfolio_head(request: HttpRequest, today: dt.date, version: int) -> dict[str, Any]:
    """What every view of the dashboard needs (totals, rendered charts, what the search looks
    in), without the rows themselves: those are loaded only when the table is rendered."""

    def compute() -> dict[str, Any]:
        portfolio = _portfolio(request, today, version)
        return {
            "totals": portfolio["totals"],
            "charts_html": portfolio["charts_html"],
            "trend_html": portfolio["trend_html"],
            "haystacks": [_haystack(g) for g in portfolio["glances"]],
        }

    return page_cached(
        request.organization.pk,  # type: ignore[attr-defined]
        "executive-dashboard-head",
        CACHE_FORMAT,
        today.isoformat(),
        compute=compute,
        version=version,
    )


class _Rows:
    """The rows of the dashboard's table, by position, loaded on first use.

    The table is a cached fragment: on a hit it is never iterated, so the rows (the largest
    cached value) are never read. Paginator needs only the length to number the pages.
    """

    def __init__(self, positions: list[int], load: Callable[[], list[Any]]):
        self._positions = positions
        self._load = load

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return _Rows(self._positions[index], self._load)
        return self._load()[self._positions[index]]

    def __iter__(self) -> Iterator[Any]:
        rows = self._load()
        return (rows[i] for i in self._positions)


@org_view("report.view")
def executive_dashboard(request: HttpRequest, org_slug: str) -> HttpResponse:
    # The version is read before any figure: what is cached under it is never older than it.
    version = data_version(request.organization.pk)  # type: ignore[attr-defined]
    today = _today()
    head = _portfolio_head(request, today, version)
    query = request.GET.get("q", "")
    rows = _Rows(
        _matches(head["haystacks"], query),
        functools.cache(lambda: _portfolio(request, today, version)["glances"]),
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "workspaces/executive_dashboard.html",
        {
            "today": today,
            "totals": head["totals"],
            "page": page,
            "q": query,
            "charts_html": head["charts_html"],
            "trend_html": head["trend_html"],
            "has_agreements": bool(head["haystacks"]),
            "data_version": version,
        },
    )


def _portfolio_trend_chart(trend: list[selectors.PortfolioYear]) -> Any:
    """The portfolio year on year: money only (indicator counts are in the table beside it).
    One bar for what was paid (incentive and savings payments recorded, split in the table),
    so the chart keeps to the palette's six colours."""
    if not trend:
        return None
    series: list[tuple[str, Sequence[Decimal | None]]] = []
    if any(row.incentive_earned is not None for row in trend):
        series.append(("Incentive earned", [row.incentive_earned for row in trend]))
    if any(row.incentive_projected is not None for row in trend):
        series.append(("Incentive projected", [row.incentive_projected for row in trend]))
    if any(row.gross_savings is not None for row in trend):
        series += [
            ("Gross savings", [row.gross_savings for row in trend]),
            ("Physicians' share, calculated", [row.physicians_share for row in trend]),
            ("Hospital keeps, calculated", [row.hospital_keeps for row in trend]),
        ]
    if series:
        series.append(
            ("Paid to physicians", [r.incentive_paid + r.distributions_paid for r in trend])
        )
    if not series:
        return None
    return bar_chart(
        title="All agreements: incentive, savings and payments, per programme year",
        categories=[str(row.year) for row in trend],
        series=series,
        height=320,
    )


def _portfolio_trend_html(
    glances: list[selectors.AgreementGlance], today: dt.date, organization: Any
) -> str:
    trend = selectors.portfolio_trend(glances=glances, today=today)
    return render_to_string(
        "workspaces/_portfolio_trend.html",
        {
            "trend": trend,
            "trend_chart": _portfolio_trend_chart(trend),
            "organization": organization,
        },
    )


PORTFOLIO_TREND_CSV_HEADER = [
    "programme years starting in",
    "agreements",
    "indicators met",
    "indicators scored",
    "indicators in all",
    "incentive earned (closed years, all bases)",
    "incentive earned rests on",
    "incentive projected (year to date, not earned)",
    "incentive paid (payments recorded)",
    "gross savings",
    "gross savings include a year to date",
    "physicians' share of savings (calculated)",
    "hospital keeps of savings (calculated)",
    "shares rest on",
    "paid to physicians from savings (payments recorded)",
]


@org_view("report.view")
def executive_trend_csv(request: HttpRequest, org_slug: str) -> HttpResponse:
    today = _today()
    glances = _portfolio(request, today)["glances"]
    rows = [
        [
            row.year,
            row.agreements,
            row.indicators_met,
            row.indicators_scored,
            row.indicators_total,
            _money_or_blank(row.incentive_earned),
            "; ".join(row.incentive_bases),
            _money_or_blank(row.incentive_projected),
            _money_or_blank(row.incentive_paid),
            _money_or_blank(row.gross_savings),
            "yes" if row.savings_to_date else "no",
            _money_or_blank(row.physicians_share),
            _money_or_blank(row.hospital_keeps),
            "; ".join(row.share_bases),
            _money_or_blank(row.distributions_paid),
        ]
        for row in selectors.portfolio_trend(glances=glances, today=today)
    ]
    return csv_response(f"{org_slug}-portfolio-year-on-year.csv", PORTFOLIO_TREND_CSV_HEADER, rows)


def _glance_csv_rows(glances: list[selectors.AgreementGlance]) -> list[list[Any]]:
    rows = []
    for g in glances:
        cap = g.cap_figures
        rows.append(
            [
                g.agreement.name,
                g.agreement.get_kind_display(),
                g.agreement.practice.name,
                g.agreement.get_status_display(),
                g.current_year.label if g.current_year else "",
                _money_or_blank(g.projected_incentive),
                _money_or_blank(g.earned_incentive),
                g.earned_basis,
                _money_or_blank(g.savings_ytd),
                _money_or_blank(g.savings_last_year),
                _money_or_blank(g.savings_to_date),
                _money_or_blank(cap.cap_headroom if cap else None),
                g.open_flags,
                g.blocking_flags,
                f"{g.hours_approved:.2f}" if g.is_co_management else "",
                f"{g.hours_required:.2f}" if g.is_co_management else "",
            ]
        )
    return rows


@org_view("report.view")
def executive_dashboard_csv(request: HttpRequest, org_slug: str) -> HttpResponse:
    glances = _search(_portfolio(request, _today())["glances"], request.GET.get("q", ""))
    return csv_response(
        f"{org_slug}-agreements-at-a-glance.csv",
        [
            "agreement",
            "kind",
            "practice",
            "status",
            "programme year",
            "projected incentive",
            "earned incentive (last closed year)",
            "incentive basis",
            "savings this year to date",
            "gross savings (last closed year)",
            "savings over the term",
            "distribution cap headroom",
            "open compliance flags",
            "blocking flags",
            "approved hours to date",
            "required hours to date",
        ],
        _glance_csv_rows(glances),
    )


def _agreement_glance(request: HttpRequest, pk: int) -> tuple[Agreement, selectors.AgreementGlance]:
    agreement = get_object_or_404(Agreement, pk=pk)
    return agreement, _agreement_in_depth(request, agreement)["glance"]


def _agreement_in_depth(
    request: HttpRequest, agreement: Agreement, version: int | None = None
) -> dict[str, Any]:
    """One agreement's figures and charts, cached under the organization's data version (the
    agreement was looked up in the tenant's scope first, so an outsider never reaches this)."""
    today = _today()

    def compute() -> dict[str, Any]:
        glance = selectors.agreements_at_a_glance(
            today=today, agreement_ids=[agreement.pk], with_opportunities=True
        )[0]
        trend = selectors.agreement_trend(glance=glance, today=today)
        return {
            "glance": glance,
            "charts": _agreement_charts(glance),
            "trend": trend,
            "trend_chart": _trend_chart(glance, trend),
        }

    return page_cached(
        request.organization.pk,  # type: ignore[attr-defined]
        "executive-agreement",
        CACHE_FORMAT,
        agreement.pk,
        today.isoformat(),
        compute=compute,
        version=version,
    )


def _agreement_charts(glance: selectors.AgreementGlance) -> dict[str, Any]:
    agreement = glance.agreement
    charts: dict[str, Any] = {"indicators": []}
    if glance.is_co_management:
        for indicator in selectors.indicator_series(agreement=agreement, terms=glance.terms):
            d = indicator.definition
            charts["indicators"].append(
                {
                    "definition": d,
                    "points": indicator.points,
                    "chart": indicator_chart(
                        title=d.name,
                        direction=d.direction,
                        threshold=d.threshold,
                        target=d.target,
                        stretch=d.stretch,
                        baseline=d.baseline_value,
                        results=indicator.chart_results or [("no results yet", None)],
                        unit=d.unit,
                        height=260,
                    ),
                }
            )
        schedule = glance.fee_schedule
        if schedule:
            months = [f"{ln.month:%b}" for ln in schedule]
            charts["fee"] = bar_chart(
                title="Fixed fee: monthly instalment and amount payable on approved hours",
                categories=months,
                series=[
                    ("Instalment", [ln.instalment for ln in schedule]),
                    ("Payable", [ln.amount_payable for ln in schedule]),
                ],
                height=280,
            )
            charts["hours"] = line_chart(
                title="Approved management hours per month against the hours required",
                x_labels=months,
                series=[
                    ("Approved hours", [ln.approved_hours for ln in schedule]),
                    ("Required hours", [ln.required_hours for ln in schedule]),
                ],
                include_zero=True,
                height=260,
            )
            charts["fee_rows"] = schedule
    else:
        names = selectors.opportunity_names(agreement=agreement)
        series, table = [], []
        for year in glance.years:
            fig = glance.figures.get(year.pk)
            if fig is None or not fig.opportunities:
                continue
            by_key = {o.key: o.counted_savings for o in fig.opportunities}
            values = [by_key.get(k) for k, _ in names]
            label = year.label + (" (to date)" if fig.gross_savings is None else "")
            series.append((label, values))
            table.append((label, values))
        if series:
            charts["savings"] = bar_chart(
                title="Savings by opportunity and programme year",
                categories=[n for _, n in names],
                series=series,
                height=300,
            )
            charts["savings_rows"] = {"categories": [n for _, n in names], "rows": table}
        cap = glance.cap_figures
        if cap and cap.cap:
            charts["cap"] = progress_bar_chart(
                title="Distribution cap: paid, and counted with unpaid and projected amounts",
                value_format="money",
                items=[
                    ("Paid to physicians", glance.distributed_paid, cap.cap),
                    ("Paid, unpaid and projected", cap.cap_used or Decimal("0"), cap.cap),
                ],
            )
    return charts


def _trend_chart(glance: selectors.AgreementGlance, trend: list[selectors.TrendRow]) -> Any:
    """Year on year: what was earned (or, for shared savings, saved and shared) against what
    was paid. Paid is only what payment records say; the rest is labelled by its basis."""
    if not trend:
        return None
    labels = [row.label for row in trend]
    series: list[tuple[str, Sequence[Decimal | None]]]
    if glance.is_co_management:
        series = [
            ("Incentive earned", [row.earned for row in trend]),
            ("Incentive paid", [row.paid for row in trend]),
        ]
        title = "Incentive earned and paid, per programme year"
    else:
        series = [
            ("Gross savings", [row.savings for row in trend]),
            ("Physicians' share, calculated", [row.earned for row in trend]),
            ("Paid to physicians", [row.paid for row in trend]),
        ]
        title = "Savings, physicians' share and payments, per programme year"
    return bar_chart(title=title, categories=labels, series=series, height=280)


@org_view("report.view")
def executive_agreement(request: HttpRequest, org_slug: str, pk: int) -> HttpResponse:
    # The version is read before any data: what is cached under it is never older than it.
    version = data_version(request.organization.pk)  # type: ignore[attr-defined]
    agreement = get_object_or_404(Agreement.objects.select_related("practice"), pk=pk)
    # The page's body is a cached fragment: the figures are read only if it must be rendered
    # (a callable in a template context is called when the template first uses it).
    in_depth = functools.cache(lambda: _agreement_in_depth(request, agreement, version))
    return render(
        request,
        "workspaces/executive_agreement.html",
        {
            "agreement": agreement,
            "g": lambda: in_depth()["glance"],
            "years": lambda: [
                (y, in_depth()["glance"].figures.get(y.pk)) for y in in_depth()["glance"].years
            ],
            "charts": lambda: in_depth()["charts"],
            "trend": lambda: in_depth()["trend"],
            "trend_chart": lambda: in_depth()["trend_chart"],
            "today": _today(),
            "data_version": version,
        },
    )


@org_view("report.view")
def executive_agreement_csv(
    request: HttpRequest, org_slug: str, pk: int, table: str
) -> HttpResponse:
    agreement, glance = _agreement_glance(request, pk)
    slug = f"{org_slug}-agreement-{agreement.pk}"
    rows: list[list[object]]
    if table == "years":
        rows = []
        for year in glance.years:
            fig = glance.figures[year.pk]
            rows.append(
                [
                    year.label,
                    year.start.isoformat(),
                    year.end.isoformat(),
                    _money_or_blank(fig.incentive_pool),
                    _money_or_blank(fig.incentive_earned),
                    fig.incentive_basis,
                    _money_or_blank(fig.gross_savings),
                    _money_or_blank(fig.savings_ytd),
                    _money_or_blank(fig.amount_paid),
                    _money_or_blank(fig.cap_headroom),
                    fig.report_status_label,
                ]
            )
        return csv_response(
            f"{slug}-years.csv",
            [
                "programme year",
                "start",
                "end",
                "incentive pool",
                "incentive earned",
                "basis",
                "gross savings",
                "savings to date",
                "physicians' share (calculated)",
                "cap headroom",
                "report status",
            ],
            rows,
        )
    if table == "indicators":
        rows = []
        for series in selectors.indicator_series(agreement=agreement, terms=glance.terms):
            d = series.definition
            for label, value, n in series.points:
                rows.append(
                    [
                        d.name,
                        d.direction,
                        label,
                        "" if value is None else str(value),
                        "" if n is None else n,
                        d.threshold,
                        d.target,
                        d.stretch,
                    ]
                )
        return csv_response(
            f"{slug}-indicators.csv",
            ["indicator", "direction", "period", "result", "n", "threshold", "target", "stretch"],
            rows,
        )
    if table == "fees":
        rows = [
            [
                ln.month.isoformat(),
                ln.instalment,
                ln.required_hours,
                ln.approved_hours,
                ln.status,
                ln.amount_payable,
            ]
            for ln in glance.fee_schedule
        ]
        return csv_response(
            f"{slug}-fixed-fee.csv",
            ["month", "instalment", "required hours", "approved hours", "status", "payable"],
            rows,
        )
    if table == "savings":
        names = selectors.opportunity_names(agreement=agreement)
        rows = []
        for year in glance.years:
            for o in glance.figures[year.pk].opportunities:
                rows.append(
                    [
                        year.label,
                        o.key,
                        dict(names).get(o.key, o.name),
                        o.eligible_cases,
                        o.raw_savings,
                        o.counted_savings,
                    ]
                )
        return csv_response(
            f"{slug}-savings-by-opportunity.csv",
            [
                "programme year",
                "key",
                "opportunity",
                "eligible cases",
                "raw savings",
                "counted savings",
            ],
            rows,
        )
    raise Http404


# --------------------------------------------------------------------------------------------
# Program administrator workspace
# --------------------------------------------------------------------------------------------


def _admin_queues(request: HttpRequest) -> dict[str, Any]:
    today = _today()
    query = request.GET.get("q", "").strip()
    setup = selectors.agreements_in_setup()
    adjudication = selectors.adjudication_to_prepare(today=today)
    sheets = selectors.timesheets_awaiting_approval()
    flags = selectors.flags_open()
    if query:
        setup = [s for s in setup if query.lower() in s.agreement.name.lower()]
        adjudication = [a for a in adjudication if query.lower() in a.year.agreement.name.lower()]
        sheets = sheets.filter(agreement__name__icontains=query)
        flags = flags.filter(agreement__name__icontains=query) | flags.filter(
            message__icontains=query
        )
    jobs = selectors.jobs_needing_attention(since=timezone.now() - dt.timedelta(days=14))
    return {
        "today": today,
        "q": query,
        "setup": setup,
        "adjudication": adjudication,
        "sheets": sheets,
        "flags": flags,
        "jobs": jobs,
    }


@org_view("report.prepare")
def admin_workspace(request: HttpRequest, org_slug: str) -> HttpResponse:
    queues = _admin_queues(request)
    sheets = Paginator(queues["sheets"], PAGE_SIZE).get_page(request.GET.get("sheets_page"))
    flags = Paginator(queues["flags"], PAGE_SIZE).get_page(request.GET.get("flags_page"))
    jobs = [{"job": j, "state": job_live_state(j)} for j in queues["jobs"]]
    return render(
        request,
        "workspaces/admin_workspace.html",
        {
            **queues,
            "sheets_page": sheets,
            "flags_page": flags,
            "jobs": jobs,
            "recent_jobs": selectors.jobs_recent(),
            "counts": {
                "setup": len(queues["setup"]),
                "adjudication": len(queues["adjudication"]),
                "sheets": sheets.paginator.count,
                "flags": flags.paginator.count,
                "jobs": len(jobs),
            },
        },
    )


@org_view("report.prepare")
def admin_workspace_csv(request: HttpRequest, org_slug: str, table: str) -> HttpResponse:
    queues = _admin_queues(request)
    if table == "setup":
        return csv_response(
            f"{org_slug}-agreements-in-setup.csv",
            ["agreement", "kind", "status", "next step", "missing"],
            [
                [
                    s.agreement.name,
                    s.agreement.get_kind_display(),
                    s.agreement.get_status_display(),
                    s.next_step_label,
                    "; ".join(s.missing),
                ]
                for s in queues["setup"]
            ],
        )
    if table == "jobs":
        return csv_response(
            f"{org_slug}-jobs.csv",
            ["job", "kind", "status", "progress", "message", "errors", "started by", "created"],
            [
                [
                    j.pk,
                    j.kind,
                    j.status,
                    j.progress,
                    j.message,
                    j.error_count,
                    j.created_by.email if j.created_by else "",
                    timezone.localtime(j.created_at).isoformat(),
                ]
                for j in queues["jobs"]
            ],
        )
    if table == "adjudication":
        return csv_response(
            f"{org_slug}-adjudication-to-prepare.csv",
            ["agreement", "programme year", "ended", "report status", "next action"],
            [
                [
                    a.year.agreement.name,
                    a.year.label,
                    a.year.end.isoformat(),
                    a.report_status_label,
                    a.action,
                ]
                for a in queues["adjudication"]
            ],
        )
    if table == "timesheets":
        return csv_response(
            f"{org_slug}-timesheets-awaiting-approval.csv",
            ["agreement", "physician", "month", "hours", "submitted"],
            [
                [
                    s.agreement.name,
                    s.physician.full_name,
                    s.month.strftime("%Y-%m"),
                    s.total_hours or 0,
                    timezone.localtime(s.submitted_at).isoformat() if s.submitted_at else "",
                ]
                for s in queues["sheets"]
            ],
        )
    if table == "flags":
        return csv_response(
            f"{org_slug}-open-compliance-flags.csv",
            ["agreement", "kind", "severity", "blocking", "physician", "message", "opened"],
            [
                [
                    f.agreement.name if f.agreement else "",
                    f.kind,
                    f.get_severity_display(),
                    "yes" if f.blocking else "no",
                    f.physician.full_name if f.physician else "",
                    f.message,
                    timezone.localtime(f.opened_at).isoformat(),
                ]
                for f in queues["flags"]
            ],
        )
    raise Http404


# --------------------------------------------------------------------------------------------
# Physician home
# --------------------------------------------------------------------------------------------


def _physician_context(request: HttpRequest) -> dict[str, Any]:
    membership = request.membership  # type: ignore[attr-defined]
    today = _today()
    physician = (
        Physician.objects.filter(pk=membership.physician_id).first()
        if membership.physician_id
        else None
    )
    if physician is None:
        return {"physician": None, "today": today}
    participations = selectors.physician_participations(physician_id=physician.pk)
    agreement_ids = [p.agreement_id for p in participations]
    co_ids = [
        p.agreement_id for p in participations if p.agreement.kind == AgreementKind.CO_MANAGEMENT
    ]
    glances = {
        g.agreement.pk: g
        for g in selectors.agreements_at_a_glance(today=today, agreement_ids=agreement_ids)
    }
    months = selectors.physician_months(
        physician_id=physician.pk, agreement_ids=co_ids, today=today
    )
    projections = selectors.physician_projection_rows(
        physician_id=physician.pk, agreement_ids=agreement_ids
    )
    distributions = selectors.physician_distributions(physician_id=physician.pk)
    by_year: dict[tuple[str, str], dict[str, Any]] = {}
    for d in distributions:
        key = (d.run.agreement.name, d.run.programme_year.label)
        row = by_year.setdefault(
            key,
            {
                "agreement": d.run.agreement,
                "year": d.run.programme_year,
                "report": d.run.report,
                "components": [],
                "total": Decimal("0.00"),
            },
        )
        row["components"].append(d)
        row["total"] += d.amount
    rows = []
    for p in participations:
        g = glances.get(p.agreement_id)
        rows.append(
            {
                "participation": p,
                "glance": g,
                "months": months.get(p.agreement_id, []),
                "projection": projections.get(p.agreement_id),
            }
        )
    statements = list(statements_visible(membership=membership))
    chart = None
    if by_year:
        # Oldest year first, one bar per agreement: the calendar year is the readable label
        # ("2025"), where the programme-year labels ("Year 2 · 2025") repeat across agreements.
        years = sorted({v["year"].start.year for v in by_year.values()})
        agreement_names = sorted({v["agreement"].name for v in by_year.values()})
        totals: dict[tuple[str, int], Decimal] = {}
        for v in by_year.values():
            slot = (v["agreement"].name, v["year"].start.year)
            totals[slot] = totals.get(slot, Decimal("0.00")) + v["total"]
        chart = bar_chart(
            title="Your distributions by year",
            categories=[str(y) for y in years],
            series=[(name, [totals.get((name, y)) for y in years]) for name in agreement_names],
            height=240,
        )
    return {
        "physician": physician,
        "today": today,
        "rows": rows,
        "statements": statements,
        # Oldest year first, as in the chart above the table.
        "distributions": sorted(
            by_year.values(), key=lambda v: (v["year"].start, v["agreement"].name)
        ),
        "distribution_chart": chart,
        "own_only": is_own_only(membership, "statement.view"),
    }


@org_view("statement.view")
def physician_home(request: HttpRequest, org_slug: str) -> HttpResponse:
    return render(request, "workspaces/physician_home.html", _physician_context(request))


@org_view("statement.view")
def physician_home_csv(request: HttpRequest, org_slug: str, table: str) -> HttpResponse:
    context = _physician_context(request)
    if table not in ("timelogs", "distributions", "statements"):
        raise Http404
    if context["physician"] is None:
        # Not a physician: statement.view is declared and held, but no row here is theirs —
        # the same table, empty (as the practices list and the API's filter_own).
        context = {**context, "rows": [], "distributions": [], "statements": []}
    if table == "timelogs":
        out = []
        for row in context["rows"]:
            for m in row["months"]:
                out.append(
                    [
                        row["participation"].agreement.name,
                        m.month.strftime("%Y-%m"),
                        m.label,
                        "" if m.hours is None else m.hours,
                    ]
                )
        return csv_response("my-time-logs.csv", ["agreement", "month", "status", "hours"], out)
    if table == "distributions":
        out = []
        for row in context["distributions"]:
            for d in row["components"]:
                out.append(
                    [row["agreement"].name, row["year"].label, d.get_component_display(), d.amount]
                )
        return csv_response(
            "my-distributions.csv", ["agreement", "programme year", "component", "amount"], out
        )
    if table == "statements":
        return csv_response(
            "my-statements.csv",
            ["agreement", "programme year", "report status", "total"],
            [
                [
                    s.report.agreement.name,
                    s.report.programme_year.label,
                    s.report.get_status_display(),
                    s.total,
                ]
                for s in context["statements"]
            ],
        )
    raise Http404
