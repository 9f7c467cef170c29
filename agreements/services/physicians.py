"""Practices, physicians and their participation in an agreement (and the guided setup's
"add a participant").
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from comanage.core.audit import event_record
from comanage.core.display import format_date
from comanage.core.models import Organization, User

from ..models import (
    Agreement,
    Participation,
    Physician,
    Practice,
)
from ..validators import validate_npi
from .common import _full_clean

PRACTICE_FIELDS = ("name", "tax_id", "contact_name", "contact_email", "address")


def practice_save(
    *, organization: Organization, data: dict[str, Any], practice: Practice | None = None
) -> Practice:
    practice = practice or Practice(organization=organization)
    for name in PRACTICE_FIELDS:
        if name in data:
            setattr(practice, name, data[name])
    _full_clean(practice)
    duplicate = Practice.objects.filter(name__iexact=practice.name).exclude(pk=practice.pk)
    if duplicate.exists():
        raise ValidationError({"name": "A practice with this name already exists."}, code="unique")
    practice.save()
    return practice


PHYSICIAN_FIELDS = ("npi", "first_name", "last_name", "specialty", "practice", "email")


def physician_save(
    *, organization: Organization, data: dict[str, Any], physician: Physician | None = None
) -> Physician:
    """Create or update a physician; the NPI must pass the Luhn check and be unique here."""
    physician = physician or Physician(organization=organization)
    for name in PHYSICIAN_FIELDS:
        if name in data:
            setattr(physician, name, data[name])
    physician.npi = (physician.npi or "").strip()
    try:
        validate_npi(physician.npi)
    except ValidationError as exc:
        raise ValidationError({"npi": exc.messages[0]}, code=exc.code) from None
    _full_clean(physician)
    if Physician.objects.filter(npi=physician.npi).exclude(pk=physician.pk).exists():
        raise ValidationError(
            {"npi": "A physician with this NPI already exists in this organization."}, code="unique"
        )
    physician.save()
    return physician


# What a participation records, as the page's form and the API edit it.
PARTICIPATION_FIELDS = (
    "physician",
    "join_date",
    "leave_date",
    "termination_date",
    "termination_reason",
    "for_cause",
    "ownership_pct",
)


def _check_participation_dates(*, agreement: Agreement, participation: Participation) -> None:
    """Joins within the term; leaves and terminations after the join, a termination with its
    reason (and a date when for cause); ownership a percentage."""
    join = participation.join_date
    if join is None:
        raise ValidationError({"join_date": "Give the date the physician joins."}, code="required")
    if not agreement.term_start <= join <= agreement.term_end:
        raise ValidationError(
            {"join_date": "The join date must fall within the agreement's term."},
            code="outside_term",
        )
    for name in ("leave_date", "termination_date"):
        value = getattr(participation, name)
        if value is not None and value < join:
            raise ValidationError(
                {name: "This date cannot be before the join date."}, code="before_join"
            )
    if participation.termination_date and not participation.termination_reason.strip():
        raise ValidationError(
            {"termination_reason": "Give the reason for the termination."}, code="required"
        )
    if participation.for_cause and not participation.termination_date:
        raise ValidationError(
            {"termination_date": "A termination for cause needs its date."}, code="required"
        )
    pct = participation.ownership_pct
    if pct is not None and not 0 <= pct <= 100:
        raise ValidationError(
            {"ownership_pct": "Ownership is a percentage from 0 to 100."}, code="out_of_range"
        )


@transaction.atomic
def participation_save(
    *, agreement: Agreement, data: dict[str, Any], participation: Participation | None = None
) -> Participation:
    participation = participation or Participation(
        organization=agreement.organization, agreement=agreement
    )
    for name in PARTICIPATION_FIELDS:
        if name in data:
            setattr(participation, name, data[name])
    if participation.physician_id and participation.physician.organization_id != (
        agreement.organization_id
    ):
        raise ValidationError({"physician": "Unknown physician."}, code="invalid")
    _check_participation_dates(agreement=agreement, participation=participation)
    duplicate = Participation.objects.filter(
        agreement=agreement, physician_id=participation.physician_id
    )
    if duplicate.exclude(pk=participation.pk).exists():
        raise ValidationError(
            {"physician": "This physician already takes part in this agreement."}, code="unique"
        )
    _full_clean(participation, exclude=["agreement"])
    participation.save()
    return participation


@transaction.atomic
def participant_add(
    *, agreement: Agreement, data: dict[str, Any], user: User | None
) -> Participation:
    """Add a participating physician: an existing one, or a new one created here (NPI and
    name). Both rows are written or neither."""
    physician = data.get("physician")
    if physician is None:
        if not (data.get("npi") or "").strip():
            raise ValidationError(
                {"physician": "Choose a physician, or enter a new physician's NPI and name."},
                code="required",
            )
        physician = physician_save(
            organization=agreement.organization,
            data={
                "npi": data.get("npi", ""),
                "first_name": data.get("first_name", ""),
                "last_name": data.get("last_name", ""),
                "specialty": data.get("specialty", ""),
                "practice": agreement.practice,
            },
        )
    participation = participation_save(
        agreement=agreement,
        data={
            "physician": physician,
            "join_date": data.get("join_date"),
            "ownership_pct": data.get("ownership_pct"),
        },
    )
    event_record(
        organization=agreement.organization,
        name="agreement.participant_added",
        actor=user,
        obj=agreement,
        summary=(
            f"{physician.full_name} joins {agreement.name} on "
            f"{format_date(participation.join_date)}"
        ),
    )
    return participation
