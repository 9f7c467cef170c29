"""Savings API: opportunities, data imports, calculations. Thin: serializers shape, services act.

A physician sees the opportunities and calculations of agreements they take part in, and in a
calculation only their own per-physician row (agreement-level figures stay visible)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, filters, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from agreements.models import Agreement, AgreementKind, ProgrammeYear
from comanage.core import master_import_api, uploads
from comanage.core.api import (
    Conflict,
    IdempotencyKeyReusedForUpload,
    TenantViewSet,
    idempotent,
)
from comanage.core.exports import csv_response
from comanage.core.http import signed_in_user
from comanage.core.import_mappings import import_mapping_get
from comanage.core.inputs import as_drf_error
from comanage.core.jobs import DuplicateJob
from comanage.core.permissions import is_own_only
from comanage.core.security.narrowing import PhysicianNarrowing

from . import services
from .models import (
    CalculationKind,
    DataImport,
    ImportKind,
    ImportPeriod,
    ImportStatus,
    Item,
    ItemImport,
    SavingsCalculation,
    SavingsOpportunity,
)
from .overrides import agreed_item_codes, savings_overrides_parse


class OpportunitySerializer(PhysicianNarrowing, serializers.ModelSerializer):
    savings_target = serializers.DecimalField(
        max_digits=14, decimal_places=2, coerce_to_string=True
    )
    floor_per_case = serializers.DecimalField(
        max_digits=14, decimal_places=2, coerce_to_string=True, required=False, allow_null=True
    )
    case_types = serializers.ListField(child=serializers.CharField(max_length=32))
    item_codes = serializers.ListField(child=serializers.CharField(max_length=50))

    class Meta:
        model = SavingsOpportunity
        fields = [
            "id",
            "agreement",
            "key",
            "name",
            "case_types",
            "item_codes",
            "floor_per_case",
            "savings_target",
            "base_year",
            "status",
            "identified_at_signing",
            "effective_from_year",
            "finding",
            "created_at",
        ]
        read_only_fields = ["identified_at_signing", "effective_from_year", "created_at"]


class DataImportSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = DataImport
        fields = [
            "id",
            "agreement",
            "kind",
            "period",
            "programme_year",
            "base_year",
            "period_start",
            "period_end",
            "original_name",
            "sha256",
            "size",
            "status",
            "version",
            "is_current",
            "row_count",
            "case_count",
            "job",
            "uploaded_by",
            "uploaded_at",
            "applied_at",
            "mapping",
            "mapping_used",
        ]
        read_only_fields = fields


class DataImportUploadSerializer(serializers.Serializer):
    """``multipart/form-data``: the same fields as the web upload form."""

    agreement = serializers.IntegerField(
        required=False,
        help_text="The shared-savings agreement; may be left out when ``programme_year`` is given.",
    )
    programme_year = serializers.IntegerField(
        required=False,
        help_text="Id of the programme year the file belongs to (usage or "
        "prices of a programme year).",
    )
    base_year = serializers.IntegerField(
        required=False,
        min_value=1990,
        max_value=2100,
        help_text="A calendar year (e.g. 2024): usage of a base year, instead of "
        "``programme_year``.",
    )
    kind = serializers.ChoiceField(choices=ImportKind.choices)
    file = serializers.FileField(
        allow_empty_file=False,
        help_text="CSV (.csv, .txt) or Excel workbook (.xlsx) with the documented columns.",
    )
    mapping = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Id of a saved column mapping that reads the file (the organization's own). "
        "Without it a saved mapping whose header the file has is chosen when confirming.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        has_year = attrs.get("programme_year") is not None
        has_base = attrs.get("base_year") is not None
        if has_year == has_base:
            raise serializers.ValidationError(
                {"programme_year": "Give either programme_year or base_year (one of them)."},
                code="required",
            )
        if has_base and attrs.get("agreement") is None:
            raise serializers.ValidationError(
                {"agreement": "Give the agreement of a base-year file."}, code="required"
            )
        return attrs


class ImportPreviewSerializer(serializers.Serializer):
    deferred = serializers.BooleanField(
        help_text="True for an Excel workbook: it is opened by the worker, not previewed."
    )
    columns = serializers.ListField(
        child=serializers.CharField(), help_text="The detected columns, normalised."
    )
    missing = serializers.ListField(child=serializers.CharField())
    optional_missing = serializers.ListField(child=serializers.CharField())
    ignored = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="The first rows, as read.",
    )
    problems = serializers.ListField(child=serializers.DictField())
    # a declared field (the metaclass moves it off the class); the stubs see BaseSerializer.partial
    partial = serializers.BooleanField(required=False)  # type: ignore[assignment]
    error = serializers.CharField(allow_blank=True)


class DataImportUploadedSerializer(DataImportSerializer):
    preview = serializers.SerializerMethodField()

    class Meta(DataImportSerializer.Meta):
        fields = [*DataImportSerializer.Meta.fields, "preview"]
        read_only_fields = fields

    @extend_schema_field(ImportPreviewSerializer)
    def get_preview(self, data_import: DataImport) -> dict[str, Any] | None:
        """The detected columns and first rows, as the web page shows before confirming."""
        if (
            data_import.status not in (ImportStatus.UPLOADED, ImportStatus.FAILED)
            or not data_import.file
        ):
            return None
        return services.data_import_preview(data_import=data_import)


class ImportProblemSerializer(serializers.Serializer):
    row = serializers.CharField(allow_blank=True, help_text="Row number in the file, if any.")
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class ImportProblemsSerializer(serializers.Serializer):
    data_import = serializers.IntegerField()
    status = serializers.CharField()
    job = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    error_count = serializers.IntegerField(help_text="Problems found; the first 100 are kept.")
    problems = ImportProblemSerializer(many=True)


class ImportJobSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.CharField()
    job_url = serializers.CharField(help_text="GET it to follow the job's progress.")
    data_import = serializers.IntegerField()


def _problem_rows(data_import: DataImport) -> list[dict[str, Any]]:
    job = data_import.job
    return master_import_api.problem_rows(job.errors if job is not None else [], row_text=True)


def _own_flags_only(result: Any, physician_id: int) -> Any:
    """A physician's copy of the result keeps only the flags about them: the others name
    co-participants' safeguard counts or other physicians' NPIs (as on the web page, which
    shows a physician no flags at all)."""
    if not isinstance(result, dict):
        return result
    own = f"physician:{physician_id}"
    return {
        **result,
        "flags": [
            f for f in result.get("flags", []) if isinstance(f, dict) and f.get("subject") == own
        ],
    }


class CalculationSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    """A physician viewer gets the agreement-level figures and only their own line, their own
    participation in the inputs and their own flags (``PhysicianNarrowing``)."""

    narrow_fields = {"result": _own_flags_only}
    result = serializers.SerializerMethodField()

    class Meta:
        model = SavingsCalculation
        fields = [
            "id",
            "agreement",
            "programme_year",
            "kind",
            "as_of",
            "overrides",
            "inputs",
            "inputs_checksum",
            "result",
            "result_checksum",
            "gross_savings",
            "physician_pool",
            "amount_paid",
            "projected_gross_savings",
            "created_at",
        ]
        read_only_fields = fields

    def get_result(self, obj: SavingsCalculation) -> dict[str, Any]:
        own = self.context.get("own_physician_id")
        if own is None:
            return obj.result
        return {
            **obj.result,
            "physicians": [
                p for p in obj.result.get("physicians", []) if p["physician_id"] == str(own)
            ],
        }


class CalculationRequestSerializer(serializers.Serializer):
    programme_year = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=[CalculationKind.YEAR, CalculationKind.PROJECTION, CalculationKind.SCENARIO],
        default=CalculationKind.YEAR,
    )
    overrides = serializers.DictField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Overrides read strictly here, so a bad one is a 400 naming its field, never a job."""
        overrides = attrs.get("overrides")
        if not overrides:
            return attrs
        if attrs.get("kind", CalculationKind.YEAR) == CalculationKind.YEAR:
            raise serializers.ValidationError(
                {"overrides": "A programme-year calculation takes no overrides; run a scenario."}
            )
        year = (
            ProgrammeYear.objects.select_related("agreement")
            .filter(pk=attrs["programme_year"])
            .first()
        )
        try:
            attrs["overrides"] = savings_overrides_parse(
                overrides=overrides,
                item_codes=agreed_item_codes(agreement=year.agreement) if year else None,
            )
        except ValidationError as error:
            raise as_drf_error(error) from error
        return attrs


