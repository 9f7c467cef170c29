"""Single sign-on with OpenID Connect, one provider per organization (mozilla-django-oidc).

The sign-in page takes the e-mail address first; its domain picks the organization
(``Organization.email_domains``) and so its ``OIDCProvider``. The provider's id is kept in the
session between the authorization request and the callback, and every setting that
mozilla-django-oidc reads globally (endpoints, client, algorithm) is answered from that provider
and its discovery document instead.

Who may sign in: the provider must assert a verified e-mail address of one of the
organization's domains, and that address must belong to an existing Comanage user with an
active membership of the organization. Nobody is created, no membership is ever granted.
"""

from __future__ import annotations

import logging
from typing import Any

import jwt
import requests
from django.contrib import auth, messages
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import View
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from comanage.core.models import OIDCProvider, Organization
from comanage.core.selectors import membership_for

logger = logging.getLogger(__name__)

SESSION_PROVIDER = "sso_provider_id"
SESSION_LOGIN_HINT = "sso_login_hint"
SESSION_AUTH_METHOD = "auth_method"
DISCOVERY_TIMEOUT = 10


class SSOUnavailable(Exception):
    """The provider's discovery document could not be read or does not match its issuer."""


def provider_for_email(email: str) -> OIDCProvider | None:
    """The enabled provider of the organization whose e-mail domains include ``email``'s."""
    domain = email.rpartition("@")[2].strip().lower()
    if not domain:
        return None
    candidates = (
        OIDCProvider.objects.filter(enabled=True).select_related("organization").order_by("pk")
    )
    for provider in candidates:
        if domain in provider.domains():
            return provider
    return None


def discover(provider: OIDCProvider) -> dict[str, Any]:
    """The provider's discovery document (cached for an hour per configuration version)."""
    key = f"oidc-discovery:{provider.pk}:{provider.updated_at.timestamp()}"
    document = cache.get(key)
    if document is None:
        try:
            response = requests.get(provider.discovery_url, timeout=DISCOVERY_TIMEOUT)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise SSOUnavailable(
                f"Cannot read {provider.discovery_url}: {type(exc).__name__}"
            ) from exc
        if str(document.get("issuer", "")).rstrip("/") != provider.issuer.rstrip("/"):
            raise SSOUnavailable("The discovery document names another issuer.")
        cache.set(key, document, 3600)
    return document


def provider_settings(provider: OIDCProvider) -> dict[str, Any]:
    """mozilla-django-oidc's settings, answered from one organization's provider."""
    document = discover(provider)
    return {
        "OIDC_OP_AUTHORIZATION_ENDPOINT": document["authorization_endpoint"],
        "OIDC_OP_TOKEN_ENDPOINT": document["token_endpoint"],
        "OIDC_OP_USER_ENDPOINT": document["userinfo_endpoint"],
        "OIDC_OP_JWKS_ENDPOINT": document["jwks_uri"],
        "OIDC_OP_ISSUER": document["issuer"],
        "OIDC_RP_CLIENT_ID": provider.client_id,
        "OIDC_RP_CLIENT_SECRET": provider.client_secret,
        "OIDC_RP_SIGN_ALGO": provider.signing_algorithm,
        "OIDC_RP_SCOPES": provider.scopes,
    }


def _session_provider(request: HttpRequest) -> OIDCProvider | None:
    provider_id = request.session.get(SESSION_PROVIDER)
    if provider_id is None:
        return None
    return (
        OIDCProvider.objects.filter(pk=provider_id, enabled=True)
        .select_related("organization")
        .first()
    )


class _ProviderSettings:
    """Answers ``get_settings`` from the selected provider before the global settings."""

    _provider_settings: dict[str, Any]

    def get_settings(self, attr: str, *args: Any) -> Any:
        if attr in getattr(self, "_provider_settings", {}):
            return self._provider_settings[attr]
        return import_from_settings(attr, *args)


def refuse(request: HttpRequest, message: str) -> None:
    """Remember why SSO refused this person, for the sign-in page."""
    request.comanage_sso_error = message  # type: ignore[attr-defined]


