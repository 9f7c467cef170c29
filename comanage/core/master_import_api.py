"""The API of reference-file imports (roster, item master), shaped like ``savings-imports``:
upload (``multipart/form-data``, answered at once with the preview and every row's problems),
``confirm`` (queues the job, 202), ``discard``, and a refused file's ``problems`` as JSON.
Each app's view set names its model, serializers and services."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from . import uploads
from .api import Conflict, IdempotencyKeyReusedForUpload, TenantViewSet, idempotent
from .jobs import DuplicateJob

READ_FIELDS = [
    "id",
    "original_name",
    "sha256",
    "size",
    "file_format",
    "layout",
    "status",
    "job",
    "summary",
    "uploaded_by",
    "uploaded_at",
    "applied_at",
    "mapping",
    "mapping_used",
]


def import_permissions(*actions: str) -> dict[str, str]:
    """An import view set's ``permission_map``: listing, reading, uploading and ``actions``,
    each the import permission."""
    return dict.fromkeys(("list", "retrieve", "create", *actions), "data.import")


def problem_rows(problems: list[Any], *, row_text: bool = False) -> list[dict[str, Any]]:
    """A refused file's problems as the API gives them: row (a number, or its text with
    ``row_text``), the file's column and the reason."""
    return [
        {
            "row": str(p.get("row", "") or "") if row_text else p.get("row"),
            "column": str(p.get("column", "") or ""),
            "message": str(p.get("message", "")),
        }
        for p in problems
        if isinstance(p, dict)
    ]


def problems_answer(
    instance: Any, *, problems: list[Any], count: int, message: str, id_key: str = "id"
) -> Response:
    """The ``problems`` action's answer: the import (``id_key``: its id), its status and job,
    the job's message and how many problems, and each problem."""
    job = instance.job
    return Response(
        {
            id_key: instance.pk,
            "status": instance.status,
            "job": job.pk if job else None,
            "message": message,
            "error_count": count,
            "problems": problems,
        }
    )


def job_accepted(*, org_slug: str, job: Any, **ids: int) -> Response:
    """A confirmed import's answer (202): ``ids`` (the import's own), the job queued and the
    URL to follow it at."""
    return Response(
        {
            **ids,
            "job": job.pk,
            "status": job.status,
            "job_url": reverse("api-job-detail", kwargs={"org_slug": org_slug, "job_id": job.pk}),
        },
        status=status.HTTP_202_ACCEPTED,
    )


def upload_endpoint(
    *,
    summary: str,
    upload: type[serializers.Serializer],
    uploaded: type[serializers.Serializer],
    too_large: str,
    doc: str,
) -> Any:
    """A master-import view set's ``create`` with its own schema: the ``upload`` form
    (multipart) answered 201 with ``uploaded``; 409 for an Idempotency-Key used with another
    file, 413 (``too_large``) for a file over its limit."""

    def create(self, request, *args, **kwargs):
        return self.upload(request)

    create.__doc__ = doc
    return extend_schema(
        summary=summary,
        request={"multipart/form-data": upload},
        responses={
            201: uploaded,
            409: OpenApiResponse(description="The Idempotency-Key was used with another file."),
            413: OpenApiResponse(description=too_large),
        },
    )(idempotent(reused=IdempotencyKeyReusedForUpload)(create))


class PreviewFieldSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The canonical field.")
    column = serializers.CharField(help_text="The file's column read for it.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named "label"


class MasterImportProblemSerializer(serializers.Serializer):
    row = serializers.IntegerField(allow_null=True, help_text="Row number in the file (header: 1).")
    column = serializers.CharField(allow_blank=True, help_text="The file's own column header.")
    message = serializers.CharField()


class MasterImportPreviewSerializer(serializers.Serializer):
    layout = serializers.CharField(required=False, help_text="The named column layout read.")
    mapping = PreviewFieldSerializer(many=True, help_text="How the columns were read.")
    missing = serializers.ListField(child=serializers.CharField())
    ignored = serializers.ListField(child=serializers.CharField(), required=False)
    rows = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))
    row_count = serializers.IntegerField(required=False)
    problems = MasterImportProblemSerializer(many=True)
    problem_count = serializers.IntegerField(required=False)
    error = serializers.CharField(allow_blank=True, help_text="Why the file cannot be read.")


def with_preview(
    serializer: type[serializers.ModelSerializer],
) -> type[serializers.ModelSerializer]:
    """The upload's answer: the import as ``serializer`` gives it, with its ``preview``. The
    class is named after ``serializer`` (``RosterImportSerializer`` ->
    ``RosterImportUploadedSerializer``), so the schema names it as before."""
    fields = [*serializer.Meta.fields, "preview"]
    meta = type("Meta", (serializer.Meta,), {"fields": fields, "read_only_fields": fields})
    return type(
        serializer.__name__.replace("Serializer", "UploadedSerializer"),
        (serializer,),
        {
            "__module__": serializer.__module__,
            "preview": MasterImportPreviewSerializer(read_only=True),
            "Meta": meta,
        },
    )


class MasterImportProblemsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    job = serializers.IntegerField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    error_count = serializers.IntegerField(help_text="Problems found; the first 100 are kept.")
    problems = MasterImportProblemSerializer(many=True)


