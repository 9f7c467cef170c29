"""PDF documents rendered with WeasyPrint from stored figures, never recomputed.

Two steps, so the benchmark and a process pool can render from plain data: ``*_context``
reads the stored rows into a plain dict (JSON-like: strings, ints, lists), ``render_*`` turns
that dict into PDF bytes. The same dict gives the same bytes: the PDF metadata dates come from
the report's frozen (or last transition) timestamp, never from the clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format

from comanage.core import charts
from comanage.core.money import ZERO, round_percentage, to_decimal
from comanage.core.pdf import render_pdf
from comanage.core.people.organization import logo_data_uri
from comanage.core.tenancy import organization_zone
from indicators.read_models import IndicatorOutcomeRead
from savings.read_models import OpportunityResult

from .changes import run_change_rows
from .models import AdjudicationReport, CalculationRun, ReportStatus
from .read_models import RunFlag

_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULT_COLOURS = {"primary": "#1f4e79", "accent": "#2a9d8f"}


def _d(value: Any) -> Decimal:
    return to_decimal(value) if value not in (None, "") else ZERO


def _trim(value: Any) -> Any:
    """``25.0000`` → ``25``, ``1.8000`` → ``1.8``: figures as people write them."""
    if value is None or value == "":
        return value
    try:
        text = format(Decimal(str(value)), "f")
    except (ArithmeticError, ValueError):
        return value
    return text.rstrip("0").rstrip(".") if "." in text else text


def _colour(value: Any, name: str) -> str:
    """A branding colour for the stylesheet: ``#rrggbb`` or the default, never other text
    (the model validates it, but rows written around the form must not reach CSS)."""
    text = str(value or "")
    return text if _HEX_COLOUR.fullmatch(text) else DEFAULT_COLOURS[name]


def _logo_data_uri(organization: Any) -> str:
    """The logo as a ``data:`` URI: the only kind of image the PDF fetcher serves
    (comanage.core.pdf); its type is read from its content, which must decode as PNG or JPEG."""
    return logo_data_uri(organization)


def _branding(organization: Any) -> dict[str, str]:
    return {
        "name": organization.name,
        "primary": _colour(organization.primary_colour, "primary"),
        "accent": _colour(organization.accent_colour, "accent"),
        "logo": _logo_data_uri(organization),
    }


def _indicator_terms(inputs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Cut-points per indicator from the stored incentive inputs (IndicatorTerms as dicts)."""
    found: dict[str, dict[str, Any]] = {}
    incentive = inputs.get("incentive") or {}
    candidates = (
        incentive.get("definitions")
        or incentive.get("indicators")
        or incentive.get("indicator_terms")
        or []
    )
    if isinstance(candidates, dict):
        candidates = [dict(v, key=v.get("key", k)) for k, v in candidates.items()]
    for item in candidates:
        if not isinstance(item, dict) or "key" not in item:
            continue
        cuts = {}
        for tier in item.get("tiers") or []:
            if isinstance(tier, list | tuple) and len(tier) >= 2:
                cuts[tier[0]] = tier[1]
            elif isinstance(tier, dict):
                cuts[tier.get("name")] = tier.get("cut_point")
        for name in ("threshold", "target", "stretch"):
            if item.get(name) is not None:
                cuts[name] = item[name]
        found[item["key"]] = {
            "threshold": cuts.get("threshold"),
            "target": cuts.get("target"),
            "stretch": cuts.get("stretch"),
            "baseline": item.get("baseline") or item.get("baseline_value"),
            "unit": item.get("unit", ""),
        }
    return found


@dataclass(frozen=True)
class IndicatorRow:
    """One indicator of the report's incentive table: the stored outcome, its cut-points from
    the stored inputs (as people write them, ``25`` not ``25.0000``) and its chart."""

    outcome: IndicatorOutcomeRead
    cut_threshold: Any = None
    cut_target: Any = None
    cut_stretch: Any = None
    chart: str = ""

    @property
    def display_score(self) -> Any:
        return _trim(self.outcome.display_score)


def _indicator_chart(run: CalculationRun, outcome: IndicatorOutcomeRead, cut: dict) -> str:
    if cut.get("threshold") is None:
        return ""
    try:
        return str(
            charts.indicator_chart(
                title=outcome.name,
                direction=outcome.direction,
                threshold=cut.get("threshold"),
                target=cut.get("target"),
                stretch=cut.get("stretch"),
                baseline=cut.get("baseline"),
                results=[
                    (
                        run.programme_year.label,
                        outcome.score,
                        outcome.note or "not scored"
                        if outcome.status == "insufficient_denominator"
                        else "",
                    )
                ],
                unit=cut.get("unit") or "",
                height=190,
            )
        )
    except (ValueError, TypeError):
        return ""


