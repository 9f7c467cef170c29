"""Adjudication pages. Thin: each declares its permission and calls services/selectors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from agreements.models import ProgrammeYear
from comanage.core.exports import csv_response
from comanage.core.http import OrgRequest, signed_in_user
from comanage.core.jobs import DuplicateJob
from comanage.core.models import User
from comanage.core.security import require_recent_otp
from comanage.core.views import check_permission, org_view

from . import changes, pdf, selectors, services, signing
from .models import (
    AdjudicationReport,
    CalculationRun,
    PaymentLine,
    PhysicianStatement,
    ReportStatus,
)

MAX_UPLOAD = 30 * 1024 * 1024


def _refused(request: HttpRequest, exc: services.AdjudicationError, back: str) -> HttpResponse:
    if isinstance(exc, services.TransitionForbidden):
        raise PermissionDenied(str(exc))
    reasons = getattr(exc, "reasons", None)
    return render(
        request,
        "adjudication/refused.html",
        {
            "message": str(exc) if not reasons else "Approval refused.",
            "reasons": reasons or [],
            "back": back,
        },
        status=exc.status_code,
    )


def _pdf_response(
    content: bytes | memoryview | None, filename: str, download: bool = False
) -> HttpResponse:
    if not content:
        raise Http404("The PDF has not been rendered yet.")
    response = HttpResponse(bytes(content), content_type="application/pdf")
    disposition = "attachment" if download else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "private, no-store"
    return response


@org_view("calculation.view")
def run_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    return render(
        request, "adjudication/run_list.html", {"overview": selectors.programme_years_overview()}
    )


@org_view("calculation.run")
@require_POST
def run_start(request: HttpRequest, org_slug: str, programme_year_id: int) -> HttpResponse:
    programme_year = get_object_or_404(ProgrammeYear, pk=programme_year_id)
    try:
        job = services.adjudication_run_start(
            programme_year=programme_year, user=signed_in_user(request)
        )
        messages.success(request, "The calculation has started; this page shows its progress.")
    except DuplicateJob as exc:
        job = exc.existing
        messages.info(request, "This calculation is already running; here is its progress.")
    except ValidationError as refused:  # the year has not ended: no final run yet
        messages.error(request, " ".join(refused.messages))
        return redirect("adjudication_run_list", org_slug=org_slug)
    return redirect("job_detail", org_slug=org_slug, job_id=job.pk)


@org_view("calculation.view")
def run_detail(request: HttpRequest, org_slug: str, run_id: int) -> HttpResponse:
    run = get_object_or_404(
        CalculationRun.objects.select_related(
            "agreement", "programme_year", "previous", "created_by"
        ),
        pk=run_id,
    )
    report = AdjudicationReport.objects.filter(run=run).first()
    return render(
        request,
        "adjudication/run_detail.html",
        {
            "run": run,
            "report": report,
            "versions": selectors.runs_for_year(programme_year=run.programme_year),
            "distributions": run.distributions.select_related("physician").order_by("position"),
            "indicators": pdf._indicator_rows(run),
            "changes": changes.run_change_rows(run, limit=changes.PAGE_LIMIT),
        },
    )


@org_view("report.view")
def run_fmv_pdf(request: HttpRequest, org_slug: str, run_id: int) -> HttpResponse:
    run = get_object_or_404(CalculationRun, pk=run_id)
    return _pdf_response(
        pdf.render_fmv(pdf.fmv_context(run=run)),
        f"fmv-summary-{run.agreement_id}-v{run.version}.pdf",
    )


def _report(pk: int) -> AdjudicationReport:
    return get_object_or_404(
        AdjudicationReport.objects.select_related(
            "run", "agreement", "programme_year", "supersedes"
        ),
        pk=pk,
    )


def _actions(report: AdjudicationReport, user: User) -> list[dict[str, object]]:
    """The steps the user may take, each signing one with what it signs and for how much."""
    return [
        {
            "action": rule.action,
            "label": rule.label,
            "comment_required": rule.comment_required,
            "signing": (
                signing.signing_summary(report=report, action=rule.action)
                if rule.action in services.SIGNING_ACTIONS
                else ""
            ),
        }
        for rule in services.transitions_available(report=report, user=user)
    ]


@org_view("report.view")
def report_detail(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    signing.report_open_record(report=report, user=request.user, session=request.session)
    return _report_page(request, report)


def _report_page(
    request: HttpRequest,
    report: AdjudicationReport,
    verification: services.Verification | None = None,
) -> HttpResponse:
    """The report's page; after a verification, with its outcome (422 when it failed)."""
    blockers = (
        services.report_approval_blockers(report=report)
        if report.status == ReportStatus.SUBMITTED
        else []
    )
    return render(
        request,
        "adjudication/report_detail.html",
        {
            "report": report,
            "run": report.run,
            "actions": _actions(report, signed_in_user(request)),
            "transitions": report.transitions.order_by("at", "pk"),
            "blockers": blockers,
            "verification": verification,
            "superseded_by": getattr(report, "superseded_by", None),
            "totals": selectors.payment_totals(report=report),
        },
        status=422 if verification is not None and not verification.ok else 200,
    )


