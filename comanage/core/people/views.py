"""The People pages of an organization (its administrators), the SSO settings page, and the
invitation link. Thin: every change goes through ``comanage.core.people.services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from comanage.core.http import signed_in_user
from comanage.core.models import Invitation, Membership, OIDCProvider
from comanage.core.views import org_view, public_view

from . import selectors, services
from .forms import (
    AcceptForm,
    InviteForm,
    OrganizationSettingsForm,
    RoleForm,
    SSOForm,
    apply_errors,
)


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@org_view("people.view")
def people_list(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    return render(
        request,
        "core/people/list.html",
        {
            "people": selectors.people_of(organization=organization),
            "invitations": selectors.invitations_open(organization=organization),
            "form": InviteForm(),
            "sso": OIDCProvider.objects.filter(organization=organization).first(),
        },
    )


@org_view("people.manage")
@require_http_methods(["GET", "POST"])
def people_invite(request: HttpRequest, org_slug: str) -> HttpResponse:
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation, _raw = services.invitation_create(
                organization=request.organization,  # type: ignore[attr-defined]
                actor=signed_in_user(request),
                base_url=_base_url(request),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("people_list", org_slug=org_slug)
    return render(
        request, "core/people/invite.html", {"form": form}, status=400 if form.errors else 200
    )


@org_view("people.view", post="people.manage")
@require_http_methods(["GET", "POST"])
def member_detail(request: HttpRequest, org_slug: str, membership_pk: int) -> HttpResponse:
    """One member: change the role, deactivate, reactivate or remove (``action``)."""
    membership = get_object_or_404(
        Membership.objects.select_related("user", "physician"), pk=membership_pk
    )
    form = RoleForm(initial={"role": membership.role})
    action_errors: list[str] = []
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "")
        actor = request.user
        try:
            if action == "role":
                form = RoleForm(request.POST)
                if form.is_valid():
                    services.membership_role_change(
                        membership=membership,
                        actor=actor,  # type: ignore[arg-type]
                        **form.cleaned_data,
                    )
                    messages.success(
                        request, f"{membership.user.email} is now {membership.get_role_display()}."
                    )
                    return redirect("member_detail", org_slug=org_slug, membership_pk=membership.pk)
            elif action == "deactivate":
                services.membership_deactivate(membership=membership, actor=actor)  # type: ignore[arg-type]
                messages.success(
                    request,
                    f"{membership.user.email} is deactivated; their "
                    "sessions and API tokens have ended.",
                )
                return redirect("member_detail", org_slug=org_slug, membership_pk=membership.pk)
            elif action == "reactivate":
                services.membership_reactivate(membership=membership, actor=actor)  # type: ignore[arg-type]
                messages.success(request, f"{membership.user.email} is active again.")
                return redirect("member_detail", org_slug=org_slug, membership_pk=membership.pk)
            elif action == "remove":
                email = membership.user.email
                services.membership_remove(membership=membership, actor=actor)  # type: ignore[arg-type]
                messages.success(
                    request, f"{email} is removed; their sessions and API tokens have ended."
                )
                return redirect("people_list", org_slug=org_slug)
            else:
                action_errors = [
                    "Choose what to do: change the role, deactivate, reactivate or remove."
                ]
        except ValidationError as exc:
            if form.is_bound:
                apply_errors(form, exc)
            else:
                action_errors = exc.messages
        status = 400
    return render(
        request,
        "core/people/member.html",
        {
            "person": selectors.person_of(membership=membership),
            "form": form,
            "action_errors": action_errors,
        },
        status=status,
    )


@org_view("people.view", post="people.manage")
@require_http_methods(["GET", "POST"])
def invitation_detail(request: HttpRequest, org_slug: str, invitation_pk: int) -> HttpResponse:
    """Re-send or withdraw an invitation (``action``); GET goes back to the list."""
    invitation = get_object_or_404(Invitation, pk=invitation_pk)
    if request.method == "GET":
        return redirect("people_list", org_slug=org_slug)
    action = request.POST.get("action", "")
    try:
        if action == "resend":
            services.invitation_resend(
                invitation=invitation,
                actor=request.user,  # type: ignore[arg-type]
                base_url=_base_url(request),
            )
            messages.success(
                request,
                f"Invitation re-sent to {invitation.email}; the earlier link no longer works.",
            )
        elif action == "revoke":
            services.invitation_revoke(invitation=invitation, actor=request.user)  # type: ignore[arg-type]
            messages.success(request, f"Invitation to {invitation.email} withdrawn.")
        else:
            messages.error(request, "Choose to re-send or withdraw the invitation.")
            return redirect("people_list", org_slug=org_slug)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("people_list", org_slug=org_slug)


@org_view("sso.manage")
@require_http_methods(["GET", "POST"])
def sso_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = request.organization  # type: ignore[attr-defined]
    provider = OIDCProvider.objects.filter(organization=organization).first()
    initial = {"email_domains": organization.email_domains, "enabled": True}
    if provider is not None:  # never the secret
        initial.update(
            name=provider.name,
            issuer=provider.issuer,
            client_id=provider.client_id,
            enabled=provider.enabled,
        )
    form = SSOForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.sso_update(
                organization=organization,
                actor=request.user,  # type: ignore[arg-type]
                **form.cleaned_data,
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "Single sign-on settings saved.")
            return redirect("sso_settings", org_slug=org_slug)
    return render(
        request,
        "core/people/sso.html",
        {
            "form": form,
            "provider": provider,
            "test": request.session.pop("sso_test", None),
            "callback_url": request.build_absolute_uri(reverse("oidc_authentication_callback")),
        },
        status=400 if form.errors else 200,
    )


@org_view("sso.manage")
@require_http_methods(["GET", "POST"])
def sso_test(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Test sign-in: a real authorization-code round trip with the provider that signs nobody
    in; the provider sends the browser back to the usual callback, which reports each step on
    the settings page (``comanage.core.security.sso_test``)."""
    from comanage.core.security import sso_test as flow_test

    if request.method == "POST":
        url, flow = flow_test.sso_test_start(
            organization=request.organization,  # type: ignore[attr-defined]
            redirect_uri=request.build_absolute_uri(reverse("oidc_authentication_callback")),
        )
        if url is not None:
            request.session[flow_test.SESSION_TEST] = flow
            return redirect(url)
        flow_test.sso_test_record(
            organization=request.organization,  # type: ignore[attr-defined]
            actor=request.user,
            result=flow,
        )
        request.session[flow_test.SESSION_RESULT] = flow
    return redirect("sso_settings", org_slug=org_slug)


