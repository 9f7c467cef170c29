"""API authentication, throttling and pagination: referenced from settings, so this module
must not import DRF's views (that would import these settings back)."""

from __future__ import annotations

import datetime as dt

from django.core.cache.backends.locmem import LocMemCache
from django.utils import timezone
from rest_framework import authentication, exceptions, pagination, throttling

from .models import ApiToken
from .security.clientip import client_ip

#: How fresh a token's "last used" is kept: written at most once a minute (the tokens page
#: shows it to the minute), not on every request, so a script's burst of reads is not a burst
#: of writes to one row.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


class TokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer cm_...``: a personal token, stored hashed, revocable, expiring."""

    keyword = "Bearer"

    def authenticate(self, request):
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
        from .selectors import user_may_sign_in

        if not user_may_sign_in(token.user):  # every organization of theirs deactivated
            raise exceptions.AuthenticationFailed("Your organization's access is deactivated.")
        if not token.two_factor_verified and _needs_two_factor(token.user):
            # Made by a session without a second factor (say, as an executive, before a
            # promotion): a role that needs 2FA uses only tokens made after verification.
            raise exceptions.AuthenticationFailed(
                "This token was created without two-factor verification, which your role now "
                "requires: create a new token after verifying."
            )
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


def _needs_two_factor(user) -> bool:
    from .security.otp import two_factor_enabled, user_requires_2fa

    return two_factor_enabled() and user_requires_2fa(user)


#: This process's own copy of every throttle history (``TokenRateThrottle``).
_local_histories = LocMemCache("comanage-throttle-local", {"OPTIONS": {"MAX_ENTRIES": 20000}})


def local_throttle_clear() -> None:
    """Forget this process's throttle histories (tests, with ``cache.clear()``)."""
    _local_histories.clear()


class TokenRateThrottle(throttling.SimpleRateThrottle):
    """Rate limit per API token (per user for session requests). 429 with Retry-After.

    The histories live in the shared cache (Redis), which answers misses while it is down
    (``comanage.core.cache``): a limit read from there alone would then let everything
    through. Each process therefore also keeps its own copy and counts whichever history is
    longer, so with Redis down the limit still holds, per process.
    """

    scope = "token"
    # Set by ``SimpleRateThrottle.__init__`` from ``parse_rate`` (its stubs leave them out);
    # None only when there is no rate.
    num_requests: int | None
    duration: int | None

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            ident = f"token-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def get_ident(self, request) -> str:
        # X-Forwarded-For only from a trusted proxy (DRF's own reading believes anyone's).
        return client_ip(request) or "unknown"

    def allow_request(self, request, view) -> bool:
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        shared = self.cache.get(self.key, None)
        local = _local_histories.get(self.key, None)
        self.history = max(shared or [], local or [], key=len)
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        if len(self.history) >= self.num_requests:
            return self.throttle_failure()
        return self.throttle_success()

    def throttle_success(self) -> bool:
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)
        _local_histories.set(self.key, self.history, self.duration)
        return True


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
