"""The indicators step of the guided agreement setup (agreements/setup.py): choose indicators
from the library, with their weight and cut-points, until the weights make 100%."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from agreements import selectors as agreements_selectors
from agreements.models import Agreement, AgreementKind, AgreementTerms
from agreements.setup import ContributedStep, setup_step_register
from comanage.core.models import User

from . import selectors, services
from .models import IndicatorTemplate


class SetupIndicatorForm(forms.Form):
    template = forms.ModelChoiceField(
        queryset=IndicatorTemplate.objects.none(),
        label="Indicator from the library",
        empty_label="Choose…",
    )
    weight = forms.DecimalField(
        max_digits=7,
        decimal_places=4,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        label="Weight (%)",
        help_text="The weights of all indicators must add up to 100%.",
    )
    threshold = forms.DecimalField(
        max_digits=14, decimal_places=4, required=False, help_text="Empty: the library's."
    )
    target = forms.DecimalField(
        max_digits=14, decimal_places=4, required=False, help_text="Empty: the library's."
    )
    stretch = forms.DecimalField(
        max_digits=14, decimal_places=4, required=False, help_text="Empty: the library's."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["template"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = selectors.template_list().order_by("name")


def _terms(agreement: Agreement) -> AgreementTerms | None:
    return agreements_selectors.terms_current(agreement=agreement)


@transaction.atomic
def _save(agreement: Agreement, data: dict[str, Any], user: User | None) -> Any:
    """Copy the template into the agreement's terms, then set the cut-points given, through
    the indicator services (one transaction: a refused cut-point leaves no copy behind)."""
    terms = _terms(agreement)
    if terms is None:
        raise ValidationError("The agreement has no terms yet.")
    definition = services.definition_from_template(
        template=data["template"], terms=terms, weight=data["weight"], user=user
    )
    changed = False
    for name in ("threshold", "target", "stretch"):
        if data.get(name) is not None:
            setattr(definition, name, data[name])
            changed = True
    if changed:
        services.definition_save(definition=definition, user=user)
    return definition


def _items(agreement: Agreement) -> list[str]:
    terms = _terms(agreement)
    if terms is None:
        return []
    return [
        f"{d.name}: weight {d.weight:.2f}%, threshold {_value(d.threshold, d.unit)} / "
        f"target {_value(d.target, d.unit)} / stretch {_value(d.stretch, d.unit)}"
        for d in selectors.definitions_for_terms(terms=terms)
    ]


def _value(value: Decimal | None, unit: str) -> str:
    """A cut-point as people write it: 8%, 90 minutes (no trailing zeros)."""
    if value is None:
        return "—"
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if not unit:
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def _missing(agreement: Agreement) -> list[str]:
    terms = _terms(agreement)
    if terms is None:
        return ["The agreement has no terms yet."]
    return services.definitions_check(terms=terms)


def register() -> None:
    setup_step_register(
        ContributedStep(
            key="indicators",
            label="Quality indicators",
            kind=AgreementKind.CO_MANAGEMENT,
            after="duties",
            intro="Choose the incentive's indicators from the library. Each copy is the "
            "agreement's own; its measure can be refined later on the indicators page.",
            form=lambda agreement, data: SetupIndicatorForm(data),
            save=_save,
            items=_items,
            missing=_missing,
            submit="Add indicator",
        )
    )
