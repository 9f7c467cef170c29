"""Savings pages. Thin: each declares its permission, calls selectors/services, renders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from agreements.models import Agreement, AgreementKind, ComplianceFlag, ProgrammeYear
from comanage.core import uploads
from comanage.core.charts import SUBTOTAL, bar_chart, progress_bar_chart, waterfall_chart
from comanage.core.exports import csv_response
from comanage.core.forms import apply_errors
from comanage.core.http import signed_in_user
from comanage.core.jobs import DuplicateJob
from comanage.core.permissions import is_own_only
from comanage.core.serialise import jsonable
from comanage.core.views import check_permission, history_view, object_for_member, org_view

from . import engine, importing, selectors, services
from .models import (
    CalculationKind,
    DataImport,
    ImportStatus,
    SavingsCalculation,
    SavingsOpportunity,
)
from .read_models import PhysicianShare, RuleNote, SavingsResult

FLAG_KINDS = [k for k, _ in services.SAFEGUARD_KINDS.values()]


def _own_only(request: HttpRequest, permission: str = "savings.view") -> bool:
    return is_own_only(request.membership, permission)  # type: ignore[attr-defined]


def _agreement(request: HttpRequest, pk: int) -> Agreement:
    # A physician sees only agreements they take part in; others do not exist for them.
    savings_agreements = Agreement.objects.filter(kind=AgreementKind.SHARED_SAVINGS)
    return object_for_member(request, savings_agreements, pk, "savings.view")


def _full_reader(request: HttpRequest) -> None:
    if _own_only(request):
        raise PermissionDenied("This page shows every physician's figures.")


def _agreement_for_full_reader(request: HttpRequest, pk: int) -> Agreement:
    agreement = _agreement(request, pk)
    _full_reader(request)
    return agreement


def _url(name: str, request: HttpRequest, *args: Any) -> str:
    return reverse(name, args=[request.organization.slug, *args])  # type: ignore[attr-defined]


def _years(agreement: Agreement) -> list[ProgrammeYear]:
    return list(agreement.programme_years.order_by("number"))


def _chosen_year(request: HttpRequest, years: list[ProgrammeYear]) -> ProgrammeYear | None:
    wanted = request.GET.get("year") or request.POST.get("year")
    if wanted and wanted.isdigit():
        for year in years:
            if year.number == int(wanted):
                return year
    today = timezone.localdate()
    past = [y for y in years if y.start <= today]
    return past[-1] if past else (years[0] if years else None)


def _physician_rows(request: HttpRequest, result: SavingsResult) -> list[PhysicianShare]:
    """Per-physician rows; a physician sees only their own."""
    rows = list(result.physicians)
    if _own_only(request):
        own = str(request.membership.physician_id)  # type: ignore[attr-defined]
        rows = [r for r in rows if r.physician_id == own]
    return rows


@org_view("savings.view")
def savings_home(request: HttpRequest, org_slug: str) -> HttpResponse:
    agreements = selectors.savings_agreements()
    if _own_only(request):
        agreements = agreements.filter(participations__physician_id=request.membership.physician_id)  # type: ignore[attr-defined]
    page = Paginator(agreements, 25).get_page(request.GET.get("page"))
    return render(request, "savings/home.html", {"page": page})


def _charts(
    agreement: Agreement, years: list[ProgrammeYear], result: SavingsResult
) -> dict[str, Any]:
    latest = {y.number: selectors.calculation_latest(programme_year=y) for y in years}
    opportunities = list(selectors.opportunities_of(agreement=agreement))
    categories = [o.name for o in opportunities]
    series = []
    table = []
    for year in years:
        calc = latest[year.number]
        if calc is None:
            continue
        by_key = {o.key: o.counted_savings for o in calc.read.opportunities}
        values = [by_key.get(o.key) for o in opportunities]
        series.append((year.label, values))
        table.append((year.label, values))
    charts: dict[str, Any] = {
        "bar": bar_chart(
            title="Savings by opportunity and year", categories=categories, series=series
        )
        if series
        else None,
        "bar_table": {"categories": categories, "rows": table},
    }
    steps = [
        ("Gross savings", result.gross_savings),
        ("Administrator fees", -result.admin_fees),
        ("Net savings", SUBTOTAL),
        ("Hospital share", -result.hospital_share),
        ("Physician pool", SUBTOTAL),
        ("Quality gate", -result.withheld_by_quality_gate),
        ("Distribution cap", -result.withheld_by_cap),
    ]
    # Net savings never go below zero (spec 4 split step 1): the floor the engine applied is a
    # step of its own (calculations stored before the engine recorded it show none).
    if result.fees_not_covered > 0:
        steps.insert(2, ("Floor at zero", result.fees_not_covered))
    charts["waterfall"] = waterfall_chart(
        title="From gross savings to the amount paid", steps=steps, total_label="Paid to physicians"
    )
    charts["waterfall_table"] = [
        ("Gross savings", result.gross_savings),
        ("Administrator fees", result.admin_fees),
        ("Net savings", result.net_savings),
        ("Physician pool", result.physician_pool),
        ("Withheld by quality gate", result.withheld_by_quality_gate),
        ("Withheld by the cap", result.withheld_by_cap),
        ("Paid", result.amount_paid),
    ]
    cap = result.distribution_cap
    used = result.cumulative_distributed
    charts["cap"] = progress_bar_chart(
        title="Distribution cap used",
        value_format="money",
        items=[("Distributed over the term", used, cap)],
    )
    charts["cap_table"] = {"cap": cap, "used": used, "headroom": result.cap_headroom}
    return charts


@org_view("savings.view")
def agreement_savings(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    years = _years(agreement)
    year = _chosen_year(request, years)
    calculation = selectors.calculation_latest(programme_year=year) if year else None
    projection = (
        selectors.calculation_latest(programme_year=year, kind=CalculationKind.PROJECTION)
        if year
        else None
    )
    context: dict[str, Any] = {
        "agreement": agreement,
        "years": years,
        "year": year,
        "calculation": calculation,
        "projection": projection,
        "own_only": _own_only(request),
        "opportunities": selectors.opportunities_of(agreement=agreement),
    }
    if calculation is not None:
        result = calculation.read
        context.update(
            result=result,
            physicians=_physician_rows(request, result),
            charts=_charts(agreement, years, result),
        )
    if projection is not None:
        names = {k.get("key"): k.get("name") for k in projection.inputs.get("key_indicators", [])}
        context.update(
            projection_result=projection.read,
            projection_physicians=_physician_rows(request, projection.read),
            # Indicators by their names, never their keys (pci_readmission_30d).
            assumed_met_names=[
                names.get(key) or key
                for key in projection.inputs.get("key_indicators_assumed_met_in_projection") or []
            ],
        )
    if year is not None and not _own_only(request):
        context["readiness"] = _readiness(agreement, year)
        context["flags"] = ComplianceFlag.objects.filter(
            agreement=agreement, programme_year=year, kind__in=FLAG_KINDS, resolved_at__isnull=True
        ).select_related("physician")
    return render(request, "savings/agreement.html", context)


def _readiness(agreement: Agreement, year: ProgrammeYear) -> list[tuple[str, Any]]:
    opportunities = list(selectors.opportunities_of(agreement=agreement))
    base_years = sorted({o.base_year for o in opportunities})
    rows: list[tuple[str, Any]] = [
        (
            f"Base year {b} usage",
            selectors.import_current(agreement=agreement, kind="usage", base_year=b),
        )
        for b in base_years
    ]
    rows.append(
        (
            f"{year.label} usage",
            selectors.import_current(agreement=agreement, kind="usage", programme_year=year),
        )
    )
    rows.append(
        (
            f"{year.label} price file",
            selectors.import_current(agreement=agreement, kind="prices", programme_year=year),
        )
    )
    return rows


@org_view("savings.edit")
@require_POST
def calculation_start(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    wanted = request.POST.get("year", "")
    year = (
        ProgrammeYear.objects.filter(agreement=agreement, number=wanted).first()
        if wanted.isdigit()
        else None
    )
    kind = request.POST.get("kind", CalculationKind.YEAR)
    if year is None or kind not in (CalculationKind.YEAR, CalculationKind.PROJECTION):
        # A form naming no (or no such) year is a bad request, not a missing page.
        messages.error(request, "Choose a programme year and a calculation kind.")
        return redirect(reverse("savings_agreement", args=[org_slug, agreement.pk]))
    try:
        job = services.savings_calculation_start(
            programme_year=year, user=signed_in_user(request), kind=kind
        )
    except DuplicateJob as duplicate:
        messages.info(request, str(duplicate))
        job = duplicate.existing
    except ValidationError as refused:  # a final calculation before the year has ended
        messages.error(request, " ".join(refused.messages))
        return redirect(reverse("savings_agreement", args=[org_slug, agreement.pk]))
    return redirect(reverse("savings_job", args=[org_slug, agreement.pk, job.pk]))


@org_view("job.view")
def savings_job(
    request: HttpRequest, org_slug: str, agreement_pk: int, job_id: int
) -> HttpResponse:
    from comanage.core.jobs import job_live_state
    from comanage.core.models import Job

    agreement = _agreement(request, agreement_pk)
    job = get_object_or_404(Job, pk=job_id, kind__startswith="savings.")
    if _own_only(request, "job.view") and job.created_by_id != request.user.pk:
        raise Http404
    return render(
        request,
        "savings/job.html",
        {"agreement": agreement, "job": job, "state": job_live_state(job)},
    )


@org_view("savings.view")
def calculation_detail(
    request: HttpRequest, org_slug: str, agreement_pk: int, calculation_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    calculation = get_object_or_404(SavingsCalculation, pk=calculation_pk, agreement=agreement)
    return render(
        request,
        "savings/calculation.html",
        {
            "agreement": agreement,
            "calculation": calculation,
            "result": calculation.read,
            "physicians": _physician_rows(request, calculation.read),
            "rule_notes": _rule_notes(request, calculation.read),
            "own_only": _own_only(request),
        },
    )


def _rule_notes(request: HttpRequest, result: SavingsResult) -> list[RuleNote]:
    """The spec-4 edge cases that decided a figure; a physician sees the agreement-level ones
    and their own, never another physician's."""
    notes = list(result.rule_notes)
    if _own_only(request):
        own = f"physician:{request.membership.physician_id}"  # type: ignore[attr-defined]
        notes = [n for n in notes if not n.subject.startswith("physician") or n.subject == own]
    return notes


