"""The API's shared machinery: token authentication, the tenant and role checks, one error
shape, idempotent POSTs and per-token rate limits. Apps build on ``TenantViewSet``."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.http.request import RawPostDataException
from django_filters import rest_framework as django_filters
from django_filters.fields import IsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_scopes.manager import DisabledQuerySet
from rest_framework import exceptions, filters, mixins, permissions, viewsets
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .api_auth import Pagination, TokenAuthentication, TokenRateThrottle  # noqa: F401 - re-export
from .models import IdempotencyRecord
from .permissions import is_own_only, membership_can
from .selectors import membership_of, memberships_checked

if TYPE_CHECKING:
    from .http import OrgRequest


def _flatten(detail: Any, field: str | None = None) -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        items: list[dict[str, Any]] = []
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "__all__", "detail") else key
            nested = f"{field}.{name}" if field and name else (name or field)
            items.extend(_flatten(value, nested))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            nested = field
            if isinstance(value, dict | list):
                nested = f"{field}[{index}]" if field else f"[{index}]"
            items.extend(_flatten(value, nested))
        return items
    code = getattr(detail, "code", None) or "invalid"
    return [{"field": field, "code": str(code), "message": str(detail)}]


class Conflict(exceptions.APIException):
    """409: the request clashes with work already under way (a live job, an in-flight retry)."""

    status_code = 409
    default_detail = "This conflicts with work already under way."
    default_code = "conflict"


class IdempotencyKeyReused(exceptions.APIException):
    """422: an ``Idempotency-Key`` already used for a different request (IETF draft, 2.7)."""

    status_code = 422
    default_detail = "This Idempotency-Key was already used for a different request."
    default_code = "idempotency_key_reused"


class IdempotencyKeyReusedForUpload(IdempotencyKeyReused):
    """409 on uploads: the key was already used with another file."""

    status_code = 409
    default_detail = "This Idempotency-Key was already used with a different file."


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error as ``{"errors": [{"field", "code", "message"}]}``."""
    from .jobs import DuplicateJob

    if isinstance(exc, DuplicateJob):
        exc = Conflict(f"{exc} (job {exc.existing.pk})")
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        exc = exceptions.ValidationError(detail=detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.APIException) and not isinstance(exc, exceptions.ValidationError):
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        message = detail.get("detail", str(exc)) if isinstance(detail, dict) else str(exc)
        response.data = {"errors": [{"field": None, "code": code, "message": str(message)}]}
    else:
        response.data = {"errors": _flatten(detail)}
    return response


class OrganizationMember(permissions.BasePermission):
    """The user must belong to the URL's organization; outsiders get 404, never 403."""

    def has_permission(self, request, view) -> bool:
        organization = getattr(request._request, "organization", None)
        if organization is None:
            return True  # not an organization URL
        # The tenant check of the web pages, from the same cached entry (a query per request
        # otherwise): the user's active memberships of active organizations.
        user = request.user
        memberships = (
            memberships_checked(user=user, organization_slug=organization.slug)
            if user and user.is_authenticated
            else []
        )
        membership = membership_of(memberships, organization.slug)
        if membership is None:
            raise exceptions.NotFound()
        request.membership = membership
        request._request.membership = membership
        return True


class DeclaredPermission(permissions.BasePermission):
    """Checks the permission the view declares for the current action, in one place."""

    def _permission(self, view) -> str | None:
        permission_map: dict[str, str] = getattr(view, "permission_map", {})
        action = getattr(view, "action", None)
        if action is None:
            method = view.request.method.lower()
            if method not in view.http_method_names or getattr(view, method, None) is None:
                return None  # no handler for this method: DRF answers 405, nothing to guard
            action = method
        if action not in permission_map:
            # Fail closed: an action nobody declared a permission for is refused.
            raise exceptions.PermissionDenied(f"No permission is declared for '{action}'.")
        return permission_map[action]

    def has_permission(self, request, view) -> bool:
        if getattr(request, "membership", None) is None:
            return getattr(request._request, "organization", None) is None
        permission = self._permission(view)
        if permission is None:
            return True
        if not membership_can(request.membership, permission):
            raise exceptions.PermissionDenied(
                f"Your role ({request.membership.get_role_display()}) cannot do this."
            )
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        permission = self._permission(view)
        if permission is None:
            return True
        if not membership_can(request.membership, permission, obj):
            raise (
                exceptions.NotFound()
                if is_own_only(request.membership, permission)
                else (exceptions.PermissionDenied("Your role cannot do this to this record."))
            )
        return True


