"""The physician roster import pages: upload, preview (with every row's problems), confirm
(a job that applies the file whole or refuses it), discard. Thin: the services act."""

from __future__ import annotations

from django import forms

from comanage.core.master_import_views import MasterImportPages, UploadForm

from . import roster, services
from .models import Agreement, RosterImport


class RosterUploadForm(UploadForm):
    file = forms.FileField(
        label="Roster file",
        help_text="CSV (UTF-8) or Excel workbook (.xlsx); you choose the sheet and match the "
        "columns after the upload.",
    )
    layout = forms.ChoiceField(
        label="Columns",
        choices=roster.LAYOUT_CHOICES,
        required=False,
        help_text="An NPPES registry extract is recognised by its headers.",
    )
    agreement = forms.ModelChoiceField(
        label="Agreement for join and leave dates",
        queryset=Agreement.objects.none(),
        required=False,
        empty_label="None: physicians only",
        help_text="Rows with a join or leave date add the physician to this agreement or "
        "change their dates in it.",
    )

    querysets = {"agreement": lambda: Agreement.objects.order_by("name")}


_PAGES = MasterImportPages(
    model=RosterImport,
    noun="Roster import",
    detail_template="agreements/roster_import_detail.html",
    detail_route="roster_import",
    preview=lambda record: services.roster_import_preview(roster_import=record),
    start=lambda record, user: services.roster_import_start(roster_import=record, user=user),
    discard_record=lambda record, user: services.roster_import_discard(
        roster_import=record, user=user
    ),
    list_template="agreements/roster_imports.html",
    upload_form=RosterUploadForm,
    receive=services.roster_import_receive,
    upload_fields=("agreement", "layout"),
    upload_kind="roster",
    list_related=("agreement", "uploaded_by"),
    list_context={
        "docs": roster.COLUMN_DOCS,
        "layouts": roster.LAYOUTS,
        "nppes": roster.NPPES,
        "nppes_columns": [
            (header, roster.FIELD_LABELS[name]) for header, name in roster.NPPES.columns.items()
        ],
    },
)

roster_imports, roster_import_detail, roster_import_confirm, roster_import_discard = _PAGES.views(
    "roster_import"
)