@org_view("report.view")
def report_pdf(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    if report.pdf:
        signing.report_open_record(report=report, user=request.user, session=request.session)
    return _pdf_response(
        report.pdf,
        f"adjudication-report-{report.pk}-v{report.version}.pdf",
        download="download" in request.GET,
    )


def report_transition(
    request: HttpRequest, org_slug: str, report_id: int, action: str
) -> HttpResponse:
    """One step of the approval trail; mounted once per action (``TRANSITION_VIEWS``)."""
    report = _report(report_id)
    back = request.POST.get("next") or ""
    if not back.startswith("/"):
        back = f"/o/{org_slug}/adjudication/reports/{report.pk}/"
    # (A report in another state gets the service's own refusal: it names the state.)
    if (
        action in services.SIGNING_ACTIONS
        and report.status in services.TRANSITIONS[action].from_statuses
    ):
        if (refused := _signing_refusal(request, report, action, back)) is not None:
            return refused
        # A signature needs a code entered with this very request, not one from sign-in.
        step_up = require_recent_otp(
            request,
            max_age_seconds=0,
            signing=signing.signing_summary(report=report, action=action),
        )
        if step_up is not None:
            return step_up
    try:
        services.report_transition(
            report=report,
            action=action,
            user=signed_in_user(request),
            comment=request.POST.get("comment", ""),
        )
    except services.AdjudicationError as exc:
        return _refused(request, exc, back)
    messages.success(
        request,
        f"Done: the report is now "
        f"{AdjudicationReport.objects.get(pk=report.pk).get_status_display().lower()}.",
    )
    return redirect(back)


def _signing_refusal(
    request: HttpRequest, report: AdjudicationReport, action: str, back: str
) -> HttpResponse | None:
    """Before a signature: counsel has opened the report in this session (approve), and the
    signer ticked the confirmation naming what they sign and for how much."""
    if action == "approve" and not signing.report_opened_in_session(
        report=report, session=request.session
    ):
        report_page = f"/o/{report.organization.slug}/adjudication/reports/{report.pk}/"
        return _refused(
            request, services.TransitionInvalid(str(signing.ReportNotOpened())), report_page
        )
    if request.POST.get("confirm") != "yes":
        summary = signing.signing_summary(report=report, action=action)
        return _refused(
            request,
            services.AdjudicationError(
                f"Tick the confirmation to sign. You are about to: {summary}."
            ),
            back,
        )
    return None


# Each action is its own route declaring the permission its step needs (the service checks it
# again), so a role that may not take a step is refused before anything is looked up.
TRANSITION_VIEWS: dict[str, Callable[..., HttpResponse]] = {
    name: org_view(rule.permission)(require_POST(report_transition))
    for name, rule in services.TRANSITIONS.items()
}


@org_view("report.prepare")
@require_POST
def report_rerender(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    services.report_render_enqueue(report=report)
    messages.info(request, "The PDF is being rendered; reload in a moment.")
    return redirect("adjudication_report_detail", org_slug=org_slug, report_id=report.pk)


@org_view("report.view")
@require_POST
def report_verify(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    upload = request.FILES.get("pdf")
    if upload is None or (upload.size or 0) > MAX_UPLOAD:
        messages.error(request, "Choose the PDF to verify (at most 30 MB).")
        return redirect("adjudication_report_detail", org_slug=org_slug, report_id=report.pk)
    result = services.report_verify(report=report, content=upload.read())
    return _report_page(request, report, verification=result)


@org_view("report.approve")
def counsel_queue(request: HttpRequest, org_slug: str) -> HttpResponse:
    items = []
    for report in selectors.reports_in_status(status=ReportStatus.SUBMITTED):
        items.append(
            {
                "report": report,
                "blockers": services.report_approval_blockers(report=report),
                "opened": signing.report_opened_in_session(report=report, session=request.session),
                "signing": signing.signing_summary(report=report, action="approve"),
                "submitted": report.transitions.filter(to_status=ReportStatus.SUBMITTED)
                .order_by("-at")
                .first(),
                "changes": changes.run_change_rows(report.run, limit=changes.PAGE_LIMIT),
            }
        )
    return render(request, "adjudication/counsel_queue.html", {"items": items})


@org_view("report.authorise")
def ceo_queue(request: HttpRequest, org_slug: str) -> HttpResponse:
    items = []
    for report in selectors.reports_in_status(status=ReportStatus.APPROVED):
        totals: dict[int, Decimal] = {}
        for physician_id, amount in report.run.distributions.values_list("physician_id", "amount"):
            totals[physician_id] = totals.get(physician_id, Decimal(0)) + amount
        items.append(
            {
                "report": report,
                "approved": report.transitions.filter(to_status=ReportStatus.APPROVED)
                .order_by("-at")
                .first(),
                # Only those paid something count as paid; a $0.00 line is a forfeit, said apart.
                "paid_physicians": sum(1 for v in totals.values() if v > 0),
                "forfeited_physicians": sum(1 for v in totals.values() if v <= 0),
                "signing": signing.signing_summary(report=report, action="authorise"),
            }
        )
    recent = selectors.reports_in_status(status=ReportStatus.AUTHORISED)
    return render(request, "adjudication/ceo_queue.html", {"items": items, "recent": recent})


@org_view("payment.view")
def payments(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    return render(
        request,
        "adjudication/payments.html",
        {
            "report": report,
            "lines": report.payment_lines.select_related("recorded_by"),
            "totals": selectors.payment_totals(report=report),
            "today": timezone.localdate().isoformat(),
        },
    )


@org_view("payment.view")
def payments_csv(request: HttpRequest, org_slug: str, report_id: int) -> HttpResponse:
    report = _report(report_id)
    rows = [
        [
            line.line_key,
            line.get_kind_display(),
            line.payee,
            line.description,
            str(line.amount),
            line.paid_amount if line.paid_amount is not None else "",
            line.paid_on.isoformat() if line.paid_on else "",
            line.reference,
        ]
        for line in report.payment_lines.all()
    ]
    return csv_response(
        f"payments-{report.agreement_id}-{report.programme_year.start:%Y}-v{report.version}.csv",
        ["line", "kind", "payee", "description", "amount", "paid_amount", "paid_on", "reference"],
        rows,
    )


@org_view("payment.record")
@require_POST
def payment_record(
    request: HttpRequest, org_slug: str, report_id: int, line_id: int
) -> HttpResponse:
    report = _report(report_id)
    line = get_object_or_404(PaymentLine, pk=line_id, report=report)
    back = f"/o/{org_slug}/adjudication/reports/{report.pk}/payments/"
    try:
        paid_on = dt.date.fromisoformat(request.POST.get("paid_on", ""))
    except ValueError:
        return _refused(request, services.AdjudicationError("Enter the payment date."), back)
    try:
        services.payment_record(
            line=line,
            paid_amount=request.POST.get("paid_amount", ""),
            paid_on=paid_on,
            reference=request.POST.get("reference", ""),
            user=signed_in_user(request),
        )
    except (services.AdjudicationError, ValidationError, ValueError) as exc:
        if not isinstance(exc, services.AdjudicationError):
            exc = services.AdjudicationError(
                "; ".join(f"{field}: {' '.join(m)}" for field, m in exc.message_dict.items())
                if isinstance(exc, ValidationError) and hasattr(exc, "error_dict")
                else str(exc)
            )
        return _refused(request, exc, back)
    messages.success(request, f"Recorded: {line.description}.")
    return redirect(back)


@org_view("statement.view")
def statement_list(request: OrgRequest, org_slug: str) -> HttpResponse:
    return render(
        request,
        "adjudication/statement_list.html",
        {"statements": selectors.statements_visible(membership=request.membership)},
    )


@org_view("statement.view")
def statement_pdf(request: OrgRequest, org_slug: str, statement_id: int) -> HttpResponse:
    statement = get_object_or_404(
        selectors.statements_visible(membership=request.membership), pk=statement_id
    )
    check_permission(request, "statement.view", statement)
    return _pdf_response(
        statement.pdf,
        f"statement-{statement.physician.last_name.lower()}-"
        f"{statement.report.programme_year.start:%Y}.pdf",
    )


@org_view("scenario.run")
def what_if(request: HttpRequest, org_slug: str, programme_year_id: int) -> HttpResponse:
    from .forms import ScenarioForm

    programme_year = get_object_or_404(
        ProgrammeYear.objects.select_related("agreement"), pk=programme_year_id
    )
    official = selectors.runs_for_year(programme_year=programme_year).first()
    form = ScenarioForm(request.POST or None, programme_year=programme_year, official=official)
    comparison, error = None, ""
    if request.method == "POST" and form.is_valid():
        try:
            comparison = services.scenario_compare(
                programme_year=programme_year, overrides=form.overrides()
            )
        except services.AdjudicationError as exc:
            error = str(exc)
        except ValidationError as exc:  # an override the service refused: name its field
            error = (
                "; ".join(
                    f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
                )
                if hasattr(exc, "error_dict")
                else " ".join(exc.messages)
            )
        except (ValueError, TypeError, KeyError) as exc:
            error = f"The scenario could not be computed: {exc}"
    bad = bool(error) or (request.method == "POST" and bool(form.errors))
    return render(
        request,
        "adjudication/what_if.html",
        {
            "programme_year": programme_year,
            "form": form,
            "official": official,
            "comparison": comparison,
            "changes": changes.scenario_change_rows(comparison) if comparison else [],
            "error": error,
        },
        status=400 if bad else 200,
    )


__all__ = ["PhysicianStatement"]
