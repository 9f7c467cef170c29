"""Forms of the indicators app, including the structured criteria editor (rows of field /
operator / value combined with all/any) and its JSON fallback."""

from __future__ import annotations

import json
import re
from typing import Any

from django import forms

from comanage.core.constraint_messages import PlainConstraintErrors

from .criteria import OPERATORS, POPULATION_KEYS
from .models import ActionPlan, Benchmark, IndicatorDefinition, Kind

POPULATION_LABELS = {
    "initial_population": "Initial population",
    "denominator": "Denominator",
    "denominator_exclusions": "Denominator exclusions (removed before the numerator)",
    "numerator": "Numerator",
    "denominator_exceptions": "Denominator exceptions (removed only if the numerator is not met)",
    "numerator_exclusions": "Numerator exclusions",
    "measure_population": "Measure population (continuous variable)",
    "measure_population_exclusions": "Measure population exclusions",
}
OPERATOR_CHOICES = [
    ("=", "equals"),
    ("!=", "does not equal"),
    (">", ">"),
    (">=", "≥"),
    ("<", "<"),
    ("<=", "≤"),
    ("in", "is one of"),
    ("not_in", "is none of"),
    ("between", "between"),
    ("contains", "contains text"),
    ("is_true", "is true"),
    ("is_false", "is false"),
    ("is_null", "is empty"),
    ("not_null", "is recorded"),
    ("within_days", "within N days of"),
]
assert {op for op, _ in OPERATOR_CHOICES} == set(OPERATORS)
NULLARY = {"is_true", "is_false", "is_null", "not_null"}
_WITHIN = re.compile(r"^\s*(\d+)\s*(?:days?)?\s*(?:of|after)?\s*([A-Za-z_][\w]*)\s*$")


