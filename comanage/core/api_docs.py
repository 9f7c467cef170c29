"""Who may read the API schema and the interactive docs.

The schema lists every endpoint, filter and field of the product: a map for an attacker, so
production serves it only to signed-in users (a session, or a personal API token for code
generators); ``COMANAGE_API_DOCS_PUBLIC`` opens it (local development).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission


def docs_public() -> bool:
    return bool(getattr(settings, "COMANAGE_API_DOCS_PUBLIC", False))


class DocsAccess(BasePermission):
    """drf-spectacular's ``SERVE_PERMISSIONS``: anyone when public, else signed-in users."""

    def has_permission(self, request: Any, view: Any) -> bool:
        return docs_public() or bool(request.user and request.user.is_authenticated)


def docs_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The Swagger UI page: a browser that is not signed in is sent to sign in, not shown a
    JSON 403 (the schema it loads is guarded by :class:`DocsAccess` as well)."""

    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not docs_public() and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    wrapped.csrf_exempt = getattr(view, "csrf_exempt", False)  # type: ignore[attr-defined]
    return wrapped