def _indicator_rows(run: CalculationRun) -> list[IndicatorRow]:
    incentive = run.read.incentive
    if incentive is None:
        return []
    terms = _indicator_terms(run.inputs)
    rows = []
    for outcome in incentive.indicators:
        cut = terms.get(outcome.key, {})
        rows.append(
            IndicatorRow(
                outcome=outcome,
                cut_threshold=_trim(cut.get("threshold")),
                cut_target=_trim(cut.get("target")),
                cut_stretch=_trim(cut.get("stretch")),
                chart=_indicator_chart(run, outcome, cut),
            )
        )
    return rows


def _waterfall(run: CalculationRun) -> str:
    r = run.read.totals
    try:
        if run.kind == "co_management" and r.fmv_total_max:
            return str(
                charts.waterfall_chart(
                    title="FMV maximum and headroom",
                    steps=[
                        ("FMV maximum", _d(r.fmv_total_max)),
                        ("Fixed fee paid", -_d(r.fixed_fee_payable)),
                        ("Incentive earned", -_d(r.incentive_earned)),
                    ],
                    total_label="Headroom",
                    height=300,
                )
            )
        if run.kind == "shared_savings":
            return str(
                charts.waterfall_chart(
                    title="From gross savings to the physicians' distribution",
                    steps=[
                        ("Gross savings", _required(r.gross_savings)),
                        ("Administrator fees", -_required(r.admin_fees)),
                        ("Net savings", charts.SUBTOTAL),
                        ("Hospital share", -_required(r.hospital_share)),
                        ("Physician pool", charts.SUBTOTAL),
                        ("Quality gate", -_required(r.withheld_by_quality_gate)),
                        ("Distribution cap", -_required(r.withheld_by_cap)),
                    ],
                    total_label="Paid to physicians",
                    height=320,
                )
            )
    except (KeyError, ValueError, TypeError):
        return ""
    return ""


def _required(value: Decimal | None) -> Decimal:
    """A total the chart cannot draw without (an older run lacking it draws no chart)."""
    if value is None:
        raise KeyError("total missing from the stored run")
    return value


def _opportunity_chart(opportunities: Sequence[OpportunityResult]) -> str:
    if not opportunities:
        return ""
    title = "Savings per opportunity (after the volume cap)"
    if len(opportunities) > 12:
        # A readable chart: the twelve largest by capped savings; the table lists them all.
        opportunities = sorted(opportunities, key=lambda o: (-abs(o.capped_savings), o.name))[:12]
        title = "The twelve largest savings opportunities (after the volume cap)"
    return str(
        charts.bar_chart(
            title=title,
            categories=[o.name for o in opportunities],
            series=[
                ("Raw savings", [o.raw_savings for o in opportunities]),
                ("Capped savings", [o.capped_savings for o in opportunities]),
            ],
            height=260,
        )
    )


