"""People of an organization: invitations, roles, deactivation and removal, single sign-on.

Every write of the People pages, the API and the management commands goes through these
functions. Bad input is a ``ValidationError`` naming the field (the API answers 400 with it, the
forms show it next to the field) and nothing changes. Each change is a named business event
(``member.invited``, ``member.role_changed``, ``member.removed``, ``sso.updated``, ...) with who
acted and whom it concerned.

Rules kept here, and nowhere else:

* an organization always keeps one active administrator (no removal, deactivation or demotion
  of the last one; the organization row is locked while counting, so two administrators
  demoting each other at once cannot both succeed);
* nobody raises their own role;
* a physician record is linked to one person at most (also a database constraint);
* a removed or deactivated member's sessions and API tokens end at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from comanage.core.audit import event_record
from comanage.core.models import (
    ApiToken,
    Invitation,
    Membership,
    OIDCProvider,
    Organization,
    Role,
    User,
    organization_domains,
)

logger = logging.getLogger(__name__)

#: How far each role reaches, for "nobody raises their own role".
ROLE_RANK = {
    Role.PHYSICIAN: 0,
    Role.AUDITOR: 1,
    Role.EXECUTIVE: 2,
    Role.COUNSEL: 2,
    Role.CEO: 3,
    Role.ADMINISTRATOR: 4,
}


def audit_event(*, organization: Organization, **kwargs: Any) -> None:
    """A named business event of ``organization`` (entering its scope: the management
    commands and the invitation link run outside one)."""
    with scope(organization=organization):
        event_record(organization=organization, **kwargs)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def invitation_days() -> int:
    return int(getattr(settings, "COMANAGE_INVITATION_DAYS", 7))


def site_url(base_url: str | None = None) -> str:
    return (
        base_url or getattr(settings, "COMANAGE_SITE_URL", "") or "http://127.0.0.1:8000"
    ).rstrip("/")


def _role(value: str) -> Role:
    if value not in Role.values:
        raise ValidationError(
            {"role": f"“{value}” is not a role. Choose one of: {', '.join(Role.values)}."}
        )
    return Role(value)


def _physician_for(
    *,
    organization: Organization,
    role: Role,
    npi: str,
    exclude_membership: Membership | None = None,
) -> Any:
    """The physician record to link (chosen by NPI), checked free; None for other roles."""
    # The model Membership.physician points at: core names it, never imports it (layers).
    Physician = Membership._meta.get_field("physician").related_model

    npi = (npi or "").strip()
    if role != Role.PHYSICIAN:
        if npi:
            raise ValidationError(
                {
                    "npi": "Only a physician is linked to a physician record; "
                    "leave the NPI empty for this role."
                }
            )
        return None
    if not npi:
        raise ValidationError(
            {"npi": "A physician is linked to their physician record: give its NPI."}
        )
    with scope(organization=organization):
        # Typed as the model core may not name (``agreements.models.Physician``).
        physician: Any = Physician._default_manager.filter(npi=npi).first()
        if physician is None:
            raise ValidationError({"npi": f"No physician with NPI {npi} in {organization.name}."})
        linked = Membership.objects.filter(physician=physician).select_related("user")
        if exclude_membership is not None:
            linked = linked.exclude(pk=exclude_membership.pk)
        holder = linked.first()
        if holder is not None:
            raise ValidationError(
                {
                    "npi": f"NPI {npi} ({physician.full_name}) is already "
                    f"linked to {holder.user.email}."
                }
            )
        pending = [i for i in Invitation.objects.filter(physician=physician) if i.is_pending]
        if pending:
            raise ValidationError(
                {
                    "npi": f"NPI {npi} ({physician.full_name}) is already in "
                    f"a pending invitation to {pending[0].email}."
                }
            )
    return physician


# --------------------------------------------------------------------------- invitations


def invitation_link(raw_token: str, base_url: str | None = None) -> str:
    return site_url(base_url) + reverse("invitation_accept", kwargs={"token": raw_token})


def _send_invitation(invitation: Invitation, raw_token: str, base_url: str | None) -> bool:
    organization = invitation.organization
    inviter = invitation.invited_by
    link = invitation_link(raw_token, base_url)
    body = (
        f"{inviter or 'The Comanage installation team'} invites you to {organization.name} in "
        f"Comanage as {invitation.get_role_display()}.\n\n"
        f"Accept the invitation here (the link works once, until "
        f"{timezone.localtime(invitation.expires_at):%B %-d, %Y %H:%M %Z}):\n\n{link}\n\n"
        "If you did not expect this invitation, ignore this message.\n"
    )
    try:
        send_mail(
            f"Your invitation to {organization.name} in Comanage",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [invitation.email],
        )
    except Exception as exc:  # noqa: BLE001 - the invitation stands; it can be re-sent
        logger.warning("invitation %s: e-mail not sent (%s)", invitation.pk, type(exc).__name__)
        return False
    return True


def invitation_create(
    *,
    organization: Organization,
    email: str,
    role: str,
    npi: str = "",
    actor: User | None,
    base_url: str | None = None,
) -> tuple[Invitation, str]:
    """Invite ``email`` with ``role`` (a physician: linked to the record with ``npi``) and
    e-mail the link. Returns the invitation and the raw token (shown nowhere else)."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": f"“{email}” is not an e-mail address."}) from None
    role = _role(role)
    domains = organization_domains(organization)
    if organization.restrict_to_domains and email.rpartition("@")[2] not in domains:
        raise ValidationError(
            {
                "email": f"{organization.name} invites only addresses of "
                f"{', '.join(domains) or 'its own domains'}."
            }
        )
    with scope(organization=organization):
        if Membership.objects.filter(user__email__iexact=email, is_active=True).exists():
            raise ValidationError({"email": f"{email} is already a member of {organization.name}."})
        if any(i.is_pending for i in Invitation.objects.filter(email__iexact=email)):
            raise ValidationError(
                {"email": f"{email} already has a pending invitation: re-send it instead."}
            )
    physician = _physician_for(organization=organization, role=role, npi=npi)
    raw = "inv_" + secrets.token_urlsafe(32)
    with transaction.atomic(), scope(organization=organization):
        invitation = Invitation.objects.create(
            organization=organization,
            email=email,
            role=role,
            physician=physician,
            token_hash=_hash(raw),
            invited_by=actor,
            expires_at=timezone.now() + dt.timedelta(days=invitation_days()),
        )
        audit_event(
            organization=organization,
            name="member.invited",
            actor=actor,
            obj=invitation,
            summary=f"Invited {email} as {invitation.get_role_display()}",
            data={"email": email, "role": role, "npi": physician.npi if physician else ""},
        )
    _send_invitation(invitation, raw, base_url)
    return invitation, raw


