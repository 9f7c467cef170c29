"""REST API of the agreements app. Thin: permissions are declared per action, writes call
services, and a physician's lists are narrowed to their own rows (``filter_own``)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import FileResponse
from django_filters import rest_framework as django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import filters, mixins, serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from comanage.core import master_import_api
from comanage.core.api import (
    DateTimeFilter,
    IdFilter,
    TenantFilterSet,
    TenantViewSet,
    idempotent,
)
from comanage.core.http import signed_in_user

from . import models as m
from . import roster, selectors, services
from . import serializers as s


def _map(view: str, edit: str, **extra: str) -> dict[str, str]:
    return {
        "list": view,
        "retrieve": view,
        "create": edit,
        "update": edit,
        "partial_update": edit,
        **extra,
    }


class Base(TenantViewSet):
    """Querysets are built per request (inside the tenant scope), never at import."""

    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields: list[str] = []
    model: type

    @property
    def own_physician_id(self) -> int | None:
        return self.membership.physician_id

    def _data(self, serializer: Any) -> dict[str, Any]:
        return dict(serializer.validated_data)


class AgreementViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    Base,
):
    model = m.Agreement
    serializer_class = s.AgreementSerializer
    filterset_fields = {
        "kind": ["exact"],
        "status": ["exact"],
        "practice": ["exact"],
        "service_line": ["exact"],
        "term_start": ["gte", "lte"],
        "term_end": ["gte", "lte"],
    }
    permission_map = _map(
        "agreement.view", "agreement.edit", transition="agreement.edit", blockers="agreement.view"
    )
    search_fields = ["name", "practice__name", "service_line", "service_line_custom"]

    def base_queryset(self) -> QuerySet:
        return m.Agreement.objects.select_related("practice").prefetch_related("programme_years")

    def filter_own(self, queryset):
        return queryset.filter(participations__physician_id=self.own_physician_id).distinct()

    def perform_create(self, serializer):
        serializer.instance = services.agreement_create(
            organization=self.organization,
            data=self._data(serializer),
            user=signed_in_user(self.request),
        )

    def perform_update(self, serializer):
        serializer.instance = services.agreement_update(
            agreement=serializer.instance,
            data=self._data(serializer),
            user=signed_in_user(self.request),
        )

    @extend_schema(request=s.TransitionSerializer, responses=s.AgreementSerializer)
    @action(detail=True, methods=["post"], serializer_class=s.TransitionSerializer)
    def transition(self, request, *args, **kwargs):
        agreement = self.get_object()
        serializer = s.TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.agreement_transition(
            agreement=agreement, user=request.user, **serializer.validated_data
        )
        return Response(s.AgreementSerializer(agreement).data)

    @extend_schema(responses=s.ActivationBlockersSerializer)
    @action(detail=True, methods=["get"])
    def blockers(self, request, *args, **kwargs):
        agreement = self.get_object()
        return Response({"activation": services.activation_blockers(agreement=agreement)})


class ProgrammeYearViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Base):
    model = m.ProgrammeYear
    serializer_class = s.ProgrammeYearSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "number": ["exact"],
        "start": ["gte", "lte"],
        "end": ["gte", "lte"],
    }
    permission_map = {
        "list": "agreement.view",
        "retrieve": "agreement.view",
        "fixed_fee": "timelog.view",
        "approval_blockers": "flag.view",
    }

    def filter_own(self, queryset):
        return queryset.filter(agreement__participations__physician_id=self.own_physician_id)

    @extend_schema(responses=s.InstalmentLineSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="fixed-fee", pagination_class=None)
    def fixed_fee(self, request, *args, **kwargs):
        year = self.get_object()
        lines = selectors.fixed_fee_schedule(programme_year=year)
        return Response(s.InstalmentLineSerializer(lines, many=True).data)

    @extend_schema(responses=s.ApprovalBlockersSerializer)
    @action(detail=True, methods=["get"], url_path="approval-blockers")
    def approval_blockers(self, request, *args, **kwargs):
        year = self.get_object()
        return Response({"blockers": selectors.approval_blockers(programme_year=year)})


class TermsViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    Base,
):
    """Terms versions. POST creates an amendment (a new version effective from a future
    date); PATCH edits a version before execution and is refused once frozen."""

    model = m.AgreementTerms
    serializer_class = s.TermsSerializer
    filterset_fields = {"agreement": ["exact"], "effective_from": ["gte", "lte"]}
    permission_map = _map("agreement.view", "agreement.edit")

    def filter_own(self, queryset):
        return queryset.filter(agreement__participations__physician_id=self.own_physician_id)

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = self._data(serializer)
        agreement = data.pop("agreement")
        serializer.instance = services.amendment_create(
            agreement=agreement,
            effective_from=data.pop("effective_from", None),
            reason=data.pop("reason", ""),
            data=data,
            user=signed_in_user(self.request),
        )

    def perform_update(self, serializer):
        data = self._data(serializer)
        data.pop("agreement", None)
        serializer.instance = services.terms_update(
            terms=serializer.instance, data=data, user=signed_in_user(self.request)
        )


class _OrganizationRows(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    Base,
):
    """Rows that belong to the organization itself (practices, physicians), listed, read,
    created and updated; create/update go through ``save_service`` (defined here, so before
    DRF's mixins in the MRO)."""

    def save_service(self, *, data, instance):
        raise NotImplementedError

    def perform_create(self, serializer):
        serializer.instance = self.save_service(data=self._data(serializer), instance=None)

    def perform_update(self, serializer):
        serializer.instance = self.save_service(
            data=self._data(serializer), instance=serializer.instance
        )


class PracticeViewSet(_OrganizationRows):
    model = m.Practice
    serializer_class = s.PracticeSerializer
    filterset_fields = {"tax_id": ["exact"], "name": ["exact"]}
    permission_map = _map("physician.view", "physician.edit")
    search_fields = ["name", "contact_name"]

    def save_service(self, *, data, instance):
        return services.practice_save(organization=self.organization, data=data, practice=instance)


class PhysicianViewSet(_OrganizationRows):
    model = m.Physician
    serializer_class = s.PhysicianSerializer
    filterset_fields = {"practice": ["exact"], "npi": ["exact"]}
    permission_map = _map("physician.view", "physician.edit")
    search_fields = ["last_name", "first_name", "npi", "specialty"]

    def filter_own(self, queryset):
        return queryset.filter(pk=self.own_physician_id)

    def save_service(self, *, data, instance):
        return services.physician_save(
            organization=self.organization, data=data, physician=instance
        )


class _AgreementChild(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    Base,
):
    """Rows that belong to an agreement, listed, read, created and updated; create/update go
    through ``save_service``.

    The perform_* methods are defined on this class itself, so they come before DRF's mixins in
    the MRO: ``CreateModelMixin.perform_create`` is a bare ``serializer.save()`` and would bypass
    the service (no organization, none of the form's checks). ``TenantViewSet`` refuses such a
    class at import.
    """

    def save_service(self, *, agreement, data, instance):
        raise NotImplementedError

    def perform_create(self, serializer):
        data = self._data(serializer)
        agreement = data.pop("agreement")
        serializer.instance = self.save_service(agreement=agreement, data=data, instance=None)

    def perform_update(self, serializer):
        data = self._data(serializer)
        data.pop("agreement", None)
        serializer.instance = self.save_service(
            agreement=serializer.instance.agreement, data=data, instance=serializer.instance
        )


class ParticipationViewSet(_AgreementChild):
    model = m.Participation
    serializer_class = s.ParticipationSerializer
    filterset_fields = {"agreement": ["exact"], "physician": ["exact"], "join_date": ["gte", "lte"]}
    permission_map = _map("agreement.view", "agreement.edit")
    search_fields = ["physician__last_name", "agreement__name"]

    def filter_own(self, queryset):
        return queryset.filter(physician_id=self.own_physician_id)

    def save_service(self, *, agreement, data, instance):
        return services.participation_save(agreement=agreement, data=data, participation=instance)


class FMVOpinionViewSet(_AgreementChild):
    model = m.FMVOpinion
    serializer_class = s.FMVOpinionSerializer
    filterset_fields = {"agreement": ["exact"], "issue_date": ["gte", "lte"]}
    permission_map = _map("fmv.view", "fmv.edit")
    search_fields = ["valuator", "agreement__name"]

    def save_service(self, *, agreement, data, instance):
        data.pop("warnings", None)
        opinion, warnings = services.fmv_opinion_save(
            agreement=agreement, data=data, opinion=instance
        )
        opinion.warnings = warnings
        return opinion


class DutyViewSet(_AgreementChild):
    model = m.ManagementDuty
    serializer_class = s.DutySerializer
    filterset_fields = {"agreement": ["exact"]}
    permission_map = _map("agreement.view", "agreement.edit")
    search_fields = ["name"]

    def filter_own(self, queryset):
        return queryset.filter(agreement__participations__physician_id=self.own_physician_id)

    def save_service(self, *, agreement, data, instance):
        return services.duty_save(agreement=agreement, data=data, duty=instance)


class TimeSheetViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, Base
):
    """POST saves a month's hours (creating or replacing the draft); then submit, and the
    administrator approves or returns it."""

    model = m.TimeSheet
    serializer_class = s.TimeSheetSerializer
    filterset_fields = {
        "agreement": ["exact"],
        "physician": ["exact"],
        "status": ["exact"],
        "month": ["gte", "lte"],
    }
    permission_map = {
        "list": "timelog.view",
        "retrieve": "timelog.view",
        "create": "timelog.edit",
        "submit": "timelog.edit",
        "approve": "timelog.approve",
        "return_": "timelog.approve",
    }
    search_fields = ["physician__last_name", "agreement__name"]

    def base_queryset(self) -> QuerySet:
        queryset = m.TimeSheet.objects.select_related("agreement", "physician").prefetch_related(
            "entries"
        )
        wanted = self.request.query_params.get("status")
        return queryset.filter(status=wanted) if wanted else queryset

    def filter_own(self, queryset):
        return queryset.filter(physician_id=self.own_physician_id)

    def _acting(self) -> m.Physician | None:
        return self.membership.physician if self.membership.role == "physician" else None

    def perform_create(self, serializer):
        data = self._data(serializer)
        serializer.instance = services.timesheet_save(
            agreement=data["agreement"],
            physician=data["physician"],
            month=data["month"],
            entries=[
                services.EntryInput(e["duty"], e["hours"], e.get("description", ""))
                for e in data["entries"]
            ],
            user=signed_in_user(self.request),
            acting_physician=self._acting(),
        )

    def _respond(self, sheet: m.TimeSheet) -> Response:
        sheet.refresh_from_db()
        return Response(s.TimeSheetSerializer(sheet).data)

    @extend_schema(request=s.ReviewSerializer, responses=s.TimeSheetSerializer)
    @action(detail=True, methods=["post"], serializer_class=s.ReviewSerializer)
    def submit(self, request, *args, **kwargs):
        sheet = services.timesheet_submit(
            timesheet=self.get_object(), user=request.user, acting_physician=self._acting()
        )
        return self._respond(sheet)

    @extend_schema(request=s.ReviewSerializer, responses=s.TimeSheetSerializer)
    @action(detail=True, methods=["post"], serializer_class=s.ReviewSerializer)
    def approve(self, request, *args, **kwargs):
        note = s.ReviewSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        sheet = services.timesheet_approve(
            timesheet=self.get_object(), user=request.user, note=note.validated_data["note"]
        )
        return self._respond(sheet)

    @extend_schema(request=s.ReviewSerializer, responses=s.TimeSheetSerializer)
    @action(
        detail=True,
        methods=["post"],
        url_path="return",
        url_name="return",
        serializer_class=s.ReviewSerializer,
    )
    def return_(self, request, *args, **kwargs):
        note = s.ReviewSerializer(data=request.data)
        note.is_valid(raise_exception=True)
        sheet = services.timesheet_return(
            timesheet=self.get_object(), user=request.user, note=note.validated_data["note"]
        )
        return self._respond(sheet)


