"""The physician roster import pages: upload, preview (with every row's problems), confirm
(a job that applies the file whole or refuses it), discard. Thin: the services act."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from comanage.core import uploads
from comanage.core.forms import apply_errors
from comanage.core.http import signed_in_user
from comanage.core.master_import_views import MasterImportPages, receive_upload
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


@org_view("data.import")
def roster_imports(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = RosterUploadForm(request.POST or None, request.FILES or None)
    roster_import, status = receive_upload(
        request,
        form,
        lambda data: services.roster_import_receive(
            organization=request.organization,  # type: ignore[attr-defined]
            upload=data["file"],
            user=signed_in_user(request),
            agreement=data["agreement"],
            layout=data["layout"] or "",
        ),
        apply_errors,
    )
    if roster_import is not None:
        return redirect("roster_import", org_slug, roster_import.pk)
    page = Paginator(
        RosterImport.objects.select_related("agreement", "uploaded_by").order_by(
            "-uploaded_at", "-id"
        ),
        25,
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "agreements/roster_imports.html",
        {
            "form": form,
            "page": page,
            "docs": roster.COLUMN_DOCS,
            "layouts": roster.LAYOUTS,
            "nppes": roster.NPPES,
            "nppes_columns": [
                (header, roster.FIELD_LABELS[name]) for header, name in roster.NPPES.columns.items()
            ],
            "limit": uploads.upload_limit_text("roster"),
        },
        status=status,
    )


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
)


@org_view("data.import")
def roster_import_detail(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.detail(request, import_pk)


@org_view("data.import")
@require_POST
def roster_import_confirm(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.confirm(request, org_slug, import_pk)


@org_view("data.import")
@require_POST
def roster_import_discard(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
    return _PAGES.discard(request, org_slug, import_pk)
