"""API authentication, throttling and pagination: referenced from settings, so this module
must not import DRF's views (that would import these settings back)."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions, pagination, throttling

from .models import ApiToken


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer cm_...``: a personal token, stored hashed, revocable, expiring."""

    keyword = "Bearer"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header:
            return None
        parts = header.split()
        if parts[0] not in (self.keyword, "Token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = ApiToken.lookup(parts[1])
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request) -> str:  # type: ignore[no-untyped-def]
        return self.keyword


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Rate limit per API token (per user for session requests). 429 with Retry-After."""

    scope = "token"

    def get_cache_key(self, request, view):  # type: ignore[no-untyped-def]
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