class DefinitionForm(PlainConstraintErrors, forms.ModelForm):
    fields_json = forms.CharField(
        label="Case-file columns (JSON: name → string/number/boolean/date)",
        widget=forms.Textarea(attrs={"rows": 4, "class": "mono"}),
        required=False,
    )

    class Meta:
        model = IndicatorDefinition
        fields = [
            "key",
            "name",
            "description",
            "kind",
            "unit",
            "direction",
            "weight",
            "minimum_denominator",
            "threshold",
            "threshold_payout",
            "target",
            "target_payout",
            "stretch",
            "stretch_payout",
            "baseline_value",
            "baseline_period",
            "is_key_quality_indicator",
            "tolerance_pct",
            "numerator_definition",
            "denominator_definition",
            "date_field",
            "observation_field",
            "aggregate",
            "multiplier",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "numerator_definition": forms.Textarea(attrs={"rows": 2}),
            "denominator_definition": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.fields["fields_json"].initial = json.dumps(self.instance.fields or {}, indent=1)

    def clean_fields_json(self) -> dict[str, str]:
        text = self.cleaned_data.get("fields_json") or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object such as {"age": "number"}.')
        return value


def _is_simple(tree: Any) -> bool:
    """Whether the row editor can show a tree: empty, one condition, or one all/any group of
    conditions (deeper nesting is edited as JSON)."""
    if not tree:
        return True
    if not isinstance(tree, dict):
        return False
    for key in ("all", "any"):
        if key in tree and len(tree) == 1 and isinstance(tree[key], list):
            return all(isinstance(c, dict) and "field" in c for c in tree[key])
    return "field" in tree


def _value_text(leaf: dict[str, Any]) -> str:
    if leaf.get("op") == "within_days":
        return f"{leaf.get('value', '')} days of {leaf.get('of', '')}"
    value = leaf.get("value", "")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def criteria_rows(tree: Any) -> dict[str, Any]:
    """What the editor shows for one population."""
    if not _is_simple(tree):
        return {"simple": False, "combine": "all", "rows": [], "raw": json.dumps(tree)}
    if not tree:
        return {"simple": True, "combine": "all", "rows": [], "raw": ""}
    combine = "any" if "any" in tree else "all"
    leaves = tree.get(combine) if combine in tree else [tree]
    rows = [
        {"field": leaf.get("field", ""), "op": leaf.get("op", "="), "value": _value_text(leaf)}
        for leaf in leaves
    ]
    return {"simple": True, "combine": combine, "rows": rows, "raw": ""}


def _scalar(text: str) -> Any:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _leaf(field: str, op: str, value: str) -> dict[str, Any]:
    leaf: dict[str, Any] = {"field": field.strip(), "op": op}
    if op in NULLARY:
        return leaf
    if op == "within_days":
        match = _WITHIN.match(value)
        if not match:
            leaf["value"] = value
            return leaf
        return {**leaf, "value": int(match.group(1)), "of": match.group(2)}
    if op in ("in", "not_in", "between"):
        leaf["value"] = [_scalar(v) for v in value.split(",") if v.strip()]
        return leaf
    leaf["value"] = _scalar(value)
    return leaf


def populations_from_post(data: Any) -> dict[str, Any]:
    """Rebuild the criteria trees from the editor's rows."""
    populations: dict[str, Any] = {}
    for name in POPULATION_KEYS:
        raw = data.get(f"pop-{name}-raw", "")
        if raw:
            populations[name] = json.loads(raw)
            continue
        fields = data.getlist(f"pop-{name}-field")
        ops = data.getlist(f"pop-{name}-op")
        values = data.getlist(f"pop-{name}-value")
        leaves = [_leaf(f, o, v) for f, o, v in zip(fields, ops, values, strict=False) if f.strip()]
        if not leaves:
            continue
        combine = "any" if data.get(f"pop-{name}-combine") == "any" else "all"
        populations[name] = leaves[0] if len(leaves) == 1 else {combine: leaves}
    return populations


def populations_for_kind(kind: str) -> list[str]:
    if kind == Kind.CONTINUOUS_VARIABLE:
        return ["initial_population", "measure_population", "measure_population_exclusions"]
    if kind == Kind.RATIO:
        return [
            "initial_population",
            "denominator",
            "denominator_exclusions",
            "numerator",
            "numerator_exclusions",
        ]
    return [
        "initial_population",
        "denominator",
        "denominator_exclusions",
        "numerator",
        "denominator_exceptions",
        "numerator_exclusions",
    ]


class ResultForm(forms.Form):
    period = forms.ChoiceField()
    numerator = forms.DecimalField(required=False, max_digits=14, decimal_places=4)
    denominator = forms.DecimalField(required=False, max_digits=14, decimal_places=4)
    value = forms.DecimalField(
        required=False,
        max_digits=14,
        decimal_places=4,
        help_text="Continuous variables: the median or mean.",
    )
    case_count = forms.IntegerField(
        required=False, min_value=0, help_text="Continuous variables: cases it is based on."
    )
    source_note = forms.CharField(
        max_length=300, help_text="Where the figures come from (registry, report)."
    )

    def __init__(self, *args: Any, periods: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        period = self.fields["period"]
        assert isinstance(period, forms.ChoiceField)
        period.choices = [
            (p.key, p.label + (" (interim)" if p.is_interim else " (annual, pays)"))
            for p in periods
        ]


class ImportForm(forms.Form):
    period = forms.ChoiceField()
    indicators = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Leave all unticked to use every one.",
    )
    file = forms.FileField(help_text="CSV (UTF-8) or Excel .xlsx, one row per encounter.")

    def __init__(
        self, *args: Any, periods: list[Any], definitions: list[Any], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        period, indicators = self.fields["period"], self.fields["indicators"]
        assert isinstance(period, forms.ChoiceField)
        assert isinstance(indicators, forms.MultipleChoiceField)
        period.choices = [(p.key, p.label) for p in periods]
        indicators.choices = [(d.key, d.name) for d in definitions]


class BenchmarkForm(PlainConstraintErrors, forms.ModelForm):
    class Meta:
        model = Benchmark
        fields = ["source", "period", "percentile", "value", "note"]


class ActionPlanForm(PlainConstraintErrors, forms.ModelForm):
    class Meta:
        model = ActionPlan
        fields = ["title", "owner", "due_date"]
        widgets = {"due_date": forms.DateInput(attrs={"type": "date"})}


class ActionStepForm(forms.Form):
    description = forms.CharField(max_length=300)
    owner = forms.CharField(max_length=200, required=False)
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