class OrganizationOIDCBackend(_ProviderSettings, OIDCAuthenticationBackend):
    """Authenticates the OIDC callback against the session's provider; only existing members."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads global settings here; ours come from the provider at authenticate().
        self._provider_settings = {}
        self.UserModel = get_user_model()
        self.provider: OIDCProvider | None = None

    def authenticate(
        self,
        request: HttpRequest | None,
        nonce: str | None = None,
        code_verifier: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if request is None or kwargs or (nonce is None and code_verifier is None):
            return None  # a password sign-in, not the OIDC callback
        self.provider = _session_provider(request)
        if self.provider is None:
            return None
        try:
            self._provider_settings = provider_settings(self.provider)
        except SSOUnavailable as exc:
            logger.warning("SSO provider %s unavailable: %s", self.provider.pk, exc)
            refuse(request, "Your hospital's sign-in service cannot be reached. Try again later.")
            return None
        for name in (
            "OIDC_OP_TOKEN_ENDPOINT",
            "OIDC_OP_USER_ENDPOINT",
            "OIDC_OP_JWKS_ENDPOINT",
            "OIDC_RP_CLIENT_ID",
            "OIDC_RP_CLIENT_SECRET",
            "OIDC_RP_SIGN_ALGO",
        ):
            setattr(self, name, self._provider_settings[name])
        self.OIDC_RP_IDP_SIGN_KEY = None
        try:
            return super().authenticate(request, nonce=nonce, code_verifier=code_verifier)
        except (requests.RequestException, SuspiciousOperation, jwt.PyJWTError) as exc:
            logger.warning(
                "SSO sign-in failed at provider %s: %s", self.provider.pk, type(exc).__name__
            )
            refuse(request, "Single sign-on did not complete. Try again.")
            return None

    def _verify_jws(self, payload: str, key: Any) -> dict[str, Any]:
        """Verify signature, algorithm, audience, issuer and expiry of the ID token.

        (The library checks neither audience nor issuer; a token minted for another client of
        the same provider must not sign anyone in here.)
        """
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("The ID token is not signed with the expected algorithm.")
        return jwt.decode(
            payload,
            key,
            algorithms=[self.OIDC_RP_SIGN_ALGO],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=self._provider_settings["OIDC_OP_ISSUER"],
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("email")) and claims.get("email_verified") is not False

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        assert self.provider is not None
        organization: Organization = self.provider.organization
        claims = self.get_userinfo(access_token, id_token, payload)
        if claims.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("The userinfo subject differs from the ID token's.")
        if not self.verify_claims(claims):
            refuse(
                self.request, "Your hospital's sign-in did not provide a verified e-mail address."
            )
            return None
        email = str(claims["email"]).strip().lower()
        if email.rpartition("@")[2] not in self.provider.domains():
            refuse(self.request, f"{email} is not an address of {organization.name}.")
            return None
        user = self.UserModel.objects.filter(email__iexact=email, is_active=True).first()
        membership = membership_for(user=user, organization=organization) if user else None
        if membership is None:
            refuse(
                self.request,
                f"{email} has no access to {organization.name} in Comanage. "
                "Ask your program administrator to invite you.",
            )
            return None
        return user


class SSOStartView(_ProviderSettings, OIDCAuthenticationRequestView):
    """Redirects to the session's provider with state, nonce and PKCE."""

    def __init__(self, **kwargs: Any) -> None:
        View.__init__(self, **kwargs)
        self._provider_settings = {}

    def get(self, request: HttpRequest) -> HttpResponse:
        provider = _session_provider(request)
        if provider is None:
            messages.error(request, "Enter your e-mail address to sign in with your hospital.")
            return HttpResponseRedirect(reverse("login"))
        try:
            self._provider_settings = provider_settings(provider)
        except SSOUnavailable as exc:
            logger.warning("SSO provider %s unavailable: %s", provider.pk, exc)
            messages.error(
                request, "Your hospital's sign-in service cannot be reached. Try again later."
            )
            return HttpResponseRedirect(reverse("login"))
        self.OIDC_OP_AUTH_ENDPOINT = self._provider_settings["OIDC_OP_AUTHORIZATION_ENDPOINT"]
        self.OIDC_RP_CLIENT_ID = provider.client_id
        return super().get(request)

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        hint = request.session.get(SESSION_LOGIN_HINT)
        return {"login_hint": hint} if hint else {}


class SSOCallbackView(OIDCAuthenticationCallbackView):
    """Completes the sign-in, or explains on the sign-in page why it was refused.

    The SSO settings page's test sign-in comes back here too (the redirect URI registered at
    the provider): a callback whose ``state`` is the test's finishes the test and signs
    nobody in (``comanage.core.security.sso_test``)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        from . import sso_test

        flow = request.session.get(sso_test.SESSION_TEST)
        if flow and request.GET.get("state") == flow.get("state"):
            del request.session[sso_test.SESSION_TEST]
            result = sso_test.sso_test_complete(flow=flow, params=request.GET.dict())
            organization = Organization.objects.filter(slug=flow.get("organization")).first()
            if organization is not None:
                sso_test.sso_test_record(
                    organization=organization, actor=request.user, result=result
                )
            request.session[sso_test.SESSION_RESULT] = result
            return HttpResponseRedirect(
                reverse("sso_settings", kwargs={"org_slug": flow.get("organization")})
            )
        return super().get(request)

    def login_failure(self) -> HttpResponse:
        if self.request.user.is_authenticated:
            auth.logout(self.request)
        message = getattr(
            self.request, "comanage_sso_error", "Single sign-on did not complete. Try again."
        )
        messages.error(self.request, message)
        return HttpResponseRedirect(reverse("login"))

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        self.request.session[SESSION_AUTH_METHOD] = "oidc"
        return response


def start_sso_for_email(
    request: HttpRequest, email: str, next_url: str = ""
) -> HttpResponse | None:
    """Route to the provider for ``email``'s domain; ``None`` when there is none."""
    provider = provider_for_email(email)
    if provider is None:
        return None
    request.session[SESSION_PROVIDER] = provider.pk
    request.session[SESSION_LOGIN_HINT] = email.strip().lower()
    url = reverse("oidc_authentication_init")
    if next_url:
        from urllib.parse import urlencode

        url += "?" + urlencode({"next": next_url})
    return HttpResponseRedirect(url)


__all__ = [
    "OrganizationOIDCBackend",
    "SSOCallbackView",
    "SSOStartView",
    "provider_for_email",
    "start_sso_for_email",
]
