"""Savings opportunities (spec section 4): create, update, accept, delete, propose from a
finding, and the distribution cap they propose.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agreements.models import (
    Agreement,
    ProgrammeYear,
)
from comanage.core.audit import event_record
from comanage.core.models import User
from comanage.core.money import ZERO, round_rational, to_decimal

from .. import selectors
from ..models import (
    OpportunityStatus,
    SavingsOpportunity,
)


def _opportunity_clean(data: dict[str, Any]) -> dict[str, Any]:
    def codes(value: Any) -> list[str]:
        if isinstance(value, str):
            value = value.replace("\n", ",").split(",")
        return sorted({str(v).strip() for v in value or [] if str(v).strip()})

    clean = dict(data)
    if "case_types" in clean:
        clean["case_types"] = codes(clean["case_types"])
    if "item_codes" in clean:
        clean["item_codes"] = codes(clean["item_codes"])
    for name in ("savings_target", "floor_per_case"):
        if clean.get(name) not in (None, ""):
            clean[name] = to_decimal(clean[name])
        elif name in clean:
            clean[name] = None if name == "floor_per_case" else clean[name]
    return clean


def _opportunity_validate(opportunity: SavingsOpportunity) -> None:
    errors: dict[str, str] = {}
    if not opportunity.case_types:
        errors["case_types"] = "Name at least one case type."
    if not opportunity.item_codes:
        errors["item_codes"] = "Name at least one item."
    if opportunity.savings_target is None or opportunity.savings_target < 0:
        errors["savings_target"] = "The savings target must be zero or more."
    elif opportunity.savings_target != round_rational(opportunity.savings_target):
        errors["savings_target"] = "The savings target is an amount in cents."
    if opportunity.floor_per_case is not None and opportunity.floor_per_case < 0:
        errors["floor_per_case"] = "The floor must not be negative."
    if errors:
        raise ValidationError(errors)
    opportunity.full_clean(exclude=["organization", "created_by", "effective_from_year"])


def _next_programme_year(agreement: Agreement, today: dt.date) -> ProgrammeYear | None:
    return agreement.programme_years.filter(start__gt=today).order_by("start").first()


@transaction.atomic
def opportunity_create(
    *, agreement: Agreement, data: dict[str, Any], user: User | None, today: dt.date | None = None
) -> SavingsOpportunity:
    """Add an opportunity. Before execution it is identified at signing; afterwards it is an
    amendment that earns only from the next programme year (spec 4)."""
    today = today or timezone.localdate()
    clean = _opportunity_clean(data)
    opportunity = SavingsOpportunity(
        organization=agreement.organization, agreement=agreement, created_by=user, **clean
    )
    if agreement.is_frozen:
        if opportunity.status == OpportunityStatus.PROPOSED:
            raise ValidationError(
                "The agreement is executed: proposals belong to the design "
                "phase. Add an amendment instead."
            )
        next_year = _next_programme_year(agreement, today)
        if next_year is None:
            raise ValidationError(
                "The agreement is executed and has no later programme year: "
                "an opportunity added now could never earn."
            )
        opportunity.identified_at_signing = False
        opportunity.effective_from_year = next_year
    else:
        opportunity.identified_at_signing = True
        opportunity.effective_from_year = None
    _opportunity_validate(opportunity)
    opportunity.save()
    when = (
        "identified at signing"
        if opportunity.identified_at_signing
        else f"amendment from {opportunity.effective_from_year}"
    )
    event_record(
        organization=agreement.organization,
        name="savings.opportunity_added",
        actor=user,
        obj=opportunity,
        summary=f"{opportunity} ({when})",
    )
    return opportunity


def _frozen_check(opportunity: SavingsOpportunity) -> None:
    if opportunity.agreement.is_frozen and (
        opportunity.identified_at_signing
        or opportunity.effective_from_year is None
        or opportunity.effective_from_year.start <= timezone.localdate()
    ):
        raise ValidationError(
            "The agreement is executed: this opportunity is frozen. "
            "A change is an amendment effective from a future year.",
            code="frozen",
        )


@transaction.atomic
def opportunity_update(
    *, opportunity: SavingsOpportunity, data: dict[str, Any], user: User | None
) -> SavingsOpportunity:
    _frozen_check(opportunity)
    for name, value in _opportunity_clean(data).items():
        if name in {
            "key",
            "name",
            "case_types",
            "item_codes",
            "floor_per_case",
            "savings_target",
            "base_year",
            "finding",
        }:
            setattr(opportunity, name, value)
    _opportunity_validate(opportunity)
    opportunity.save()
    return opportunity


@transaction.atomic
def opportunity_accept(*, opportunity: SavingsOpportunity, user: User | None) -> SavingsOpportunity:
    """A design-phase proposal becomes part of the agreement (before execution only)."""
    _frozen_check(opportunity)
    opportunity.status = OpportunityStatus.AGREED
    opportunity.save(update_fields=["status"])
    return opportunity


@transaction.atomic
def opportunity_delete(*, opportunity: SavingsOpportunity, user: User | None) -> None:
    _frozen_check(opportunity)
    event_record(
        organization=opportunity.organization,
        name="savings.opportunity_removed",
        actor=user,
        obj=opportunity,
        summary=str(opportunity),
    )
    opportunity.delete()


def opportunity_propose_from_finding(
    *,
    agreement: Agreement,
    user: User | None,
    key: str,
    name: str,
    case_type: str,
    item_codes: Iterable[str],
    savings_target: Decimal,
    base_year: int,
    finding: str,
) -> SavingsOpportunity:
    """The analysis page turns a finding into a proposed opportunity with its target."""
    return opportunity_create(
        agreement=agreement,
        user=user,
        data={
            "key": key,
            "name": name,
            "case_types": [case_type],
            "item_codes": list(item_codes),
            "savings_target": savings_target,
            "base_year": base_year,
            "finding": finding,
            "status": OpportunityStatus.PROPOSED,
        },
    )


def distribution_cap_proposed(*, agreement: Agreement) -> Decimal:
    """Sum of the targets of the opportunities identified at signing: the proposed cap."""
    return sum(
        (
            o.savings_target
            for o in selectors.opportunities_of(agreement=agreement)
            if o.identified_at_signing
        ),
        ZERO,
    )
