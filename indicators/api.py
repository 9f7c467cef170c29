"""The indicators API: definitions (criteria as JSON), results (aggregate entry, FHIR),
case-file imports (as jobs), action plans and the year's incentive. Thin over the services."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as django_filters
from django_scopes import scopes_disabled
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from agreements.models import Agreement, ProgrammeYear
from comanage.core import master_import_api, uploads
from comanage.core.api import (
    Conflict,
    IdempotencyKeyReusedForUpload,
    IdFilter,
    TenantFilterSet,
    TenantViewSet,
    idempotent,
)
from comanage.core.http import signed_in_user
from comanage.core.jobs import DuplicateJob, job_create, job_enqueue
from comanage.core.permissions import is_own_only
from comanage.core.security.narrowing import PhysicianNarrowing

from . import aggregate_import, fhir, selectors, services
from .models import (
    ActionPlan,
    CaseImport,
    IndicatorDefinition,
    IndicatorResult,
    IndicatorTemplate,
    ResultImport,
)
from .tasks import IMPORT_JOB_KIND, case_import_run


class TemplateSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = IndicatorTemplate
        exclude: list[str] = []


class DefinitionSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = IndicatorDefinition
        exclude = ["organization"]
        read_only_fields = ["agreement", "created_at", "template"]
        validators: list = []  # the service refuses a duplicate key, naming the field

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        terms = attrs.get("terms") or getattr(self.instance, "terms", None)
        if terms is None:
            raise serializers.ValidationError({"terms": "Required."})
        return attrs

    def save(self, **kwargs: Any) -> IndicatorDefinition:
        instance = self.instance or IndicatorDefinition()
        for name, value in {**self.validated_data, **kwargs}.items():
            setattr(instance, name, value)
        self.instance = services.definition_save(
            definition=instance, user=self.context["request"].user
        )
        return self.instance


class ResultSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    display_value = serializers.DecimalField(max_digits=24, decimal_places=2, read_only=True)

    class Meta:
        model = IndicatorResult
        exclude = ["organization"]


class ResultEntrySerializer(serializers.Serializer):
    definition = serializers.IntegerField()
    programme_year = serializers.IntegerField()
    period = serializers.CharField(help_text="'annual' or 'Q1'..'Q4'")
    numerator = serializers.DecimalField(
        max_digits=14, decimal_places=4, required=False, allow_null=True
    )
    denominator = serializers.DecimalField(
        max_digits=14, decimal_places=4, required=False, allow_null=True
    )
    value = serializers.DecimalField(
        max_digits=14, decimal_places=4, required=False, allow_null=True
    )
    case_count = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    source_note = serializers.CharField(max_length=300)


class ImportSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = CaseImport
        exclude = ["organization", "file"]


class ImportCreateSerializer(serializers.Serializer):
    agreement = serializers.IntegerField()
    programme_year = serializers.IntegerField()
    period = serializers.CharField(default="annual")
    indicators = serializers.ListField(child=serializers.CharField(), required=False)
    file = serializers.FileField()


class ActionPlanSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    steps = serializers.SerializerMethodField()

    class Meta:
        model = ActionPlan
        exclude = ["organization"]
        read_only_fields = ["status", "closed_on", "closing_note", "result"]

    def get_steps(self, plan: ActionPlan) -> list[dict[str, Any]]:
        return [
            {
                "description": s.description,
                "owner": s.owner,
                "due_date": s.due_date.isoformat(),
                "done_on": s.done_on.isoformat() if s.done_on else None,
            }
            for s in plan.steps.all()
        ]


def _period(year: ProgrammeYear, name: str) -> selectors.Period:
    periods = selectors.periods_for_year(programme_year=year)
    if name == "annual":
        return periods[0]
    found = next((p for p in periods[1:] if p.label.endswith(name)), None)
    if found is None:
        raise serializers.ValidationError({"period": "Use 'annual' or Q1..Q4."})
    return found


def _physician_agreements(membership: Any) -> Any:
    return Agreement.objects.filter(participations__physician_id=membership.physician_id)


class _IndicatorViewSet(TenantViewSet):
    """Querysets are built per request, inside the tenant scope (never at import time)."""

    model: Any = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            with scopes_disabled():
                return self.model.objects.none()
        queryset = self.model.objects.all()
        permission = self.permission_map.get(self.action or "", "")
        if permission and is_own_only(self.membership, permission):
            queryset = self.filter_own(queryset)
        return queryset


class TemplateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IndicatorViewSet):
    model = IndicatorTemplate
    serializer_class = TemplateSerializer
    filterset_fields = {"kind": ["exact"]}
    permission_map = {"list": "indicator.view", "retrieve": "indicator.view"}

    def filter_own(self, queryset):
        return queryset  # the global library holds no tenant data


class DefinitionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    _IndicatorViewSet,
):
    model = IndicatorDefinition
    serializer_class = DefinitionSerializer
    filterset_fields = {"agreement": ["exact"], "terms": ["exact"], "kind": ["exact"]}
    permission_map = {
        "list": "indicator.view",
        "retrieve": "indicator.view",
        "create": "indicator.edit",
        "update": "indicator.edit",
        "partial_update": "indicator.edit",
        "destroy": "indicator.edit",
    }

    def get_queryset(self):
        queryset = super().get_queryset().order_by("agreement", "terms", "position")
        agreement = self.request.query_params.get("agreement")
        return (
            queryset.filter(agreement_id=agreement)
            if agreement and agreement.isdigit()
            else queryset
        )

    def filter_own(self, queryset):
        return queryset.filter(agreement__in=_physician_agreements(self.membership))

    def perform_create(self, serializer) -> None:
        serializer.save(organization=self.organization)  # DefinitionSerializer.save: the service

    def perform_update(self, serializer) -> None:
        serializer.save()  # DefinitionSerializer.save calls services.definition_save

    def destroy(self, request, *args, **kwargs):
        services.definition_delete(definition=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ResultFilter(TenantFilterSet):
    agreement = IdFilter(field_name="definition__agreement")
    current = django_filters.BooleanFilter(
        field_name="is_current", help_text="true: only the current version."
    )

    # Declared one by one: built at import, outside any tenant scope (see ComplianceFlagFilter).
    definition = IdFilter()
    programme_year = IdFilter()
    result_import = IdFilter(help_text="Only the versions this results file wrote.")
    period_kind = django_filters.CharFilter()
    period_start__gte = django_filters.DateFilter(field_name="period_start", lookup_expr="gte")
    period_start__lte = django_filters.DateFilter(field_name="period_start", lookup_expr="lte")

    class Meta:
        model = IndicatorResult
        fields: list[str] = []


class ResultViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IndicatorViewSet):
    model = IndicatorResult
    serializer_class = ResultSerializer
    filterset_class = ResultFilter
    permission_map = {
        "list": "indicator.view",
        "retrieve": "indicator.view",
        "create": "indicator.edit",
        "fhir": "indicator.view",
    }

    def get_queryset(self):
        queryset = (
            super()
            .get_queryset()
            .select_related("definition", "case_import")
            .order_by("definition", "period_start", "-version")
        )
        params = self.request.query_params
        if params.get("agreement", "").isdigit():
            queryset = queryset.filter(definition__agreement_id=params["agreement"])
        if params.get("current") in ("1", "true"):
            queryset = queryset.filter(is_current=True)
        return queryset

    def filter_own(self, queryset):
        return queryset.filter(definition__agreement__in=_physician_agreements(self.membership))

    def get_serializer_class(self):
        return ResultEntrySerializer if self.action == "create" else ResultSerializer

    @extend_schema(request=ResultEntrySerializer, responses={201: ResultSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        entry = ResultEntrySerializer(data=request.data)
        entry.is_valid(raise_exception=True)
        data = entry.validated_data
        definition = get_object_or_404(IndicatorDefinition, pk=data["definition"])
        year = get_object_or_404(
            ProgrammeYear, pk=data["programme_year"], agreement_id=definition.agreement_id
        )
        result = services.result_record(
            definition=definition,
            programme_year=year,
            period=_period(year, data["period"]),
            numerator=data.get("numerator"),
            denominator=data.get("denominator"),
            value=data.get("value"),
            case_count=data.get("case_count"),
            source_note=data["source_note"],
            user=request.user,
        )
        return Response(ResultSerializer(result).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/fhir+json"): OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def fhir(self, request, pk=None, **kwargs):
        from .views import result_measure_report

        result = self.get_object()
        report = result_measure_report(result, organization_name=self.organization.name)
        return Response(
            json.loads(fhir.measure_report_json(report)), content_type="application/fhir+json"
        )


class PayloadTooLarge(exceptions.ValidationError):
    """413, in the one error shape with the field named."""

    status_code = 413
    default_detail = "The file is over the size limit."
    default_code = "too_large"


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IndicatorViewSet):
    model = CaseImport
    serializer_class = ImportSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "programme_year": ["exact"],
        "status": ["exact"],
        "created_at": ["gte", "lte"],
    }
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    permission_map = master_import_api.import_permissions("discard")
    conflict_actions = {"discard"}  # read by comanage.core.schema: 409 when applied/running

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None, **kwargs):
        """Discard a case file that was never applied (waiting, refused, or left by a failed
        job): the record and its file go, nothing else changes; 409 once applied."""
        case_import = self.get_object()
        try:
            services.case_import_discard(case_import=case_import, user=request.user)
        except uploads.ImportNotDiscardable as error:
            raise Conflict(error.messages[0]) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    def get_serializer_class(self):
        return ImportCreateSerializer if self.action == "create" else ImportSerializer

    @extend_schema(
        request=ImportCreateSerializer,
        responses={
            202: inline_serializer(
                "ImportAccepted",
                {"case_import": serializers.IntegerField(), "job": serializers.IntegerField()},
            )
        },
    )
    @idempotent(reused=IdempotencyKeyReusedForUpload)
    def create(self, request, *args, **kwargs):
        entry = ImportCreateSerializer(data=request.data)
        entry.is_valid(raise_exception=True)
        data = entry.validated_data
        agreement = get_object_or_404(Agreement, pk=data["agreement"])
        year = get_object_or_404(ProgrammeYear, pk=data["programme_year"], agreement=agreement)
        period = _period(year, data["period"])
        upload = data["file"]
        try:
            # Before the file is read into memory: an oversize one is refused with 413.
            uploads.upload_size_check(kind="cases", size=upload.size)
        except uploads.UploadTooLarge as exc:
            raise PayloadTooLarge({"file": exc.message_dict["file"]}) from exc
        payload = upload.read()
        dedupe = services.import_dedupe_key(
            agreement=agreement, period=period, sha256=hashlib.sha256(payload).hexdigest()
        )
        # One transaction: a file the service refuses leaves no queued job behind (which
        # would hold the dedupe key and refuse the corrected upload of the same file).
        with transaction.atomic():
            try:
                job = job_create(
                    organization=self.organization,
                    kind=IMPORT_JOB_KIND,
                    user=request.user,
                    dedupe_key=dedupe,
                )
            except DuplicateJob as duplicate:
                earlier = CaseImport.objects.filter(job=duplicate.existing).first()
                return Response(
                    {
                        "errors": [
                            {
                                "field": "file",
                                "code": "duplicate",
                                "message": "This exact file was already imported "
                                "for this period; it was not applied "
                                "again.",
                            }
                        ],
                        "case_import": earlier.pk if earlier else None,
                        "job": duplicate.existing.pk,
                    },
                    status=status.HTTP_409_CONFLICT,
                )
            try:
                case_import = services.case_import_create(
                    agreement=agreement,
                    programme_year=year,
                    period=period,
                    data=payload,
                    filename=upload.name,
                    user=request.user,
                    indicator_keys=data.get("indicators"),
                )
            except ValidationError as error:
                if hasattr(error, "error_dict"):
                    raise
                # Agreement, year and period were checked above: what is left is the file's.
                raise serializers.ValidationError({"file": error.messages}) from error
            job.params = {"case_import": case_import.pk}
            job.save(update_fields=["params"])
            CaseImport.objects.filter(pk=case_import.pk).update(job=job)
            job_enqueue(job=job, task=case_import_run)
        return Response(
            {"case_import": case_import.pk, "job": job.pk}, status=status.HTTP_202_ACCEPTED
        )


class ActionPlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _IndicatorViewSet):
    model = ActionPlan
    serializer_class = ActionPlanSerializer
    filterset_fields = {
        "definition": ["exact"],
        "programme_year": ["exact"],
        "status": ["exact"],
        "due_date": ["gte", "lte"],
    }
    permission_map = {
        "list": "indicator.view",
        "retrieve": "indicator.view",
        "create": "indicator.edit",
    }

    def get_queryset(self):
        queryset = super().get_queryset().prefetch_related("steps").order_by("status", "due_date")
        year = self.request.query_params.get("programme_year", "")
        return queryset.filter(programme_year_id=year) if year.isdigit() else queryset

    def filter_own(self, queryset):
        return queryset.none()

    def create(self, request, *args, **kwargs):
        entry = ActionPlanSerializer(data=request.data)
        entry.is_valid(raise_exception=True)
        data = entry.validated_data
        plan = services.action_plan_create(
            definition=data["definition"],
            programme_year=data["programme_year"],
            title=data["title"],
            owner=data["owner"],
            due_date=data["due_date"],
            user=request.user,
        )
        return Response(ActionPlanSerializer(plan).data, status=status.HTTP_201_CREATED)


class IncentiveSerializer(serializers.Serializer):
    result = serializers.DictField(help_text="The engine's result, every intermediate figure.")
    inputs = serializers.DictField(help_text="The inputs it was computed from.")
    inputs_sha256 = serializers.CharField()


class IncentiveViewSet(mixins.RetrieveModelMixin, _IndicatorViewSet):
    """``indicator-incentive/<programme_year>/``: the year's incentive (or 409 when a result
    is missing); ``?projection=1`` for the year-to-date projection."""

    model = ProgrammeYear
    serializer_class = IncentiveSerializer
    permission_map = {"retrieve": "indicator.view"}
    conflict_actions = {"retrieve"}  # read by comanage.core.schema: 409 when a result is missing

    def filter_own(self, queryset):
        return queryset.filter(agreement__in=_physician_agreements(self.membership))

    def retrieve(self, request, *args, **kwargs):
        year = self.get_object()
        try:
            if request.query_params.get("projection") in ("1", "true"):
                computation = services.incentive_projection(programme_year=year)
            else:
                computation = services.incentive_for_year(programme_year=year)
        except services.IndicatorDataMissing as exc:
            return Response(
                {"errors": [{"field": None, "code": "results_missing", "message": str(exc)}]},
                status=status.HTTP_409_CONFLICT,
            )
        except (services.scoring.TermsInvalid, ValidationError) as exc:
            return Response(
                {"errors": [{"field": None, "code": "terms_invalid", "message": str(exc)}]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(
            {
                "result": computation.result.to_dict(),
                "inputs": computation.inputs,
                "inputs_sha256": computation.inputs_checksum(),
            }
        )


# --------------------------------------------------------------------------------------------
# Aggregate results from a file (issue 17): the reference-file import's shape


class ResultImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ResultImport
        fields = [
            *master_import_api.READ_FIELDS[:6],
            "agreement",
            *master_import_api.READ_FIELDS[6:],
        ]
        read_only_fields = fields


ResultImportUploadedSerializer = master_import_api.with_preview(ResultImportSerializer)


class ResultImportUploadSerializer(serializers.Serializer):
    """``multipart/form-data``: the same fields as the web upload form."""

    agreement = serializers.IntegerField(help_text="The agreement whose indicators the rows give.")
    file = serializers.FileField(
        allow_empty_file=False,
        help_text="CSV (.csv, .txt) or Excel workbook (.xlsx): one row per indicator and period, "
        "in the documented columns or the source's own (matched on confirm, or by a saved "
        "mapping with the same header).",
    )


class ResultImportViewSet(master_import_api.MasterImportViewSet):
    """Aggregate indicator results from a file: upload (answered with how the columns are
    read, the first rows and every row's problems), ``confirm`` (optionally with the saved
    mapping or the columns matched; a job records every row through the aggregate-result
    service, whole or not at all), ``discard``, ``problems``."""

    model = ResultImport
    serializer_class = ResultImportSerializer
    upload_serializer_class = ResultImportUploadSerializer
    permission_map = master_import_api.import_permissions(
        "confirm", "discard", "problems", "results"
    )
    filterset_fields = {
        "status": ["exact"],
        "agreement": ["exact"],
        "uploaded_at": ["gte", "lte"],
    }

    def base_queryset(self):
        return ResultImport.objects.select_related("job", "agreement").order_by(
            "-uploaded_at", "-id"
        )

    def receive(self, data: dict[str, Any]) -> ResultImport:
        agreement = Agreement.objects.filter(pk=data["agreement"]).first()
        if agreement is None:
            raise serializers.ValidationError(
                {
                    "agreement": [
                        serializers.ErrorDetail("No agreement with this id.", "does_not_exist")
                    ]
                }
            )
        return aggregate_import.result_import_receive(
            organization=self.organization,
            agreement=agreement,
            upload=data["file"],
            user=signed_in_user(self.request),
        )

    def preview(self, instance: ResultImport) -> dict[str, Any]:
        return aggregate_import.result_import_preview(result_import=instance)

    def start(self, instance: ResultImport) -> Any:
        return aggregate_import.result_import_start(
            result_import=instance, user=signed_in_user(self.request)
        )

    def discard_import(self, instance: ResultImport) -> ResultImport:
        return aggregate_import.result_import_discard(
            result_import=instance, user=signed_in_user(self.request)
        )

    @extend_schema(
        summary="The result versions this file wrote (each also names it as ``result_import``)",
        filters=False,
        responses=inline_serializer(
            "ResultImportResults",
            {"result_import": serializers.IntegerField(), "results": ResultSerializer(many=True)},
        ),
    )
    @action(detail=True, methods=["get"])
    def results(self, request, pk=None, **kwargs):
        """Every result version the file wrote, by indicator and period (a row that repeated
        its period's current figures wrote none)."""
        result_import = self.get_object()
        versions = selectors.results_of_import(result_import=result_import)
        serializer = ResultSerializer(versions, many=True, context=self.get_serializer_context())
        return Response({"result_import": result_import.pk, "results": serializer.data})

    create = master_import_api.upload_endpoint(
        summary="Upload aggregate indicator results (multipart/form-data); answered with its "
        "preview",
        upload=ResultImportUploadSerializer,
        uploaded=ResultImportUploadedSerializer,
        too_large="The file is over the results-file limit.",
        doc="""Store the file (no result recorded yet) and answer with how its columns are read,
        its first rows and every row's problems. Then ``confirm`` or ``discard`` it.""",
    )
