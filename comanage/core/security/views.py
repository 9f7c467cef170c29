"""Sign-in (password or the hospital's SSO), TOTP enrolment and verification."""

from __future__ import annotations

import base64
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from comanage.core.models import OIDCProvider

from .forms import OTPCodeForm
from .oidc import start_sso_for_email
from .otp import confirmed_devices, mark_verified, session_two_factor_verified, verify_code


class LoginView(auth_views.LoginView):
    """E-mail first: "Sign in with your hospital's SSO" routes by the address's domain."""

    template_name = "registration/login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if "sso" in request.POST:
            email = request.POST.get("username", "").strip()
            next_url = self.get_redirect_url()
            response = start_sso_for_email(request, email, next_url) if "@" in email else None
            if response is not None:
                return response
            form = self.get_form_class()(request)
            form.initial = {"username": email}
            return self.render_to_response(
                self.get_context_data(
                    form=form,
                    sso_error=(
                        f"No single sign-on is set up for “{email}”. "
                        "Sign in with your password instead."
                    )
                    if email
                    else "Enter your e-mail address first.",
                )
            )
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        from comanage.core.selectors import user_may_sign_in

        if not user_may_sign_in(form.get_user()):  # every organization of theirs deactivated
            form.add_error(None, "Your organization's access to Comanage is deactivated.")
            return self.form_invalid(form)
        return super().form_valid(form)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["sso_available"] = OIDCProvider.objects.filter(enabled=True).exists()
        return context


def _safe_next(request: HttpRequest) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def _qr_data_uri(text: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return "data:image/svg+xml;base64," + base64.b64encode(image.to_string()).decode()


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def otp_setup(request: HttpRequest) -> HttpResponse:
    """Enrol an authenticator app: scan the QR code, then confirm with a first code.

    Someone with only the password must not be able to add a device to an account that has
    one, so a user with a confirmed device must verify with it before adding another.
    """
    if confirmed_devices(request.user) and not session_two_factor_verified(request):
        return HttpResponseRedirect(f"{reverse('security_otp_verify')}?{request.GET.urlencode()}")
    device = TOTPDevice.objects.filter(
        user=request.user, confirmed=False
    ).first() or TOTPDevice.objects.create(
        user=request.user, name="Authenticator app", confirmed=False
    )
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            mark_verified(request, device)
            messages.success(request, "Two-factor authentication is on for your account.")
            return HttpResponseRedirect(_safe_next(request))
        form.add_error(
            "code",
            "That code does not match. Check the time on your phone and enter the current code.",
        )
    secret = base64.b32encode(device.bin_key).decode()
    return render(
        request,
        "security/otp_setup.html",
        {
            "form": form,
            "qr": _qr_data_uri(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "next": request.GET.get("next", request.POST.get("next", "")),
            "has_device": bool(confirmed_devices(request.user)),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    """Enter the code from the authenticator app (after the password, or to sign)."""
    if not confirmed_devices(request.user):
        return HttpResponseRedirect(f"{reverse('security_otp_setup')}?{request.GET.urlencode()}")
    form = OTPCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if verify_code(request, form.cleaned_data["code"]):
            return HttpResponseRedirect(_safe_next(request))
        form.add_error(
            "code", "That code is not valid. Enter the current code from your authenticator app."
        )
    return render(
        request,
        "security/otp_verify.html",
        {
            "form": form,
            "next": request.GET.get("next", request.POST.get("next", "")),
            "fresh": request.GET.get("fresh") == "1",
        },
        status=403 if form.errors else 200,
    )
