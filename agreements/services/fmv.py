"""Fair-market-value opinions: their checks and saving them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from comanage.core.money import ZERO

from ..models import (
    Agreement,
    FixedFeeMode,
    FMVOpinion,
)
from .common import _full_clean

#: The fields of an opinion that its form edits, ``fmv_opinion_save`` writes and a calculation run
#: records (``fmv_opinion_figures``): one list for all three.
FMV_FIELDS = (
    "valuator",
    "issue_date",
    "effective_start",
    "effective_end",
    "total_max_annual",
    "fixed_mode",
    "fixed_annual",
    "fixed_hours",
    "hourly_rate",
    "max_incentive",
    "rate_p25",
    "rate_p50",
    "rate_p75",
    "rate_p90",
    "justification",
)


def fmv_opinion_figures(opinion: FMVOpinion) -> dict[str, Any]:
    """The opinion as a calculation run records it in its inputs (``inputs["fmv"]``, read back
    by ``adjudication.read_models.FMVRead``): every field of ``FMV_FIELDS``, its id and the
    fixed portion it allows. Values are the model's (Decimals, dates): the run makes them JSON."""
    data: dict[str, Any] = {name: getattr(opinion, name) for name in FMV_FIELDS}
    data["id"] = opinion.pk
    data["fixed_portion"] = opinion.fixed_portion
    return data


def fmv_opinion_check(opinion: FMVOpinion) -> list[str]:
    """Spec 2's validations. Errors raise; the returned list holds the warnings."""
    if (
        opinion.effective_start
        and opinion.effective_end
        and (opinion.effective_end < opinion.effective_start)
    ):
        raise ValidationError(
            {"effective_end": "The effective period ends before it starts."},
            code="end_before_start",
        )
    if opinion.fixed_mode == FixedFeeMode.HOURLY:
        for name in ("fixed_hours", "hourly_rate"):
            if getattr(opinion, name) is None:
                raise ValidationError(
                    {name: "Required when the fixed portion is hours × hourly rate."},
                    code="required",
                )
    elif opinion.fixed_annual is None:
        raise ValidationError(
            {"fixed_annual": "Required when the fixed portion is an annual amount."},
            code="required",
        )
    percentiles = [opinion.rate_p25, opinion.rate_p50, opinion.rate_p75, opinion.rate_p90]
    given = [p for p in percentiles if p is not None]
    if given != sorted(given):
        raise ValidationError(
            {"rate_p90": "Survey percentiles must rise from the 25th to the 90th."},
            code="unordered",
        )
    fixed = opinion.fixed_portion or ZERO
    total = opinion.total_max_annual or ZERO
    incentive = opinion.max_incentive or ZERO
    if fixed + incentive > total:
        raise ValidationError(
            {
                "max_incentive": f"Fixed ({fixed:,.2f}) plus maximum incentive "
                f"({incentive:,.2f}) exceeds the FMV total "
                f"maximum ({total:,.2f})."
            },
            code="above_fmv_maximum",
        )
    if (
        opinion.fixed_mode == FixedFeeMode.HOURLY
        and opinion.rate_p75 is not None
        and opinion.hourly_rate is not None
        and opinion.hourly_rate > opinion.rate_p75
        and not opinion.justification.strip()
    ):
        raise ValidationError(
            {
                "justification": "The hourly rate is above the 75th percentile "
                f"({opinion.rate_p75:,.2f}): a written "
                "justification is required."
            },
            code="justification_required",
        )
    warnings = []
    if total and incentive * 2 > total:
        warnings.append(
            f"The incentive is {incentive * 100 / total:.2f}% of the total maximum "
            "(above 50%): review that the fixed portion reflects the duties."
        )
    return warnings


@transaction.atomic
def fmv_opinion_save(
    *, agreement: Agreement, data: dict[str, Any], opinion: FMVOpinion | None = None
) -> tuple[FMVOpinion, list[str]]:
    opinion = opinion or FMVOpinion(organization=agreement.organization, agreement=agreement)
    for name in FMV_FIELDS:
        if name in data:
            setattr(opinion, name, data[name])
    opinion.justification = opinion.justification or ""
    _full_clean(opinion, exclude=["agreement"])
    warnings = fmv_opinion_check(opinion)
    opinion.save()
    return opinion, warnings