class CommitteeMeetingViewSet(_AgreementChild):
    model = m.CommitteeMeeting
    serializer_class = s.CommitteeMeetingSerializer
    filterset_fields = {"agreement": ["exact"], "held_on": ["gte", "lte"]}
    permission_map = _map("committee.view", "committee.edit")
    search_fields = ["minutes", "agreement__name"]

    def filter_own(self, queryset):
        return queryset.filter(
            agreement__participations__physician_id=self.own_physician_id
        ).distinct()

    def save_service(self, *, agreement, data, instance):
        return services.committee_meeting_save(agreement=agreement, data=data, meeting=instance)


class ComplianceFlagFilter(TenantFilterSet):
    state = django_filters.ChoiceFilter(
        choices=[("open", "Open"), ("resolved", "Resolved")],
        method="filter_state",
        help_text="open: not yet resolved; resolved: resolved.",
    )

    # Declared one by one: a class-level FilterSet is built at import, outside any tenant
    # scope, where generating filters from the model would touch a scoped manager.
    agreement = IdFilter()
    programme_year = IdFilter()
    physician = IdFilter()
    kind = django_filters.CharFilter()
    severity = django_filters.ChoiceFilter(
        choices=m.ComplianceFlag._meta.get_field("severity").choices
    )
    blocking = django_filters.BooleanFilter()
    opened_at__gte = DateTimeFilter(field_name="opened_at", lookup_expr="gte")
    opened_at__lte = DateTimeFilter(field_name="opened_at", lookup_expr="lte")

    class Meta:
        model = m.ComplianceFlag
        fields: list[str] = []

    def filter_state(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(resolved_at__isnull=value == "open")


class ComplianceFlagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, Base):
    model = m.ComplianceFlag
    serializer_class = s.ComplianceFlagSerializer
    filterset_class = ComplianceFlagFilter
    permission_map = {"list": "flag.view", "retrieve": "flag.view", "resolve": "flag.resolve"}
    search_fields = ["message", "kind"]

    def base_queryset(self) -> QuerySet:
        queryset = m.ComplianceFlag.objects.all()
        state = self.request.query_params.get("state")
        if state == "open":
            queryset = queryset.filter(resolved_at__isnull=True)
        elif state == "resolved":
            queryset = queryset.filter(resolved_at__isnull=False)
        return queryset

    @extend_schema(request=s.ResolveSerializer, responses=s.ComplianceFlagSerializer)
    @action(detail=True, methods=["post"], serializer_class=s.ResolveSerializer)
    def resolve(self, request, *args, **kwargs):
        body = s.ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        flag = services.flag_resolve(
            flag=self.get_object(), user=request.user, note=body.validated_data["resolution_note"]
        )
        return Response(s.ComplianceFlagSerializer(flag).data)


class DocumentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, Base
):
    model = m.AgreementDocument
    serializer_class = s.DocumentSerializer
    filterset_fields = {"agreement": ["exact"], "kind": ["exact"], "uploaded_at": ["gte", "lte"]}
    permission_map = {
        "list": "document.view",
        "retrieve": "document.view",
        "download": "document.view",
        "create": "document.upload",
    }
    search_fields = ["title", "original_name"]

    def perform_create(self, serializer):
        data = self._data(serializer)
        serializer.instance = services.document_upload(
            agreement=data["agreement"],
            kind=data["kind"],
            title=data.get("title", ""),
            upload=data["file"],
            user=signed_in_user(self.request),
        )

    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
        description="The stored PDF as uploaded; its SHA-256 in the X-Content-SHA256 header.",
    )
    @action(detail=True, methods=["get"])
    def download(self, request, *args, **kwargs):
        document = self.get_object()
        response = FileResponse(
            document.file.open("rb"),
            as_attachment=True,
            filename=document.original_name,
            content_type="application/pdf",
        )
        response["X-Content-SHA256"] = document.sha256
        return response


class MilestoneViewSet(_AgreementChild):
    model = m.Milestone
    serializer_class = s.MilestoneSerializer
    filterset_fields = {"agreement": ["exact"], "status": ["exact"], "due_date": ["gte", "lte"]}
    permission_map = _map("agreement.view", "agreement.edit")
    search_fields = ["name", "owner"]

    def filter_own(self, queryset):
        return queryset.filter(agreement__participations__physician_id=self.own_physician_id)

    def save_service(self, *, agreement, data, instance):
        return services.milestone_save(agreement=agreement, data=data, milestone=instance)


