"""The what-if form: overrides passed to the indicator and savings services, never stored."""

from __future__ import annotations

from typing import Any

from django import forms

from agreements.models import AgreementKind, ProgrammeYear
from comanage.core.display import format_percentage
from comanage.core.inputs import InputError, StrictDecimalFormField, decimal_text, parse_decimal

from .models import CalculationRun

POLICY_CHOICES = [
    ("", "As agreed"),
    ("redistribute", "Redistribute the weight"),
    ("zero", "Pay zero"),
    ("hold_harmless", "Hold harmless (pay at target)"),
]
TIER_CHOICES = [("", "As agreed"), ("step", "Step"), ("linear", "Linear interpolation")]


class ScenarioForm(forms.Form):
    def __init__(
        self,
        *args: Any,
        programme_year: ProgrammeYear,
        official: CalculationRun | None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.programme_year = programme_year
        self.kind = programme_year.agreement.kind
        self.indicator_keys: list[tuple[str, str]] = []
        self.official_scores: dict[str, Any] = {}
        if self.kind == AgreementKind.CO_MANAGEMENT:
            self.fields["tier_mode"] = forms.ChoiceField(choices=TIER_CHOICES, required=False)
            self.fields["small_denominator_policy"] = forms.ChoiceField(
                choices=POLICY_CHOICES, required=False, label="Small-denominator policy"
            )
            incentive = official.read.incentive if official else None
            for ind in incentive.indicators if incentive else ():
                key = ind.key
                self.indicator_keys.append((key, ind.name))
                # The override carries the score as stored (a string), as the form's own does.
                self.official_scores[key] = None if ind.score is None else str(ind.score)
                official_score = "no score" if ind.display_score is None else ind.display_score
                self.fields[f"score__{key}"] = StrictDecimalFormField(
                    max_digits=24,
                    decimal_places=12,
                    required=False,
                    label=f"{ind.name}: result",
                    help_text=f"Official: {official_score}",
                )
                self.fields[f"denominator__{key}"] = forms.IntegerField(
                    required=False,
                    min_value=0,
                    max_value=2_000_000_000,
                    label="n",
                    help_text=f"Official: {ind.denominator or '—'}",
                )
                self.fields[f"weight__{key}"] = StrictDecimalFormField(
                    max_digits=7,
                    decimal_places=4,
                    required=False,
                    min_value=0,
                    max_value=100,
                    label="Weight (%)",
                    help_text=f"Official: {format_percentage(ind.weight)}",
                )
        else:
            self.fields["physician_share_pct"] = StrictDecimalFormField(
                max_digits=7,
                decimal_places=4,
                required=False,
                min_value=0,
                max_value=50,
                label="Physicians' share (%)",
            )
            self.fields["admin_fee_monthly"] = StrictDecimalFormField(
                max_digits=14,
                decimal_places=2,
                required=False,
                min_value=0,
                label="Administrator fee per month",
            )
            self.fields["negative_opportunities"] = forms.ChoiceField(
                required=False,
                choices=[
                    ("", "As agreed"),
                    ("net", "Net"),
                    ("floor_at_zero", "Floor each at zero"),
                ],
            )
            self.fields["volume_cap_scope"] = forms.ChoiceField(
                required=False,
                choices=[
                    ("", "As agreed"),
                    ("all_payors", "All payors"),
                    ("federal_only", "Federal payers only"),
                ],
            )
            self.fields["quantity_pct"] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
                label="Volumes: item = % of recorded quantity",
                help_text="One per line, e.g. CLOSE-01 = 90",
            )
            self.fields["key_indicators_met"] = forms.ChoiceField(
                required=False, choices=[("", "As recorded"), ("yes", "All met"), ("no", "Not met")]
            )

    def clean_quantity_pct(self) -> dict[str, str]:
        text = self.cleaned_data.get("quantity_pct") or ""
        out: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"Line {number}: write item = percent.")
            item, pct = (part.strip() for part in line.split("=", 1))
            if not item:
                raise forms.ValidationError(f"Line {number}: name the item before '='.")
            try:
                value = parse_decimal(
                    pct, field=item, min_value=0, max_value=1000, max_digits=7, decimal_places=4
                )
            except InputError as exc:
                raise forms.ValidationError(f"Line {number}: {exc.reason}") from exc
            out[item] = decimal_text(value)  # type: ignore[arg-type]
        return out

    def overrides(self) -> dict[str, Any]:
        data = self.cleaned_data
        result: dict[str, Any] = {}
        if self.kind == AgreementKind.CO_MANAGEMENT:
            for name in ("tier_mode", "small_denominator_policy"):
                if data.get(name):
                    result[name] = data[name]
            results, weights = {}, {}
            for key, _name in self.indicator_keys:
                score, n = data.get(f"score__{key}"), data.get(f"denominator__{key}")
                if score is not None or n is not None:
                    spec: dict[str, Any] = {}
                    # The service replaces the whole result: keep the official score when
                    # only n changes.
                    spec["score"] = (
                        str(score) if score is not None else (self.official_scores.get(key))
                    )
                    if n is not None:
                        spec["denominator"] = n
                    results[key] = spec
                if data.get(f"weight__{key}") is not None:
                    weights[key] = str(data[f"weight__{key}"])
            if results:
                result["results"] = results
            if weights:
                result["weights"] = weights
            return result
        terms = {
            name: str(data[name]) if not isinstance(data[name], str) else data[name]
            for name in (
                "physician_share_pct",
                "admin_fee_monthly",
                "negative_opportunities",
                "volume_cap_scope",
            )
            if data.get(name) not in (None, "")
        }
        if terms:
            result["terms"] = terms
        if data.get("quantity_pct"):
            result["quantity_pct"] = data["quantity_pct"]
        if data.get("key_indicators_met"):
            result["key_indicators_met"] = data["key_indicators_met"] == "yes"
        return result