calculation_history = history_view(
    SavingsCalculation,
    parent=_agreement_for_full_reader,
    pk_kwarg="calculation_pk",
    back=lambda request, agreement, calculation: _url(
        "savings_calculation", request, agreement.pk, calculation.pk
    ),
)


OPPORTUNITY_CSV_COLUMNS = [
    "key",
    "name",
    "earns",
    "eligible_cases",
    "original_base_cases",
    "base_cases",
    "baseline_source",
    "baseline_per_case",
    "expected_cost",
    "actual_cost",
    "actual_per_case",
    "floor_per_case",
    "effective_actual_per_case",
    "raw_savings",
    "applied_volume_factor",
    "capped_savings",
    "counted_savings",
    "savings_target",
]
PHYSICIAN_CSV_COLUMNS = [
    "physician_id",
    "npi",
    "last_name",
    "first_name",
    "entitlement",
    "participation_days",
    "year_days",
    "weight",
    "amount",
]


def _calculation_csv(
    request: HttpRequest,
    agreement_pk: int,
    calculation_pk: int,
    *,
    part: str,
    header: list[str],
    rows: Callable[[SavingsResult], Iterable[Any]],
) -> HttpResponse:
    """One table of a stored calculation as CSV: a row per item, a column per figure."""
    agreement = _agreement(request, agreement_pk)
    calculation = get_object_or_404(SavingsCalculation, pk=calculation_pk, agreement=agreement)
    return csv_response(
        f"savings-{agreement.pk}-y{calculation.programme_year.number}-{part}.csv",
        header,
        [[jsonable(getattr(r, h)) for h in header] for r in rows(calculation.read)],
    )


