"""The physician roster import pages: upload, preview (with every row's problems), confirm
(a job that applies the file whole or refuses it), discard. Thin: the services act."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse

from comanage.core.http import signed_in_user
from comanage.core.master_import_views import MasterImportPages
from comanage.core.views import org_view

from . import roster, services
from .models import Agreement, RosterImport


class RosterUploadForm(forms.Form):
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["agreement"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Agreement.objects.order_by("name")


_PAGES = MasterImportPages(
    model=RosterImport,
    noun="Roster import",
    detail_template="agreements/roster_import_detail.html",
    detail_route="roster_import",
    confirm_route="roster_import_confirm",
    discard_route="roster_import_discard",
    preview=lambda record: services.roster_import_preview(roster_import=record),
    start=lambda record, user: services.roster_import_start(roster_import=record, user=user),
    discard_record=lambda record, user: services.roster_import_discard(
        roster_import=record, user=user
    ),
    list_template="agreements/roster_imports.html",
    upload_kind="roster",
    list_related=("agreement", "uploaded_by"),
)


@org_view("data.import")
def roster_imports(request: HttpRequest, org_slug: str) -> HttpResponse:
    return _PAGES.list_page(
        request,
        org_slug,
        RosterUploadForm(request.POST or None, request.FILES or None),
        lambda data: services.roster_import_receive(
            organization=request.organization,  # type: ignore[attr-defined]
            upload=data["file"],
            user=signed_in_user(request),
            agreement=data["agreement"],
            layout=data["layout"] or "",
        ),
        {
            "docs": roster.COLUMN_DOCS,
            "layouts": roster.LAYOUTS,
            "nppes": roster.NPPES,
            "nppes_columns": [
                (header, roster.FIELD_LABELS[name]) for header, name in roster.NPPES.columns.items()
            ],
        },
    )


roster_import_detail, roster_import_confirm, roster_import_discard = _PAGES.views("roster_import")