class MasterImportConfirmSerializer(serializers.Serializer):
    """How the file is read (all optional: without them, the saved mapping whose header the
    file has, else the built-in layouts' proposal)."""

    mapping = serializers.IntegerField(
        required=False, allow_null=True, help_text="A saved mapping's id (of this kind of file)."
    )
    columns = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text='The file\'s column header -> the field it gives ("" for none).',
    )
    date_format = serializers.ChoiceField(
        choices=["auto", "iso", "mdy", "dmy", "excel"], required=False, default="auto"
    )
    sheet = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)
    save_as = serializers.CharField(required=False, allow_blank=True, default="", max_length=100)


class MasterImportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    job = serializers.IntegerField()
    status = serializers.CharField()
    job_url = serializers.CharField(help_text="GET it to follow the job's progress.")


class PayloadTooLarge(exceptions.ValidationError):
    status_code = 413
    default_detail = "The file is over the size limit."
    default_code = "too_large"


def as_api_error(error: ValidationError, field: str = "file") -> exceptions.ValidationError:
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError({field: error.messages})


class MasterImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Subclasses set ``model``, ``serializer_class``, ``upload_serializer_class`` and
    implement ``receive``, ``preview``, ``start`` and ``discard_import`` with their services;
    ``create`` is declared in each subclass (for its schema) and calls ``upload``."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]
    filterset_fields = {"status": ["exact"], "uploaded_at": ["gte", "lte"]}
    permission_map = import_permissions("confirm", "discard", "problems")
    conflict_actions = {"discard", "confirm"}
    serializer_class: type[serializers.Serializer]
    upload_serializer_class: type[serializers.Serializer]
    uploaded_serializer_class: type[serializers.Serializer]

    def base_queryset(self):
        assert self.model is not None
        # every model has ``objects`` (plugin-added); the stubs cannot see it on type[Model]
        manager = self.model.objects  # type: ignore[attr-defined]
        return manager.select_related("job").order_by("-uploaded_at", "-id")

    def get_serializer_class(self):
        return self.upload_serializer_class if self.action == "create" else self.serializer_class

    def receive(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def preview(self, instance: Any) -> dict[str, Any]:
        raise NotImplementedError

    def start(self, instance: Any) -> Any:
        raise NotImplementedError

    def discard_import(self, instance: Any) -> Any:
        raise NotImplementedError

    def upload(self, request) -> Response:
        body = self.upload_serializer_class(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            instance = self.receive(dict(body.validated_data))
        except uploads.UploadTooLarge as error:
            raise PayloadTooLarge(error.message_dict) from error
        except ValidationError as error:
            raise as_api_error(error) from error
        assert self.serializer_class is not None
        data = dict(self.serializer_class(instance).data)
        data["preview"] = self.preview(instance)
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Confirm an uploaded file: the import is queued as a job (202)",
        request=MasterImportConfirmSerializer,
        responses={202: MasterImportJobSerializer},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def confirm(self, request, pk=None, **kwargs):
        """Queue the import (every row is checked again; all or nothing), read by the saved
        mapping or the columns given (400 naming the column and the reason otherwise). Follow
        the job at ``job_url``; a refused file's problems are at ``problems``."""
        instance = self.get_object()
        body = MasterImportConfirmSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("mapping") is not None or data.get("columns") is not None:
            from .master_imports import master_import_map

            try:
                master_import_map(
                    instance=instance,
                    user=request.user,
                    mapping_id=data.get("mapping"),
                    columns=data.get("columns"),
                    date_format=data["date_format"],
                    sheet=data["sheet"],
                    save_as=data["save_as"],
                )
            except ValidationError as error:
                if getattr(error, "code", None) == "state":
                    raise Conflict(error.messages[0]) from error
                raise as_api_error(error, field="mapping") from error
        try:
            job = self.start(instance)
        except DuplicateJob as duplicate:
            raise Conflict(
                f"This file is already being imported (job {duplicate.existing.pk})."
            ) from duplicate
        except ValidationError as error:
            raise Conflict(error.messages[0]) from error
        return job_accepted(org_slug=self.organization.slug, job=job, id=instance.pk)

    @extend_schema(
        summary="A refused import's problems (row, column, reason) as JSON",
        responses=MasterImportProblemsSerializer,
    )
    @action(detail=True, methods=["get"])
    def problems(self, request, pk=None, **kwargs):
        """The worker's problems once confirmed; before that, the preview's."""
        instance = self.get_object()
        job = instance.job
        if job is not None:
            problems, count, message = job.errors, job.error_count, job.message
        else:
            preview = self.preview(instance) if instance.file else {}
            problems = preview.get("problems", [])
            count = preview.get("problem_count", len(problems))
            message = preview.get("error", "")
        return problems_answer(
            instance, problems=problem_rows(problems), count=count, message=message
        )

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def discard(self, request, pk=None, **kwargs):
        """Discard an import never applied: its file is removed, nothing else changes; 409
        once applied or discarded."""
        instance = self.get_object()
        try:
            instance = self.discard_import(instance)
        except uploads.ImportNotDiscardable as error:
            raise Conflict(error.messages[0]) from error
        return Response(self.serializer_class(instance).data)