@org_view("savings.view")
def opportunities_csv(
    request: HttpRequest, org_slug: str, agreement_pk: int, calculation_pk: int
) -> HttpResponse:
    return _calculation_csv(
        request,
        agreement_pk,
        calculation_pk,
        part="opportunities",
        header=OPPORTUNITY_CSV_COLUMNS,
        rows=lambda read: read.opportunities,
    )


@org_view("savings.view")
def physicians_csv(
    request: HttpRequest, org_slug: str, agreement_pk: int, calculation_pk: int
) -> HttpResponse:
    return _calculation_csv(
        request,
        agreement_pk,
        calculation_pk,
        part="physicians",
        header=PHYSICIAN_CSV_COLUMNS,
        rows=lambda read: _physician_rows(request, read),
    )


# --------------------------------------------------------------------------------------------
# Opportunities


class OpportunityForm(forms.Form):
    key = forms.CharField(max_length=20)
    name = forms.CharField(max_length=200)
    case_types = forms.CharField(help_text="Comma-separated procedure codes or MS-DRGs.")
    item_codes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), help_text="Comma-separated item codes."
    )
    floor_per_case = forms.DecimalField(
        max_digits=14, decimal_places=2, required=False, min_value=Decimal("0")
    )
    savings_target = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"))
    base_year = forms.IntegerField(min_value=1990, max_value=2100)


