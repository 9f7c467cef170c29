"""Forms: field shapes and widgets only. The rules live in ``services`` and come back as
``ValidationError({field: message})``, shown inline by ``comanage.core.forms.apply_errors``."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from comanage.core.constraint_messages import PlainConstraintErrors
from comanage.core.display import FIELD_LABELS

from .models import (
    Agreement,
    AgreementDocument,
    AgreementTerms,
    CommitteeMeeting,
    ComplianceFlag,
    FMVOpinion,
    ManagementDuty,
    Milestone,
    Participation,
    Physician,
    Practice,
)
from .services.fmv import FMV_FIELDS
from .services.physicians import PARTICIPATION_FIELDS
from .services.terms import TERMS_FIELDS

DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _scoped_formfield(db_field, **kwargs):
    """Relation fields start empty (fail closed); each form sets its tenant-scoped choices."""
    model = db_field.related_model if db_field.is_relation else None
    if model is not None and hasattr(model, "organization"):
        field_class = (
            forms.ModelMultipleChoiceField if db_field.many_to_many else forms.ModelChoiceField
        )
        options = {
            "queryset": model._base_manager.none(),
            "required": not db_field.blank,
            "label": db_field.verbose_name.capitalize(),
            "help_text": db_field.help_text,
        }
        options.update(kwargs)
        return field_class(**options)
    return db_field.formfield(**kwargs)


EMPTY_CHOICE = "Choose…"


def plain_labels(form: forms.BaseForm) -> None:
    """Field labels in words ("Ownership (%)", not "Ownership pct") and a real empty choice
    ("Choose…", not "---------")."""
    for name, field in form.fields.items():
        if name in FIELD_LABELS:
            field.label = FIELD_LABELS[name]
        elif field.label and str(field.label).lower().endswith(" pct"):
            field.label = f"{str(field.label)[:-4]} (%)"
        if isinstance(field, forms.ModelChoiceField):
            if field.empty_label == "---------":
                field.empty_label = EMPTY_CHOICE
        elif isinstance(field, forms.ChoiceField):
            field.choices = [
                (v, EMPTY_CHOICE if v == "" and label == "---------" else label)
                # the stubs type the getter like the setter; it returns the normalized list
                for v, label in cast("list[tuple[Any, Any]]", field.choices)
            ]


def model_choice(form: forms.BaseForm, name: str) -> forms.ModelChoiceField:
    """The field ``name`` of ``form``, a (multiple) model choice field, typed as one."""
    field = form.fields[name]
    assert isinstance(field, forms.ModelChoiceField)
    return field


class ScopedModelForm(PlainConstraintErrors, forms.ModelForm):
    formfield_callback = _scoped_formfield

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        plain_labels(self)


def _dates(*names: str) -> dict[str, forms.Widget]:
    return dict.fromkeys(names, DATE)


class AgreementPartiesForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Agreement
        fields = [
            "kind",
            "name",
            "practice",
            "service_line",
            "service_line_custom",
            "program_administrator",
            "administrator_contact",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model_choice(self, "practice").queryset = Practice.objects.all()
        from comanage.core.models import User

        model_choice(self, "administrator_contact").queryset = User.objects.filter(
            memberships__role="administrator",
            memberships__organization_id=self.initial.get("organization_id")
            or self.instance.organization_id,
        ).distinct()


class AgreementCreateForm(AgreementPartiesForm):
    class Meta(AgreementPartiesForm.Meta):
        fields = AgreementPartiesForm.Meta.fields + ["term_start", "term_end"]
        widgets = _dates("term_start", "term_end")
        help_texts = {"term_end": "Leave empty for the default (three programme years)."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["term_end"].required = False


class AgreementTermForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Agreement
        fields = ["term_start", "term_end", "patient_notice_process", "quality_safeguards"]
        widgets = _dates("term_start", "term_end")


class TermsPolicyForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = AgreementTerms
        fields = list(TERMS_FIELDS)  # the fields the terms service edits, as the API's

    # On the page the distribution cap stands with the other amounts, after the monthly fee.
    field_order = ["effective_from", "reason", *TERMS_FIELDS[:8], "distribution_cap"]

    CO_MANAGEMENT = (
        "annual_fixed_fee",
        "incentive_pool",
        "hours_shortfall_policy",
        "tier_mode",
        "small_denominator_policy",
        "distribution_method",
    )
    LABELS = {
        "physician_share_pct": "Physician share (%)",
        "admin_fee_monthly": "Administrator fee per month",
        "min_savings_threshold_pct": "Minimum savings threshold (% of expected cost)",
        "severity_tolerance_pct": "Severity tolerance (±%)",
        "quality_tolerance_pct": "Quality tolerance (±%)",
        "reprice_baseline": "Reprice the baseline at current prices",
    }

    def __init__(self, *args, kind: str = "", frozen: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in self.LABELS.items():
            if name in self.fields:
                self.fields[name].label = label
        for name in list(self.fields):
            if name in ("effective_from", "reason"):
                continue
            if kind and (name in self.CO_MANAGEMENT) != (kind == "co_management"):
                del self.fields[name]
            elif frozen:
                self.fields[name].disabled = True


class AmendmentForm(TermsPolicyForm):
    class Meta(TermsPolicyForm.Meta):
        fields = ["effective_from", "reason"] + TermsPolicyForm.Meta.fields
        widgets = _dates("effective_from")


class TransitionForm(forms.Form):
    to_status = forms.CharField(widget=forms.HiddenInput)
    executed_on = forms.DateField(required=False, widget=DATE, label="Signed on")
    signatories = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Who signed, one per line.",
    )
    reason = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Reason for termination"
    )


class PracticeForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Practice
        fields = ["name", "tax_id", "contact_name", "contact_email", "address"]


class PhysicianForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Physician
        fields = ["npi", "first_name", "last_name", "specialty", "practice", "email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model_choice(self, "practice").queryset = Practice.objects.all()
        self.fields["npi"].validators = []  # the service checks and names the NPI rule


class ParticipationForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Participation
        fields = list(PARTICIPATION_FIELDS)  # what the participation service edits
        widgets = _dates("join_date", "leave_date", "termination_date")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        model_choice(self, "physician").queryset = Physician.objects.all()


class FMVOpinionForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = FMVOpinion
        fields = list(FMV_FIELDS)  # the fields the FMV service edits, as the API's
        widgets = _dates("issue_date", "effective_start", "effective_end")


class DutyForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = ManagementDuty
        fields = ["name", "description", "required_monthly_hours", "max_monthly_hours"]


class CommitteeMeetingForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = CommitteeMeeting
        fields = [
            "held_on",
            "physicians_present",
            "hospital_attendees",
            "administrator_attendees",
            "minutes",
        ]
        widgets = {"held_on": DATE, "physicians_present": forms.CheckboxSelectMultiple}

    def __init__(self, *args, agreement=None, **kwargs):
        super().__init__(*args, **kwargs)
        model_choice(self, "physicians_present").queryset = Physician.objects.filter(
            participations__agreement=agreement
        ).distinct()


class DocumentForm(ScopedModelForm):
    file = forms.FileField(help_text="PDF only.")

    class Meta:
        formfield_callback = _scoped_formfield
        model = AgreementDocument
        fields = ["kind", "title"]


class MilestoneForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = Milestone
        fields = ["name", "owner", "due_date", "status", "completed_on"]
        widgets = _dates("due_date", "completed_on")


class PlanForm(forms.Form):
    start = forms.DateField(widget=DATE, label="Kick-off date")


class ResolveForm(ScopedModelForm):
    class Meta:
        formfield_callback = _scoped_formfield
        model = ComplianceFlag
        fields = ["resolution_note"]


class ReviewForm(forms.Form):
    note = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Note to the physician"
    )


class SetupParticipantForm(forms.Form):
    """One participating physician: chosen from the organization's physicians, or new."""

    physician = forms.ModelChoiceField(
        queryset=Physician.objects.none(),
        required=False,
        empty_label="New physician (enter below)",
        label="Physician",
    )
    npi = forms.CharField(max_length=10, required=False, label="New physician's NPI")
    first_name = forms.CharField(max_length=100, required=False, label="First name")
    last_name = forms.CharField(max_length=100, required=False, label="Last name")
    specialty = forms.CharField(max_length=100, required=False, label="Specialty")
    join_date = forms.DateField(widget=DATE, label="Joins on")
    ownership_pct = forms.DecimalField(
        max_digits=7,
        decimal_places=4,
        required=False,
        label="Ownership (%)",
        help_text="Only for distribution by ownership.",
    )

    def __init__(self, *args: Any, agreement: Agreement | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        queryset = Physician.objects.all().order_by("last_name", "first_name")
        if agreement is not None:
            queryset = queryset.exclude(participations__agreement=agreement)
        model_choice(self, "physician").queryset = queryset


class SetupSigningForm(forms.Form):
    executed_on = forms.DateField(widget=DATE, label="Signed on")
    signatories = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), help_text="Who signed, one per line."
    )