def invitation_resend(
    *, invitation: Invitation, actor: User | None, base_url: str | None = None
) -> str:
    """A new link (the old one stops working) with a new expiry, e-mailed again."""
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise ValidationError(
            {
                "invitation": f"This invitation was already "
                f"{invitation.status}; invite again instead."
            }
        )
    raw = "inv_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation.token_hash = _hash(raw)
        invitation.sent_at = timezone.now()
        invitation.expires_at = timezone.now() + dt.timedelta(days=invitation_days())
        invitation.save(update_fields=["token_hash", "sent_at", "expires_at"])
        audit_event(
            organization=invitation.organization,
            name="member.invitation_resent",
            actor=actor,
            obj=invitation,
            summary=f"Re-sent the invitation to {invitation.email}",
            data={"email": invitation.email},
        )
    _send_invitation(invitation, raw, base_url)
    return raw


def invitation_revoke(*, invitation: Invitation, actor: User | None) -> None:
    if invitation.accepted_at is not None:
        raise ValidationError(
            {
                "invitation": "This invitation was already accepted: "
                "deactivate or remove the member instead."
            }
        )
    if invitation.revoked_at is not None:
        return
    with transaction.atomic():
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        audit_event(
            organization=invitation.organization,
            name="member.invitation_revoked",
            actor=actor,
            obj=invitation,
            summary=f"Withdrew the invitation to {invitation.email}",
            data={"email": invitation.email},
        )