# Query parameters every list understands (pagination and rendering), whatever it filters on.
GENERIC_QUERY_PARAMS = frozenset({"page", "page_size", "format"})


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number within the database's range (else 400 naming the filter)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class _BoundedDateTimeField(IsoDateTimeField):
    """A moment with a real-world UTC offset: PostgreSQL refuses offsets past about ±16 h, so
    ``2026-01-01T00:00-20:04`` is a 400 naming the filter, not a database error."""

    def to_python(self, value: Any) -> Any:
        moment = super().to_python(value)
        offset = moment.utcoffset() if moment is not None else None
        if offset is not None and abs(offset) > dt.timedelta(hours=14):
            raise forms.ValidationError("The time zone offset must be within ±14:00.")
        return moment


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """The API's moment filter (generated for every DateTimeField, and the one to declare by
    hand): ISO 8601, with a real-world UTC offset."""

    field_class = _BoundedDateTimeField


class TenantFilterSet(django_filters.FilterSet):
    """Related rows are filtered by id (``?agreement=12``): a number, never a lookup of the
    related table (which would run outside the view's tenant narrowing)."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.DateTimeField: {"filter_class": DateTimeFilter},
        models.OneToOneField: {"filter_class": IdFilter},
    }


class TenantFilterBackend(django_filters.DjangoFilterBackend):
    """The view set's declared filters (``filterset_fields`` / ``filterset_class``), and only
    those: on a list, a query parameter nobody declared is a 400 naming it, never silently
    ignored (a script would otherwise get every row and believe it filtered)."""

    filterset_base = TenantFilterSet

    @staticmethod
    def known_params(view, filterset_class) -> set[str]:
        known = set(GENERIC_QUERY_PARAMS) | set(getattr(view, "extra_query_params", ()))
        if filterset_class is not None:
            known |= set(filterset_class.base_filters)
        for backend in view.filter_backends:
            if issubclass(backend, filters.OrderingFilter):
                known.add(backend.ordering_param)
            elif issubclass(backend, filters.SearchFilter) and getattr(view, "search_fields", None):
                known.add(backend.search_param)
        return known

    def filter_queryset(self, request, queryset, view):
        if getattr(view, "action", None) == "list":
            known = self.known_params(view, self.get_filterset_class(view, queryset))
            unknown = sorted(set(request.query_params) - known)
            if unknown:
                raise exceptions.ValidationError(
                    {
                        name: [
                            exceptions.ErrorDetail(
                                f"Unknown filter '{name}'. This list filters on: "
                                f"{', '.join(sorted(known - GENERIC_QUERY_PARAMS)) or 'nothing'}.",
                                code="unknown_filter",
                            )
                        ]
                        for name in unknown
                    }
                )
        return super().filter_queryset(request, queryset, view)


class TenantViewSet(viewsets.GenericViewSet):
    """Base of every organization-scoped API view set.

    Subclasses declare ``permission_map`` (action -> permission name from
    ``comanage.core.permissions``), ``queryset`` (the scoped manager does the tenant filtering;
    ``Model.objects.select_related(...)`` in the class body is fine, see ``get_queryset``) and
    may override ``filter_own`` to narrow a physician's lists to their own rows.
    """

    permission_classes = [permissions.IsAuthenticated, OrganizationMember, DeclaredPermission]
    permission_map: dict[str, str] = {}
    lookup_value_regex = r"[0-9]+"
    filter_backends = [TenantFilterBackend, filters.OrderingFilter]
    # Query parameters a list reads itself (besides its declared filters), allowed through.
    extra_query_params: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Whatever backends a subclass lists (search, ordering), the declared filters apply
        # and unknown parameters are refused: the tenant backend is always among them.
        super().__init_subclass__(**kwargs)
        backends = [
            TenantFilterBackend if b is django_filters.DjangoFilterBackend else b
            for b in cls.filter_backends
        ]
        if TenantFilterBackend not in backends:
            backends.insert(0, TenantFilterBackend)
        cls.filter_backends = backends
        _refuse_writes_bypassing_services(cls)

    @property
    def organization(self):
        return cast("OrgRequest", self.request._request).organization

    @property
    def membership(self):
        # None while drf-spectacular inspects the view with a mock request (no membership).
        return getattr(self.request, "membership", None)

    model: type[models.Model] | None = None
    # Declared, not assigned: a class-level queryset is always a QuerySet here (the stubs also
    # allow a Manager, whose descriptor then refuses a view set instance).
    queryset: models.QuerySet | None

    def base_queryset(self):
        """The rows this view set starts from, built per request inside the tenant scope:
        ``model.objects.all()``, a class-level ``queryset``, or an override of this method."""
        if self.queryset is None and self.model is not None:
            # every model has ``objects`` (plugin-added); the stubs cannot see it on type[Model]
            return self.model.objects.all()  # type: ignore[attr-defined]
        queryset = self.queryset
        if isinstance(queryset, DisabledQuerySet):
            # ``queryset = Model.objects.select_related(...)`` written in the class body runs at
            # import, outside any scope: django-scopes hands back a disabled queryset that would
            # refuse every query. Re-run it now with this request's tenant filter added.
            return models.QuerySet(model=queryset.model, query=queryset.query.chain())
        return super().get_queryset()

    def get_queryset(self):
        queryset = self.base_queryset()
        if getattr(self, "swagger_fake_view", False):
            return queryset.none()
        if any(f.name == "organization" for f in queryset.model._meta.concrete_fields):
            # Belt and braces: the tenant filter even if a queryset was built unscoped.
            queryset = queryset.filter(organization=self.organization)
        permission = self.permission_map.get(self.action or "", "")
        if permission and is_own_only(self.membership, permission):
            queryset = self.filter_own(queryset)
        return queryset

    def filter_own(self, queryset):
        """Narrow to the physician's own rows; default: nothing (fail closed)."""
        return queryset.none()


