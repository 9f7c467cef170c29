"""The core's API resources: organizations you belong to, background jobs, personal API tokens,
and the offline assets of the interactive docs."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from . import schema  # noqa: F401 - registers the OpenAPI token scheme before generation
from .api import TenantViewSet, idempotent
from .exports import csv_response
from .http import signed_in_user
from .jobs import job_live_state
from .models import ApiToken, Job, JobStatus, Membership, token_expiry
from .security.narrowing import PhysicianNarrowing
from .security.otp import session_two_factor_verified
from .selectors import memberships_of

# --------------------------------------------------------------------------- organizations


class MembershipSerializer(serializers.Serializer):
    slug = serializers.CharField(source="organization.slug")
    name = serializers.CharField(source="organization.name")
    role = serializers.CharField()


@extend_schema(summary="Organizations you belong to, with your role in each")
class OrganizationListView(generics.ListAPIView):
    serializer_class = MembershipSerializer
    pagination_class = None
    filter_backends: list = []
    queryset = Membership.objects.none()  # for the schema; the rows come from the selector
    comanage_permission = None  # not organization-scoped: lists only the user's own

    def get_queryset(self) -> list[Membership]:  # type: ignore[override]
        return memberships_of(user=self.request.user)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- jobs


class JobSerializer(PhysicianNarrowing, serializers.ModelSerializer):
    """A background job; ``status``/``progress``/``message`` are live while it runs."""

    status = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "message",
            "created_at",
            "started_at",
            "finished_at",
            "error_count",
            "result",
            "result_url",
        ]
        read_only_fields = fields

    def _state(self, job: Job) -> dict[str, Any]:
        # the stubs type the context as a read-only Mapping; DRF builds a dict
        live = cast("dict[str, Any]", self.context).setdefault("_live_state", {})
        if job.pk not in live:
            live[job.pk] = job_live_state(job)
        return live[job.pk]

    @extend_schema_field(serializers.ChoiceField(choices=JobStatus.choices))
    def get_status(self, job: Job) -> str:
        return self._state(job)["status"]

    @extend_schema_field(serializers.IntegerField(min_value=0, max_value=100))
    def get_progress(self, job: Job) -> int:
        return int(self._state(job)["progress"])

    @extend_schema_field(OpenApiTypes.STR)
    def get_message(self, job: Job) -> str:
        return str(self._state(job)["message"])


class JobErrorSerializer(serializers.Serializer):
    row = serializers.CharField(allow_blank=True, help_text="Row number in the file, if any.")
    column = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class JobErrorReportSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    error_count = serializers.IntegerField(help_text="Problems found; the first 100 are kept.")
    # a declared field (the metaclass moves it off the class); the stubs see Serializer.errors
    errors = JobErrorSerializer(many=True)  # type: ignore[assignment]


def _error_rows(job: Job) -> list[dict[str, str]]:
    return [
        {
            "row": str(e.get("row", "") or ""),
            "column": str(e.get("column", "") or ""),
            "message": str(e.get("message", "")),
        }
        for e in job.errors
        if isinstance(e, dict)
    ]


@extend_schema(tags=["jobs"])
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Background jobs of the organization (imports, calculations, PDFs) and their error reports.

    Physicians see only the jobs they started, as in the web UI.
    """

    queryset = Job.objects.select_related("created_by")
    serializer_class = JobSerializer
    permission_map = {
        "list": "job.view",
        "retrieve": "job.view",
        "errors": "job.view",
        "errors_csv": "job.view",
    }
    filterset_fields = ["kind", "status"]
    ordering_fields = ["created_at", "finished_at", "id"]
    ordering = ["-created_at", "-id"]
    lookup_url_kwarg = "job_id"

    def filter_own(self, queryset):
        return queryset.filter(created_by=self.request.user)

    def check_object_permissions(self, request: Request, obj: Any) -> None:
        # A job belongs to whoever started it, not to a physician record, so the "own" rule is
        # applied by ``filter_own`` on the queryset (others' jobs are 404) instead of per object.
        return None

    @extend_schema(
        summary="The job's error report (row, column, message) as JSON",
        responses=JobErrorReportSerializer,
    )
    @action(detail=True, methods=["get"], url_path="errors")
    def errors(self, request: Request, **kwargs: str) -> Response:
        job = self.get_object()
        return Response({"job": job.pk, "error_count": job.error_count, "errors": _error_rows(job)})

    @extend_schema(
        summary="The job's error report as CSV (row, column, reason)",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
    )
    @action(detail=True, methods=["get"], url_path=r"errors\.csv")
    def errors_csv(self, request: Request, **kwargs: str) -> HttpResponse:
        job = self.get_object()
        rows = [[e["row"], e["column"], e["message"]] for e in _error_rows(job)]
        return csv_response(f"job-{job.pk}-errors.csv", ["row", "column", "reason"], rows)


