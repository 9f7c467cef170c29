"""The pages every master-file import shares (the physician roster, the item master): the
detail page with its preview, confirm (a job that applies the file whole or refuses it) and
discard. Each app describes its import once (``MasterImportPages``) and its views delegate
here; the services, URLs and templates stay the app's own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from comanage.core import uploads
from comanage.core.http import signed_in_user
from comanage.core.jobs import DuplicateJob, job_live_state
from comanage.core.master_imports import (
    MasterImportStatus,
    master_import_map,
    master_mapping_step,
    summary_lines,
)


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


@dataclass(frozen=True)
class MasterImportPages:
    """One kind of master-file import, as its pages need it."""

    model: type[Model]
    noun: str  # "Roster import": the discard message names the record by it
    detail_template: str
    detail_route: str
    confirm_route: str
    discard_route: str
    preview: Callable[[Any], Any]  # record -> preview
    start: Callable[[Any, Any], Any]  # (record, user): queue the job that applies it
    discard_record: Callable[[Any, Any], Any]  # (record, user)

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
