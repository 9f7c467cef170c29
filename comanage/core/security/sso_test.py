"""The SSO settings page's "test sign-in": a real OpenID Connect authorization-code round trip
against the organization's configured provider that signs nobody in.

The administrator presses the button; Comanage reads the discovery document, sends the browser
to the provider with state, nonce and PKCE, and the provider sends it back to the usual
callback (the redirect URI registered there), where :func:`sso_test_complete` exchanges the
code, checks the ID token (signature against the provider's JWKS, issuer, audience, expiry,
nonce) and the e-mail claim against the organization's domains, and reports each step in plain
words. The client secret goes only into the token request: never into a result, a log line or
the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from typing import Any
from urllib.parse import urlencode

import jwt
import requests
from django.core.cache import cache

from comanage.core.models import OIDCProvider, Organization, organization_domains

from .oidc import DISCOVERY_TIMEOUT, SSOUnavailable, discover

logger = logging.getLogger(__name__)

#: Session key holding the test in flight (state, nonce, PKCE verifier) and then its result.
SESSION_TEST = "sso_test_flow"
SESSION_RESULT = "sso_test"


def _step(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def _result(steps: list[dict[str, Any]]) -> dict[str, Any]:
    ok = bool(steps) and all(s["ok"] for s in steps)
    failed = next((s for s in steps if not s["ok"]), None)
    message = (
        "The test sign-in worked: people of your domains can sign in with this provider."
        if ok
        else f"The test sign-in failed at “{failed['name']}”."
        if failed
        else "Nothing was tested."
    )
    return {"ok": ok, "message": message, "steps": steps}


def sso_test_start(
    *, organization: Organization, redirect_uri: str
) -> tuple[str | None, dict[str, Any]]:
    """Begin the round trip: (the provider's authorization URL, the flow to keep in the
    session). No URL when it cannot start; the flow then holds the result to show."""
    provider = OIDCProvider.objects.filter(organization=organization).first()
    if provider is None:
        return None, _result([_step("Settings", False, "No single sign-on provider is set up.")])
    # A test reads the provider now, not the copy discover() keeps for an hour.
    cache.delete(f"oidc-discovery:{provider.pk}:{provider.updated_at.timestamp()}")
    try:
        document = discover(provider)
    except SSOUnavailable as exc:
        return None, _result([_step("Discovery", False, str(exc))])
    missing = [
        k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not document.get(k)
    ]
    if missing:
        return None, _result(
            [_step("Discovery", False, f"The discovery document lacks {', '.join(missing)}.")]
        )
    discovery = _step(
        "Discovery", True, f"Read {provider.discovery_url}: issuer {document['issuer']}."
    )
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    query = urlencode(
        {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": provider.scopes,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.decode(),
            "code_challenge_method": "S256",
            "prompt": "login",
        }
    )
    flow = {
        "provider": provider.pk,
        "organization": organization.slug,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "steps": [discovery],
    }
    separator = "&" if "?" in document["authorization_endpoint"] else "?"
    return f"{document['authorization_endpoint']}{separator}{query}", flow


def sso_test_complete(*, flow: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    """Finish the round trip from the callback's query ``params``; never signs anyone in."""
    steps: list[dict[str, Any]] = list(flow.get("steps", []))
    provider = (
        OIDCProvider.objects.filter(pk=int(flow.get("provider") or 0))
        .select_related("organization")
        .first()
    )
    if provider is None:
        steps.append(_step("Settings", False, "The provider was removed during the test."))
        return _result(steps)
    if params.get("error"):
        described = params.get("error_description") or params["error"]
        steps.append(
            _step(
                "Redirect", False, f"The provider sent the browser back with an error: {described}."
            )
        )
        return _result(steps)
    if not params.get("code") or params.get("state") != flow.get("state"):
        steps.append(
            _step("Redirect", False, "The provider sent the browser back without a valid answer.")
        )
        return _result(steps)
    steps.append(_step("Redirect", True, "The provider sent the browser back with a code."))
    try:
        document = discover(provider)
        answer = requests.post(
            document["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": flow["redirect_uri"],
                "client_id": provider.client_id,
                "client_secret": provider.client_secret,
                "code_verifier": flow["verifier"],
            },
            timeout=DISCOVERY_TIMEOUT,
        )
    except (SSOUnavailable, requests.RequestException) as exc:
        steps.append(
            _step(
                "Token exchange",
                False,
                f"The token endpoint did not answer ({type(exc).__name__}).",
            )
        )
        return _result(steps)
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not body.get("id_token"):
        error = body.get("error", "")
        why = {
            "invalid_client": "the provider refused the client id or the client secret",
            "invalid_grant": "the provider refused the code (expired, used, or another "
            "redirect URI)",
            "unauthorized_client": "this client may not use the authorization-code flow",
        }.get(
            error,
            f"the provider answered HTTP {answer.status_code}" + (f" ({error})" if error else ""),
        )
        steps.append(_step("Token exchange", False, f"No ID token: {why}."))
        return _result(steps)
    steps.append(_step("Token exchange", True, "The provider gave an ID token for the code."))
    steps.extend(_check_id_token(provider, document, body["id_token"], flow.get("nonce", "")))
    return _result(steps)


