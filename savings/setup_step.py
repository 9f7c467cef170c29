"""The savings-opportunities step of the guided agreement setup (agreements/setup.py): the
opportunities identified at signing, each with its case types, items and savings target."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.text import slugify

from agreements.models import Agreement, AgreementKind
from agreements.setup import ContributedStep, setup_step_register
from comanage.core.models import User
from comanage.core.money import format_money

from . import selectors, services


class SetupOpportunityForm(forms.Form):
    name = forms.CharField(max_length=200, label="Opportunity")
    case_types = forms.CharField(
        label="Case types", help_text="Comma-separated procedure codes or MS-DRGs."
    )
    item_codes = forms.CharField(
        label="Items",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Comma-separated item codes.",
    )
    savings_target = forms.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal("0"), label="Savings identified ($)"
    )
    floor_per_case = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        min_value=Decimal("0"),
        label="Floor per case ($)",
        help_text="Optional: a cost per case below which further reduction earns nothing.",
    )
    base_year = forms.IntegerField(min_value=1990, max_value=2100, label="Base year")


def _save(agreement: Agreement, data: dict[str, Any], user: User | None) -> Any:
    return services.opportunity_create(
        agreement=agreement,
        data={**data, "key": slugify(data["name"])[:20] or "opportunity"},
        user=user,
    )


def _items(agreement: Agreement) -> list[str]:
    return [
        f"{o.name}: {format_money(o.savings_target)} identified, base year {o.base_year}"
        for o in selectors.opportunities_of(agreement=agreement)
    ]


def _missing(agreement: Agreement) -> list[str]:
    if not selectors.opportunities_of(agreement=agreement).exists():
        return ["Add at least one savings opportunity."]
    return []


def register() -> None:
    setup_step_register(
        ContributedStep(
            key="opportunities",
            label="Savings opportunities",
            kind=AgreementKind.SHARED_SAVINGS,
            after="policies",
            intro="Only opportunities identified at signing earn; adding one later is an "
            "amendment effective the next programme year.",
            form=lambda agreement, data: SetupOpportunityForm(
                data, initial={"base_year": agreement.term_start.year - 1}
            ),
            save=_save,
            items=_items,
            missing=_missing,
            submit="Add opportunity",
        )
    )
