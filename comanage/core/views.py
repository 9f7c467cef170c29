"""Core views: the organization switcher, health, job progress, history, API tokens.

Every organization view declares its permission through ``org_view`` (functions) or
``OrgPermissionMixin`` (classes); the check happens in ``membership_can`` and nowhere else.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django.views.defaults import bad_request as django_bad_request

from . import display
from .http import OrgRequest, api_error, api_not_found, is_api, signed_in_user
from .jobs import job_live_state
from .models import ApiToken, Job, token_expiry
from .permissions import PERMISSION_TABLE, is_own_only, membership_can
from .security.otp import session_two_factor_verified
from .selectors import memberships_of
from .signals import worker_last_seen


def public_view(view: Callable) -> Callable:
    """Mark a view that needs no organization permission (login, health, the switcher)."""
    view.comanage_permission = None  # type: ignore[attr-defined]
    return view


def check_permission(request: HttpRequest, permission: str, obj: Any = None) -> None:
    """403 within the tenant when the role lacks ``permission`` (on ``obj``).

    A physician who holds ``permission`` for their own records only gets 404 for someone
    else's ``obj``: the id of a record that is not theirs tells them nothing.
    """
    membership = getattr(request, "membership", None)
    if membership is None:
        raise Http404("No such organization.")
    if not membership_can(membership, permission, obj):
        if obj is not None and is_own_only(membership, permission):
            raise Http404
        raise PermissionDenied(f"Your role ({membership.get_role_display()}) does not allow this.")


def object_for_member(
    request: HttpRequest, queryset: QuerySet | type, pk: Any, permission: str
) -> Any:
    """The object, if the member may use it (as healthchecks' ``_get_check_for_user``).

    Another organization's record does not exist (the tenant scope: 404), another physician's
    record is a 404 too, and a role without ``permission`` is a 403: see
    :func:`check_permission`.
    """
    obj = get_object_or_404(queryset, pk=pk)
    check_permission(request, permission, obj)
    return obj


def org_view(permission: str, **per_method: str) -> Callable[[Callable], Callable]:
    """Declare the permission an organization view needs, and check it.

    ``org_view("timelog.view", post="timelog.edit")``: a page that is read with one permission
    and acted on with another declares both; the one for the request's method is checked
    before the view runs (a method not named uses ``permission``). The declaration is exposed
    as ``view.comanage_permission``: the permission name, or ``{"GET": ..., "POST": ...}``
    when methods differ (read by ``tests/test_isolation_routes.py``).
    """
    by_method = {
        "GET": permission,
        "POST": permission,
        **{method.upper(): name for method, name in per_method.items()},
    }
    unknown = [name for name in by_method.values() if name not in PERMISSION_TABLE]
    if unknown:
        raise ImproperlyConfigured(f"org_view: unknown permission(s) {unknown}")

    def decorator(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            check_permission(request, by_method.get(request.method or "GET", permission))
            return view(request, *args, **kwargs)

        wrapped.comanage_permission = (  # type: ignore[attr-defined]
            by_method if per_method else permission
        )
        return wrapped

    return decorator


class OrgPermissionMixin(LoginRequiredMixin):
    """Class-based views: set ``permission_required`` to a name from the permission table."""

    permission_required: str = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.permission_required:
            raise PermissionDenied("No permission declared for this view.")
        check_permission(request, self.permission_required)
        return super().dispatch(request, *args, **kwargs)


@public_view
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """One organization: go there. Several: choose. None: say so."""
    memberships = memberships_of(user=signed_in_user(request))
    if len(memberships) == 1:
        return redirect("org_home", org_slug=memberships[0].organization.slug)
    return render(request, "core/choose_organization.html", {"memberships": memberships})


@org_view("org.view")
def org_home(request: OrgRequest, org_slug: str) -> HttpResponse:
    """Each role lands on its own workspace."""
    role = request.membership.role
    for url_name in settings.COMANAGE_ROLE_HOMES.get(role, []):
        try:
            return redirect(reverse(url_name, kwargs={"org_slug": org_slug}))
        except NoReverseMatch:
            continue
    return render(request, "core/org_home.html", {})


@public_view
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database, broker and worker status; 200 when all are healthy, 503 otherwise."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - report, don't crash, the health page
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        from comanage.celery import app

        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = {"ok": True, "transport": conn.transport_cls}
    except Exception as exc:  # noqa: BLE001
        checks["broker"] = {"ok": False, "error": type(exc).__name__}
    try:
        seen = worker_last_seen()
    except Exception:  # noqa: BLE001 - the cache may share the broker's outage
        seen = None
    if settings.CELERY_TASK_ALWAYS_EAGER:
        checks["worker"] = {"ok": True, "mode": "eager"}
    elif seen is None:
        checks["worker"] = {"ok": False, "error": "no heartbeat"}
    else:
        age = time.time() - seen
        checks["worker"] = {"ok": age < 120, "last_seen_seconds": int(age)}
    healthy = all(c["ok"] for c in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status=200 if healthy else 503,
    )


@org_view("job.view")
def job_progress(request: OrgRequest, org_slug: str, job_id: int) -> HttpResponse:
    """The progress bar fragment, polled by htmx until the job finishes."""
    job = get_object_or_404(Job, pk=job_id)
    if request.membership.role == "physician" and job.created_by_id != request.user.pk:
        raise Http404
    state = job_live_state(job)
    response = render(request, "core/_job_progress.html", {"job": job, "state": state})
    if job.is_finished and request.htmx:
        # The job finished while the page watched it: reload the page once so everything on it
        # (status cards, results, counts) shows the final state. A page rendered after the job
        # finished does not poll, so this cannot loop.
        response["HX-Refresh"] = "true"
    return response


@org_view("job.view")
def job_detail(request: OrgRequest, org_slug: str, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id)
    if request.membership.role == "physician" and job.created_by_id != request.user.pk:
        raise Http404
    return render(request, "core/job_detail.html", {"job": job, "state": job_live_state(job)})


@org_view("job.view")
def job_errors_csv(request: OrgRequest, org_slug: str, job_id: int) -> HttpResponse:
    """The downloadable error report: row, column, reason."""
    from .exports import csv_response

    job = get_object_or_404(Job, pk=job_id)
    if request.membership.role == "physician" and job.created_by_id != request.user.pk:
        raise Http404
    rows = [[e.get("row", ""), e.get("column", ""), e.get("message", "")] for e in job.errors]
    return csv_response(f"job-{job.pk}-errors.csv", ["row", "column", "reason"], rows)


@org_view("audit.view")
def audit_trail(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The organization's business events, newest first."""
    from django.core.paginator import Paginator

    from .models import BusinessEvent

    events = BusinessEvent.objects.select_related("actor").all()
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "core/audit_trail.html", {"page": page})


