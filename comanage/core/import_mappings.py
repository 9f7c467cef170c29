"""Saved import mappings: selectors and services (every write audited; versions kept by the
model's history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .audit import event_record
from .models import ImportMapping, Organization, User
from .tabular.formats import DATE_FORMATS
from .tabular.mapping import ColumnMapping, FieldSet, check
from .tabular.step import SavedMapping, header_digest, needs_formats


def import_mappings_saved(*, kind: str) -> list[SavedMapping]:
    """The organization's saved mappings of one import kind (the active tenant scope)."""
    return [
        SavedMapping(
            id=m.pk,
            name=m.name,
            version=m.version,
            header_digest=m.header_digest,
            mapping=ColumnMapping.from_json(m.as_json()),
        )
        for m in ImportMapping.objects.filter(kind=kind).order_by("-updated_at")
    ]


def import_mapping_get(*, kind: str, mapping_id: Any) -> ImportMapping:
    """A saved mapping of this kind, or ``ValidationError`` (another organization's is unknown)."""
    try:
        pk = int(mapping_id)
        if not 0 < pk < 2**63:  # never a key: not a database error either
            raise ValueError(pk)
        return ImportMapping.objects.get(kind=kind, pk=pk)
    except (ImportMapping.DoesNotExist, TypeError, ValueError) as exc:
        raise ValidationError(
            {"mapping": "No saved mapping with this id for this kind of file."},
            code="does_not_exist",
        ) from exc


def import_mapping_save(
    *,
    organization: Organization,
    kind: str,
    name: str,
    header: list[str],
    mapping: ColumnMapping,
    user: User | None,
) -> ImportMapping:
    """Save the mapping under its source name: a new one, or a new version of the one already
    saved under that name (when anything changed)."""
    name = name.strip()[:100]
    if not name:
        raise ValidationError({"save_as": "Name the source to save the mapping under."})
    digest = header_digest(header)
    with transaction.atomic():
        existing = ImportMapping.objects.select_for_update().filter(kind=kind, name=name).first()
        values = {
            "header": list(header),
            "header_digest": digest,
            "columns": dict(mapping.columns),
            "date_format": mapping.date_format,
            "header_row": mapping.header_row,
            "sheet": mapping.sheet,
        }
        if existing is None:
            saved = ImportMapping.objects.create(
                organization=organization, kind=kind, name=name, updated_by=user, **values
            )
            verb = "saved"
        else:
            saved = existing
            if all(getattr(existing, k) == v for k, v in values.items()):
                return existing
            for key, value in values.items():
                setattr(saved, key, value)
            saved.version += 1
            saved.updated_by = user
            saved.save()
            verb = "changed"
        event_record(
            organization=organization,
            name="import_mapping.saved",
            actor=user,
            obj=saved,
            summary=f"Mapping {saved.name} {verb} (version {saved.version})",
            data={"kind": kind, "version": saved.version, "columns": saved.columns},
        )
    return saved


def import_mapping_resolve(
    *,
    organization: Organization,
    kind: str,
    fields: FieldSet,
    step_for: Callable[[str, int | None], dict[str, Any]],
    user: User | None,
    mapping_id: Any = None,
    columns: dict[str, str] | None = None,
    date_format: str = "auto",
    sheet: str = "",
    save_as: str = "",
) -> tuple[ImportMapping | None, dict[str, Any]]:
    """How a file is read: ``(saved mapping or None, what the import records)``.

    A saved mapping by id; or the columns the user matched in the form (saved under
    ``save_as`` when named); or, with neither, the saved mapping whose header the file has.
    A file in the canonical layout needs none (``{}``: read by the canonical path). Raises
    ``ValidationError`` naming what is wrong (a required field with no column, two columns to
    one field, a header that cannot be found, an empty sheet). ``step_for(sheet, header_row)``
    gives the file's mapping step (:func:`comanage.core.tabular.step.mapping_step`)."""
    chosen: ImportMapping | None = None
    if mapping_id not in (None, ""):
        chosen = import_mapping_get(kind=kind, mapping_id=mapping_id)
        sheet = sheet or chosen.sheet
    step = step_for(sheet, chosen.header_row if chosen is not None else None)
    explicit = chosen is not None or columns is not None
    if step.get("pending") and explicit:
        raise ValidationError(
            {"file": "The workbook's first rows are still being read: try again in a moment."}
        )
    if step["problems"] and explicit:
        raise ValidationError({"file": [p["message"] for p in step["problems"]]})
    mapping: ColumnMapping | None = None
    if chosen is not None:
        mapping = ColumnMapping.from_json(chosen.as_json())
    elif columns is not None:
        mapping = ColumnMapping(
            columns={c: f for c, f in columns.items() if f},
            date_format=date_format if date_format in DATE_FORMATS else "auto",
            header_row=step["header_row"],
            sheet=step["sheet"],
        )
    elif step["saved"]:
        chosen = import_mapping_get(kind=kind, mapping_id=step["saved"]["id"])
        mapping = ColumnMapping.from_json(chosen.as_json())
    if mapping is None:
        return None, {}
    issues = check(fields, step["header"], mapping.columns)
    if issues:
        raise ValidationError({"mapping": [f"{p['column']}: {p['message']}" for p in issues]})
    if save_as.strip() and chosen is None:
        chosen = import_mapping_save(
            organization=organization,
            kind=kind,
            name=save_as,
            header=step["header"],
            mapping=mapping,
            user=user,
        )
    identity = all(
        c.strip().lower().replace(" ", "_").replace("-", "_") == f
        for c, f in mapping.columns.items()
    )
    canonical = (
        chosen is None
        and identity
        and mapping.header_row == 1
        and not mapping.sheet.strip()
        and mapping.date_format in ("auto", "iso")
        and not needs_formats(fields, mapping.columns, step.get("samples", {}))
    )
    if canonical:
        return None, {}
    used = mapping.as_json()
    if chosen is not None:
        used.update(mapping_id=chosen.pk, name=chosen.name, version=chosen.version)
    return chosen, used