@org_view("savings.view", post="savings.edit")
def opportunity_list(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    form = OpportunityForm(initial={"base_year": agreement.term_start.year - 1})
    if request.method == "POST":
        check_permission(request, "savings.edit")
        form = OpportunityForm(request.POST)
        if form.is_valid():
            try:
                services.opportunity_create(
                    agreement=agreement, data=form.cleaned_data, user=signed_in_user(request)
                )
            except ValidationError as error:
                apply_errors(form, error)
            else:
                messages.success(request, "Opportunity added.")
                return redirect("savings_opportunities", org_slug, agreement.pk)
    return render(
        request,
        "savings/opportunities.html",
        {
            "agreement": agreement,
            "opportunities": selectors.opportunities_of(agreement=agreement),
            "form": form,
            "proposed_cap": services.distribution_cap_proposed(agreement=agreement),
        },
    )


@org_view("savings.edit")
def opportunity_edit(
    request: HttpRequest, org_slug: str, agreement_pk: int, opportunity_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    opportunity = get_object_or_404(SavingsOpportunity, pk=opportunity_pk, agreement=agreement)
    initial = {
        "key": opportunity.key,
        "name": opportunity.name,
        "case_types": ", ".join(opportunity.case_types),
        "item_codes": ", ".join(opportunity.item_codes),
        "floor_per_case": opportunity.floor_per_case,
        "savings_target": opportunity.savings_target,
        "base_year": opportunity.base_year,
    }
    form = OpportunityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            if "accept" in request.POST:
                services.opportunity_accept(opportunity=opportunity, user=signed_in_user(request))
            services.opportunity_update(
                opportunity=opportunity, data=form.cleaned_data, user=signed_in_user(request)
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Opportunity saved.")
            return redirect("savings_opportunities", org_slug, agreement.pk)
    return render(
        request,
        "savings/opportunity_form.html",
        {"agreement": agreement, "opportunity": opportunity, "form": form},
    )


opportunity_history = history_view(
    SavingsOpportunity,
    parent=_agreement_for_full_reader,
    pk_kwarg="opportunity_pk",
    back=lambda request, agreement, _opportunity: _url(
        "savings_opportunities", request, agreement.pk
    ),
)


# --------------------------------------------------------------------------------------------
# Imports


class UploadForm(forms.Form):
    kind = forms.ChoiceField(choices=[("usage", "Case-level usage"), ("prices", "Price file")])
    period = forms.ChoiceField(choices=[("programme", "Programme year"), ("base", "Base year")])
    programme_year = forms.ModelChoiceField(queryset=ProgrammeYear.objects.none(), required=False)
    base_year = forms.IntegerField(required=False, min_value=1990, max_value=2100)
    file = forms.FileField(help_text="CSV or XLSX with the documented columns.")

    def __init__(self, *args: Any, agreement: Agreement, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["programme_year"])
        field.queryset = agreement.programme_years.order_by("number")


@org_view("data.import")
def import_list(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    form = UploadForm(
        request.POST or None,
        request.FILES or None,
        agreement=agreement,
        initial={"base_year": agreement.term_start.year - 1},
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            data_import = services.data_import_receive(
                agreement=agreement,
                kind=data["kind"],
                period=data["period"],
                upload=data["file"],
                user=signed_in_user(request),
                programme_year=data["programme_year"],
                base_year=data["base_year"],
            )
        except services.DuplicateUpload as duplicate:
            messages.warning(request, duplicate.messages[0])
            return redirect("savings_import", org_slug, agreement.pk, duplicate.existing.pk)
        except uploads.UploadTooLarge as error:
            apply_errors(form, error)
            status = 413
        except ValidationError as error:
            apply_errors(form, error)
            status = 400
        else:
            # Stored, nothing read: the file is checked by the worker once confirmed.
            return redirect("savings_import", org_slug, agreement.pk, data_import.pk)
    elif request.method == "POST":
        status = 400
    page = Paginator(selectors.imports_of(agreement=agreement), 25).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "savings/imports.html",
        {
            "agreement": agreement,
            "form": form,
            "page": page,
            "usage_docs": importing.USAGE_COLUMN_DOCS,
            "price_docs": importing.PRICE_COLUMN_DOCS,
            "limits": {kind: uploads.upload_limit_text(kind) for kind in ("usage", "prices")},
            "xlsx_rows": uploads.xlsx_row_cap(),
        },
        status=status,
    )


def _import_detail_page(
    request: HttpRequest,
    agreement: Agreement,
    data_import: DataImport,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    from comanage.core.jobs import job_live_state

    preview = step = None
    if data_import.status in (ImportStatus.UPLOADED, ImportStatus.FAILED) and data_import.file:
        # A CSV's first rows; an Excel workbook's first rows of one sheet (read-only).
        step = services.data_import_mapping_step(
            data_import=data_import, sheet=request.POST.get("sheet") or request.GET.get("sheet", "")
        )
        if step.get("header_row") in (None, 1):
            # The canonical preview reads the header on row 1; a file with title rows above
            # its header is shown by the mapping step only.
            preview = services.data_import_preview(data_import=data_import)
    return render(
        request,
        "savings/import_detail.html",
        {
            "agreement": agreement,
            "data_import": data_import,
            "preview": preview,
            "step": step,
            "mapping_errors": errors or [],
            "retry": data_import.status == ImportStatus.FAILED,
            "job": data_import.job,
            "state": job_live_state(data_import.job) if data_import.job else None,
            "can_discard": data_import.status not in (ImportStatus.APPLIED, ImportStatus.CANCELLED),
        },
        status=status,
    )


@org_view("data.import")
def import_detail(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    data_import = get_object_or_404(DataImport, pk=import_pk, agreement=agreement)
    return _import_detail_page(request, agreement, data_import)


@org_view("data.import")
@require_POST
def import_discard(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    """Discard an import that was never applied (its file is removed; audited)."""
    agreement = _agreement(request, agreement_pk)
    data_import = get_object_or_404(DataImport, pk=import_pk, agreement=agreement)
    try:
        services.data_import_discard(data_import=data_import, user=signed_in_user(request))
    except ValidationError as error:
        messages.error(request, error.messages[0])
        return redirect("savings_import", org_slug, agreement.pk, data_import.pk)
    messages.success(
        request,
        f"Import #{data_import.pk} ({data_import.original_name}) was "
        "discarded; nothing else changed.",
    )
    return redirect("savings_imports", org_slug, agreement.pk)


@org_view("data.import")
@require_POST
def import_confirm(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    data_import = get_object_or_404(DataImport, pk=import_pk, agreement=agreement)
    columns = None
    if "mapping_form" in request.POST:
        # The mapping form: column_<n> is the file's column, field_<n> the field chosen.
        columns = {}
        for key, header in request.POST.items():
            if key.startswith("column_"):
                columns[str(header)] = request.POST.get("field_" + key.removeprefix("column_"), "")
    try:
        services.data_import_map(
            data_import=data_import,
            user=signed_in_user(request),
            mapping_id=request.POST.get("mapping") or None,
            columns=columns,
            date_format=request.POST.get("date_format", "auto"),
            sheet=request.POST.get("sheet", ""),
            save_as=request.POST.get("save_as", ""),
        )
    except ValidationError as error:
        return _import_detail_page(
            request, agreement, data_import, errors=list(error.messages), status=400
        )
    try:
        services.data_import_start(data_import=data_import, user=signed_in_user(request))
    except DuplicateJob as duplicate:
        messages.warning(
            request,
            f"The same file is already being imported or was imported ({duplicate.existing}).",
        )
    except ValidationError as error:
        messages.error(request, error.messages[0])
    return redirect("savings_import", org_slug, agreement.pk, data_import.pk)


@org_view("data.import")
def import_file(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> FileResponse:
    agreement = _agreement(request, agreement_pk)
    data_import = get_object_or_404(DataImport, pk=import_pk, agreement=agreement)
    if not data_import.file:
        raise Http404("The file of a discarded import is removed.")
    return FileResponse(
        data_import.file.open("rb"), as_attachment=True, filename=data_import.original_name
    )


import_history = history_view(
    DataImport,
    parent=_agreement,
    permission="data.import",
    pk_kwarg="import_pk",
    back=lambda request, agreement, data_import: _url(
        "savings_import", request, agreement.pk, data_import.pk
    ),
)


@org_view("data.import")
def column_template(request: HttpRequest, org_slug: str, kind: str) -> HttpResponse:
    if kind == "usage":
        header = list(importing.USAGE_COLUMNS)
        example = [
            "c1001",
            "2025-03-04",
            "CATH",
            "1234567893",
            "medicare",
            "true",
            "A1",
            "1",
            "1250.00",
            "2.0500",
            "2025-02-27",
            "true",
            "false",
        ]
    elif kind == "prices":
        header, example = list(importing.PRICE_COLUMNS), ["A1", "1250.00"]
    else:
        raise Http404
    return csv_response(f"{kind}-template.csv", header, [example])


@org_view("data.import")
def column_docs(request: HttpRequest, org_slug: str, kind: str) -> HttpResponse:
    docs = {"usage": importing.USAGE_COLUMN_DOCS, "prices": importing.PRICE_COLUMN_DOCS}
    if kind not in docs:
        raise Http404
    return csv_response(f"{kind}-columns.csv", ["column", "required", "meaning"], docs[kind])


# --------------------------------------------------------------------------------------------
# Opportunity analysis (design phase)


@org_view("savings.analyse")
def analysis(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    _full_reader(request)
    base_years = sorted(
        {
            i.base_year
            for i in selectors.imports_of(agreement=agreement)
            if i.base_year and i.is_current
        }
    )
    base_year = int(request.GET.get("base_year") or (base_years[-1] if base_years else 0) or 0)
    case_type = request.GET.get("case_type", "").strip()
    context: dict[str, Any] = {
        "agreement": agreement,
        "base_years": base_years,
        "base_year": base_year,
        "case_type": case_type,
    }
    if base_year:
        try:
            result = services.opportunity_analysis_run(
                agreement=agreement,
                base_year=base_year,
                case_types=[case_type] if case_type else None,
            )
        except engine.SavingsInputError as error:
            context["error"] = str(error)
        else:
            context["analysis"] = result
            context["top_items"] = sorted(result.items, key=lambda i: -i.total_cost)[:25]
            context["chart"] = (
                bar_chart(
                    title="Potential savings by case type",
                    categories=[v.case_type for v in result.variation],
                    series=[
                        (
                            "At the median",
                            [v.potential_savings_at_median for v in result.variation],
                        ),
                        (
                            "At the 25th percentile",
                            [v.potential_savings_at_p25 for v in result.variation],
                        ),
                    ],
                )
                if result.variation
                else None
            )
    context["proposed_cap"] = services.distribution_cap_proposed(agreement=agreement)
    context["opportunities"] = selectors.opportunities_of(agreement=agreement)
    return render(request, "savings/analysis.html", context)


class ProposeForm(forms.Form):
    key = forms.CharField(max_length=20)
    name = forms.CharField(max_length=200)
    case_type = forms.CharField(max_length=32)
    item_codes = forms.CharField()
    savings_target = forms.DecimalField(max_digits=14, decimal_places=2, min_value=Decimal("0"))
    base_year = forms.IntegerField(min_value=1990, max_value=2100)
    finding = forms.CharField(required=False)


@org_view("savings.edit")
@require_POST
def analysis_propose(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    form = ProposeForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Give a key, name, case type, items and a target: "
            + "; ".join(f"{k}: {v[0]}" for k, v in form.errors.items()),
        )
    else:
        data = form.cleaned_data
        try:
            services.opportunity_propose_from_finding(
                agreement=agreement,
                user=signed_in_user(request),
                key=data["key"],
                name=data["name"],
                case_type=data["case_type"],
                item_codes=data["item_codes"].split(","),
                savings_target=data["savings_target"],
                base_year=data["base_year"],
                finding=data["finding"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"Proposed opportunity {data['key']} added. The sum of "
                "targets proposes the distribution cap.",
            )
    return redirect(
        reverse("savings_analysis", args=[org_slug, agreement.pk])
        + f"?base_year={request.POST.get('base_year', '')}"
    )


# --------------------------------------------------------------------------------------------
# Safeguard flags


@org_view("flag.view")
def flag_list(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    flags = ComplianceFlag.objects.filter(agreement=agreement, kind__in=FLAG_KINDS).select_related(
        "physician", "programme_year"
    )
    show = request.GET.get("show", "open")
    if show == "open":
        flags = flags.filter(resolved_at__isnull=True)
    page = Paginator(flags.order_by("-opened_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(
        request, "savings/flags.html", {"agreement": agreement, "page": page, "show": show}
    )


class TerminateForm(forms.Form):
    termination_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


@org_view("flag.resolve")
def flag_terminate(
    request: HttpRequest, org_slug: str, agreement_pk: int, flag_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    flag = get_object_or_404(
        ComplianceFlag,
        pk=flag_pk,
        agreement=agreement,
        kind__in=FLAG_KINDS,
        physician__isnull=False,
    )
    form = TerminateForm(request.POST or None, initial={"termination_date": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        try:
            services.participation_terminate_for_cause(
                flag=flag,
                termination_date=form.cleaned_data["termination_date"],
                reason=form.cleaned_data["reason"],
                user=signed_in_user(request),
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(
                request,
                f"{flag.physician} terminated for cause; the flag is "
                "resolved. Recalculate the year to apply it.",
            )
            return redirect("savings_flags", org_slug, agreement.pk)
    return render(
        request,
        "savings/flag_terminate.html",
        {"agreement": agreement, "flag": flag, "form": form, "today": dt.date.today()},  # noqa: DTZ011
    )
