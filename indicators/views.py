"""Pages of the indicators app. Thin: each declares its permission, calls selectors/services
and renders."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from agreements import selectors as agreements_selectors
from agreements.models import Agreement, AgreementTerms, ProgrammeYear
from comanage.core import uploads
from comanage.core.charts import indicator_chart
from comanage.core.exports import csv_response
from comanage.core.forms import apply_errors
from comanage.core.http import signed_in_user
from comanage.core.jobs import DuplicateJob, job_create, job_enqueue, job_live_state
from comanage.core.permissions import is_own_only
from comanage.core.views import check_permission, history_view, object_for_member, org_view

from . import casefile, fhir, forms, membership, scoring, selectors, services
from .models import (
    ActionPlan,
    ActionStep,
    CaseImport,
    ImportStatus,
    IndicatorDefinition,
    IndicatorResult,
    IndicatorTemplate,
    ResultSource,
)
from .tasks import IMPORT_JOB_KIND, case_import_run

if TYPE_CHECKING:
    from comanage.core.http import OrgRequest


def _agreement(request: HttpRequest, pk: int, permission: str = "indicator.view") -> Agreement:
    return object_for_member(request, Agreement, pk, permission)


def _no_physicians(request: HttpRequest, permission: str = "indicator.view") -> None:
    """Case-level data and imports are not the agreement-level results physicians may read."""
    if is_own_only(request.membership, permission):  # type: ignore[attr-defined]
        raise PermissionDenied("Case-level data is not shown to physicians.")


def _year(request: HttpRequest, agreement: Agreement) -> ProgrammeYear | None:
    years = selectors.programme_years(agreement=agreement)
    wanted = request.GET.get("year") or request.POST.get("year")
    if wanted and wanted.isdigit():
        chosen = next((y for y in years if y.pk == int(wanted)), None)
        if chosen is None:
            raise Http404("No such programme year.")
        return chosen
    today = timezone.localdate()
    current = next((y for y in years if y.start <= today <= y.end), None)
    return current or (years[-1] if years else None)


def _url(name: str, request: HttpRequest, **kwargs: Any) -> str:
    return reverse(name, kwargs={"org_slug": request.organization.slug, **kwargs})  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Overview, library, agreement page
# --------------------------------------------------------------------------------------------


@org_view("indicator.view")
def indicator_home(request: HttpRequest, org_slug: str) -> HttpResponse:
    agreements = Agreement.objects.all().order_by("name")
    if is_own_only(request.membership, "indicator.view"):  # type: ignore[attr-defined]
        physician_id = request.membership.physician_id  # type: ignore[attr-defined]
        agreements = agreements.filter(participations__physician_id=physician_id).distinct()
    rows = []
    for agreement in agreements:
        terms = agreements_selectors.terms_current(agreement=agreement)
        count = selectors.definitions_for_terms(terms=terms).count() if terms else 0
        rows.append({"agreement": agreement, "terms": terms, "count": count})
    return render(request, "indicators/home.html", {"rows": rows})


@org_view("indicator.view", post="indicator.edit")
def template_library(request: HttpRequest, org_slug: str) -> HttpResponse:
    if request.method == "POST":
        check_permission(request, "indicator.edit")
        wanted = request.POST.get("agreement", "")
        agreement = Agreement.objects.filter(pk=wanted).first() if wanted.isdigit() else None
        if agreement is None:  # a form without a choice is a bad request, not a missing page
            messages.error(request, "Choose the agreement to copy the indicator into.")
            return redirect(_url("indicator_library", request))
        return definition_from_template(request, org_slug, agreement_pk=agreement.pk)
    agreements: list[Agreement] = []
    if not is_own_only(request.membership, "indicator.view"):  # type: ignore[attr-defined]
        agreements = list(Agreement.objects.all().order_by("name"))
    return render(
        request,
        "indicators/library.html",
        {"templates": selectors.template_list(), "agreements": agreements},
    )


def _chart_rows(
    agreement: Agreement, definitions: list[IndicatorDefinition]
) -> list[dict[str, Any]]:
    rows = []
    for definition in definitions:
        results = selectors.results_by_key_across_terms(agreement=agreement, key=definition.key)
        points = [
            (
                r.period_label,
                r.display_value,
                ""
                if r.display_value is None
                else scoring.denominator_shortfall(
                    minimum=definition.minimum_denominator, n=r.case_count
                ),
            )
            for r in results
        ]
        chart = indicator_chart(
            title=definition.name,
            direction=definition.direction,
            threshold=definition.threshold,
            target=definition.target,
            stretch=definition.stretch,
            baseline=definition.baseline_value,
            results=points or [("no results yet", None)],
            unit=definition.unit,
            show_title=False,
            height=260,
        )
        rows.append(
            {
                "definition": definition,
                "results": results,
                "chart": chart,
                "benchmarks": list(definition.benchmarks.all()),
            }
        )
    return rows


@org_view("indicator.view")
def agreement_indicators(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    year = _year(request, agreement)
    terms_versions = selectors.terms_for_agreement(agreement=agreement)
    terms = None
    if year is not None:
        try:
            terms = agreements_selectors.terms_for_year(programme_year=year)
        except AgreementTerms.DoesNotExist:
            terms = None
    terms = terms or agreements_selectors.terms_current(agreement=agreement)
    definitions = list(selectors.definitions_for_terms(terms=terms)) if terms else []
    incentive = projection = None
    incentive_error = ""
    if year is not None and definitions:
        try:
            incentive = services.incentive_for_year(programme_year=year)
        except services.IndicatorDataMissing as exc:
            incentive_error = f"The annual result is not in yet for: {', '.join(exc.missing)}."
        except services.scoring.TermsInvalid as exc:
            incentive_error = f"The incentive cannot be computed: {exc}"
        if incentive is None and not incentive_error.startswith("The incentive cannot"):
            try:
                projection = services.incentive_projection(programme_year=year)
            except services.scoring.TermsInvalid:
                projection = None
    context = {
        "agreement": agreement,
        "year": year,
        "years": selectors.programme_years(agreement=agreement),
        "terms": terms,
        "terms_versions": terms_versions,
        "rows": _chart_rows(agreement, definitions),
        "checks": services.definitions_check(terms=terms) if terms else [],
        "frozen": services.definition_is_frozen(terms=terms) if terms else False,
        "incentive": incentive,
        "incentive_error": incentive_error,
        "projection": projection,
        "plans": selectors.action_plans_for_year(programme_year=year) if year else [],
        "imports": list(selectors.case_imports_for_agreement(agreement=agreement)[:10]),
        "templates": selectors.template_list(),
        "physician_view": is_own_only(request.membership, "indicator.view"),  # type: ignore[attr-defined]
    }
    return render(request, "indicators/agreement.html", context)


# --------------------------------------------------------------------------------------------
# Definitions and the criteria editor
# --------------------------------------------------------------------------------------------


@org_view("indicator.edit")
@require_POST
def definition_from_template(
    request: HttpRequest, org_slug: str, agreement_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    wanted = request.POST.get("template", "")
    template = IndicatorTemplate.objects.filter(pk=wanted).first() if wanted.isdigit() else None
    if template is None:
        messages.error(request, "Choose a template from the library.")
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    terms = (
        get_object_or_404(AgreementTerms, agreement=agreement, pk=request.POST.get("terms") or 0)
        if request.POST.get("terms")
        else agreements_selectors.terms_current(agreement=agreement)
    )
    if terms is None:
        messages.error(request, "Set the agreement's terms first.")
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    try:
        definition = services.definition_from_template(
            template=template, terms=terms, user=signed_in_user(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    messages.success(
        request,
        f"{template.name} copied into the agreement. Adjust the weight, cut-points and baseline.",
    )
    return redirect(
        _url("indicator_definition_edit", request, agreement_pk=agreement.pk, pk=definition.pk)
    )


def _editor_context(definition: IndicatorDefinition) -> dict[str, Any]:
    populations = definition.populations or {}
    return {
        "editor": [
            {
                "name": name,
                "label": forms.POPULATION_LABELS[name],
                **forms.criteria_rows(populations.get(name)),
            }
            for name in forms.populations_for_kind(definition.kind)
        ],
        "operators": forms.OPERATOR_CHOICES,
        "field_names": sorted((definition.fields or {}).keys()),
        "populations_json": json.dumps(populations, indent=2),
    }


def _definition_form(
    request: HttpRequest, agreement: Agreement, definition: IndicatorDefinition
) -> HttpResponse:
    frozen = definition.terms_id is not None and services.definition_is_frozen(
        terms=definition.terms
    )
    if request.method == "POST":
        form = forms.DefinitionForm(request.POST, instance=definition)
        if frozen:
            messages.error(request, services.FROZEN_MESSAGE)
        elif form.is_valid():
            definition = form.save(commit=False)
            definition.fields = form.cleaned_data["fields_json"]
            try:
                if "save_json" in request.POST:
                    definition.populations = json.loads(
                        request.POST.get("populations_json") or "{}"
                    )
                else:
                    definition.populations = forms.populations_from_post(request.POST)
            except json.JSONDecodeError as exc:
                form.add_error(
                    None, f"The criteria JSON is not valid: {exc.msg} (line {exc.lineno})."
                )
            else:
                try:
                    services.definition_save(definition=definition, user=signed_in_user(request))
                except ValidationError as exc:
                    apply_errors(form, exc, name_others=True)
                else:
                    messages.success(request, f"{definition.name} saved.")
                    return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    else:
        form = forms.DefinitionForm(instance=definition)
    return render(
        request,
        "indicators/definition_form.html",
        {
            "agreement": agreement,
            "definition": definition,
            "form": form,
            "frozen": frozen,
            "frozen_message": services.FROZEN_MESSAGE,
            **_editor_context(definition),
        },
    )


@org_view("indicator.edit")
def definition_create(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    terms = agreements_selectors.terms_current(agreement=agreement)
    if terms is None:
        messages.error(request, "Set the agreement's terms first.")
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    definition = IndicatorDefinition(
        agreement=agreement,
        terms=terms,
        organization_id=agreement.organization_id,
        direction="higher_is_better",
    )
    return _definition_form(request, agreement, definition)


@org_view("indicator.edit")
def definition_edit(
    request: HttpRequest, org_slug: str, agreement_pk: int, pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    definition = get_object_or_404(IndicatorDefinition, pk=pk, agreement=agreement)
    return _definition_form(request, agreement, definition)


@org_view("indicator.edit")
def criteria_row(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    """One more condition row for the criteria editor (htmx)."""
    _agreement(request, agreement_pk, "indicator.edit")
    population = request.GET.get("population", "")
    if population not in forms.POPULATION_LABELS:
        raise Http404
    fields = [f for f in request.GET.get("fields", "").split(",") if f]
    return render(
        request,
        "indicators/_criteria_row.html",
        {
            "population": population,
            "row": {"field": "", "op": "=", "value": ""},
            "operators": forms.OPERATOR_CHOICES,
            "field_names": fields,
        },
    )


# History names staff and shows every edit: ``history.view`` (not a physician's), as for
# every other record's history (agreements.views.record_history).
definition_history = history_view(
    IndicatorDefinition,
    parent=_agreement,
    back=lambda request, agreement, _definition: _url(
        "indicator_agreement", request, agreement_pk=agreement.pk
    ),
)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@org_view("indicator.edit")
def result_create(request: HttpRequest, org_slug: str, agreement_pk: int, pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    definition = get_object_or_404(IndicatorDefinition, pk=pk, agreement=agreement)
    year = _year(request, agreement)
    if year is None:
        raise Http404("The agreement has no programme years.")
    periods = selectors.periods_for_year(programme_year=year)
    form = forms.ResultForm(request.POST or None, periods=periods)
    if request.method == "POST" and form.is_valid():
        period = selectors.period_find(programme_year=year, key=form.cleaned_data["period"])
        data = form.cleaned_data
        try:
            result = services.result_record(
                definition=definition,
                programme_year=year,
                period=period,  # type: ignore[arg-type]
                numerator=data["numerator"],
                denominator=data["denominator"],
                value=data["value"],
                case_count=data["case_count"],
                source_note=data["source_note"],
                user=signed_in_user(request),
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            note = (
                f" (version {result.version}; the previous one is kept)"
                if (result.version > 1)
                else ""
            )
            shown = "no score" if result.value is None else result.display_value
            messages.success(request, f"{definition.name} {result.period_label}: {shown}{note}.")
            return redirect(
                _url("indicator_agreement", request, agreement_pk=agreement.pk) + f"?year={year.pk}"
            )
    return render(
        request,
        "indicators/result_form.html",
        {"agreement": agreement, "definition": definition, "year": year, "form": form},
    )


def _result(
    request: HttpRequest, agreement_pk: int, result_pk: int
) -> tuple[Agreement, IndicatorResult]:
    agreement = _agreement(request, agreement_pk)
    result = get_object_or_404(
        IndicatorResult.objects.select_related(
            "definition", "programme_year", "case_import", "result_import"
        ),
        pk=result_pk,
        definition__agreement=agreement,
    )
    return agreement, result


@org_view("indicator.view")
def result_detail(
    request: HttpRequest, org_slug: str, agreement_pk: int, result_pk: int
) -> HttpResponse:
    agreement, result = _result(request, agreement_pk, result_pk)
    return render(
        request,
        "indicators/result_detail.html",
        {
            "agreement": agreement,
            "result": result,
            "versions": selectors.result_versions(result=result),
            "physician_view": is_own_only(request.membership, "indicator.view"),  # type: ignore[attr-defined]
        },
    )


def result_measure_report(result: IndicatorResult, *, organization_name: str) -> dict[str, Any]:
    definition = result.definition
    counts = result.counts or {}
    if not counts and result.numerator is not None and result.denominator is not None:
        counts = {"numerator": int(result.numerator), "denominator": int(result.denominator)}
    if definition.kind == "continuous_variable" and not counts:
        counts = {"measure_population": result.case_count or 0}
    return fhir.measure_report(
        measure_url=f"urn:comanage:indicator:{definition.key}",
        period_start=result.period_start,
        period_end=result.period_end,
        populations={k: int(v) for k, v in counts.items()},
        score=result.value,
        reporter=organization_name,
        report_id=f"indicator-result-{result.pk}",
        generated_at=result.created_at,
        score_unit=definition.unit,
        score_ucum_code="%" if definition.unit == "%" else None,
        improvement_notation="increase"
        if definition.direction == "higher_is_better"
        else "decrease",
    )


@org_view("indicator.view")
def result_fhir(
    request: HttpRequest, org_slug: str, agreement_pk: int, result_pk: int
) -> HttpResponse:
    _agreement_obj, result = _result(request, agreement_pk, result_pk)
    report = result_measure_report(result, organization_name=request.organization.name)  # type: ignore[attr-defined]
    response = HttpResponse(fhir.measure_report_json(report), content_type="application/fhir+json")
    response["Content-Disposition"] = (
        f'attachment; filename="measurereport-{result.definition.key}-'
        f'{result.period_start}-{result.period_end}-v{result.version}.json"'
    )
    return response


def _drilldown(request: HttpRequest, agreement_pk: int, result_pk: int):
    agreement, result = _result(request, agreement_pk, result_pk)
    _no_physicians(request)
    if result.source != ResultSource.CASE_FILE or result.case_import is None:
        raise Http404("This result was entered as totals; there are no cases behind it.")
    filter_name = request.GET.get("show", "")
    search = request.GET.get("q", "")[:64]
    rows = selectors.case_memberships(
        case_import=result.case_import,
        indicator_index=result.indicator_index or 0,
        kind=result.definition.kind,
        filter_name=filter_name,
        search=search,
    )
    return agreement, result, rows, filter_name, search


def _case_row(case: Any, result: IndicatorResult) -> dict[str, Any]:
    byte = membership.code_byte(case.codes, result.indicator_index or 0)
    kind = result.definition.kind
    return {
        "case": case,
        "flags": membership.flags_decode(byte, kind=kind),
        "reason": membership.reason_of(byte, kind=kind),
    }


@org_view("indicator.view")
def result_cases(
    request: HttpRequest, org_slug: str, agreement_pk: int, result_pk: int
) -> HttpResponse:
    agreement, result, rows, filter_name, search = _drilldown(request, agreement_pk, result_pk)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    flag_names = list(
        (
            membership.CV_BITS
            if result.definition.kind == "continuous_variable"
            else membership.BITS
        ).keys()
    )
    return render(
        request,
        "indicators/result_cases.html",
        {
            "agreement": agreement,
            "result": result,
            "page": page,
            "cases": [_case_row(c, result) for c in page.object_list],
            "flag_names": flag_names,
            "filters": [(k, label) for k, (label, _f) in membership.FILTERS.items()],
            "show": filter_name,
            "q": search,
        },
    )


@org_view("indicator.view")
def result_cases_csv(
    request: HttpRequest, org_slug: str, agreement_pk: int, result_pk: int
) -> HttpResponse:
    _agreement_obj, result, rows, _f, _q = _drilldown(request, agreement_pk, result_pk)
    kind = result.definition.kind
    names = list(membership.CV_BITS if kind == "continuous_variable" else membership.BITS)
    index = result.indicator_index or 0

    def lines():
        for case in rows.iterator(chunk_size=5000):
            byte = membership.code_byte(case.codes, index)
            flags = membership.flags_decode(byte, kind=kind)
            yield [
                case.row_number,
                case.case_id,
                *("yes" if flags[n] else "no" for n in names),
                membership.reason_of(byte, kind=kind),
            ]

    return csv_response(
        f"cases-{result.definition.key}-{result.period_label}.csv",
        ["row", "case_id", *names, "reason"],
        lines(),
    )


# --------------------------------------------------------------------------------------------
# Case-file import
# --------------------------------------------------------------------------------------------


@org_view("data.import")
def import_start(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    """Step 1: upload; the file is stored and previewed (nothing applied)."""
    agreement = _agreement(request, agreement_pk, "data.import")
    year = _year(request, agreement)
    if year is None:
        raise Http404("The agreement has no programme years.")
    periods = selectors.periods_for_year(programme_year=year)
    definitions = selectors.definitions_in_force(programme_year=year)
    form = forms.ImportForm(
        request.POST or None, request.FILES or None, periods=periods, definitions=definitions
    )
    status = 200
    if request.method == "POST" and form.is_valid():
        period = selectors.period_find(programme_year=year, key=form.cleaned_data["period"])
        upload = form.cleaned_data["file"]
        try:
            # The size first: an oversize file is refused before it is read into memory.
            uploads.upload_size_check(kind="cases", size=upload.size)
            case_import = services.case_import_create(
                agreement=agreement,
                programme_year=year,
                period=period,  # type: ignore[arg-type]
                data=upload.read(),
                filename=upload.name,
                user=signed_in_user(request),
                indicator_keys=form.cleaned_data["indicators"] or None,
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
            status = 413 if isinstance(exc, uploads.UploadTooLarge) else 400
        else:
            return redirect(
                _url(
                    "indicator_import_detail",
                    request,
                    agreement_pk=agreement.pk,
                    import_pk=case_import.pk,
                )
            )
    elif request.method == "POST":
        status = 400
    spec = services.import_spec(programme_year=year) if definitions else None
    return render(
        request,
        "indicators/import_form.html",
        {
            "agreement": agreement,
            "year": year,
            "form": form,
            "spec": spec,
            "years": selectors.programme_years(agreement=agreement),
            "limit": uploads.upload_limit_text("cases"),
            "xlsx_rows": uploads.xlsx_row_cap(),
        },
        status=status,
    )


@org_view("data.import")
def import_template_csv(request: HttpRequest, org_slug: str, agreement_pk: int) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "data.import")
    year = _year(request, agreement)
    if year is None:
        raise Http404
    keys = [k for k in request.GET.getlist("indicators") if k] or None
    try:
        spec = services.import_spec(programme_year=year, keys=keys)
    except ValidationError as exc:
        raise Http404(str(exc)) from exc
    response = HttpResponse(casefile.template_csv(spec), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="case-file-{agreement.pk}.csv"'
    return response


@org_view("indicator.view")
def import_detail(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    _no_physicians(request)
    case_import = get_object_or_404(CaseImport, pk=import_pk, agreement=agreement)
    return _import_detail_page(request, agreement, case_import)


def _import_detail_page(
    request: HttpRequest,
    agreement: Any,
    case_import: CaseImport,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    preview: dict[str, object] | None = None
    step: dict[str, Any] | None = None
    deferred = False
    if case_import.job is None and case_import.status == ImportStatus.PENDING:
        # A file applied or refused already is not offered for import again.
        # The start of a CSV only; an Excel workbook is never opened here (the worker does).
        if case_import.original_name.lower().endswith((".xlsx", ".xlsm")):
            deferred = True
        else:
            try:
                spec = services.import_spec(
                    programme_year=case_import.programme_year,
                    keys=case_import.indicator_keys or None,
                )
            except ValidationError as exc:  # an indicator named at upload was removed since
                preview = {
                    "columns": [],
                    "required": [],
                    "extra": [],
                    "rows": [],
                    "problems": [{"row": None, "message": m} for m in exc.messages],
                }
            else:
                step = services.case_import_mapping_step(case_import=case_import)
                if step.get("header_row") in (None, 1):
                    # The canonical preview reads the header on row 1; a file with title rows
                    # above its header is shown by the mapping step only.
                    with case_import.file.open("rb") as handle:
                        preview = casefile.casefile_head(handle, spec=spec)
    results = list(case_import.results.select_related("definition").order_by("indicator_index"))
    running = case_import.job is not None and case_import.job.status in ("queued", "running")
    return render(
        request,
        "indicators/import_detail.html",
        {
            "agreement": agreement,
            "case_import": case_import,
            # The indicators this file feeds, by name (a key is a code, never shown).
            "indicator_names": list(
                IndicatorDefinition.objects.filter(
                    agreement=agreement, key__in=case_import.indicator_keys or []
                )
                .order_by("name")
                .values_list("name", flat=True)
                .distinct()
            ),
            "preview": preview,
            "deferred": deferred,
            "results": results,
            "job": case_import.job,
            "state": job_live_state(case_import.job) if case_import.job else None,
            "can_discard": case_import.status != ImportStatus.APPLIED and not results,
            "running": running,
            "xlsx_rows": uploads.xlsx_row_cap(),
            "step": step,
            "mapping_errors": errors or [],
        },
        status=status,
    )


@org_view("data.import")
@require_POST
def import_discard(
    request: HttpRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    """Discard a case file that was never applied (the record and its file go; audited)."""
    agreement = _agreement(request, agreement_pk, "data.import")
    case_import = get_object_or_404(CaseImport, pk=import_pk, agreement=agreement)
    try:
        services.case_import_discard(case_import=case_import, user=signed_in_user(request))
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect(
            _url(
                "indicator_import_detail",
                request,
                agreement_pk=agreement.pk,
                import_pk=case_import.pk,
            )
        )
    messages.success(
        request, f"The case file {case_import.original_name} was discarded; nothing else changed."
    )
    return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))


@org_view("data.import")
@require_POST
def import_confirm(
    request: OrgRequest, org_slug: str, agreement_pk: int, import_pk: int
) -> HttpResponse:
    """Step 2: run it as a job. The same file for the same agreement and period runs once."""
    agreement = _agreement(request, agreement_pk, "data.import")
    case_import = get_object_or_404(CaseImport, pk=import_pk, agreement=agreement)
    detail = _url(
        "indicator_import_detail", request, agreement_pk=agreement.pk, import_pk=case_import.pk
    )
    if case_import.job_id:
        return redirect(detail)
    columns = None
    if "mapping_form" in request.POST:
        # The mapping form: column_<n> is the file's column, field_<n> the field chosen.
        columns = {
            str(header): request.POST.get("field_" + key.removeprefix("column_"), "")
            for key, header in request.POST.items()
            if key.startswith("column_")
        }
    try:
        services.case_import_map(
            case_import=case_import,
            user=signed_in_user(request),
            mapping_id=request.POST.get("mapping") or None,
            columns=columns,
            date_format=request.POST.get("date_format", "auto"),
            save_as=request.POST.get("save_as", ""),
        )
    except ValidationError as error:
        return _import_detail_page(
            request, agreement, case_import, errors=list(error.messages), status=400
        )
    period = selectors.Period(
        case_import.period_kind,
        case_import.period_label,
        case_import.period_start,
        case_import.period_end,
    )
    try:
        job = job_create(
            organization=request.organization,
            kind=IMPORT_JOB_KIND,
            user=signed_in_user(request),
            params={"case_import": case_import.pk},
            dedupe_key=services.import_dedupe_key(
                agreement=agreement, period=period, sha256=case_import.sha256
            ),
        )
    except DuplicateJob as duplicate:
        earlier = CaseImport.objects.filter(job=duplicate.existing).first()
        messages.warning(
            request,
            "This exact file was already imported for this period "
            f"({duplicate.existing.created_at:%b %-d, %Y}); it was not "
            "applied again.",
        )
        services.case_import_drop_duplicate(case_import=case_import)
        if earlier is not None:
            return redirect(
                _url(
                    "indicator_import_detail",
                    request,
                    agreement_pk=agreement.pk,
                    import_pk=earlier.pk,
                )
            )
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    CaseImport.objects.filter(pk=case_import.pk).update(job=job)
    job_enqueue(job=job, task=case_import_run)
    return redirect(detail)


# --------------------------------------------------------------------------------------------
# Benchmarks and action plans
# --------------------------------------------------------------------------------------------


@org_view("indicator.edit")
def benchmark_create(
    request: HttpRequest, org_slug: str, agreement_pk: int, pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    definition = get_object_or_404(IndicatorDefinition, pk=pk, agreement=agreement)
    form = forms.BenchmarkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        services.benchmark_create(definition=definition, **form.cleaned_data)
        messages.success(request, "Benchmark added.")
        return redirect(_url("indicator_agreement", request, agreement_pk=agreement.pk))
    return render(
        request,
        "indicators/simple_form.html",
        {"agreement": agreement, "form": form, "title": f"Benchmark for {definition.name}"},
    )


@org_view("indicator.edit")
def action_plan_create(
    request: HttpRequest, org_slug: str, agreement_pk: int, pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk, "indicator.edit")
    definition = get_object_or_404(IndicatorDefinition, pk=pk, agreement=agreement)
    year = _year(request, agreement)
    if year is None:
        raise Http404
    form = forms.ActionPlanForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            plan = services.action_plan_create(
                definition=definition,
                programme_year=year,
                user=signed_in_user(request),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(request, "Action plan opened; add its steps.")
            return redirect(
                _url("indicator_action_plan", request, agreement_pk=agreement.pk, plan_pk=plan.pk)
            )
    return render(
        request,
        "indicators/simple_form.html",
        {
            "agreement": agreement,
            "form": form,
            "year": year,
            "title": f"Action plan: {definition.name} ({year.label})",
        },
    )


@org_view("indicator.view", post="indicator.edit")
def action_plan_detail(
    request: HttpRequest, org_slug: str, agreement_pk: int, plan_pk: int
) -> HttpResponse:
    agreement = _agreement(request, agreement_pk)
    plan = get_object_or_404(
        ActionPlan.objects.select_related("definition", "result"),
        pk=plan_pk,
        definition__agreement=agreement,
    )
    step_form = forms.ActionStepForm(request.POST if "add_step" in request.POST else None)
    if request.method == "POST":
        check_permission(request, "indicator.edit")
        try:
            if "add_step" in request.POST and step_form.is_valid():
                services.action_step_add(plan=plan, **step_form.cleaned_data)
                messages.success(request, "Step added.")
            elif "complete_step" in request.POST:
                step = get_object_or_404(ActionStep, pk=request.POST["complete_step"], plan=plan)
                services.action_step_complete(step=step)
                messages.success(request, "Step marked done.")
            elif "close" in request.POST:
                services.action_plan_close(
                    plan=plan,
                    note=request.POST.get("closing_note", ""),
                    user=signed_in_user(request),
                )
                messages.success(request, "Action plan closed.")
            if not step_form.errors:
                return redirect(
                    _url(
                        "indicator_action_plan", request, agreement_pk=agreement.pk, plan_pk=plan.pk
                    )
                )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return render(
        request,
        "indicators/action_plan.html",
        {"agreement": agreement, "plan": plan, "steps": plan.steps.all(), "step_form": step_form},
    )