def report_context(*, report: AdjudicationReport) -> dict[str, Any]:
    """Everything the adjudication report shows, read from stored rows."""
    run = report.run
    transitions = list(report.transitions.order_by("at", "pk"))
    status_label = report.get_status_display()
    if report.frozen_at:
        # The frozen document shows the report as counsel approved it, so a later render
        # (after authorisation or payment) gives the same bytes.
        transitions = [t for t in transitions if t.at <= report.frozen_at]
        status_label = ReportStatus.APPROVED.label
        stamp = report.frozen_at
    elif transitions:
        stamp = transitions[-1].at
    else:
        stamp = report.created_at
    names = {p.pk: p for p in _physicians(run)}
    distributions = []
    for d in run.distributions.order_by("position"):
        p = names.get(d.physician_id)
        distributions.append(
            {
                "physician": str(p) if p else str(d.physician_id),
                "npi": p.npi if p else "",
                "component": d.get_component_display(),
                "entitlement": d.entitlement.replace("_", " "),
                "weight": str(d.weight.normalize()),
                "amount": str(d.amount),
                "note": d.note,
            }
        )
    read = run.read
    opportunities = read.savings.opportunities if read.savings else ()
    return {
        "kind": run.kind,
        "branding": _branding(report.organization),
        "title": "Adjudication report",
        "agreement": read.context.agreement,
        "programme_year": read.context.programme_year,
        "terms": read.context.terms,
        "fmv": run.read.fmv,
        "report": {
            "id": report.pk,
            "version": report.version,
            "status": report.status,
            "status_label": status_label,
            "is_frozen": report.status
            in (ReportStatus.APPROVED, ReportStatus.AUTHORISED, ReportStatus.PAID),
            "supersedes": report.supersedes.version if report.supersedes else None,
        },
        "run": {
            "version": run.version,
            "hash": run.calculation_hash,
            "rules_version": run.rules_version,
            "created_at": run.created_at.isoformat(),
        },
        "results": read.totals,
        "fixed_fee_lines": read.fixed_fee_lines,
        "incentive": read.incentive,
        "incentive_rate": read.incentive.payout_rate if read.incentive else None,
        "indicators": _indicator_rows(run),
        "savings": read.savings,
        "opportunity_chart": _opportunity_chart(opportunities),
        "waterfall": _waterfall(run),
        "distributions": distributions,
        "calculation_flags": _flags_named(read.flags, names, opportunities),
        "compliance_flags": report.compliance_snapshot,
        "transitions": [
            {
                "at": t.at.isoformat(),
                "at_display": _local_stamp(t.at, report.organization),
                "from": ReportStatus(t.from_status).label,
                "to": ReportStatus(t.to_status).label,
                "actor": t.actor_name,
                "role": t.actor_role,
                "comment": t.comment,
            }
            for t in transitions
        ],
        "diff": run_change_rows(run, limit=40),
        "diff_count": len(run.diff),
        "stamp": stamp.isoformat(),
    }


def _local_stamp(moment: dt.datetime, organization: Any = None) -> str:
    """A moment in the organization's time zone (else the installation's), in the pages' one
    style (an approval at 9 pm in New York is that evening, not the next day in UTC)."""
    zone = organization_zone(organization) or timezone.get_default_timezone()
    local = timezone.localtime(moment, zone)
    return f"{date_format(local, 'M j, Y g:i A')} {local.tzname()}"


def _flags_named(
    flags: Sequence[RunFlag],
    physicians: dict[int, Any],
    opportunities: Sequence[OpportunityResult],
) -> list[RunFlag]:
    """The engines name a flag's subject by key ("physician:12", an opportunity key); the
    document names it as a reader would (Dr Ann Adams, Closure devices)."""
    opportunity_names = {o.key: o.name for o in opportunities}
    named = []
    for flag in flags:
        subject = flag.subject
        kind, _, ident = subject.partition(":")
        if kind == "physician" and ident.isdigit() and int(ident) in physicians:
            subject = str(physicians[int(ident)])
        elif opportunity_names.get(subject):
            subject = opportunity_names[subject]
        named.append(replace(flag, subject=subject))
    return named


def _physicians(run: CalculationRun) -> list[Any]:
    from agreements.models import Physician

    return list(
        Physician.objects.filter(pk__in=run.distributions.values_list("physician_id", flat=True))
    )


def statement_contexts(*, report: AdjudicationReport) -> list[dict[str, Any]]:
    """One context per physician with a distribution in the report's run."""
    base = report_context(report=report)
    run = report.run
    contexts = []
    by_physician: dict[int, list[Any]] = {}
    for d in run.distributions.order_by("position"):
        by_physician.setdefault(d.physician_id, []).append(d)
    for physician in sorted(_physicians(run), key=lambda p: (p.last_name, p.first_name, p.pk)):
        rows = by_physician.get(physician.pk, [])
        total = sum((d.amount for d in rows), ZERO)
        contexts.append(
            {
                "kind": base["kind"],
                "branding": base["branding"],
                "title": "Physician statement",
                "agreement": base["agreement"],
                "programme_year": base["programme_year"],
                "report": base["report"],
                "run": base["run"],
                "results": base["results"],
                "incentive": base["incentive"],
                "savings_summary": base["results"],
                "physician": {
                    "id": physician.pk,
                    "name": str(physician),
                    "npi": physician.npi,
                    "specialty": physician.specialty,
                },
                "lines": [
                    {
                        "component": d.get_component_display(),
                        "entitlement": d.entitlement.replace("_", " "),
                        "weight": str(d.weight.normalize()),
                        "amount": str(d.amount),
                        "note": d.note,
                    }
                    for d in rows
                ],
                "total": str(total),
                "stamp": base["stamp"],
                "participants": len(by_physician),
            }
        )
    return contexts