def invitation_lookup(raw_token: str) -> Invitation:
    """The usable invitation behind a link, or a ``ValidationError`` saying plainly why not.

    The link arrives outside any organization, so this is one of the rare explicit escapes
    from the tenant scope: the token's hash names exactly one row.
    """
    with scopes_disabled():
        invitation = (
            Invitation.objects.select_related("organization", "physician")
            .filter(token_hash=_hash(raw_token or ""))
            .first()
        )
    if invitation is None:
        raise ValidationError(
            {
                "token": "This invitation link is not valid (it may have been "
                "replaced by a newer one). Ask for a new invitation."
            }
        )
    if invitation.accepted_at is not None:
        raise ValidationError({"token": "This invitation was already used. Sign in instead."})
    if invitation.revoked_at is not None:
        raise ValidationError({"token": "This invitation was withdrawn."})
    if invitation.expires_at <= timezone.now():
        raise ValidationError(
            {
                "token": f"This invitation expired on "
                f"{timezone.localtime(invitation.expires_at):%B %-d, %Y}."
                " Ask for a new one."
            }
        )
    if not invitation.organization.is_active:
        raise ValidationError({"token": "This organization's access is deactivated."})
    return invitation


def invitation_accept(
    *,
    raw_token: str,
    user: User | None = None,
    first_name: str = "",
    last_name: str = "",
    password: str | None = None,
    sso: bool = False,
) -> Membership:
    """Accept an invitation: join as ``user`` (already signed in, the invited address), or as
    a new user with ``password`` (or, with ``sso``, with no password: they sign in through the
    organization's SSO). The link works once."""
    invitation = invitation_lookup(raw_token)
    organization = invitation.organization
    existing = User.objects.filter(email__iexact=invitation.email).first()
    if user is not None and user.email.lower() != invitation.email:
        raise ValidationError(
            {
                "token": f"This invitation is for {invitation.email}; you are "
                f"signed in as {user.email}. Sign out first."
            }
        )
    if user is None and existing is not None:
        raise ValidationError(
            {
                "token": f"{invitation.email} already has a Comanage account: "
                "sign in, then open the link again."
            }
        )
    if user is None:
        if sso:
            provider = getattr(organization, "oidc_provider", None)
            if (
                provider is None
                or not provider.enabled
                or (invitation.email.rpartition("@")[2] not in organization_domains(organization))
            ):
                raise ValidationError(
                    {
                        "sso": "Single sign-on is not available for "
                        f"{invitation.email}; choose a password."
                    }
                )
        else:
            candidate = User(email=invitation.email, first_name=first_name, last_name=last_name)
            try:
                validate_password(password or "", user=candidate)
            except ValidationError as exc:
                raise ValidationError({"password": exc.messages}) from None
    with transaction.atomic():
        with scopes_disabled():
            claimed = Invitation.objects.filter(
                pk=invitation.pk,
                token_hash=invitation.token_hash,
                accepted_at__isnull=True,
                revoked_at__isnull=True,
                expires_at__gt=timezone.now(),
            )
            if claimed.update(accepted_at=timezone.now()) != 1:  # used by a parallel request
                raise ValidationError({"token": "This invitation was already used."})
        if user is None:
            user = User.objects.create_user(
                email=invitation.email,
                password=None if sso else password,
                first_name=first_name.strip()[:150],
                last_name=last_name.strip()[:150],
            )
        with scope(organization=organization):
            membership = Membership.objects.filter(user=user).first()
            try:
                with transaction.atomic():
                    if membership is None:
                        membership = Membership.objects.create(
                            organization=organization,
                            user=user,
                            role=invitation.role,
                            physician=invitation.physician,
                        )
                    else:  # a deactivated member invited back
                        membership.role = invitation.role
                        membership.physician = invitation.physician
                        membership.is_active = True
                        membership.save()
            except IntegrityError:
                raise ValidationError(
                    {"npi": "This physician record is already linked to someone else."}
                ) from None
            Invitation.objects.filter(pk=invitation.pk).update(accepted_by=user)
            audit_event(
                organization=organization,
                name="member.joined",
                actor=user,
                obj=membership,
                summary=f"{user.email} joined as {membership.get_role_display()}",
                data={"email": user.email, "role": membership.role, "invitation": invitation.pk},
            )
    return membership


