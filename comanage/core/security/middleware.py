"""The two-factor gate: signed-in administrators, counsel and CEOs confirm a TOTP code first."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from comanage.core.http import api_error, is_api

from .otp import (
    confirmed_devices,
    session_two_factor_verified,
    two_factor_enabled,
    user_requires_2fa,
)

# Pages reachable before the second factor: signing in and out, the 2FA pages themselves,
# password reset (no session involved) and static files.
EXEMPT_PREFIXES = (
    "/account/login/",
    "/account/logout/",
    "/account/security/",
    "/account/password/reset/",
    "/account/oidc/",
    "/static/",
    "/healthz",
)


class TwoFactorMiddleware:
    """Until verified, such users are sent to enrolment (no device yet) or verification.

    Runs after ``TenantMiddleware`` and django-otp's ``OTPMiddleware``. Applies to every page of
    a signed-in user who holds a role that signs (anywhere), not only to organization pages:
    otherwise the API-token page would let a password alone mint a token that bypasses 2FA.
    API calls authenticated by a session get a 403 JSON answer. Token-authenticated API calls
    are checked by ``comanage.core.api_auth.TokenAuthentication``: for such a user only a token
    created by a verified session works (``ApiToken.two_factor_verified``), so a token made
    before a promotion to a role that needs 2FA stops working.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            two_factor_enabled()
            and request.user.is_authenticated
            and not request.path_info.startswith(EXEMPT_PREFIXES)
            and not session_two_factor_verified(request)
            and user_requires_2fa(request.user, roles=getattr(request, "membership_roles", None))
        ):
            if is_api(request):
                return api_error(
                    403,
                    "two_factor_required",
                    "Two-factor verification is required for this account.",
                )
            url_name = (
                "security_otp_verify" if confirmed_devices(request.user) else "security_otp_setup"
            )
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse(url_name)}?{query}")
        return self.get_response(request)
