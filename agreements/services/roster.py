"""The physician roster import (issue 17): upload, preview, confirm (a job), apply whole or
refuse.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from comanage.core import master_imports, uploads
from comanage.core.models import Organization, User

from .. import roster
from ..models import (
    Agreement,
    Physician,
    Practice,
    RosterImport,
)
from .physicians import participation_save, physician_save

ROSTER_JOB_KIND = "agreements.roster_import"


def _roster_layout(roster_import: RosterImport, table: master_imports.Table) -> roster.Layout:
    layout = roster.layout_named(roster_import.layout)
    return layout or master_imports.layout_detect(roster.LAYOUTS, table.columns)


@transaction.atomic
def roster_import_receive(
    *,
    organization: Organization,
    upload: Any,
    user: User | None,
    agreement: Agreement | None = None,
    layout: str = "",
) -> RosterImport:
    """Keep the uploaded roster with its SHA-256, awaiting confirmation (nothing is read into
    the physicians yet). ``layout`` "" recognises it from the headers."""
    if layout and roster.layout_named(layout) is None:
        raise ValidationError({"layout": "Choose one of the roster layouts."}, code="invalid")
    if agreement is not None and agreement.organization_id != organization.pk:
        raise ValidationError({"agreement": "Unknown agreement."}, code="invalid")
    facts = master_imports.upload_prepare(upload=upload, kind="roster")
    roster_import = RosterImport(
        organization=organization, agreement=agreement, uploaded_by=user, **facts
    )
    master_imports.file_store(roster_import, upload)
    try:
        table = master_imports.table_of(roster_import)
    except uploads.FileProblem:
        table = None  # the preview says why; confirming is not offered
    roster_import.layout = _roster_layout(roster_import, table).key if table else layout
    roster_import.layout = roster_import.layout or roster.CANONICAL.key
    master_imports.master_import_save(
        instance=roster_import, user=user, event="roster.file_uploaded"
    )
    return roster_import


def roster_import_preview(*, roster_import: RosterImport) -> dict[str, Any]:
    """The layout read, the fields found and the first rows, plus every row's problems."""
    return master_imports.master_import_preview(
        instance=roster_import,
        required=roster.REQUIRED,
        labels=roster.FIELD_LABELS,
        check=lambda canonical: roster.parse_roster(canonical)[1],
    )


def roster_import_start(*, roster_import: RosterImport, user: User | None) -> Any:
    from ..tasks import roster_import_task

    return master_imports.master_import_start(
        instance=roster_import, user=user, job_kind=ROSTER_JOB_KIND, task=roster_import_task
    )


def roster_import_discard(*, roster_import: RosterImport, user: User | None) -> RosterImport:
    return master_imports.master_import_discard(
        instance=roster_import, user=user, event="roster.discarded"
    )


def _same_person(physician: Physician, row: roster.RosterRow) -> bool:
    """A row may correct one of the names (a married name), not replace the person."""
    return (
        physician.first_name.casefold() == row.first_name.casefold()
        or physician.last_name.casefold() == row.last_name.casefold()
    )


@transaction.atomic
def roster_import_apply(*, roster_import: RosterImport, user: User | None) -> dict[str, int]:
    """Create or update every physician of the file (matched by NPI) and, with the agreement
    chosen on upload, their participation dates. One problem anywhere: nothing is stored."""
    try:
        canonical = master_imports.canonical_of(roster_import)  # through its mapping
    except uploads.FileProblem as problem:
        raise master_imports.refused_reading(problem) from problem
    rows, problems = roster.parse_roster(canonical)
    if problems:
        raise master_imports.ImportRefused(problems)
    organization = roster_import.organization
    agreement = roster_import.agreement
    source = canonical.source
    practices = {p.name.casefold(): p for p in Practice.objects.filter(organization=organization)}
    physicians = {
        p.npi: p
        for p in Physician.objects.filter(
            organization=organization, npi__in=[r.npi for r in rows]
        ).select_for_update()
    }
    participations = (
        {p.physician_id: p for p in agreement.participations.select_for_update()}
        if agreement is not None
        else {}
    )
    counts = dict.fromkeys(
        (
            "physicians_created",
            "physicians_updated",
            "physicians_unchanged",
            "participations_added",
            "participations_updated",
        ),
        0,
    )

    def refuse(row: roster.RosterRow, error: ValidationError, fields: dict[str, str]) -> None:
        for name, messages in getattr(error, "message_dict", {"__all__": error.messages}).items():
            for message in messages:
                problems.add(row=row.row, column=fields.get(name, ""), message=message)

    for row in rows:
        data: dict[str, Any] = {"npi": row.npi, "first_name": row.first_name}
        data["last_name"] = row.last_name
        for name in ("specialty", "email"):
            if getattr(row, name):
                data[name] = getattr(row, name)
        if row.practice:
            practice = practices.get(row.practice.casefold())
            if practice is None:
                problems.add(
                    row=row.row,
                    column=source("practice"),
                    message=f"no practice named “{row.practice[:80]}” here; add it on the "
                    "practices page first, or leave the cell empty",
                )
                continue
            data["practice"] = practice
        physician = physicians.get(row.npi)
        if physician is not None and not _same_person(physician, row):
            problems.add(
                row=row.row,
                column=source("npi"),
                message=f"the NPI {row.npi} already belongs to {physician} in this "
                f"organization; this row names {row.first_name} {row.last_name}",
            )
            continue
        if (
            physician is not None
            and all(getattr(physician, k) == v for k, v in data.items() if k != "practice")
            and ("practice" not in data or physician.practice_id == data["practice"].pk)
        ):
            counts["physicians_unchanged"] += 1
        else:
            try:
                saved = physician_save(organization=organization, data=data, physician=physician)
            except ValidationError as error:
                refuse(row, error, {k: source(k) for k in roster.FIELDS})
                continue
            counts["physicians_created" if physician is None else "physicians_updated"] += 1
            physician = physicians[row.npi] = saved
        if row.join_date is None and row.leave_date is None:
            continue
        if agreement is None:
            problems.add(
                row=row.row,
                column=source("join_date" if row.join_date else "leave_date"),
                message="the row gives participation dates but no agreement was chosen on upload",
            )
            continue
        participation = participations.get(physician.pk)
        if participation is None and row.join_date is None:
            problems.add(
                row=row.row,
                column=source("leave_date"),
                message=f"{physician} does not take part in {agreement.name}: give the join date",
            )
            continue
        change: dict[str, Any] = {"physician": physician}
        if row.join_date is not None:
            change["join_date"] = row.join_date
        if row.leave_date is not None:
            change["leave_date"] = row.leave_date
        if participation is not None and all(
            getattr(participation, k) == v for k, v in change.items()
        ):
            continue
        try:
            participations[physician.pk] = participation_save(
                agreement=agreement, data=change, participation=participation
            )
        except ValidationError as error:
            refuse(
                row, error, {"join_date": source("join_date"), "leave_date": source("leave_date")}
            )
            continue
        counts["participations_added" if participation is None else "participations_updated"] += 1
    if problems:
        raise master_imports.ImportRefused(problems)
    return counts
