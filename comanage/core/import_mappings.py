"""Saved import mappings: selectors and services (every write audited; versions kept by the
model's history)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .audit import event_record
from .models import ImportMapping, Organization, User
from .tabular.mapping import ColumnMapping
from .tabular.step import SavedMapping, header_digest


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
        return ImportMapping.objects.get(kind=kind, pk=int(mapping_id))
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