class _Base(TenantViewSet):
    model: type

    def filter_own(self, queryset):
        return queryset.filter(
            agreement__participations__physician_id=self.membership.physician_id
        ).distinct()


class OpportunityViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, _Base
):
    model = SavingsOpportunity
    serializer_class = OpportunitySerializer
    filterset_fields = {"agreement": ["exact"], "status": ["exact"], "base_year": ["exact"]}
    permission_map = {"list": "savings.view", "retrieve": "savings.view", "create": "savings.edit"}

    def base_queryset(self) -> QuerySet:
        return SavingsOpportunity.objects.select_related("agreement").order_by("agreement", "key")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        agreement = data.pop("agreement")
        opportunity = services.opportunity_create(agreement=agreement, data=data, user=request.user)
        return Response(self.get_serializer(opportunity).data, status=status.HTTP_201_CREATED)


class PayloadTooLarge(exceptions.ValidationError):
    """413, in the one error shape with the field named."""

    status_code = 413
    default_detail = "The file is over the size limit."
    default_code = "too_large"


def _map(data_import: DataImport, *, user: Any, mapping_id: Any) -> None:
    """Record the mapping that reads the file (a 400 naming what is wrong otherwise)."""
    try:
        services.data_import_map(data_import=data_import, user=user, mapping_id=mapping_id)
    except ValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else {"mapping": error.messages}
        raise serializers.ValidationError(detail) from error