@public_view
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Create and revoke personal API tokens. The raw token is shown once."""
    user = signed_in_user(request)
    new_token = None
    if request.method == "POST":
        if "revoke" in request.POST:
            from .inputs import InputError, parse_int

            try:
                token_id = parse_int(
                    request.POST["revoke"], field="revoke", min_value=1, max_value=2**63 - 1
                )
                assert token_id is not None  # a blank value raises InputError
            except InputError as exc:
                messages.error(request, f"Revoke: {exc.reason} Choose a token from the list.")
                return _api_tokens_page(request, user, None, status=400)
            ApiToken.objects.filter(user=user, pk=token_id).update(revoked_at=timezone.now())
            messages.success(request, "Token revoked.")
            return redirect("api_tokens")
        name = request.POST.get("name", "").strip()[:100]
        days = request.POST.get("expires_in_days", "").strip()
        maximum = settings.COMANAGE_API_TOKEN_MAX_DAYS
        if not name:
            messages.error(request, "Name the token so you can recognise it later.")
        elif days and (not days.isdigit() or not 1 <= int(days) <= maximum):
            messages.error(request, f"Expiry must be a number of days from 1 to {maximum}.")
            return redirect("api_tokens")
        else:
            _token, new_token = ApiToken.issue(
                user=user,
                name=name,
                expires_at=token_expiry(int(days or 0) or None),
                two_factor_verified=session_two_factor_verified(request),
            )
    return _api_tokens_page(request, user, new_token)


def _api_tokens_page(
    request: HttpRequest, user: Any, new_token: str | None, *, status: int = 200
) -> HttpResponse:
    """The tokens page, the same whatever answered the form (the expiry limits included)."""
    return render(
        request,
        "core/api_tokens.html",
        {
            "tokens": ApiToken.objects.filter(user=user),
            "new_token": new_token,
            "default_days": settings.COMANAGE_API_TOKEN_DEFAULT_DAYS,
            "max_days": settings.COMANAGE_API_TOKEN_MAX_DAYS,
        },
        status=status,
    )


def _change_in_words(obj: Any, name: str, old: object, new: object) -> tuple[str, str, str, bool]:
    """A history change as a reader sees it: the field's label, values formatted, and whether
    the values are structured data (criteria, settings as JSON), shown as code rather than as
    words."""
    try:
        field = obj._meta.get_field(name)
    except Exception:  # noqa: BLE001 - a field since removed keeps its words
        return (
            display.words(name),
            str(old if old not in (None, "") else display.EMPTY),
            str(new if new not in (None, "") else display.EMPTY),
            False,
        )
    return (
        display.field_label(field),
        display.field_value(field, old),
        display.field_value(field, new),
        field.get_internal_type() == "JSONField",
    )


def object_history(request: HttpRequest, obj: Any, *, back_url: str = "") -> HttpResponse:
    """A history page for any audited record: who changed what, when."""
    records = list(obj.history.select_related("history_user").order_by("-history_date")[:200])
    rows = []
    for newer, older in zip(records, records[1:] + [None], strict=False):
        changes = []
        if older is not None:
            delta = newer.diff_against(older)
            changes = [_change_in_words(obj, c.field, c.old, c.new) for c in delta.changes]
        rows.append({"record": newer, "changes": changes})
    return render(request, "core/history.html", {"object": obj, "rows": rows, "back_url": back_url})


def history_view(
    model: type,
    *,
    parent: Callable[[HttpRequest, int], Any],
    back: Callable[[HttpRequest, Any, Any], str],
    permission: str = "history.view",
    pk_kwarg: str = "pk",
    parent_field: str = "agreement",
) -> Callable[..., HttpResponse]:
    """The history page of one kind of record that belongs to a parent (an agreement).

    ``parent(request, parent_pk)`` returns the parent, checked (another physician's is 404, a
    role without the right is 403: :func:`object_for_member`); the record is looked up within
    it (``pk_kwarg`` names the URL argument); ``back(request, parent, record)`` is the link
    back. History names staff and shows every edit, so it needs ``history.view`` unless the
    record's own page says otherwise.
    """

    @org_view(permission)
    def view(request: HttpRequest, org_slug: str, agreement_pk: int, **kwargs: Any) -> HttpResponse:
        owner = parent(request, agreement_pk)
        record: Any = get_object_or_404(model, pk=kwargs[pk_kwarg], **{parent_field: owner})
        return object_history(request, record, back_url=back(request, owner, record))

    view.__name__ = view.__qualname__ = f"{model.__name__.lower()}_history"
    return view


#: What a script is told of a request Django refuses before any view reads it.
BAD_REQUEST_MESSAGE = (
    "This request could not be accepted as sent (too many query or form fields, or a host or "
    "header this server does not accept)."
)
#: What a person or a script is told of an error on our side (the details are in the log).
SERVER_ERROR_MESSAGE = "Something went wrong on our side. It has been logged; please try again."


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """400 for a request Django refuses before any view reads it (too many parameters, a host
    or header it does not accept): nothing of the detail, which is in the log."""
    if is_api(request):
        return api_error(400, "bad_request", BAD_REQUEST_MESSAGE)
    return django_bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api(request):
        return api_error(403, "permission_denied", str(exception or "") or "Not allowed.")
    return render(request, "403.html", {"reason": str(exception or "")}, status=403)


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404: a page for people; on the API (an address no route knows) the API's error shape."""
    if is_api(request):
        return api_not_found()
    return render(request, "404.html", {}, status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: a page for people; on the API, JSON in the API's error shape, so that a script
    reads the same ``{"errors": [...]}`` as for every other error."""
    if is_api(request):
        return api_error(500, "server_error", SERVER_ERROR_MESSAGE)
    return render(request, "500.html", {"message": SERVER_ERROR_MESSAGE}, status=500)
