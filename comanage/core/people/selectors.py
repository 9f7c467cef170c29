"""Reads for the People pages and the API: members with their sign-in facts, invitations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django_otp.plugins.otp_totp.models import TOTPDevice

from comanage.core.models import Invitation, Membership, OIDCProvider, Organization


@dataclass
class Person:
    membership: Membership
    last_login: Any
    two_factor: bool
    sign_in: str  # "SSO", "Password" or "SSO or password"

    @property
    def user(self) -> Any:
        return self.membership.user


def _sso_domains(organization: Organization) -> list[str]:
    provider = OIDCProvider.objects.filter(organization=organization, enabled=True).first()
    return provider.domains() if provider is not None else []


def people_of(*, organization: Organization, include_inactive: bool = True) -> list[Person]:
    """The organization's members (inside its scope), with last sign-in, 2FA and how they
    sign in."""
    memberships = list(
        Membership.objects.select_related("user", "physician").order_by(
            "user__last_name", "user__first_name", "user__email"
        )
    )
    if not include_inactive:
        memberships = [m for m in memberships if m.is_active]
    with_device = set(
        TOTPDevice.objects.filter(
            user__in=[m.user_id for m in memberships], confirmed=True
        ).values_list("user_id", flat=True)
    )
    sso_domains = _sso_domains(organization)
    people = []
    for m in memberships:
        sso = m.user.email.rpartition("@")[2] in sso_domains
        password = m.user.has_usable_password()
        sign_in = (
            "SSO or password"
            if sso and password
            else "SSO"
            if sso
            else "Password"
            if password
            else "None yet"
        )
        people.append(Person(m, m.user.last_login, m.user_id in with_device, sign_in))
    return people


def person_of(*, membership: Membership) -> Person:
    return next(
        p
        for p in people_of(organization=membership.organization)
        if p.membership.pk == membership.pk
    )


def invitations_open(*, organization: Organization) -> list[Invitation]:
    """Invitations not yet accepted or withdrawn (expired ones too: they can be re-sent)."""
    return list(
        Invitation.objects.select_related("invited_by", "physician").filter(
            accepted_at__isnull=True, revoked_at__isnull=True
        )
    )