def _field_error(field: str, message: str, code: str = "invalid") -> serializers.ValidationError:
    return serializers.ValidationError({field: [serializers.ErrorDetail(message, code=code)]})


class DataImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _Base):
    """Usage and price files: upload (``multipart/form-data``, answered at once with the
    preview), ``confirm`` (queues the import as a job), ``discard``, and the refused file's
    ``problems`` (JSON) / ``problems.csv``; the same services as the web pages."""

    model = DataImport
    serializer_class = DataImportSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "programme_year": ["exact"],
        "kind": ["exact"],
        "period": ["exact"],
        "base_year": ["exact"],
        "status": ["exact"],
        "is_current": ["exact"],
        "uploaded_at": ["gte", "lte"],
    }
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    permission_map = master_import_api.import_permissions(
        "confirm", "discard", "problems", "problems_csv"
    )
    # read by comanage.core.schema: 409 when applied/running, already started, or a duplicate
    conflict_actions = {"discard", "confirm", "create"}

    def base_queryset(self) -> QuerySet:
        return DataImport.objects.select_related("job").order_by("-uploaded_at", "-id")

    def get_serializer_class(self):
        return DataImportUploadSerializer if self.action == "create" else DataImportSerializer

    def _target(self, data: dict[str, Any]) -> tuple[Agreement, ProgrammeYear | None]:
        """The agreement and programme year named by id, inside the tenant (another
        organization's ids are simply unknown here)."""
        agreement = None
        if data.get("agreement") is not None:
            agreement = Agreement.objects.filter(
                pk=data["agreement"], kind=AgreementKind.SHARED_SAVINGS
            ).first()
            if agreement is None:
                raise _field_error(
                    "agreement", "No shared-savings agreement with this id.", "does_not_exist"
                )
        year = None
        if data.get("programme_year") is not None:
            year = (
                ProgrammeYear.objects.select_related("agreement")
                .filter(pk=data["programme_year"], agreement__kind=AgreementKind.SHARED_SAVINGS)
                .first()
            )
            if year is None or (agreement is not None and year.agreement_id != agreement.pk):
                raise _field_error(
                    "programme_year",
                    "No programme year with this id in a "
                    "shared-savings agreement (of the agreement given).",
                    "does_not_exist",
                )
            agreement = year.agreement
        membership = self.membership
        if (
            agreement is not None
            and membership is not None
            and is_own_only(membership, "data.import")
            and membership.physician_id not in agreement.physician_ids()
        ):
            raise _field_error(
                "agreement", "No shared-savings agreement with this id.", "does_not_exist"
            )
        assert agreement is not None  # the serializer requires one of the two
        return agreement, year

    @extend_schema(
        summary="Upload a usage or price file (multipart/form-data); answered with its preview",
        request={"multipart/form-data": DataImportUploadSerializer},
        responses={
            201: DataImportUploadedSerializer,
            409: OpenApiResponse(
                description="The same file is already applied for this "
                "period, or the Idempotency-Key was used with another "
                "file."
            ),
            413: OpenApiResponse(description="The file is over its kind's limit."),
        },
    )
    @idempotent(reused=IdempotencyKeyReusedForUpload)
    def create(self, request, *args, **kwargs):
        """Store the file (nothing is read into the programme yet) and answer at once with the
        import, its detected columns and first rows. Then ``confirm`` or ``discard`` it."""
        body = DataImportUploadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        agreement, year = self._target(data)
        if data.get("mapping") is not None:
            try:  # before anything is stored: an unknown mapping is refused at once
                import_mapping_get(kind=data["kind"], mapping_id=data["mapping"])
            except ValidationError as error:
                raise serializers.ValidationError(error.message_dict) from error
        try:
            data_import = services.data_import_receive(
                agreement=agreement,
                kind=data["kind"],
                period=ImportPeriod.PROGRAMME if year is not None else ImportPeriod.BASE,
                upload=data["file"],
                user=request.user,
                programme_year=year,
                base_year=data.get("base_year"),
            )
        except services.DuplicateUpload as duplicate:
            return Response(
                {
                    "errors": [
                        {
                            "field": "file",
                            "code": "duplicate_file",
                            "message": duplicate.messages[0],
                        }
                    ],
                    "data_import": duplicate.existing.pk,
                },
                status=status.HTTP_409_CONFLICT,
            )
        except uploads.UploadTooLarge as error:
            raise PayloadTooLarge(error.message_dict) from error
        if data.get("mapping") is not None:
            _map(data_import, user=request.user, mapping_id=data["mapping"])
        return Response(
            DataImportUploadedSerializer(data_import).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Confirm an uploaded file: the import is queued as a job (202)",
        request=None,
        responses={202: ImportJobSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def confirm(self, request, pk=None, **kwargs):
        """Queue the import (the worker checks every row; all or nothing). Follow the job at
        ``job_url``; a refused file's problems are at ``problems`` / ``problems.csv``."""
        data_import = self.get_object()
        if data_import.status in (ImportStatus.UPLOADED, ImportStatus.FAILED):
            mapping_id = request.data.get("mapping") if hasattr(request.data, "get") else None
            if mapping_id is not None or not (data_import.mapping_used or {}).get("columns"):
                _map(data_import, user=request.user, mapping_id=mapping_id)
        try:
            job = services.data_import_start(data_import=data_import, user=request.user)
        except DuplicateJob as duplicate:
            raise Conflict(
                f"The same file is already being imported or was imported "
                f"(job {duplicate.existing.pk})."
            ) from duplicate
        except ValidationError as error:
            raise Conflict(error.messages[0]) from error
        return master_import_api.job_accepted(
            org_slug=self.organization.slug, job=job, data_import=data_import.pk
        )

    @extend_schema(
        summary="A refused import's problems (row, column, message) as JSON",
        responses=ImportProblemsSerializer,
    )
    @action(detail=True, methods=["get"])
    def problems(self, request, pk=None, **kwargs):
        data_import = self.get_object()
        job = data_import.job
        return master_import_api.problems_answer(
            data_import,
            problems=_problem_rows(data_import),
            count=job.error_count if job else 0,
            message=job.message if job else "",
            id_key="data_import",
        )

    @extend_schema(
        summary="A refused import's problems as CSV (row, column, reason), as the web page offers",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    @action(detail=True, methods=["get"], url_path=r"problems\.csv")
    def problems_csv(self, request, pk=None, **kwargs) -> HttpResponse:
        data_import = self.get_object()
        rows = [[p["row"], p["column"], p["message"]] for p in _problem_rows(data_import)]
        return csv_response(
            f"import-{data_import.pk}-problems.csv", ["row", "column", "reason"], rows
        )

    @extend_schema(request=None, responses=DataImportSerializer)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None, **kwargs):
        """Discard an import that was never applied (awaiting confirmation, failed, or queued
        with no live worker): its file is removed, nothing else changes; 409 once applied."""
        data_import = self.get_object()
        try:
            data_import = services.data_import_discard(data_import=data_import, user=request.user)
        except services.ImportNotDiscardable as error:
            raise Conflict(error.messages[0]) from error
        return Response(self.get_serializer(data_import).data)


class CalculationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _Base):
    model = SavingsCalculation
    serializer_class = CalculationSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "programme_year": ["exact"],
        "kind": ["exact"],
        "created_at": ["gte", "lte"],
    }
    permission_map = {"list": "savings.view", "retrieve": "savings.view", "run": "savings.edit"}

    def base_queryset(self) -> QuerySet:
        return SavingsCalculation.objects.order_by("-created_at", "-id")

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        membership = getattr(self.request, "membership", None)
        if membership is not None and is_own_only(membership, "savings.view"):
            context["own_physician_id"] = membership.physician_id
        return context

    @extend_schema(
        request=CalculationRequestSerializer,
        responses={
            202: inline_serializer(
                "CalculationQueued",
                {"job": serializers.IntegerField(), "status": serializers.CharField()},
            )
        },
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def run(self, request, **kwargs):
        """Queue a calculation (programme year, projection or what-if scenario): 202 + job."""
        body = CalculationRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        year = get_object_or_404(ProgrammeYear, pk=body.validated_data["programme_year"])
        try:
            job = services.savings_calculation_start(
                programme_year=year,
                user=request.user,
                kind=body.validated_data["kind"],
                overrides=body.validated_data.get("overrides") or None,
            )
        except DuplicateJob as duplicate:
            job = duplicate.existing
        except ValidationError as error:  # keep the field the service names
            raise serializers.ValidationError(
                error.message_dict if hasattr(error, "error_dict") else error.messages
            ) from error
        return Response({"job": job.pk, "status": job.status}, status=status.HTTP_202_ACCEPTED)


# --------------------------------------------------------------------------------------------
# The item master (issue 17): imports, the items, assigning many to an opportunity


class ItemImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ItemImport
        fields = master_import_api.READ_FIELDS
        read_only_fields = fields


ItemImportUploadedSerializer = master_import_api.with_preview(ItemImportSerializer)


class ItemUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        allow_empty_file=False,
        help_text="CSV (.csv, .txt) or Excel workbook (.xlsx): item_code, description, "
        "manufacturer, category, unit_of_measure.",
    )


