"""API shapes. Money is serialised as strings (COERCE_DECIMAL_TO_STRING). Writes go to services."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model
from rest_framework import serializers

from comanage.core.security.narrowing import PhysicianNarrowing

from . import models as m
from .services.fmv import FMV_FIELDS
from .services.physicians import PARTICIPATION_FIELDS
from .services.terms import TERMS_FIELDS


class ScopedRelated(serializers.PrimaryKeyRelatedField):
    """A relation limited to the request's organization (the scoped manager filters it)."""

    def __init__(self, model: type[Model], **kwargs):
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self):
        # every model has ``objects`` (plugin-added); the stubs cannot see it on type[Model]
        return self.model.objects.all()  # type: ignore[attr-defined]


class ScopedRelations:
    """A serializer's relations limited to the request's organization, declared once:
    ``scoped_relations = {"agreement": m.Agreement}`` (each field a ``ScopedRelated``)."""

    scoped_relations: ClassVar[dict[str, type[Model]]] = {}

    def get_fields(self):
        fields = super().get_fields()  # type: ignore[misc]
        for name, model in self.scoped_relations.items():
            fields[name] = ScopedRelated(model)
        return fields


class PracticeSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.Practice
        fields = ["id", "name", "tax_id", "contact_name", "contact_email", "address"]


class PhysicianSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    practice = ScopedRelated(m.Practice, required=False, allow_null=True)

    class Meta:
        model = m.Physician
        fields = ["id", "npi", "first_name", "last_name", "specialty", "practice", "email"]
        extra_kwargs: dict[str, dict[str, Any]] = {"npi": {"validators": []}}


class ProgrammeYearSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.ProgrammeYear
        fields = ["id", "agreement", "number", "start", "end"]


class AgreementSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    practice = ScopedRelated(m.Practice)
    programme_years = ProgrammeYearSerializer(many=True, read_only=True)
    term_end = serializers.DateField(required=False)

    class Meta:
        model = m.Agreement
        fields = [
            "id",
            "kind",
            "name",
            "practice",
            "service_line",
            "service_line_custom",
            "status",
            "term_start",
            "term_end",
            "program_administrator",
            "executed_on",
            "signatories",
            "terminated_on",
            "termination_reason",
            "patient_notice_process",
            "quality_safeguards",
            "programme_years",
        ]
        read_only_fields = [
            "status",
            "executed_on",
            "signatories",
            "terminated_on",
            "termination_reason",
        ]


class TransitionSerializer(serializers.Serializer):
    to_status = serializers.ChoiceField(choices=m.AgreementStatus.choices)
    executed_on = serializers.DateField(required=False, allow_null=True)
    signatories = serializers.CharField(required=False, allow_blank=True, default="")
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class TermsSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.AgreementTerms
        fields = [
            "id",
            "agreement",
            "version",
            "effective_from",
            "reason",
            "created_at",
            *TERMS_FIELDS,
        ]
        read_only_fields = ["version", "created_at"]
        validators: list = []  # the services check versions and dates, naming the field
        # The services give the field-named reason (e.g. the 50% share rule).
        extra_kwargs = {
            "physician_share_pct": {"validators": []},
            "agreement": {"read_only": False},
        }

    scoped_relations = {"agreement": m.Agreement}


class ParticipationSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.Participation
        fields = ["id", "agreement", *PARTICIPATION_FIELDS]
        validators: list = []  # the service refuses a duplicate, naming the field

    scoped_relations = {"agreement": m.Agreement, "physician": m.Physician}


class FMVOpinionSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    fixed_portion = serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)
    warnings = serializers.SerializerMethodField()

    class Meta:
        model = m.FMVOpinion
        fields = [
            "id",
            "agreement",
            # the fields the FMV service edits, with the computed fixed portion after the rate
            *FMV_FIELDS[: FMV_FIELDS.index("hourly_rate") + 1],
            "fixed_portion",
            *FMV_FIELDS[FMV_FIELDS.index("hourly_rate") + 1 :],
            "warnings",
        ]

    scoped_relations = {"agreement": m.Agreement}

    def get_warnings(self, obj) -> list[str]:
        return getattr(obj, "warnings", [])


class DutySerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.ManagementDuty
        fields = [
            "id",
            "agreement",
            "name",
            "description",
            "required_monthly_hours",
            "max_monthly_hours",
        ]
        validators: list = []  # the service refuses a duplicate, naming the field

    scoped_relations = {"agreement": m.Agreement}


