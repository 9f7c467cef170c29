"""Two-factor authentication (TOTP) for the roles that sign, and step-up at the moment of signing.

Program administrators, legal counsel and CEOs must confirm a TOTP code after their password
(``TwoFactorMiddleware``). Counsel's approval and the CEO's authorisation additionally ask for a
fresh code at the moment of signing (``require_recent_otp`` / ``@otp_step_up``). Both follow
``settings.COMANAGE_REQUIRE_2FA`` (on everywhere except the general test settings).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django_otp import devices_for_user
from django_otp import login as otp_login

from comanage.core.models import Role, User

#: Roles whose members must use a second factor.
ROLES_REQUIRING_2FA = frozenset({Role.ADMINISTRATOR, Role.COUNSEL, Role.CEO})
#: Session key: when (epoch seconds) the user last proved possession of their device.
VERIFIED_AT_SESSION_KEY = "security_otp_verified_at"
#: Form field carrying the code posted along with a signing action.
OTP_FIELD = "otp_token"


def two_factor_enabled() -> bool:
    return bool(getattr(settings, "COMANAGE_REQUIRE_2FA", True))


def user_requires_2fa(
    user: User | AnonymousUser | None, *, roles: frozenset[str] | None = None
) -> bool:
    """True for superusers, installation staff and anyone holding an administrator, counsel
    or CEO membership. ``roles``: the user's membership roles already read for this request
    (``TenantMiddleware``), else they are read (``selectors.membership_roles``)."""
    if not user or not user.is_authenticated:
        return False
    if user.is_superuser or getattr(user, "is_installation_admin", False):
        return True
    # Asked on every page by TwoFactorMiddleware: from the tenant check's cached entry (kept
    # under the user's membership version, so a promotion counts on the next request).
    if roles is None:
        from comanage.core.selectors import membership_roles

        member: Any = user  # an authenticated user here: comanage.core.models.User
        roles = membership_roles(user=member)
    return not ROLES_REQUIRING_2FA.isdisjoint(roles)


def confirmed_devices(user: Any) -> list:
    return list(devices_for_user(user, confirmed=True))


#: A wait this short after a wrong code is waited out in the request rather than refusing the
#: next right code (django-otp locks a device for 1 s after one failure, 2 s after two...).
SHORT_THROTTLE_SECONDS = 2.0


def throttle_wait_seconds(user: Any) -> int:
    """Whole seconds until the user's devices accept a code again after wrong ones (0: now)."""
    from django.utils import timezone

    wait = 0.0
    for device in devices_for_user(user, confirmed=True):
        allowed, data = device.verify_is_allowed()
        locked_until = (data or {}).get("locked_until") if not allowed else None
        if locked_until is not None:
            wait = max(wait, (locked_until - timezone.now()).total_seconds())
    return math.ceil(wait) if wait > 0 else 0


def code_already_used(user: Any, code: str | None) -> bool:
    """True when ``code`` is the one the user's device accepted last (a TOTP code works once)."""
    from django_otp.oath import totp

    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return False
    for device in devices_for_user(user, confirmed=True):
        last_t = getattr(device, "last_t", -1)
        if last_t is None or last_t < 0 or not hasattr(device, "bin_key"):
            continue
        # The code of the time step last used (drift aside: last_t is an absolute step).
        now_t = (int(time.time()) - device.t0) // device.step
        value = totp(device.bin_key, device.step, device.t0, device.digits, last_t - now_t)
        if f"{value:0{device.digits}d}" == code:
            return True
    return False


def refusal_message(user: Any, code: str | None) -> str:
    """Why a code was refused, and exactly how long to wait when waiting is the answer."""
    wait = throttle_wait_seconds(user)
    if wait > SHORT_THROTTLE_SECONDS:  # a shorter wait is waited out with the next code
        return (
            f"That code was not accepted. After wrong codes, wait {wait} second"
            f"{'s' if wait != 1 else ''}, then enter the code your authenticator app shows."
        )
    if code_already_used(user, code):
        step = 30
        for device in devices_for_user(user, confirmed=True):
            step = int(getattr(device, "step", step))
        next_in = step - int(time.time()) % step
        return (
            "That code has already been used (each code works once). Wait "
            f"{next_in} second{'s' if next_in != 1 else ''} for the next code from your "
            "authenticator app and enter it."
        )
    return "That code is not valid. Enter the current code from your authenticator app."


def verify_code(request: HttpRequest, code: str) -> bool:
    """Check ``code`` against the user's confirmed devices; on success mark the session.

    A code is accepted once only (django-otp refuses a time step already used), and failures
    are throttled per device.
    """
    device = _device_accepting(request.user, code)
    if device is None:
        return False
    mark_verified(request, device)
    return True


def device_code_valid(user: Any, code: str | None) -> bool:
    """Check a code against the user's confirmed devices without a session: for API clients
    signing with a token, who post the current code along with the action."""
    return _device_accepting(user, code) is not None