class ItemImportViewSet(master_import_api.MasterImportViewSet):
    """Item master files: upload (answered with the preview and every row's problems),
    ``confirm`` (a job creates and updates items by code, whole or not at all), ``discard``,
    ``problems``."""

    model = ItemImport
    serializer_class = ItemImportSerializer
    upload_serializer_class = ItemUploadSerializer

    def receive(self, data: dict[str, Any]) -> ItemImport:
        return services.item_import_receive(
            organization=self.organization, upload=data["file"], user=signed_in_user(self.request)
        )

    def preview(self, instance: ItemImport) -> dict[str, Any]:
        return services.item_import_preview(item_import=instance)

    def start(self, instance: ItemImport) -> Any:
        user = signed_in_user(self.request)
        return services.item_import_start(item_import=instance, user=user)

    def discard_import(self, instance: ItemImport) -> ItemImport:
        user = signed_in_user(self.request)
        return services.item_import_discard(item_import=instance, user=user)

    create = master_import_api.upload_endpoint(
        summary="Upload an item master file (multipart/form-data); answered with its preview",
        upload=ItemUploadSerializer,
        uploaded=ItemImportUploadedSerializer,
        too_large="The file is over the item master limit.",
        doc="""Store the file (no item changes yet) and answer with its columns, first rows and
        every row's problems. Then ``confirm`` or ``discard`` it.""",
    )


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ["id", "code", "description", "manufacturer", "category", "unit_of_measure"]
        read_only_fields = fields


