"""The adjudication API: runs, reports and their transitions, verification, statements,
payments and what-if scenarios. Transitions and runs are POST actions honouring
``Idempotency-Key``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.decorators import action
from rest_framework.mixins import ListModelMixin, RetrieveModelMixin
from rest_framework.response import Response

from agreements.models import ProgrammeYear
from comanage.core.api import Conflict, TenantViewSet, idempotent
from comanage.core.api_renderers import CSVRenderer, JSONRenderer
from comanage.core.inputs import as_drf_error
from comanage.core.jobs import DuplicateJob
from comanage.core.security import device_code_valid, two_factor_enabled
from comanage.core.security.narrowing import PhysicianNarrowing
from comanage.core.security.otp import refusal_message
from comanage.core.serialise import jsonable

from . import services, signing
from .models import (
    FROZEN_STATUSES,
    AdjudicationReport,
    CalculationRun,
    PaymentLine,
    PhysicianStatement,
)
from .payment_exports import COLUMNS as EXPORT_COLUMNS
from .payment_exports import ExportNotReady, payment_lines_export, payment_lines_rows

if TYPE_CHECKING:  # a mixin of TenantViewSet subclasses: type it as one
    _OrderedBase = TenantViewSet
else:
    _OrderedBase = object


class _Ordered(_OrderedBase):
    """Class-level querysets stay unevaluated (the tenant scope starts per request)."""

    ordering: list[str] = []

    def get_queryset(self):
        return super().get_queryset().order_by(*self.ordering)


class RunSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = CalculationRun
        fields = [
            "id",
            "agreement",
            "programme_year",
            "version",
            "kind",
            "rules_version",
            "calculation_hash",
            "results",
            "flags",
            "diff",
            "created_at",
        ]


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["inputs", "figures"]


class TransitionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")
    otp_token = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        write_only=True,
        help_text="Approve and authorise are signatures: the current code from your "
        "authenticator app (required when two-factor authentication is on).",
    )


class ReportTransitionSerializer(serializers.Serializer):
    """One step of a report's approval trail, as ``ReportSerializer.transitions`` lists it."""

    # ``from`` is a Python keyword: the field is declared under a legal name and renamed below.
    from_ = serializers.CharField()
    to = serializers.CharField()
    actor = serializers.CharField()
    role = serializers.CharField()
    at = serializers.DateTimeField()
    comment = serializers.CharField(allow_blank=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class ReportSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    transitions = serializers.SerializerMethodField()

    class Meta:
        model = AdjudicationReport
        fields = [
            "id",
            "run",
            "agreement",
            "programme_year",
            "version",
            "status",
            "supersedes",
            "calculation_hash",
            "pdf_sha256",
            "frozen_at",
            "created_at",
            "transitions",
        ]

    @extend_schema_field(ReportTransitionSerializer(many=True))
    def get_transitions(self, obj):
        return [
            {
                "from": t.from_status,
                "to": t.to_status,
                "actor": t.actor_name,
                "role": t.actor_role,
                "at": t.at.isoformat(),
                "comment": t.comment,
            }
            for t in obj.transitions.order_by("at", "pk")
        ]


class PaymentLineSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = PaymentLine
        fields = [
            "id",
            "report",
            "line_key",
            "kind",
            "payee",
            "physician",
            "description",
            "amount",
            "paid_amount",
            "paid_on",
            "reference",
            "recorded_at",
        ]


class PaymentRecordSerializer(serializers.Serializer):
    paid_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    paid_on = serializers.DateField()
    reference = serializers.CharField(required=False, allow_blank=True, default="")


class StatementSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    class Meta:
        model = PhysicianStatement
        fields = ["id", "report", "physician", "total", "pdf_sha256"]


class RunStartSerializer(serializers.Serializer):
    programme_year = serializers.IntegerField()


class ScenarioSerializer(serializers.Serializer):
    programme_year = serializers.IntegerField()
    overrides = serializers.DictField()

    def validate(self, attrs):
        """Overrides read strictly for the year's agreement: a bad one is a 400 naming it."""
        year = (
            ProgrammeYear.objects.select_related("agreement")
            .filter(pk=attrs["programme_year"])
            .first()
        )
        if year is not None:  # no such year: the view answers 404
            try:
                attrs["overrides"] = services.scenario_overrides_parse(
                    programme_year=year, overrides=attrs["overrides"]
                )
            except DjangoValidationError as exc:
                raise as_drf_error(exc) from exc
        return attrs


class RunFiguresSerializer(serializers.Serializer):
    """Every figure of a calculation run (``runs/<id>/figures/``)."""

    run = serializers.IntegerField()
    agreement = serializers.IntegerField()
    programme_year = serializers.IntegerField()
    version = serializers.IntegerField()
    kind = serializers.CharField()
    rules_version = serializers.CharField()
    calculation_hash = serializers.CharField()
    created_at = serializers.DateTimeField()
    results = serializers.DictField()
    figures = serializers.DictField()
    flags = serializers.ListField(child=serializers.DictField())
    distributions = serializers.ListField(child=serializers.DictField())


class PaymentLinesExportSerializer(serializers.Serializer):
    """An approved report's payment lines for accounts payable."""

    report = serializers.DictField()
    lines = serializers.ListField(child=serializers.DictField())
    total = serializers.CharField()
    paid = serializers.CharField()
    authorised = serializers.BooleanField()


def _refuse(exc: services.AdjudicationError) -> Response:
    if isinstance(exc, services.TransitionForbidden):
        raise exceptions.PermissionDenied(str(exc))
    errors = [{"field": getattr(exc, "field", None), "code": "refused", "message": str(exc)}]
    errors += [
        {"field": None, "code": "approval_blocker", "message": r}
        for r in getattr(exc, "reasons", [])
    ]
    return Response({"errors": errors}, status=exc.status_code)


def _programme_year(pk: int) -> ProgrammeYear:
    year = ProgrammeYear.objects.select_related("agreement").filter(pk=pk).first()
    if year is None:
        raise exceptions.NotFound()
    return year


class ReportActionSerializer(TransitionSerializer):
    """The body of review/submit/approve/return/authorise, as the schema names it (apart from
    the agreements' ``TransitionSerializer``)."""


#: 202 when the run was queued, 200 when the same run was already under way (its job).
_RUN_QUEUED = inline_serializer(
    "RunQueued",
    {
        "job": serializers.IntegerField(),
        "status": serializers.CharField(),
        "created": serializers.BooleanField(),
    },
)


class RunViewSet(_Ordered, ListModelMixin, RetrieveModelMixin, TenantViewSet):
    queryset = CalculationRun.objects.select_related("programme_year")
    ordering = ["-created_at"]
    filterset_fields = {
        "agreement": ["exact"],
        "programme_year": ["exact"],
        "created_at": ["gte", "lte"],
    }
    permission_map = {
        "list": "calculation.view",
        "retrieve": "calculation.view",
        "start": "calculation.run",
        "scenario": "scenario.run",
        "figures": "calculation.view",
    }
    # read by comanage.core.schema: a what-if on a year whose figures cannot be calculated is
    # refused with 409 (the usage not imported yet, say)
    conflict_actions = {"scenario"}

    def get_serializer_class(self):
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    @extend_schema(request=RunStartSerializer, responses=dict.fromkeys((200, 202), _RUN_QUEUED))
    @action(detail=False, methods=["post"])
    @idempotent
    def start(self, request, org_slug=None):
        data = RunStartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        year = _programme_year(data.validated_data["programme_year"])
        try:
            job = services.adjudication_run_start(programme_year=year, user=request.user)
            created = True
        except DuplicateJob as exc:
            job, created = exc.existing, False
        return Response(
            {"job": job.pk, "status": job.status, "created": created},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=ScenarioSerializer,
        responses=inline_serializer(
            "ScenarioComparison",
            {
                "official_run": serializers.IntegerField(allow_null=True),
                "rows": serializers.JSONField(),
                "diff": serializers.JSONField(),
                "results": serializers.JSONField(),
            },
        ),
    )
    @action(detail=False, methods=["post"])
    def scenario(self, request, org_slug=None):
        data = ScenarioSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        year = _programme_year(data.validated_data["programme_year"])
        try:
            comparison = services.scenario_compare(
                programme_year=year, overrides=data.validated_data["overrides"]
            )
        except services.AdjudicationError as exc:
            return _refuse(exc)
        except (ValueError, TypeError) as exc:
            raise exceptions.ValidationError({"overrides": str(exc)}) from exc
        return Response(
            {
                "official_run": comparison.official.pk if comparison.official else None,
                "rows": comparison.rows,
                "diff": comparison.diff,
                "results": comparison.payload.results,
            }
        )

    @extend_schema(responses={200: RunFiguresSerializer})
    @action(detail=True, methods=["get"])
    def figures(self, request, org_slug=None, pk=None):
        """Every figure of the run: the totals, each intermediate figure, the flags and each
        physician's distribution (money with two decimals, percentages with four)."""
        run = self.get_object()
        distributions = [
            {
                "physician": d.physician_id,
                "component": d.component,
                "entitlement": d.entitlement,
                "weight": d.weight,
                "amount": d.amount,
                "note": d.note,
            }
            for d in run.distributions.order_by("position", "pk")
        ]
        return Response(
            jsonable(
                {
                    "run": run.pk,
                    "agreement": run.agreement_id,
                    "programme_year": run.programme_year_id,
                    "version": run.version,
                    "kind": run.kind,
                    "rules_version": run.rules_version,
                    "calculation_hash": run.calculation_hash,
                    "created_at": run.created_at,
                    "results": run.results,
                    "figures": run.figures,
                    "flags": run.flags,
                    "distributions": distributions,
                }
            )
        )


class ReportViewSet(_Ordered, ListModelMixin, RetrieveModelMixin, TenantViewSet):
    queryset = AdjudicationReport.objects.select_related("run")
    ordering = ["-created_at"]
    serializer_class = ReportSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "programme_year": ["exact"],
        "run": ["exact"],
        "status": ["exact"],
        "created_at": ["gte", "lte"],
    }
    permission_map = {
        "list": "report.view",
        "retrieve": "report.view",
        "pdf": "report.view",
        "verify": "report.view",
        "review": "report.prepare",
        "submit": "report.prepare",
        "approve": "report.approve",
        "return_report": "report.approve",
        "authorise": "report.authorise",
        "payment_lines": "payment.view",
    }

    def retrieve(self, request, *args, **kwargs):
        """The report; fetching it counts as opening it (``adjudication.signing``)."""
        response = super().retrieve(request, *args, **kwargs)
        signing.report_open_record(report=self.get_object(), user=request.user)
        return response

    def _transition(self, request, action_name: str):
        report = self.get_object()
        data = TransitionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The API has no session: it approves only a report its caller has opened (fetched it
        # or its PDF, here or on the web), see adjudication.signing.
        if (
            action_name == "approve"
            and report.status in services.TRANSITIONS["approve"].from_statuses
            and not signing.report_opened_by(report=report, user=request.user)
        ):
            return _refuse(services.TransitionInvalid(str(signing.ReportNotOpened())))
        if action_name in services.SIGNING_ACTIONS and two_factor_enabled():
            code = data.validated_data["otp_token"]
            if not device_code_valid(request.user, code):
                why = refusal_message(request.user, code) if code else ""
                raise exceptions.PermissionDenied(
                    "Signing needs the current code from your authenticator app in 'otp_token'"
                    f" ({signing.signing_summary(report=report, action=action_name)})."
                    + (f" {why}" if why else "")
                )
        try:
            report = services.report_transition(
                report=report,
                action=action_name,
                user=request.user,
                comment=data.validated_data["comment"],
            )
        except services.AdjudicationError as exc:
            return _refuse(exc)
        return Response(ReportSerializer(report).data)

    @extend_schema(request=ReportActionSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def review(self, request, org_slug=None, pk=None):
        return self._transition(request, "review")

    @extend_schema(request=ReportActionSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def submit(self, request, org_slug=None, pk=None):
        return self._transition(request, "submit")

    @extend_schema(request=ReportActionSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def approve(self, request, org_slug=None, pk=None):
        return self._transition(request, "approve")

    @extend_schema(request=ReportActionSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"], url_path="return")
    @idempotent
    def return_report(self, request, org_slug=None, pk=None):
        return self._transition(request, "return")

    @extend_schema(request=ReportActionSerializer, responses=ReportSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def authorise(self, request, org_slug=None, pk=None):
        return self._transition(request, "authorise")

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def pdf(self, request, org_slug=None, pk=None):
        report = self.get_object()
        if not report.pdf:
            raise exceptions.NotFound("The PDF has not been rendered yet.")
        signing.report_open_record(report=report, user=request.user)
        response = HttpResponse(bytes(report.pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="report-{report.pk}.pdf"'
        return response

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "ReportVerifyUpload", {"pdf": serializers.FileField()}
            ),
            "application/pdf": OpenApiTypes.BINARY,
        },
        responses=inline_serializer(
            "ReportVerification",
            {
                "verified": serializers.BooleanField(),
                "message": serializers.CharField(),
                "uploaded_sha256": serializers.CharField(),
                "expected_sha256": serializers.CharField(allow_null=True),
                "calculation_hash": serializers.CharField(allow_null=True),
                "calculation_intact": serializers.BooleanField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"])
    def verify(self, request, org_slug=None, pk=None):
        """Upload the PDF as multipart ``pdf``, or send it as the raw body."""
        report = self.get_object()
        upload = request.FILES.get("pdf")
        content = upload.read() if upload is not None else request.body
        if not content:
            raise exceptions.ValidationError({"pdf": "Send the PDF to verify."})
        result = services.report_verify(report=report, content=content)
        return Response(
            {
                "verified": result.ok,
                "message": result.message,
                "uploaded_sha256": result.uploaded_sha256,
                "expected_sha256": result.expected_sha256,
                "calculation_hash": result.calculation_hash,
                "calculation_intact": result.calculation_intact,
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format", str, enum=["json", "csv"], description="json (default) or csv"
            )
        ],
        responses={
            200: PaymentLinesExportSerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            409: None,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="payment-lines",
        renderer_classes=[JSONRenderer, CSVRenderer],
    )
    def payment_lines(self, request, org_slug=None, pk=None):
        """The approved report's payment lines for accounts payable (payee, NPI or practice
        tax id, amount, programme year, report id and hashes): JSON, or CSV with
        ``?format=csv``. 409 before counsel's approval."""
        report = self.get_object()
        try:
            export = payment_lines_export(report=report)
        except ExportNotReady as exc:
            raise Conflict(str(exc)) from None
        if request.accepted_renderer.format == "csv":
            return Response(
                {"columns": EXPORT_COLUMNS, "rows": payment_lines_rows(export)},
                headers={
                    "Content-Disposition": f'attachment; filename="report-'
                    f'{report.pk}-payment-lines.csv"'
                },
            )
        return Response(export)


class PaymentLineViewSet(_Ordered, ListModelMixin, RetrieveModelMixin, TenantViewSet):
    queryset = PaymentLine.objects.select_related("report")
    ordering = ["report", "position"]
    serializer_class = PaymentLineSerializer
    filterset_fields = {
        "report": ["exact"],
        "physician": ["exact"],
        "kind": ["exact"],
        "paid_on": ["gte", "lte"],
    }
    permission_map = {
        "list": "payment.view",
        "retrieve": "payment.view",
        "record": "payment.record",
    }

    def get_queryset(self):
        queryset = super().get_queryset()
        report = self.request.query_params.get("report")
        if report and report.isdigit():
            queryset = queryset.filter(report_id=int(report))
        return queryset

    @extend_schema(request=PaymentRecordSerializer, responses=PaymentLineSerializer)
    @action(detail=True, methods=["post"])
    @idempotent
    def record(self, request, org_slug=None, pk=None):
        line = self.get_object()
        data = PaymentRecordSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            line = services.payment_record(
                line=line,
                paid_amount=data.validated_data["paid_amount"],
                paid_on=data.validated_data["paid_on"],
                reference=data.validated_data["reference"],
                user=request.user,
            )
        except services.AdjudicationError as exc:
            return _refuse(exc)
        return Response(PaymentLineSerializer(line).data)


class StatementViewSet(_Ordered, ListModelMixin, RetrieveModelMixin, TenantViewSet):
    queryset = PhysicianStatement.objects.select_related("report")
    ordering = ["-report__created_at", "physician__last_name"]

    def get_queryset(self):
        return super().get_queryset().filter(report__status__in=FROZEN_STATUSES)

    serializer_class = StatementSerializer
    filterset_fields = {"report": ["exact"], "physician": ["exact"]}
    permission_map = {
        "list": "statement.view",
        "retrieve": "statement.view",
        "pdf": "statement.view",
    }

    def filter_own(self, queryset):
        return queryset.filter(physician_id=self.membership.physician_id)

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def pdf(self, request, org_slug=None, pk=None):
        statement = self.get_object()
        response = HttpResponse(bytes(statement.pdf), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="statement-{statement.pk}.pdf"'
        return response