class TimeEntrySerializer(ScopedRelations, serializers.ModelSerializer):
    class Meta:
        model = m.TimeEntry
        fields = ["duty", "hours", "description"]

    scoped_relations = {"duty": m.ManagementDuty}

    def get_fields(self):
        fields = super().get_fields()
        fields["description"] = serializers.CharField(allow_blank=True, required=False, default="")
        return fields


class TimeSheetSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    entries = TimeEntrySerializer(many=True)
    total_hours = serializers.SerializerMethodField()

    class Meta:
        model = m.TimeSheet
        fields = [
            "id",
            "agreement",
            "physician",
            "month",
            "status",
            "submitted_at",
            "reviewed_by",
            "reviewed_at",
            "review_note",
            "entries",
            "total_hours",
        ]
        read_only_fields = ["status", "submitted_at", "reviewed_by", "reviewed_at", "review_note"]
        validators: list = []

    scoped_relations = {"agreement": m.Agreement, "physician": m.Physician}

    def get_total_hours(self, obj) -> str:
        return str(sum((e.hours for e in obj.entries.all()), start=0))


class ReviewSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class CommitteeMeetingSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.CommitteeMeeting
        fields = [
            "id",
            "agreement",
            "held_on",
            "physicians_present",
            "hospital_attendees",
            "administrator_attendees",
            "minutes",
        ]

    scoped_relations = {"agreement": m.Agreement}

    def get_fields(self):
        fields = super().get_fields()
        fields["physicians_present"] = ScopedRelated(m.Physician, many=True, required=False)
        return fields


class ComplianceFlagSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = m.ComplianceFlag
        fields = [
            "id",
            "agreement",
            "programme_year",
            "physician",
            "kind",
            "key",
            "severity",
            "blocking",
            "message",
            "data",
            "opened_at",
            "resolved_at",
            "resolved_by",
            "resolution_note",
            "auto_cleared",
        ]
        read_only_fields = fields


class ResolveSerializer(serializers.Serializer):
    resolution_note = serializers.CharField(allow_blank=True)


class DocumentSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    file = serializers.FileField(write_only=True)

    class Meta:
        model = m.AgreementDocument
        fields = [
            "id",
            "agreement",
            "kind",
            "title",
            "file",
            "original_name",
            "sha256",
            "size",
            "uploaded_by",
            "uploaded_at",
        ]
        read_only_fields = ["original_name", "sha256", "size", "uploaded_by", "uploaded_at"]

    scoped_relations = {"agreement": m.Agreement}

    def get_fields(self):
        fields = super().get_fields()
        fields["title"] = serializers.CharField(required=False, allow_blank=True, default="")
        return fields


class MilestoneSerializer(ScopedRelations, PhysicianNarrowing, serializers.ModelSerializer):
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = m.Milestone
        fields = [
            "id",
            "agreement",
            "name",
            "position",
            "owner",
            "due_date",
            "status",
            "completed_on",
            "overdue",
        ]

    scoped_relations = {"agreement": m.Agreement}

    def get_overdue(self, obj) -> bool:
        from django.utils import timezone

        return obj.status != m.MilestoneStatus.DONE and obj.due_date < timezone.localdate()


class InstalmentLineSerializer(serializers.Serializer):
    """One month of the fixed-fee schedule (``selectors.fixed_fee_schedule``)."""

    month = serializers.DateField()
    instalment = serializers.DecimalField(max_digits=14, decimal_places=2, rounding="ROUND_HALF_UP")
    required_hours = serializers.DecimalField(
        max_digits=10, decimal_places=2, rounding="ROUND_HALF_UP"
    )
    approved_hours = serializers.DecimalField(
        max_digits=10, decimal_places=2, rounding="ROUND_HALF_UP"
    )
    status = serializers.ChoiceField(choices=["payable", "held", "prorated"])
    amount_payable = serializers.DecimalField(
        max_digits=14, decimal_places=2, rounding="ROUND_HALF_UP"
    )
    note = serializers.CharField(allow_blank=True)


class ApprovalBlockersSerializer(serializers.Serializer):
    blockers = serializers.ListField(
        child=serializers.CharField(),
        help_text="Why a report for this year cannot be approved "
        "yet; empty when nothing blocks it.",
    )


class ActivationBlockersSerializer(serializers.Serializer):
    activation = serializers.ListField(
        child=serializers.CharField(),
        help_text="What must be done before the agreement can "
        "be activated; empty when nothing blocks it.",
    )