class ItemAssignmentSerializer(serializers.Serializer):
    opportunity = serializers.IntegerField(help_text="The savings opportunity.")
    item_codes = serializers.ListField(
        child=serializers.CharField(max_length=50),
        min_length=1,
        max_length=5000,
        help_text="Item codes of the item master.",
    )
    action = serializers.ChoiceField(
        choices=[("assign", "assign"), ("unassign", "unassign")], default="assign"
    )


class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """The item master: list with filters (``search`` on code and description, manufacturer,
    category), and ``assign`` many item codes to an opportunity (or take them out) at once."""

    model = Item
    serializer_class = ItemSerializer
    filterset_fields = {"code": ["exact"], "manufacturer": ["exact"], "category": ["exact"]}
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["code", "description"]
    permission_map = {
        "list": "savings.analyse",
        "retrieve": "savings.analyse",
        "assign": "savings.edit",
    }

    def base_queryset(self) -> QuerySet:
        return Item.objects.order_by("code")

    @extend_schema(
        summary="Assign item codes to a savings opportunity (or take them out), many at once",
        request=ItemAssignmentSerializer,
        responses={200: OpportunitySerializer},
    )
    @action(detail=False, methods=["post"])
    @idempotent
    def assign(self, request, **kwargs):
        body = ItemAssignmentSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        opportunity = SavingsOpportunity.objects.filter(
            pk=data["opportunity"], agreement__kind=AgreementKind.SHARED_SAVINGS
        ).first()
        if opportunity is None:
            raise _field_error(
                "opportunity", "No savings opportunity with this id.", "does_not_exist"
            )
        change = (
            services.opportunity_items_assign
            if data["action"] == "assign"
            else services.opportunity_items_unassign
        )
        try:
            change(opportunity=opportunity, codes=data["item_codes"], user=request.user)
        except ValidationError as error:
            detail = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
            raise serializers.ValidationError(
                {("item_codes" if k in ("items", "") else k): v for k, v in detail.items()}
            ) from error
        opportunity.refresh_from_db()
        return Response(OpportunitySerializer(opportunity).data)