# --------------------------------------------------------------------------- members


def _lock_organization(organization: Organization) -> None:
    Organization.objects.select_for_update().filter(pk=organization.pk).first()


def _is_last_administrator(membership: Membership) -> bool:
    if membership.role != Role.ADMINISTRATOR or not membership.is_active:
        return False
    return not (
        Membership.objects.filter(role=Role.ADMINISTRATOR, is_active=True)
        .exclude(pk=membership.pk)
        .exists()
    )


def user_access_end(user: User) -> int:
    """End every session and API token of ``user`` now (removed or deactivated member).

    Sessions live in the database (read through the cache for a minute at most:
    ``comanage.core.sessions``), so each one of the user's is deleted through the session
    store, which drops the cached copy too. Returns how many sessions ended.
    """
    from importlib import import_module

    store = import_module(settings.SESSION_ENGINE).SessionStore
    ApiToken.revoke_all(user=user)
    ended = 0
    for row in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        data = store().decode(row.session_data)
        if str(data.get("_auth_user_id")) == str(user.pk):
            store(session_key=row.session_key).delete()
            ended += 1
    return ended


def membership_role_change(
    *, membership: Membership, role: str, npi: str = "", actor: User
) -> Membership:
    new_role = _role(role)
    old_role = Role(membership.role)
    organization = membership.organization
    if membership.user_id == actor.pk and ROLE_RANK[new_role] > ROLE_RANK[old_role]:
        raise ValidationError({"role": "You cannot raise your own role."})
    keep_physician = new_role == Role.PHYSICIAN and not npi and membership.physician_id
    physician = (
        membership.physician
        if keep_physician
        else _physician_for(
            organization=organization, role=new_role, npi=npi, exclude_membership=membership
        )
    )
    with transaction.atomic(), scope(organization=organization):
        _lock_organization(organization)
        membership.refresh_from_db()
        if new_role != Role.ADMINISTRATOR and _is_last_administrator(membership):
            raise ValidationError(
                {
                    "role": f"{membership.user.email} is the last administrator "
                    f"of {organization.name}: make someone else an "
                    "administrator first."
                }
            )
        if new_role == membership.role and physician == membership.physician:
            return membership
        membership.role = new_role
        membership.physician = physician
        membership.save(update_fields=["role", "physician"])
        audit_event(
            organization=organization,
            name="member.role_changed",
            actor=actor,
            obj=membership,
            summary=f"{membership.user.email}: {old_role.label} → {new_role.label}",
            data={"email": membership.user.email, "from": old_role.value, "to": new_role.value},
        )
    return membership


def membership_deactivate(*, membership: Membership, actor: User) -> Membership:
    """The member can no longer use the organization; their sessions and tokens end now."""
    organization = membership.organization
    with transaction.atomic(), scope(organization=organization):
        _lock_organization(organization)
        membership.refresh_from_db()
        if _is_last_administrator(membership):
            raise ValidationError(
                {
                    "membership": f"{membership.user.email} is the last "
                    "administrator: they cannot be deactivated."
                }
            )
        if not _membership_active_set(membership=membership, actor=actor, active=False):
            return membership
    user_access_end(membership.user)
    return membership


def membership_reactivate(*, membership: Membership, actor: User) -> Membership:
    organization = membership.organization
    with transaction.atomic(), scope(organization=organization):
        _membership_active_set(membership=membership, actor=actor, active=True)
    return membership


