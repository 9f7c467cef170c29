"""Savings API: opportunities, data imports, calculations. Thin: serializers shape, services act.

A physician sees the opportunities and calculations of agreements they take part in, and in a
calculation only their own per-physician row (agreement-level figures stay visible)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from agreements.models import ProgrammeYear
from comanage.core.api import Conflict, TenantViewSet, idempotent
from comanage.core.inputs import as_drf_error
from comanage.core.jobs import DuplicateJob
from comanage.core.permissions import is_own_only
from comanage.core.security.narrowing import PhysicianNarrowing

from . import services
from .models import CalculationKind, DataImport, SavingsCalculation, SavingsOpportunity
from .overrides import agreed_item_codes, savings_overrides_parse


class OpportunitySerializer(PhysicianNarrowing, serializers.ModelSerializer):
    savings_target = serializers.DecimalField(max_digits=14, decimal_places=2,
                                              coerce_to_string=True)
    floor_per_case = serializers.DecimalField(max_digits=14, decimal_places=2,
                                              coerce_to_string=True, required=False,
                                              allow_null=True)
    case_types = serializers.ListField(child=serializers.CharField(max_length=32))
    item_codes = serializers.ListField(child=serializers.CharField(max_length=50))

    class Meta:
        model = SavingsOpportunity
        fields = ["id", "agreement", "key", "name", "case_types", "item_codes", "floor_per_case",
                  "savings_target", "base_year", "status", "identified_at_signing",
                  "effective_from_year", "finding", "created_at"]
        read_only_fields = ["identified_at_signing", "effective_from_year", "created_at"]


class DataImportSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = DataImport
        fields = ["id", "agreement", "kind", "period", "programme_year", "base_year",
                  "period_start", "period_end", "original_name", "sha256", "size", "status",
                  "version", "is_current", "row_count", "case_count", "job", "uploaded_by",
                  "uploaded_at", "applied_at"]
        read_only_fields = fields


def _own_flags_only(result: Any, physician_id: int) -> Any:
    """A physician's copy of the result keeps only the flags about them: the others name
    co-participants' safeguard counts or other physicians' NPIs (as on the web page, which
    shows a physician no flags at all)."""
    if not isinstance(result, dict):
        return result
    own = f"physician:{physician_id}"
    return {**result, "flags": [f for f in result.get("flags", [])
                                if isinstance(f, dict) and f.get("subject") == own]}


class CalculationSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    """A physician viewer gets the agreement-level figures and only their own line, their own
    participation in the inputs and their own flags (``PhysicianNarrowing``)."""

    narrow_fields = {"result": _own_flags_only}
    result = serializers.SerializerMethodField()

    class Meta:
        model = SavingsCalculation
        fields = ["id", "agreement", "programme_year", "kind", "as_of", "overrides", "inputs",
                  "inputs_checksum", "result", "result_checksum", "gross_savings",
                  "physician_pool", "amount_paid", "projected_gross_savings", "created_at"]
        read_only_fields = fields

    def get_result(self, obj: SavingsCalculation) -> dict[str, Any]:
        own = self.context.get("own_physician_id")
        if own is None:
            return obj.result
        return {**obj.result,
                "physicians": [p for p in obj.result.get("physicians", [])
                               if p["physician_id"] == str(own)]}


class CalculationRequestSerializer(serializers.Serializer):
    programme_year = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=[CalculationKind.YEAR, CalculationKind.PROJECTION,
                                            CalculationKind.SCENARIO],
                                   default=CalculationKind.YEAR)
    overrides = serializers.DictField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Overrides read strictly here, so a bad one is a 400 naming its field, never a job."""
        overrides = attrs.get("overrides")
        if not overrides:
            return attrs
        if attrs.get("kind", CalculationKind.YEAR) == CalculationKind.YEAR:
            raise serializers.ValidationError({"overrides": "A programme-year calculation takes "
                                                            "no overrides; run a scenario."})
        year = (ProgrammeYear.objects.select_related("agreement")
                .filter(pk=attrs.get("programme_year")).first())
        try:
            attrs["overrides"] = savings_overrides_parse(
                overrides=overrides,
                item_codes=agreed_item_codes(agreement=year.agreement) if year else None)
        except ValidationError as error:
            raise as_drf_error(error) from error
        return attrs


class _Base(TenantViewSet):
    model: type

    def filter_own(self, queryset):
        return queryset.filter(
            agreement__participations__physician_id=self.membership.physician_id).distinct()


class OpportunityViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         mixins.CreateModelMixin, _Base):
    model = SavingsOpportunity
    serializer_class = OpportunitySerializer
    permission_map = {"list": "savings.view", "retrieve": "savings.view",
                      "create": "savings.edit"}

    def base_queryset(self) -> QuerySet:
        return SavingsOpportunity.objects.select_related("agreement").order_by("agreement", "key")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        agreement = data.pop("agreement")
        opportunity = services.opportunity_create(agreement=agreement, data=data,
                                                  user=request.user)
        return Response(self.get_serializer(opportunity).data, status=status.HTTP_201_CREATED)


class DataImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _Base):
    model = DataImport
    serializer_class = DataImportSerializer
    permission_map = {"list": "data.import", "retrieve": "data.import",
                      "discard": "data.import"}
    conflict_actions = {"discard"}  # read by comanage.core.schema: 409 when applied/running

    def base_queryset(self) -> QuerySet:
        return DataImport.objects.order_by("-uploaded_at", "-id")

    @extend_schema(request=None, responses=DataImportSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None, **kwargs):
        """Discard an import that was never applied (awaiting confirmation, failed, or queued
        with no live worker): its file is removed, nothing else changes; 409 once applied."""
        data_import = self.get_object()
        try:
            data_import = services.data_import_discard(data_import=data_import,
                                                       user=request.user)
        except services.ImportNotDiscardable as error:
            raise Conflict(error.messages[0]) from error
        return Response(self.get_serializer(data_import).data)


class CalculationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _Base):
    model = SavingsCalculation
    serializer_class = CalculationSerializer
    permission_map = {"list": "savings.view", "retrieve": "savings.view",
                      "run": "savings.edit"}

    def base_queryset(self) -> QuerySet:
        return SavingsCalculation.objects.order_by("-created_at", "-id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        membership = getattr(self.request, "membership", None)
        if membership is not None and is_own_only(membership, "savings.view"):
            context["own_physician_id"] = membership.physician_id
        return context

    @extend_schema(request=CalculationRequestSerializer, responses={202: inline_serializer(
        "CalculationQueued", {"job": serializers.IntegerField(),
                              "status": serializers.CharField()})})
    @action(detail=False, methods=["post"])
    @idempotent
    def run(self, request, **kwargs):
        """Queue a calculation (programme year, projection or what-if scenario): 202 + job."""
        body = CalculationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        year = get_object_or_404(ProgrammeYear, pk=body.validated_data["programme_year"])
        try:
            job = services.savings_calculation_start(
                programme_year=year, user=request.user, kind=body.validated_data["kind"],
                overrides=body.validated_data.get("overrides") or None)
        except DuplicateJob as duplicate:
            job = duplicate.existing
        except ValidationError as error:  # keep the field the service names
            raise serializers.ValidationError(
                error.message_dict if hasattr(error, "error_dict") else error.messages
            ) from error
        return Response({"job": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)
