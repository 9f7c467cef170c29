"""The item master (issue 17): import, and assigning items to opportunities many at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from comanage.core import master_imports, uploads
from comanage.core.audit import event_record
from comanage.core.models import Job, User

from .. import items
from ..models import (
    Item,
    ItemImport,
    SavingsOpportunity,
)
from .opportunities import _frozen_check

ITEM_IMPORT_JOB_KIND = "savings.item_import"


def _item_canonical(item_import: ItemImport) -> master_imports.CanonicalTable:
    return master_imports.canonical_of(item_import)  # through its mapping


@transaction.atomic
def item_import_receive(*, organization: Any, upload: Any, user: User | None) -> ItemImport:
    """Keep the uploaded item master with its SHA-256, awaiting confirmation."""
    facts = master_imports.upload_prepare(upload=upload, kind="items")
    item_import = ItemImport(
        organization=organization, uploaded_by=user, layout=items.CANONICAL.key, **facts
    )
    master_imports.file_store(item_import, upload)
    master_imports.master_import_save(instance=item_import, user=user, event="items.file_uploaded")
    return item_import


def item_import_preview(*, item_import: ItemImport) -> dict[str, Any]:
    """The fields found, the first rows and every row's problems (checked again on apply)."""
    return master_imports.master_import_preview(
        instance=item_import,
        required=items.REQUIRED,
        labels=items.FIELD_LABELS,
        check=lambda canonical: items.parse_items(canonical)[1],
    )


def item_import_start(*, item_import: ItemImport, user: User | None) -> Job:
    from ..tasks import item_import_task

    return master_imports.master_import_start(
        instance=item_import, user=user, job_kind=ITEM_IMPORT_JOB_KIND, task=item_import_task
    )


def item_import_discard(*, item_import: ItemImport, user: User | None) -> ItemImport:
    return master_imports.master_import_discard(
        instance=item_import, user=user, event="items.discarded"
    )


@transaction.atomic
def item_import_apply(*, item_import: ItemImport, user: User | None) -> dict[str, int]:
    """Create the new codes and update the changed ones (each with its history); codes not in
    the file stay as they are. One problem anywhere: nothing is stored."""
    try:
        canonical = _item_canonical(item_import)
    except uploads.FileProblem as problem:
        raise master_imports.refused_reading(problem) from problem
    rows, problems = items.parse_items(canonical)
    if problems:
        raise master_imports.ImportRefused(problems)
    organization = item_import.organization
    existing: dict[str, Item] = {}
    codes = [r.code for r in rows]
    for start in range(0, len(codes), 5000):
        chunk = codes[start : start + 5000]
        for locked in Item.objects.filter(
            organization=organization, code__in=chunk
        ).select_for_update():
            existing[locked.code] = locked
    fields = [f for f in items.FIELDS if f != "code"]
    new: list[Item] = []
    changed: list[Item] = []
    for row in rows:
        item = existing.get(row.code)
        if item is None:
            new.append(
                Item(organization=organization, **{f: getattr(row, f) for f in items.FIELDS})
            )
        elif any(getattr(item, f) != getattr(row, f) for f in fields):
            for f in fields:
                setattr(item, f, getattr(row, f))
            item.updated_at = timezone.now()
            changed.append(item)
    if new:
        bulk_create_with_history(new, Item, batch_size=2000, default_user=user)
    if changed:
        bulk_update_with_history(
            changed, Item, [*fields, "updated_at"], batch_size=2000, default_user=user
        )
    return {
        "items_created": len(new),
        "items_updated": len(changed),
        "items_unchanged": len(rows) - len(new) - len(changed),
    }


def _assignable(opportunity: SavingsOpportunity) -> None:
    try:
        _frozen_check(opportunity)
    except ValidationError as error:
        raise ValidationError({"opportunity": error.messages[0]}, code="frozen") from None


@transaction.atomic
def opportunity_items_assign(
    *, opportunity: SavingsOpportunity, codes: Iterable[str], user: User | None
) -> list[str]:
    """Add item codes of the master to an opportunity (those already in it are left); the
    engine reads ``item_codes`` as before. Returns the codes added."""
    opportunity = SavingsOpportunity.objects.select_for_update().get(pk=opportunity.pk)
    _assignable(opportunity)
    wanted = sorted({str(c).strip() for c in codes if str(c).strip()})
    if not wanted:
        raise ValidationError({"items": "Select at least one item."}, code="required")
    known = set(Item.objects.filter(code__in=wanted).values_list("code", flat=True))
    unknown = [c for c in wanted if c not in known]
    if unknown:
        raise ValidationError(
            {"items": f"Not in the item master: {', '.join(unknown[:10])}."}, code="unknown_item"
        )
    added = [c for c in wanted if c not in set(opportunity.item_codes)]
    if added:
        opportunity.item_codes = sorted({*opportunity.item_codes, *added})
        opportunity.save(update_fields=["item_codes"])
        event_record(
            organization=opportunity.organization,
            name="savings.items_assigned",
            actor=user,
            obj=opportunity,
            summary=f"{opportunity}: {len(added)} item{'s' if len(added) != 1 else ''} added",
            data={"added": added},
        )
    return added


@transaction.atomic
def opportunity_items_unassign(
    *, opportunity: SavingsOpportunity, codes: Iterable[str], user: User | None
) -> list[str]:
    """Take item codes out of an opportunity; at least one must stay (an opportunity names
    its items). Returns the codes removed."""
    opportunity = SavingsOpportunity.objects.select_for_update().get(pk=opportunity.pk)
    _assignable(opportunity)
    unwanted = {str(c).strip() for c in codes}
    removed = [c for c in opportunity.item_codes if c in unwanted]
    if not removed:
        raise ValidationError(
            {"items": "None of the selected items is assigned to this opportunity."},
            code="not_assigned",
        )
    remaining = [c for c in opportunity.item_codes if c not in unwanted]
    if not remaining:
        raise ValidationError(
            {"items": "An opportunity keeps at least one item: assign another one first."},
            code="required",
        )
    opportunity.item_codes = remaining
    opportunity.save(update_fields=["item_codes"])
    event_record(
        organization=opportunity.organization,
        name="savings.items_unassigned",
        actor=user,
        obj=opportunity,
        summary=f"{opportunity}: {len(removed)} item{'s' if len(removed) != 1 else ''} removed",
        data={"removed": removed},
    )
    return removed
