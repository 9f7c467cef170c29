"""The organization's saved import mappings: a list, each one's columns and formats in words
with its version history, an edit form and delete (or deactivate). Readers see them; only an
administrator changes them, through the services in ``comanage.core.import_mappings``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from .http import OrgRequest
from .import_mappings import (
    import_field_label,
    import_mapping_delete,
    import_mapping_edit,
    import_mapping_fields,
    import_mapping_uses,
)
from .models import ImportMapping
from .permissions import membership_can
from .tabular.formats import DATE_FORMATS
from .views import object_for_member, org_view

VIEW, EDIT = "history.view", "data.import"


def _columns_in_words(mapping: ImportMapping) -> list[dict[str, str]]:
    """Each column of the file, in its order, and the field it is read as ("" if not used)."""
    return [
        {"column": column, "field": import_field_label(mapping.columns.get(column, ""))}
        for column in mapping.header
    ]


def _history(mapping: ImportMapping) -> list[dict[str, Any]]:
    """Each version: when, who, and what changed, in words."""
    records = list(mapping.history.select_related("history_user").order_by("-history_date"))
    rows = []
    for newer, older in zip(records, [*records[1:], None], strict=False):
        changes: list[str] = []
        if older is None:
            changes.append("Saved")
        else:
            if newer.name != older.name:
                changes.append(f"Renamed from “{older.name}” to “{newer.name}”")
            if newer.date_format != older.date_format:
                changes.append(
                    f"Dates: {DATE_FORMATS.get(older.date_format, older.date_format)} → "
                    f"{DATE_FORMATS.get(newer.date_format, newer.date_format)}"
                )
            for column in dict.fromkeys([*older.columns, *newer.columns]):
                before, after = older.columns.get(column, ""), newer.columns.get(column, "")
                if before != after:
                    changes.append(
                        f"Column “{column}”: {import_field_label(before) or 'not used'} → "
                        f"{import_field_label(after) or 'not used'}"
                    )
            if newer.is_active != older.is_active:
                changes.append("Back in use" if newer.is_active else "Deactivated")
            if newer.header != older.header:
                changes.append("Saved again from a file with a different header")
        rows.append(
            {
                "when": newer.history_date,
                "who": newer.history_user,
                "version": newer.version,
                "changes": changes or ["No change to the columns or formats"],
            }
        )
    return rows


@org_view(VIEW)
def import_mapping_list(request: OrgRequest, org_slug: str) -> HttpResponse:
    """The organization's saved mappings, by kind of file and name."""
    mappings = list(ImportMapping.objects.select_related("updated_by").order_by("kind", "name"))
    rows = [{"mapping": m, "uses": import_mapping_uses(m)} for m in mappings]
    return render(request, "core/import_mappings/list.html", {"rows": rows})


@org_view(VIEW)
def import_mapping_detail(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    """One saved mapping: its columns and formats in words, and its version history."""
    mapping = object_for_member(request, ImportMapping.objects.all(), pk, VIEW)
    return render(
        request,
        "core/import_mappings/detail.html",
        {
            "mapping": mapping,
            "columns": _columns_in_words(mapping),
            "date_format": DATE_FORMATS.get(mapping.date_format, "Detect"),
            "uses": import_mapping_uses(mapping),
            "history": _history(mapping),
            "can_edit": membership_can(request.membership, EDIT),
        },
    )


def _form_rows(mapping: ImportMapping, posted: dict[str, str] | None) -> list[dict[str, Any]]:
    return [
        {
            "index": i,
            "column": column,
            "chosen": posted.get(column, "")
            if posted is not None
            else mapping.columns.get(column, ""),
        }
        for i, column in enumerate(mapping.header)
    ]


@org_view(EDIT)
def import_mapping_edit_view(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    """Rename a mapping, change a column's field or the date format (a new version)."""
    mapping = object_for_member(request, ImportMapping.objects.all(), pk, EDIT)
    errors: dict[str, list[str]] = {}
    posted: dict[str, str] | None = None
    name, date_format = mapping.name, mapping.date_format
    if request.method == "POST":
        name = request.POST.get("name", "")
        date_format = request.POST.get("date_format", "")
        posted = {
            column: request.POST.get(f"column_{i}", "") for i, column in enumerate(mapping.header)
        }
        try:
            saved = import_mapping_edit(
                mapping=mapping,
                user=request.user,  # type: ignore[arg-type]
                name=name,
                columns=posted,
                date_format=date_format,
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            if saved.version != mapping.version:
                messages.success(request, f"Saved as version {saved.version}.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect(
                reverse("import_mapping_detail", kwargs={"org_slug": org_slug, "pk": saved.pk})
            )
    fields = [(f.name, f.label) for f in import_mapping_fields(mapping)]
    response = render(
        request,
        "core/import_mappings/edit.html",
        {
            "mapping": mapping,
            "name": name,
            "date_format": date_format,
            "date_formats": list(DATE_FORMATS.items()),
            "fields": fields,
            "rows": _form_rows(mapping, posted),
            "errors": errors,
        },
    )
    if errors:
        response.status_code = 400
    return response


@org_view(EDIT)
def import_mapping_delete_view(request: OrgRequest, org_slug: str, pk: int) -> HttpResponse:
    """Confirm, then delete the mapping (or deactivate it when imports refer to it)."""
    mapping = object_for_member(request, ImportMapping.objects.all(), pk, EDIT)
    uses = import_mapping_uses(mapping)
    if request.method == "POST":
        outcome = import_mapping_delete(mapping=mapping, user=request.user)  # type: ignore[arg-type]
        if outcome == "deleted":
            messages.success(request, f"Mapping “{mapping.name}” deleted.")
            return redirect(reverse("import_mappings", kwargs={"org_slug": org_slug}))
        messages.success(
            request,
            f"Mapping “{mapping.name}” deactivated: imports it read still name it, and it is "
            "no longer offered for new files.",
        )
        return redirect(
            reverse("import_mapping_detail", kwargs={"org_slug": org_slug, "pk": mapping.pk})
        )
    return render(request, "core/import_mappings/delete.html", {"mapping": mapping, "uses": uses})