def _check_id_token(
    provider: OIDCProvider, document: dict[str, Any], token: str, nonce: str
) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return [_step("ID token signature", False, "The ID token is not a signed token.")]
    if header.get("alg") != provider.signing_algorithm:
        return [
            _step(
                "ID token signature",
                False,
                f"The ID token is signed with {header.get('alg')}, not the "
                f"{provider.signing_algorithm} set here.",
            )
        ]
    try:
        key = jwt.PyJWKClient(
            document["jwks_uri"], timeout=DISCOVERY_TIMEOUT
        ).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[provider.signing_algorithm],
            options={"verify_aud": False, "verify_iss": False, "require": ["exp", "iat", "sub"]},
        )
    except jwt.PyJWKClientError:
        return [
            _step(
                "ID token signature",
                False,
                "None of the provider's published keys (JWKS) matches the ID token.",
            )
        ]
    except jwt.InvalidSignatureError:
        return [
            _step(
                "ID token signature",
                False,
                "The ID token's signature does not verify with the provider's published key.",
            )
        ]
    except jwt.ExpiredSignatureError:
        return [_step("ID token signature", False, "The ID token has already expired.")]
    except jwt.PyJWTError as exc:
        return [
            _step("ID token signature", False, f"The ID token is not valid ({type(exc).__name__}).")
        ]
    steps.append(_step("ID token signature", True, "Signed with the provider's published key."))
    issuer = str(claims.get("iss", ""))
    steps.append(
        _step("ID token issuer", True, f"Issued by {issuer}.")
        if issuer.rstrip("/") == str(document["issuer"]).rstrip("/")
        else _step(
            "ID token issuer", False, f"Issued by {issuer or 'nobody'}, not {document['issuer']}."
        )
    )
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    steps.append(
        _step("ID token audience", True, f"Meant for client {provider.client_id}.")
        if provider.client_id in audiences
        else _step(
            "ID token audience",
            False,
            f"Meant for {', '.join(str(a) for a in audiences)}, "
            f"not this client ({provider.client_id}).",
        )
    )
    steps.append(
        _step("ID token nonce", True, "Answers this very request.")
        if claims.get("nonce") == nonce
        else _step("ID token nonce", False, "The ID token does not answer this request (nonce).")
    )
    email = str(claims.get("email") or "").strip().lower()
    domains = organization_domains(provider.organization)
    if not email:
        steps.append(
            _step(
                "E-mail", False, "The ID token carries no e-mail address (ask for the email scope)."
            )
        )
    elif claims.get("email_verified") is False:
        steps.append(_step("E-mail", False, f"The provider says {email} is not verified."))
    elif email.rpartition("@")[2] not in domains:
        steps.append(
            _step(
                "E-mail",
                False,
                f"{email} is not within the organization's domains "
                f"({', '.join(domains) or 'none set'}).",
            )
        )
    else:
        steps.append(_step("E-mail", True, f"{email} is within the organization's domains."))
    return steps


def sso_test_record(*, organization: Organization, actor: Any, result: dict[str, Any]) -> None:
    """Audit the test (its outcome and the steps' names, never a secret) and log it."""
    from comanage.core.audit import event_record

    failed = [s["name"] for s in result["steps"] if not s["ok"]]
    event_record(
        organization=organization,
        name="sso.tested",
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        summary="Single sign-on test sign-in " + ("worked" if result["ok"] else "failed"),
        data={"ok": result["ok"], "failed": failed},
    )
    logger.info(
        "SSO test sign-in for organization %s: %s",
        organization.pk,
        "ok" if result["ok"] else f"failed at {failed}",
    )