# --------------------------------------------------------------------------------------------
# Physician roster imports (issue 17)


class RosterImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = m.RosterImport
        fields = [
            *master_import_api.READ_FIELDS[:6],
            "agreement",
            *master_import_api.READ_FIELDS[6:],
        ]
        read_only_fields = fields


RosterImportUploadedSerializer = master_import_api.with_preview(RosterImportSerializer)


class RosterUploadSerializer(serializers.Serializer):
    """``multipart/form-data``: the same fields as the web upload form."""

    file = serializers.FileField(
        allow_empty_file=False,
        help_text="CSV (.csv, .txt) or Excel workbook (.xlsx): the product's roster columns or "
        "an NPPES registry extract.",
    )
    layout = serializers.ChoiceField(
        choices=[(lay.key, lay.label) for lay in roster.LAYOUTS],
        required=False,
        allow_blank=True,
        help_text="Left out: recognised from the headers.",
    )
    agreement = serializers.IntegerField(
        required=False,
        help_text="The agreement the rows' join and leave dates apply to.",
    )


class RosterImportViewSet(master_import_api.MasterImportViewSet):
    """Physician rosters: upload (answered with the preview and every row's problems),
    ``confirm`` (a job creates and updates physicians and participations, whole or not at all),
    ``discard``, ``problems``."""

    model = m.RosterImport
    serializer_class = RosterImportSerializer
    upload_serializer_class = RosterUploadSerializer
    filterset_fields = {
        "status": ["exact"],
        "agreement": ["exact"],
        "uploaded_at": ["gte", "lte"],
    }

    def receive(self, data: dict[str, Any]) -> m.RosterImport:
        agreement = None
        if data.get("agreement") is not None:
            agreement = m.Agreement.objects.filter(pk=data["agreement"]).first()
            if agreement is None:
                raise serializers.ValidationError(
                    {
                        "agreement": [
                            serializers.ErrorDetail("No agreement with this id.", "does_not_exist")
                        ]
                    }
                )
        return services.roster_import_receive(
            organization=self.organization,
            upload=data["file"],
            user=signed_in_user(self.request),
            agreement=agreement,
            layout=data.get("layout") or "",
        )

    def preview(self, instance: m.RosterImport) -> dict[str, Any]:
        return services.roster_import_preview(roster_import=instance)

    def start(self, instance: m.RosterImport) -> Any:
        return services.roster_import_start(
            roster_import=instance, user=signed_in_user(self.request)
        )

    def discard_import(self, instance: m.RosterImport) -> m.RosterImport:
        return services.roster_import_discard(
            roster_import=instance, user=signed_in_user(self.request)
        )

    create = master_import_api.upload_endpoint(
        summary="Upload a physician roster (multipart/form-data); answered with its preview",
        upload=RosterUploadSerializer,
        uploaded=RosterImportUploadedSerializer,
        too_large="The file is over the roster limit.",
        doc="""Store the file (no physician changes yet) and answer with how its columns were read,
        its first rows and every row's problems. Then ``confirm`` or ``discard`` it.""",
    )
