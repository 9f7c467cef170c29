"""Committee meetings, agreement documents and the implementation milestones."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from comanage.core.audit import event_record
from comanage.core.models import User

from ..models import (
    Agreement,
    AgreementDocument,
    CommitteeMeeting,
    Milestone,
    MilestoneStatus,
)
from .common import _full_clean


@transaction.atomic
def committee_meeting_save(
    *, agreement: Agreement, data: dict[str, Any], meeting: CommitteeMeeting | None = None
) -> CommitteeMeeting:
    meeting = meeting or CommitteeMeeting(organization=agreement.organization, agreement=agreement)
    for name in ("held_on", "hospital_attendees", "administrator_attendees", "minutes"):
        if name in data:
            setattr(meeting, name, data[name] or ("" if name != "held_on" else None))
    if meeting.held_on is None:
        raise ValidationError({"held_on": "Give the meeting date."}, code="required")
    if meeting.held_on > timezone.localdate():
        raise ValidationError({"held_on": "Record a meeting once it has been held."}, code="future")
    present = list(
        data.get("physicians_present", meeting.physicians_present.all() if meeting.pk else [])
    )
    participant_ids = set(agreement.participations.values_list("physician_id", flat=True))
    for physician in present:
        if physician.pk not in participant_ids:
            raise ValidationError(
                {"physicians_present": f"{physician} does not take part in this agreement."},
                code="invalid",
            )
    _full_clean(meeting, exclude=["agreement"])
    meeting.save()
    meeting.physicians_present.set(present)
    return meeting


MAX_DOCUMENT_BYTES = 25 * 1024 * 1024


@transaction.atomic
def document_upload(
    *, agreement: Agreement, kind: str, title: str, upload: Any, user: User | None
) -> AgreementDocument:
    """Store a PDF (checked by its magic bytes, not its name) with its SHA-256."""
    if upload is None:
        raise ValidationError({"file": "Choose a file."}, code="required")
    if upload.size > MAX_DOCUMENT_BYTES:
        raise ValidationError({"file": "The file is larger than 25 MB."}, code="too_large")
    upload.seek(0)
    head = upload.read(5)
    if head != b"%PDF-":
        raise ValidationError(
            {"file": "Only PDF files are accepted (this file is not a PDF)."}, code="not_pdf"
        )
    upload.seek(0)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    if not (title or "").strip():
        title = upload.name
    document = AgreementDocument(
        organization=agreement.organization,
        agreement=agreement,
        kind=kind,
        title=title.strip()[:200],
        original_name=upload.name[:255],
        sha256=digest.hexdigest(),
        size=upload.size,
        uploaded_by=user,
    )
    _full_clean(document, exclude=["file", "agreement"])
    document.file.save(f"{digest.hexdigest()[:16]}.pdf", upload, save=False)
    document.save()
    event_record(
        organization=agreement.organization,
        name="document.uploaded",
        actor=user,
        obj=document,
        summary=f"{document.title} ({document.get_kind_display()})",
        data={"sha256": document.sha256},
    )
    return document


DEFAULT_PLAN = [  # (name, days from start, owner)
    ("Kick-off meeting", 0, "Program administrator"),
    ("Data analysis", 21, "Program administrator"),
    ("Indicator proposal", 42, "Physician group"),
    ("Negotiation with counsel", 63, "Legal counsel"),
    ("FMV opinion", 77, "FMV valuator"),
    ("Execution", 90, "Hospital CEO"),
]


@transaction.atomic
def milestones_generate(*, agreement: Agreement, start: dt.date) -> list[Milestone]:
    """The default 90-day implementation plan from ``start``; refused if a plan exists."""
    if agreement.milestones.exists():
        raise ValidationError({"start": "This agreement already has a timeline."}, code="exists")
    return [
        Milestone.objects.create(
            organization=agreement.organization,
            agreement=agreement,
            name=name,
            position=i,
            owner=owner,
            due_date=start + dt.timedelta(days=days),
        )
        for i, (name, days, owner) in enumerate(DEFAULT_PLAN)
    ]


@transaction.atomic
def milestone_save(
    *, agreement: Agreement, data: dict[str, Any], milestone: Milestone | None = None
) -> Milestone:
    milestone = milestone or Milestone(
        organization=agreement.organization,
        agreement=agreement,
        position=agreement.milestones.count(),
    )
    for name in ("name", "position", "owner", "due_date", "status", "completed_on"):
        if name in data:
            setattr(milestone, name, data[name])
    if milestone.status == MilestoneStatus.DONE and milestone.completed_on is None:
        milestone.completed_on = timezone.localdate()
    if milestone.status != MilestoneStatus.DONE:
        milestone.completed_on = None
    _full_clean(milestone, exclude=["agreement"])
    milestone.save()
    return milestone