#: DRF's default writes: a bare ``serializer.save()`` / ``instance.delete()``, no service.
_BYPASSING_WRITES = {
    "perform_create": (mixins.CreateModelMixin, mixins.CreateModelMixin.perform_create),
    "perform_update": (mixins.UpdateModelMixin, mixins.UpdateModelMixin.perform_update),
    "perform_destroy": (mixins.DestroyModelMixin, mixins.DestroyModelMixin.perform_destroy),
}


def _refuse_writes_bypassing_services(cls: type) -> None:
    """Every write goes through a service, from the web form and from the API alike.

    A view set that takes DRF's ``CreateModelMixin`` / ``UpdateModelMixin`` /
    ``DestroyModelMixin`` must override the matching ``perform_*`` (or the action itself) with
    a call to the service, and that override must come before the mixin in the MRO: listing the
    mixins first silently puts DRF's bare ``serializer.save()`` back in charge (a 500 on NOT
    NULL ``organization_id`` at create, and an update that skips every check of the form).
    """
    for name, (mixin, bare) in _BYPASSING_WRITES.items():
        action = {
            "perform_create": "create",
            "perform_update": "update",
            "perform_destroy": "destroy",
        }[name]
        if not issubclass(cls, mixin) or getattr(cls, action) is not getattr(mixin, action):
            continue  # no such write, or the action itself is overridden (and calls a service)
        if getattr(cls, name) is bare:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}.{name} is DRF's bare write, which bypasses "
                f"the service: override it (calling the service) in a class listed before "
                f"{mixin.__name__} in the bases."
            )


def _fingerprint(request) -> str:
    """What makes two requests "the same": method, path, query and body."""
    digest = hashlib.sha256(request.method.encode() + b" " + request.get_full_path().encode())
    multipart = request.content_type.startswith("multipart/form-data")
    try:
        if multipart:
            # A client picks a fresh random boundary for each try: the raw body of a retry
            # differs, its fields and files do not.
            raise RawPostDataException
        digest.update(request._request.body)
    except RawPostDataException:
        # The stream was already parsed (a session's CSRF check reads multipart forms), or it is
        # multipart: hash the parsed fields and the uploaded files' contents instead.
        for name in sorted(request._request.POST):
            digest.update(f"{name}={request._request.POST.getlist(name)}".encode())
        for name in sorted(request._request.FILES):
            for upload in request._request.FILES.getlist(name):
                digest.update(name.encode() + (upload.name or "").encode())
                for chunk in upload.chunks():
                    digest.update(chunk)
                upload.seek(0)
    return digest.hexdigest()


def idempotent(
    method: Callable | None = None, *, reused: type[IdempotencyKeyReused] = (IdempotencyKeyReused)
) -> Callable:
    """Honour ``Idempotency-Key`` on a POST with money effects: a retry returns the first
    response and does nothing twice; reusing a key for a different request is refused (422,
    or ``reused``: ``@idempotent(reused=IdempotencyKeyReusedForUpload)`` answers 409)."""
    if method is None:
        return functools.partial(idempotent, reused=reused)

    @functools.wraps(method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if not key:
            return method(self, request, *args, **kwargs)
        if len(key) > 200:
            raise exceptions.ValidationError({"Idempotency-Key": "At most 200 characters."})
        fingerprint = _fingerprint(request)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=request.user,
                    key=key,
                    method=request.method,
                    path=request.path,
                    request_fingerprint=fingerprint,
                )
        except IntegrityError:
            record = IdempotencyRecord.objects.get(user=request.user, key=key)
            if record.request_fingerprint != fingerprint:
                raise reused() from None
            if record.status_code is None:
                raise Conflict(
                    "The first request with this Idempotency-Key is still being processed."
                ) from None
            body = json.loads(bytes(record.response_body)) if record.response_body else None
            return Response(
                body, status=record.status_code, headers={"Idempotent-Replayed": "true"}
            )
        try:
            response = method(self, request, *args, **kwargs)
        except Exception:
            record.delete()
            raise
        if response.status_code >= 500:
            record.delete()
            return response
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            response_body=json.dumps(response.data, default=str).encode(),
            content_type="application/json",
        )
        return response

    # Read by the schema hook (comanage.core.schema) to document 409 and 422 on this operation.
    wrapper.comanage_idempotent = True  # type: ignore[attr-defined]
    return wrapper
