"""The aggregate-results import pages: upload (the agreement chosen), the mapping step and
preview, confirm (a job records every row, the file whole or not at all), discard. Thin: the
services in :mod:`indicators.aggregate_import` act; the pages are the master-import ones."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from agreements.models import Agreement
from comanage.core import uploads
from comanage.core.forms import apply_errors
from comanage.core.http import signed_in_user
from comanage.core.master_import_views import MasterImportPages, receive_upload
from comanage.core.views import org_view

from . import aggregate_import
from .models import ResultImport


class ResultsUploadForm(forms.Form):
    agreement = forms.ModelChoiceField(
        label="Agreement", queryset=Agreement.objects.none(), empty_label=None
    )
    file = forms.FileField(
        label="Results file",
        help_text="CSV (UTF-8) or Excel workbook (.xlsx): one row per indicator and period.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["agreement"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Agreement.objects.order_by("name")


@org_view("data.import")
def result_imports(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = ResultsUploadForm(request.POST or None, request.FILES or None)
    result_import, status = receive_upload(
        request,
        form,
        lambda data: aggregate_import.result_import_receive(
            organization=request.organization,  # type: ignore[attr-defined]
            agreement=data["agreement"],
            upload=data["file"],
            user=signed_in_user(request),
        ),
        apply_errors,
    )
    if result_import is not None:
        return redirect("indicator_result_import", org_slug, result_import.pk)
    page = Paginator(
        ResultImport.objects.select_related("agreement", "uploaded_by").order_by(
            "-uploaded_at", "-id"
        ),
        25,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "indicators/result_imports.html",
        {
            "form": form,
            "page": page,
            "docs": aggregate_import.COLUMN_DOCS,
            "limit": uploads.upload_limit_text("results"),
        },
        status=status,
    )


_PAGES = MasterImportPages(
    model=ResultImport,
    noun="Results import",
    detail_template="indicators/result_import_detail.html",
    detail_route="indicator_result_import",
    confirm_route="indicator_result_import_confirm",
    discard_route="indicator_result_import_discard",
    preview=lambda record: aggregate_import.result_import_preview(result_import=record),
    start=lambda record, user: aggregate_import.result_import_start(
        result_import=record, user=user
    ),
    discard_record=lambda record, user: aggregate_import.result_import_discard(
        result_import=record, user=user
    ),
)


@org_view("data.import")
def result_import_detail(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.detail(request, import_pk)


@org_view("data.import")
@require_POST
def result_import_confirm(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.confirm(request, org_slug, import_pk)


@org_view("data.import")
@require_POST
def result_import_discard(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.discard(request, org_slug, import_pk)
