"""Saved import mappings: selectors and services (every write audited; versions kept by the
model's history)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction

from .audit import event_record
from .models import ImportMapping, Organization, User
from .tabular.formats import DATE_FORMATS
from .tabular.header import header_key
from .tabular.mapping import ColumnMapping, Field, FieldSet, check
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
            header=tuple(m.header or ()),
        )
        for m in ImportMapping.objects.filter(kind=kind, is_active=True).order_by("-updated_at")
    ]


def import_mapping_get(*, kind: str, mapping_id: Any) -> ImportMapping:
    """A saved mapping of this kind, or ``ValidationError`` (another organization's is unknown)."""
    try:
        pk = int(mapping_id)
        if not 0 < pk < 2**63:  # never a key: not a database error either
            raise ValueError(pk)
        return ImportMapping.objects.get(kind=kind, pk=pk, is_active=True)
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
            "is_active": True,  # saving under a deactivated source's name brings it back
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


def _refuse_unreadable_step(step: dict[str, Any]) -> None:
    """A mapping chosen or matched by the user needs the file's header: refuse while the
    workbook is still being read, or when its header cannot be found."""
    if step.get("pending"):
        raise ValidationError(
            {"file": "The workbook's first rows are still being read: try again in a moment."}
        )
    if step["problems"]:
        raise ValidationError({"file": [p["message"] for p in step["problems"]]})


def _mapping_for(
    *,
    kind: str,
    step: dict[str, Any],
    chosen: ImportMapping | None,
    columns: dict[str, str] | None,
    date_format: str,
) -> tuple[ImportMapping | None, ColumnMapping | None]:
    """The saved mapping chosen by id; else the columns matched in the form; else the saved
    mapping whose header the file has; else none (the canonical layout)."""
    if chosen is not None:
        return chosen, import_mapping_read(chosen, step)
    if columns is not None:
        return None, ColumnMapping(
            columns={c: f for c, f in columns.items() if f},
            date_format=date_format if date_format in DATE_FORMATS else "auto",
            header_row=step["header_row"],
            sheet=step["sheet"],
        )
    if step["saved"]:
        saved = import_mapping_get(kind=kind, mapping_id=step["saved"]["id"])
        return saved, import_mapping_read(saved, step)
    return None, None


def import_mapping_read(saved: ImportMapping, step: dict[str, Any]) -> ColumnMapping:
    """A saved mapping as it reads this file: its columns named as the file's header writes
    them (case and spacing aside), the header's row and sheet where the step found them."""
    mapping = ColumnMapping.from_json(saved.as_json())
    if not step.get("header_row"):
        return mapping
    return mapping.on_header(
        step["header"], header_row=step["header_row"], sheet=step.get("sheet") or mapping.sheet
    )


def _covers(step: dict[str, Any], chosen: ImportMapping) -> bool:
    """The step's header has every column the chosen mapping reads (case and spacing aside)."""
    if step.get("problems") or step.get("pending") or not step.get("header_row"):
        return False
    present = {header_key(h) for h in step["header"]}
    return all(header_key(c) in present for c in chosen.columns)


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
    if chosen is not None and not _covers(step, chosen):
        # The header is elsewhere in this file (one more title row): where it is found.
        found = step_for(sheet, None)
        if _covers(found, chosen):
            step = found
    if chosen is not None or columns is not None:
        _refuse_unreadable_step(step)
    chosen, mapping = _mapping_for(
        kind=kind, step=step, chosen=chosen, columns=columns, date_format=date_format
    )
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


# ----------------------------------------------------------------------------- managing them
# (the organization's page of saved mappings: comanage/core/mapping_views.py)

_WORDS = {"npi": "NPI", "id": "id", "cpt": "CPT", "drg": "DRG", "icd": "ICD"}


def import_field_label(name: str) -> str:
    """A field as a person reads it ("surgeon_npi" -> "Surgeon NPI")."""
    words = [_WORDS.get(w, w) for w in str(name).split("_") if w]
    if not words:
        return ""
    first = words[0] if words[0] in _WORDS.values() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def import_mapping_fields(mapping: ImportMapping) -> FieldSet:
    """The fields a saved mapping reads its file into: each is needed by the import that made
    it (a field the mapping leaves out now cannot be added here: map it on the next import)."""
    names = sorted(set(mapping.columns.values()))
    return FieldSet(tuple(Field(n, import_field_label(n), required=True) for n in names))


def import_mapping_uses(mapping: ImportMapping) -> int:
    """How many imports were read by this mapping (any app's import model pointing at it)."""
    total = 0
    for model in apps.get_models():
        if model.__name__.startswith("Historical"):
            continue
        for f in model._meta.concrete_fields:
            if f.is_relation and f.related_model is ImportMapping:
                total += model._default_manager.filter(**{f.name: mapping}).count()
    return total


def import_mapping_edit(
    *,
    mapping: ImportMapping,
    user: User | None,
    name: str,
    columns: dict[str, str],
    date_format: str,
) -> ImportMapping:
    """Rename a saved mapping, change which field a column is, change its date format: a new
    version (history kept) and an audit event. Refuses, changing nothing, a name already used,
    an unknown date format or field, two columns to one field, a field left without a column."""
    fields = import_mapping_fields(mapping)
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors.setdefault("name", []).append("Name the source this mapping reads.")
    elif len(name) > 100:
        errors.setdefault("name", []).append("Keep the name to 100 characters or fewer.")
    elif any(ord(ch) < 32 for ch in name):
        errors.setdefault("name", []).append("The name cannot contain control characters.")
    if date_format not in DATE_FORMATS:
        errors.setdefault("date_format", []).append("Choose one of the date formats listed.")
    for column, field_name in columns.items():
        if column not in mapping.header:
            errors.setdefault("columns", []).append(f"{column}: the file has no such column.")
        elif field_name and fields.get(field_name) is None:
            errors.setdefault("columns", []).append(
                f"{column}: choose one of the fields listed, or “not used”."
            )
    if "columns" not in errors:
        for problem in check(fields, mapping.header, columns):
            message = problem["message"]
            errors.setdefault("columns", []).append(f"{message[:1].upper()}{message[1:]}.")
    with transaction.atomic():
        locked = ImportMapping.objects.select_for_update().get(pk=mapping.pk)
        if (
            "name" not in errors
            and ImportMapping.objects.filter(kind=locked.kind, name=name)
            .exclude(pk=locked.pk)
            .exists()
        ):
            errors.setdefault("name", []).append(
                "Another saved mapping of this kind of file already has this name."
            )
        if errors:
            raise ValidationError(errors)
        kept = {c: f for c, f in columns.items() if f}
        values = {"name": name, "columns": kept, "date_format": date_format}
        if all(getattr(locked, k) == v for k, v in values.items()):
            return locked
        changed = [k for k, v in values.items() if getattr(locked, k) != v]
        for key, value in values.items():
            setattr(locked, key, value)
        locked.version += 1
        locked.updated_by = user
        locked._history_user = user
        locked.save()
        words = {"name": "name", "columns": "columns", "date_format": "date format"}
        event_record(
            organization=locked.organization,
            name="import_mapping.changed",
            actor=user,
            obj=locked,
            summary=f"Mapping {locked.name} changed ({', '.join(words[c] for c in changed)}; "
            f"version {locked.version})",
            data={"kind": locked.kind, "version": locked.version, "changed": changed},
        )
    return locked


def import_mapping_delete(*, mapping: ImportMapping, user: User | None) -> str:
    """Delete a saved mapping, or deactivate it when imports refer to it (they keep saying
    which mapping read them). Returns ``"deleted"`` or ``"deactivated"``. Audited."""
    with transaction.atomic():
        locked = ImportMapping.objects.select_for_update().get(pk=mapping.pk)
        used = import_mapping_uses(locked)
        outcome = "deactivated" if used else "deleted"
        event_record(
            organization=locked.organization,
            name=f"import_mapping.{outcome}",
            actor=user,
            obj=locked,
            summary=f"Mapping {locked.name} {outcome}"
            + (f" (read {used} import{'s' if used != 1 else ''})" if used else ""),
            data={"kind": locked.kind, "version": locked.version, "imports": used},
        )
        if used:
            if locked.is_active:
                locked.is_active = False
                locked.updated_by = user
                locked.save()
        else:
            locked._change_reason = "deleted"
            locked.delete()
    return outcome