@org_view("org.manage")
@require_http_methods(["GET", "POST"])
def organization_settings(request: HttpRequest, org_slug: str) -> HttpResponse:
    """Name, short name, colours, e-mail domains, time zone and logo of the organization."""
    from . import organization as org_settings

    organization = request.organization  # type: ignore[attr-defined]
    initial = {f: getattr(organization, f) for f in org_settings.EDITABLE}
    form = OrganizationSettingsForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        upload = data.pop("logo", None)
        remove_logo = data.pop("remove_logo", False)
        try:
            if upload is not None and upload.size > org_settings.LOGO_MAX_BYTES:
                raise ValidationError(
                    {
                        "logo": f"The logo is {upload.size // 1024} KB; at most "
                        f"{org_settings.LOGO_MAX_BYTES // 1024} KB is accepted."
                    }
                )
            org_settings.organization_settings_update(
                organization=organization,
                actor=request.user,  # type: ignore[arg-type]
                logo=upload.read() if upload is not None else None,
                remove_logo=remove_logo,
                **data,
            )
        except ValidationError as exc:
            organization.refresh_from_db()
            apply_errors(form, exc)
        else:
            messages.success(request, "Organization settings saved.")
            return redirect("organization_settings", org_slug=organization.slug)
    return render(
        request,
        "core/people/organization.html",
        {"form": form},
        status=400 if form.errors else 200,
    )


@org_view("org.view")
def organization_logo(request: HttpRequest, org_slug: str) -> HttpResponse:
    """The organization's logo, to its members only (uploads are never in the web root)."""
    from django.http import Http404

    from . import organization as org_settings

    organization = request.organization  # type: ignore[attr-defined]
    if not organization.logo:  # none yet: the product's own mark
        from django.templatetags.static import static

        return redirect(static("favicon.svg"))
    try:
        with organization.logo.open("rb") as handle:
            content = handle.read()
        _ext, mime = org_settings.logo_validate(content)
    except (OSError, ValidationError):
        raise Http404("No logo.") from None
    response = HttpResponse(content, content_type=mime)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@public_view
@never_cache
@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the invitation e-mail: set a password (or use SSO), or, already having an
    account, sign in and accept. Then the 2FA gate asks for enrolment where the role needs it."""
    try:
        invitation = services.invitation_lookup(token)
    except ValidationError as exc:
        return render(
            request,
            "core/people/accept_invalid.html",
            {"reason": " ".join(exc.messages)},
            status=400,
        )
    organization = invitation.organization
    from comanage.core.models import User

    has_account = User.objects.filter(email__iexact=invitation.email).exists()
    provider = getattr(organization, "oidc_provider", None)
    sso_available = bool(
        provider and provider.enabled and invitation.email.rpartition("@")[2] in provider.domains()
    )
    form = AcceptForm(request.POST or None)
    error = ""
    if request.method == "POST":
        try:
            if request.user.is_authenticated:
                services.invitation_accept(raw_token=token, user=request.user)
                messages.success(request, f"Welcome to {organization.name}.")
                return redirect("org_home", org_slug=organization.slug)
            if "sso" in request.POST:
                services.invitation_accept(raw_token=token, sso=True)
                from comanage.core.security.oidc import start_sso_for_email

                response = start_sso_for_email(
                    request,
                    invitation.email,
                    reverse("org_home", kwargs={"org_slug": organization.slug}),
                )
                if response is not None:
                    return response
                return redirect("login")
            if form.is_valid():
                membership = services.invitation_accept(
                    raw_token=token,
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                    password=form.cleaned_data["password"],
                )
                login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, f"Welcome to {organization.name}.")
                return redirect("org_home", org_slug=organization.slug)
        except ValidationError as exc:
            apply_errors(form, exc)
            error = " ".join(str(e) for e in form.non_field_errors())
    return render(
        request,
        "core/people/accept.html",
        {
            "invitation": invitation,
            "organization": None,
            "invited_to": organization,
            "form": form,
            "has_account": has_account,
            "sso_available": sso_available,
            "error": error,
            "login_url": f"{reverse('login')}?next={request.path}",
        },
        status=400 if request.method == "POST" else 200,
    )
