"""An agreement's versioned terms: edits before execution, amendments after."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from comanage.core.audit import event_record
from comanage.core.display import format_date
from comanage.core.models import User

from ..models import (
    Agreement,
    AgreementTerms,
)
from ..selectors import (
    terms_latest,
)
from .common import _frozen_error, _full_clean, _today

TERMS_FIELDS = (
    "annual_fixed_fee",
    "incentive_pool",
    "hours_shortfall_policy",
    "tier_mode",
    "small_denominator_policy",
    "distribution_method",
    "physician_share_pct",
    "admin_fee_monthly",
    "volume_cap_scope",
    "negative_opportunities",
    "quality_gate",
    "min_savings_threshold_pct",
    "leaver_policy",
    "distribution_cap",
    "reprice_baseline",
    "severity_tolerance_pct",
    "quality_tolerance_pct",
)


def _validate_terms(terms: AgreementTerms) -> None:
    share = terms.physician_share_pct
    if share is not None and share > 50:
        raise ValidationError(
            {"physician_share_pct": "The physician share may not exceed 50%."},
            code="share_above_50",
        )
    if share is not None and share < 0:
        raise ValidationError(
            {"physician_share_pct": "The physician share cannot be negative."},
            code="share_negative",
        )
    for name in ("annual_fixed_fee", "incentive_pool", "admin_fee_monthly", "distribution_cap"):
        value = getattr(terms, name)
        if value is not None and value < 0:
            raise ValidationError({name: "Amounts cannot be negative."}, code="negative")
    threshold = terms.min_savings_threshold_pct
    if threshold is not None and not 0 <= threshold <= 100:
        raise ValidationError(
            {"min_savings_threshold_pct": "Use a percentage from 0 to 100."}, code="out_of_range"
        )
    for name in ("severity_tolerance_pct", "quality_tolerance_pct"):
        value = getattr(terms, name)
        if value is not None and not 0 <= value <= 100:
            raise ValidationError({name: "Use a percentage from 0 to 100."}, code="out_of_range")
    _full_clean(terms, exclude=["agreement"])


@transaction.atomic
def terms_update(
    *, terms: AgreementTerms, data: dict[str, Any], user: User | None
) -> AgreementTerms:
    """Edit a terms version before execution; afterwards it is frozen (use an amendment)."""
    if terms.agreement.is_frozen:
        field_name = next((k for k in data if k in TERMS_FIELDS), "__all__")
        raise _frozen_error(terms.agreement, field_name)
    for name in TERMS_FIELDS:
        if name in data:
            setattr(terms, name, data[name])
    _validate_terms(terms)
    terms.save()
    return terms


@transaction.atomic
def amendment_create(
    *,
    agreement: Agreement,
    effective_from: dt.date,
    data: dict[str, Any],
    reason: str,
    user: User | None,
    today: dt.date | None = None,
) -> AgreementTerms:
    """A new terms version effective from a future date, copied from the latest version with
    ``data`` applied. Programme years starting before the date keep their terms."""
    today = _today(today)
    if effective_from is None:
        raise ValidationError(
            {"effective_from": "Give the date the amendment takes effect."}, code="required"
        )
    if effective_from <= today:
        raise ValidationError(
            {
                "effective_from": "An amendment takes effect from a future date "
                f"(after {today:%b %-d, %Y}); compensation is "
                "set in advance."
            },
            code="not_future",
        )
    if not agreement.term_start <= effective_from <= agreement.term_end:
        raise ValidationError(
            {"effective_from": "The date must fall within the agreement's term."},
            code="outside_term",
        )
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the terms are amended."}, code="required")
    if AgreementTerms.objects.filter(agreement=agreement, effective_from=effective_from).exists():
        raise ValidationError(
            {"effective_from": "Another version already takes effect on this date."},
            code="duplicate",
        )
    previous = terms_latest(agreement=agreement)
    new = AgreementTerms(
        organization=agreement.organization,
        agreement=agreement,
        effective_from=effective_from,
        reason=reason.strip(),
        created_by=user,
        version=(previous.version + 1) if previous else 1,
    )
    for name in TERMS_FIELDS:
        if previous is not None:
            setattr(new, name, getattr(previous, name))
        if name in data:
            setattr(new, name, data[name])
    _validate_terms(new)
    new.save()
    event_record(
        organization=agreement.organization,
        name="agreement.amended",
        actor=user,
        obj=agreement,
        summary=f"Terms v{new.version} effective {format_date(effective_from)}",
        data={"version": new.version},
    )
    return new