def fmv_context(*, run: CalculationRun) -> dict[str, Any]:
    fmv = run.read.fmv
    context = run.read.context
    terms = context.terms
    rate_chart = ""
    percentiles = [
        (label, rate)
        for label, rate in (
            ("25th", fmv.rate_p25 if fmv else None),
            ("50th", fmv.rate_p50 if fmv else None),
            ("75th", fmv.rate_p75 if fmv else None),
            ("90th", fmv.rate_p90 if fmv else None),
        )
        if rate is not None
    ]
    if percentiles and fmv is not None and fmv.hourly_rate is not None:
        rate_chart = str(
            charts.bar_chart(
                title="Hourly rate against the survey percentiles",
                categories=[p[0] for p in percentiles] + ["Agreement rate"],
                series=[("Hourly rate", [p[1] for p in percentiles] + [fmv.hourly_rate])],
                height=240,
            )
        )
    split_chart = ""
    fixed = _d(fmv.fixed_portion if fmv else None)
    incentive = _d(fmv.max_incentive if fmv else None)
    if fmv is not None:
        split_chart = str(
            charts.bar_chart(
                title="Compensation structure",
                categories=["Fixed", "Incentive (maximum)"],
                series=[
                    ("FMV opinion", [fixed, incentive]),
                    (
                        "Agreement terms",
                        [_d(terms.annual_fixed_fee), _d(terms.incentive_pool)],
                    ),
                ],
                height=240,
            )
        )
    total = fixed + incentive
    incentive_share = round_percentage(incentive * 100 / total) if total else None
    above_p75 = bool(
        fmv is not None
        and fmv.hourly_rate is not None
        and fmv.rate_p75 is not None
        and fmv.hourly_rate > fmv.rate_p75
    )
    return {
        "branding": _branding(run.organization),
        "title": "FMV summary",
        "agreement": context.agreement,
        "programme_year": context.programme_year,
        "terms": terms,
        "fmv": fmv,
        "rate_chart": rate_chart,
        "split_chart": split_chart,
        "fixed_plus_incentive": str(total),
        "incentive_share": str(incentive_share or ""),
        "incentive_share_high": bool(incentive_share and incentive_share > 50),
        "above_p75": above_p75,
        "within_max": total <= fmv.total_max_annual if fmv is not None else None,
        "run": {"version": run.version, "hash": run.calculation_hash},
        "stamp": run.created_at.isoformat(),
    }


def _write(html: str, *, stamp: str, title: str) -> bytes:
    # comanage.core.pdf's fetcher: data: and the product's static files, nothing else.
    when = dt.datetime.fromisoformat(stamp).replace(microsecond=0).isoformat()
    return render_pdf(
        html,
        metadata={"created": when, "modified": when, "title": title, "generator": "Comanage"},
        pdf_identifier=stamp.encode()[:32],
    )


def _header(context: dict[str, Any]) -> dict[str, str]:
    """The running headers' text: plain strings, autoescaped into ``data-`` attributes that
    the stylesheet reads (``string-set``), never written into the stylesheet itself."""
    return {
        "org": " ".join(str(context["branding"]["name"]).split()),
        "title": " ".join(
            f"{context['title']} · {context['agreement'].name} · "
            f"{context['programme_year'].label}".split()
        ),
    }


def render_report(context: dict[str, Any]) -> bytes:
    html = render_to_string(
        "adjudication/pdf/report.html", {"c": context, "header": _header(context)}
    )
    return _write(
        html,
        stamp=context["stamp"],
        title=f"Adjudication report · {context['agreement'].name} · "
        f"{context['programme_year'].label}",
    )


def render_statement(context: dict[str, Any]) -> bytes:
    html = render_to_string(
        "adjudication/pdf/statement.html", {"c": context, "header": _header(context)}
    )
    return _write(
        html,
        stamp=context["stamp"],
        title=f"Statement · {context['physician']['name']} · {context['programme_year'].label}",
    )


def render_fmv(context: dict[str, Any]) -> bytes:
    html = render_to_string("adjudication/pdf/fmv.html", {"c": context, "header": _header(context)})
    return _write(html, stamp=context["stamp"], title=f"FMV summary · {context['agreement'].name}")


def report_pdf(*, report: AdjudicationReport) -> bytes:
    return render_report(report_context(report=report))