def _membership_active_set(*, membership: Membership, actor: User, active: bool) -> bool:
    """Turn the membership on or off and record it (``member.reactivated`` /
    ``member.deactivated``); False, and nothing recorded, when it already is so."""
    if membership.is_active == active:
        return False
    membership.is_active = active
    membership.save(update_fields=["is_active"])
    done = "Reactivated" if active else "Deactivated"
    audit_event(
        organization=membership.organization,
        name=f"member.{done.lower()}",
        actor=actor,
        obj=membership,
        summary=f"{done} {membership.user.email}",
        data={"email": membership.user.email, "role": membership.role},
    )
    return True


def membership_remove(*, membership: Membership, actor: User) -> None:
    """Remove the member from the organization (their account and other organizations stay);
    their sessions and tokens end now. The records they made keep their name in history."""
    organization = membership.organization
    user = membership.user
    with transaction.atomic(), scope(organization=organization):
        _lock_organization(organization)
        membership.refresh_from_db()
        if _is_last_administrator(membership):
            raise ValidationError(
                {"membership": f"{user.email} is the last administrator: they cannot be removed."}
            )
        audit_event(
            organization=organization,
            name="member.removed",
            actor=actor,
            obj=membership,
            summary=f"Removed {user.email} ({membership.get_role_display()})",
            data={"email": user.email, "role": membership.role},
        )
        membership.delete()
    user_access_end(user)


# --------------------------------------------------------------------------- single sign-on

SSO_FIELDS = ("name", "issuer", "client_id", "enabled", "email_domains")


def sso_update(
    *,
    organization: Organization,
    actor: User,
    issuer: str,
    client_id: str,
    client_secret: str = "",
    enabled: bool = True,
    email_domains: str = "",
    name: str = "",
) -> OIDCProvider:
    """Set the organization's OpenID Connect provider. An empty ``client_secret`` keeps the
    stored one; the secret is never shown, logged or put in the audit trail."""
    from django.core.validators import URLValidator

    issuer = (issuer or "").strip()
    try:
        URLValidator(schemes=["https", "http"])(issuer)
    except ValidationError:
        raise ValidationError(
            {
                "issuer": "Give the provider's issuer URL, such as "
                "https://login.example.org/realms/hospital."
            }
        ) from None
    if not (client_id or "").strip():
        raise ValidationError({"client_id": "The client id is required."})
    domains = [d.strip().lstrip("@").lower() for d in (email_domains or "").split(",") if d.strip()]
    bad = [d for d in domains if "." not in d or " " in d or "@" in d]
    if bad:
        raise ValidationError({"email_domains": f"Not an e-mail domain: {', '.join(bad)}."})
    provider = OIDCProvider.objects.filter(organization=organization).first()
    if provider is None and not client_secret:
        raise ValidationError({"client_secret": "The client secret is required."})
    with transaction.atomic():
        before = {f: getattr(provider, f) for f in SSO_FIELDS[:-1]} if provider is not None else {}
        before["email_domains"] = organization.email_domains
        provider = provider or OIDCProvider(organization=organization)
        provider.issuer = issuer
        provider.client_id = client_id.strip()
        provider.enabled = bool(enabled)
        if name:
            provider.name = name.strip()[:100]
        secret_changed = bool(client_secret)
        if secret_changed:
            provider.client_secret = client_secret
        provider.full_clean(exclude=["organization"])
        provider.save()
        organization.email_domains = ", ".join(domains)
        organization.save(update_fields=["email_domains"])
        after = {f: getattr(provider, f) for f in SSO_FIELDS[:-1]}
        after["email_domains"] = organization.email_domains
        changed = sorted(f for f in after if before.get(f) != after[f])
        if secret_changed:
            changed.append("client_secret")
        audit_event(
            organization=organization,
            name="sso.updated",
            actor=actor,
            obj=provider,
            summary=f"Single sign-on settings changed: {', '.join(changed) or 'none'}",
            data={"changed": changed},
        )
    return provider
