"""The aggregate-results import pages: upload (the agreement chosen), the mapping step and
preview, confirm (a job records every row, the file whole or not at all), discard. Thin: the
services in :mod:`indicators.aggregate_import` act; the pages are the master-import ones."""

from __future__ import annotations

from django import forms

from agreements.models import Agreement
from comanage.core.master_import_views import MasterImportPages, UploadForm

from . import aggregate_import, selectors
from .models import ResultImport


class ResultsUploadForm(UploadForm):
    agreement = forms.ModelChoiceField(
        label="Agreement", queryset=Agreement.objects.none(), empty_label=None
    )
    file = forms.FileField(
        label="Results file",
        help_text="CSV (UTF-8) or Excel workbook (.xlsx): one row per indicator and period.",
    )
    querysets = {"agreement": lambda: Agreement.objects.order_by("name")}


_PAGES = MasterImportPages(
    model=ResultImport,
    noun="Results import",
    detail_template="indicators/result_import_detail.html",
    detail_route="indicator_result_import",
    preview=lambda record: aggregate_import.result_import_preview(result_import=record),
    start=lambda record, user: aggregate_import.result_import_start(
        result_import=record, user=user
    ),
    discard_record=lambda record, user: aggregate_import.result_import_discard(
        result_import=record, user=user
    ),
    list_template="indicators/result_imports.html",
    upload_form=ResultsUploadForm,
    receive=aggregate_import.result_import_receive,
    upload_fields=("agreement",),
    upload_kind="results",
    list_related=("agreement", "uploaded_by"),
    list_context={"docs": aggregate_import.COLUMN_DOCS},
    detail_context=lambda record: {
        "results_written": selectors.results_of_import(result_import=record)
    },
)

result_imports, result_import_detail, result_import_confirm, result_import_discard = _PAGES.views(
    "result_import"
)