# --------------------------------------------------------------------------- API tokens


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="So you can recognise it later.")
    expires_in_days = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Days until the token stops working; omit for the installation's default "
        "(COMANAGE_API_TOKEN_DEFAULT_DAYS). At most COMANAGE_API_TOKEN_MAX_DAYS.",
    )

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Name the token so you can recognise it later.")
        return value.strip()

    def validate_expires_in_days(self, value: int | None) -> int | None:
        maximum = settings.COMANAGE_API_TOKEN_MAX_DAYS
        if value is not None and value > maximum:
            raise serializers.ValidationError(
                f"A token lasts at most {maximum} days on this installation.", code="max_value"
            )
        return value


class SessionOnly(permissions.BasePermission):
    """Tokens are made and managed from a signed-in session, never with a token: a token
    cannot mint a longer-lived or stronger one, nor outlive its own expiry through a child."""

    message = "API tokens are managed from a signed-in session, not with a token."

    def has_permission(self, request, view) -> bool:
        return not isinstance(request.auth, ApiToken)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The raw token. Shown once; only its hash is kept."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


@extend_schema(tags=["tokens"])
class ApiTokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Your personal API tokens: create (the raw token is returned once), list, revoke."""

    serializer_class = ApiTokenSerializer
    permission_classes = [permissions.IsAuthenticated, SessionOnly]
    queryset = ApiToken.objects.none()
    filterset_fields: list[str] = []
    ordering_fields = ["created_at", "name", "expires_at"]
    ordering = ["-created_at", "-id"]
    lookup_value_regex = r"[0-9]+"
    comanage_permission = None  # not organization-scoped: only the user's own tokens

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=signed_in_user(self.request))

    @extend_schema(
        summary="Create a token; the response carries the raw token, once",
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, raw = ApiToken.issue(
            user=signed_in_user(request),
            name=data.validated_data["name"],
            expires_at=token_expiry(data.validated_data.get("expires_in_days")),
            two_factor_verified=session_two_factor_verified(request),
        )
        body = ApiTokenCreatedSerializer(token).data
        body["token"] = raw
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Revoke a token (it stops working at once; the record stays)", responses={204: None}
    )
    def destroy(self, request: Request, **kwargs: str) -> Response:
        token = self.get_object()
        if token.revoked_at is None:
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --------------------------------------------------------------------------- docs assets

try:
    import drf_spectacular_sidecar

    SIDECAR_DIR: Path | None = (
        Path(drf_spectacular_sidecar.__file__).parent
        / "static"
        / "drf_spectacular_sidecar"
        / "swagger-ui-dist"
    )
except ImportError:  # pragma: no cover - the docs then fall back to the CDN
    SIDECAR_DIR = None
DOCS_ASSETS = {
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-32x32.png",
    "oauth2-redirect.html",
    "oauth2-redirect.js",
}


def docs_asset(request: HttpRequest, name: str) -> FileResponse:
    """Swagger UI's own files, served from the installed sidecar package so the docs work
    offline and under a ``script-src 'self'`` policy (no CDN)."""
    if SIDECAR_DIR is None or name not in DOCS_ASSETS:
        raise Http404
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse((SIDECAR_DIR / name).open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    return response
