"""The pages every master-file import shares (the physician roster, the item master, the
aggregate indicator results): the list page with its upload form, the detail page with its
preview, confirm (a job that applies the file whole or refuses it) and discard. Each app
describes its import once (``MasterImportPages``) and its views delegate here; the services,
URLs and templates stay the app's own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from comanage.core import uploads
from comanage.core.forms import apply_errors
from comanage.core.http import signed_in_user
from comanage.core.jobs import DuplicateJob, job_live_state
from comanage.core.master_imports import (
    MasterImportStatus,
    master_import_map,
    master_mapping_step,
    summary_lines,
)
from comanage.core.views import org_view

PERMISSION = "data.import"
PAGE_SIZE = 25


def mapping_form_columns(data: Any) -> dict[str, str] | None:
    """The mapping form's choices (``column_<n>``: the file's column, ``field_<n>``: the field
    chosen), or None when the form was not sent."""
    if "mapping_form" not in data:
        return None
    return {
        str(header): str(data.get("field_" + key.removeprefix("column_"), ""))
        for key, header in data.items()
        if key.startswith("column_")
    }


def receive_upload(
    request: HttpRequest,
    form: forms.Form,
    receive: Callable[[dict[str, Any]], Any],
    show_error: Callable[[forms.Form, ValidationError], None],
) -> tuple[Any, int]:
    """The upload page's POST: the stored import (None when there is none) and the page's
    status: 413 for a file over the limit, 400 for a refused form or file, else 200."""
    if request.method != "POST":
        return None, 200
    if not form.is_valid():
        return None, 400
    try:
        return receive(form.cleaned_data), 200
    except uploads.UploadTooLarge as error:
        show_error(form, error)
        return None, 413
    except ValidationError as error:
        show_error(form, error)
        return None, 400


class UploadForm(forms.Form):
    """An import's upload form; ``querysets`` gives a model choice field its choices by the
    field's name, built per request (inside the tenant scope, never at import)."""

    querysets: ClassVar[dict[str, Callable[[], QuerySet]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, queryset in self.querysets.items():
            field = self.fields[name]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = queryset()


@dataclass(frozen=True)
class MasterImportPages:
    """One kind of master-file import, as its pages need it."""

    model: type[Model]
    noun: str  # "Roster import": the discard message names the record by it
    detail_template: str
    detail_route: str  # the detail page's URL name; the actions' add "_confirm", "_discard"
    preview: Callable[[Any], Any]  # record -> preview
    start: Callable[[Any, Any], Any]  # (record, user): queue the job that applies it
    discard_record: Callable[[Any, Any], Any]  # (record, user)
    list_template: str = ""
    upload_form: type[forms.Form] = forms.Form
    # the service that stores an upload: called with organization, upload, user and the
    # upload form's ``upload_fields`` by name
    receive: Callable[..., Any] | None = None
    upload_fields: tuple[str, ...] = ()
    upload_kind: str = ""  # the size limit the upload page states (``uploads.upload_limit_text``)
    list_related: tuple[str, ...] = ("uploaded_by",)  # select_related for the list
    list_context: dict[str, Any] = field(default_factory=dict)  # the list page's own names
    show_error: Callable[[forms.Form, ValidationError], None] = apply_errors
    # the detail page's own context beside the shared one (record -> names)
    detail_context: Callable[[Any], dict[str, Any]] | None = None

    @property
    def confirm_route(self) -> str:
        return f"{self.detail_route}_confirm"

    @property
    def discard_route(self) -> str:
        return f"{self.detail_route}_discard"

    def list_page(self, request: HttpRequest, org_slug: str) -> HttpResponse:
        """The upload form (a stored file goes to its detail page) above the imports, newest
        first, 25 a page."""
        form = self.upload_form(request.POST or None, request.FILES or None)
        assert self.receive is not None
        receive = self.receive
        record, status = receive_upload(
            request,
            form,
            lambda data: receive(
                organization=request.organization,  # type: ignore[attr-defined]
                upload=data["file"],
                user=signed_in_user(request),
                **{name: data[name] for name in self.upload_fields},
            ),
            self.show_error,
        )
        if record is not None:
            return redirect(self.detail_route, org_slug, record.pk)
        manager = self.model.objects  # type: ignore[attr-defined]
        page = Paginator(
            manager.select_related(*self.list_related).order_by("-uploaded_at", "-id"), PAGE_SIZE
        ).get_page(request.GET.get("page"))
        return render(
            request,
            self.list_template,
            {
                "form": form,
                "page": page,
                **self.list_context,
                "limit": uploads.upload_limit_text(self.upload_kind),
            },
            status=status,
        )

    def views(self, prefix: str) -> tuple[Callable, Callable, Callable, Callable]:
        """The list (``<prefix>s``), detail, confirm and discard views (``<prefix>_detail``,
        ``_confirm``, ``_discard``), each declaring the import permission; confirm and discard
        take only POSTs."""

        def imports(request: HttpRequest, org_slug: str) -> HttpResponse:
            return self.list_page(request, org_slug)

        def detail(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
            return self.detail(request, import_pk)

        def confirm(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
            return self.confirm(request, org_slug, import_pk)

        def discard(request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
            return self.discard(request, org_slug, import_pk)

        names = {imports: f"{prefix}s", detail: f"{prefix}_detail"}
        names |= {confirm: f"{prefix}_confirm", discard: f"{prefix}_discard"}
        for view, name in names.items():
            view.__name__ = view.__qualname__ = name
        return (
            org_view(PERMISSION)(imports),
            org_view(PERMISSION)(detail),
            org_view(PERMISSION)(require_POST(confirm)),
            org_view(PERMISSION)(require_POST(discard)),
        )

    def detail(self, request: HttpRequest, import_pk: int) -> HttpResponse:
        record: Any = get_object_or_404(self.model, pk=import_pk)
        return self._page(request, record)

    def _page(
        self, request: HttpRequest, record: Any, *, errors: list[str] | None = None, status=200
    ) -> HttpResponse:
        preview = step = None
        if record.status in (MasterImportStatus.UPLOADED, MasterImportStatus.FAILED):
            preview = self.preview(record)
            used = record.mapping_used or {}
            sheet = request.GET.get("sheet") or used.get("sheet", "")
            if sheet != used.get("sheet", ""):
                used = {}  # another sheet: a fresh proposal for its header
            step = master_mapping_step(
                instance=record,
                sheet=sheet,
                header_row=used.get("header_row") if used.get("columns") else None,
            )
            if used.get("columns") and not step.get("problems"):
                # the choices recorded for this import (edited in the form), not a new proposal
                for column in step["columns"]:
                    column["field"] = used["columns"].get(column["header"], "")
                step["date_format"] = used.get("date_format", "auto")
        job = record.job
        return render(
            request,
            self.detail_template,
            {
                "record": record,
                "preview": preview,
                "step": step,
                "mapping_errors": errors or [],
                "job": job,
                "state": job_live_state(job) if job else None,
                "summary_lines": summary_lines(record.summary),
                "confirm_url": self.confirm_route,
                "discard_url": self.discard_route,
                "can_discard": record.status
                not in (MasterImportStatus.APPLIED, MasterImportStatus.CANCELLED),
                **(self.detail_context(record) if self.detail_context else {}),
            },
            status=status,
        )

    def confirm(self, request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
        """Record the mapping form's choices (a refusal names the column and the reason, 400),
        then queue the import; a refused start is a message on the detail page (302)."""
        record: Any = get_object_or_404(self.model, pk=import_pk)
        columns = mapping_form_columns(request.POST)
        if columns is not None:
            try:
                master_import_map(
                    instance=record,
                    user=signed_in_user(request),
                    mapping_id=request.POST.get("mapping") or None,
                    columns=columns,
                    date_format=request.POST.get("date_format", "auto"),
                    sheet=request.POST.get("sheet", ""),
                    save_as=request.POST.get("save_as", ""),
                )
            except ValidationError as error:
                return self._page(request, record, errors=error.messages, status=400)
        try:
            self.start(record, signed_in_user(request))
        except DuplicateJob as duplicate:
            messages.warning(request, str(duplicate))
        except ValidationError as error:
            messages.error(request, error.messages[0])
        return redirect(self.detail_route, org_slug, record.pk)

    def discard(self, request: HttpRequest, org_slug: str, import_pk: int) -> HttpResponse:
        record: Any = get_object_or_404(self.model, pk=import_pk)
        try:
            self.discard_record(record, signed_in_user(request))
        except ValidationError as error:
            messages.error(request, error.messages[0])
        else:
            messages.success(request, f"{self.noun} #{record.pk} was discarded.")
        return redirect(self.detail_route, org_slug, record.pk)