def _device_accepting(user: Any, code: str | None) -> Any:
    """The confirmed device that accepts ``code`` (recording its use), or ``None``.

    django-otp locks the devices (``for_verify``: ``select_for_update``) so that two requests
    cannot both use one code; the lock needs a transaction, and production requests run in
    autocommit (no ``ATOMIC_REQUESTS``), so the check opens its own. A refused code's throttle
    count is committed with it (no exception leaves the block).
    """
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit():
        return None
    # After one wrong code django-otp refuses every code for a second or two; a person typing
    # the right code next must not be refused for that (longer waits are reported instead).
    wait = _short_throttle(user)
    if wait:
        time.sleep(wait)
    with transaction.atomic():
        for device in devices_for_user(user, confirmed=True, for_verify=True):
            if device.verify_token(code):
                return device
    return None


def _short_throttle(user: Any) -> float:
    """Seconds of a throttle short enough to wait out (0 when none or too long)."""
    from django.utils import timezone

    wait = 0.0
    for device in devices_for_user(user, confirmed=True):
        allowed, data = device.verify_is_allowed()
        locked_until = (data or {}).get("locked_until") if not allowed else None
        if locked_until is not None:
            wait = max(wait, (locked_until - timezone.now()).total_seconds())
    return wait if 0 < wait <= SHORT_THROTTLE_SECONDS else 0.0


def session_two_factor_verified(request: Any) -> bool:
    """True when the request's session has passed two-factor verification (django-otp marks
    the user); recorded on the API tokens the session creates."""
    is_verified = getattr(getattr(request, "user", None), "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def mark_verified(request: HttpRequest, device: Any) -> None:
    otp_login(request, device)
    request.session[VERIFIED_AT_SESSION_KEY] = time.time()


def seconds_since_verified(request: HttpRequest) -> float | None:
    if not getattr(request.user, "is_verified", lambda: False)():
        return None
    at = request.session.get(VERIFIED_AT_SESSION_KEY)
    if at is None:
        return None
    return time.time() - float(at)


def _redirect_with_next(url_name: str, request: HttpRequest, **extra: str) -> HttpResponseRedirect:
    query = urlencode({"next": request.get_full_path(), **extra})
    return HttpResponseRedirect(f"{reverse(url_name)}?{query}")


def require_recent_otp(
    request: HttpRequest, *, max_age_seconds: int = 300, signing: str = ""
) -> HttpResponse | None:
    """Ask for a fresh TOTP code at the moment of signing. ``None`` means: go ahead.

    Call it first thing in the POST branch of a signing view and return the response if there
    is one::

        if (response := require_recent_otp(request)) is not None:
            return response
        report_approve(...)

    - the code verified within the last ``max_age_seconds`` (0: a code must come with this very
      request) → ``None``;
    - a POST carrying a valid ``otp_token`` → ``None`` (the session is marked verified);
    - otherwise a POST gets a page asking for the code, which re-posts the original form fields
      (never files) with the code to the same URL; a wrong code shows the page again with an
      error (status 403) saying why, and how long to wait when the device is throttled. A GET
      is redirected to the verify page, which comes back.
    - ``signing`` says what is being signed and for how much; the page shows it.
    - a user with no device yet is sent to enrolment first.
    """
    if not two_factor_enabled():
        return None
    if not request.user.is_authenticated:
        return HttpResponseRedirect(
            f"{reverse(settings.LOGIN_URL)}?" + urlencode({"next": request.get_full_path()})
        )
    if not confirmed_devices(request.user):
        return _redirect_with_next("security_otp_setup", request)
    error = ""
    if request.method == "POST" and OTP_FIELD in request.POST:
        if verify_code(request, request.POST[OTP_FIELD]):
            return None
        error = refusal_message(request.user, request.POST[OTP_FIELD])
    else:
        age = seconds_since_verified(request)
        if age is not None and age <= max_age_seconds:
            return None
    if request.method != "POST":
        return _redirect_with_next("security_otp_verify", request, fresh="1")
    carried = [
        (name, value)
        for name in request.POST
        for value in request.POST.getlist(name)
        if name not in ("csrfmiddlewaretoken", OTP_FIELD)
    ]
    return render(
        request,
        "security/step_up.html",
        {
            "action": request.get_full_path(),
            "carried": carried,
            "error": error,
            "otp_field": OTP_FIELD,
            "signing": signing,
        },
        status=403 if error else 200,
    )


def otp_step_up(max_age_seconds: int = 300) -> Callable[[Callable], Callable]:
    """Decorator form of ``require_recent_otp`` for views whose POST signs something.

    Only POSTs are gated, so the view's GET (the page with the sign button) is unaffected.
    """

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "POST":
                response = require_recent_otp(request, max_age_seconds=max_age_seconds)
                if response is not None:
                    return response
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
