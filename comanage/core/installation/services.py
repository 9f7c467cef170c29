"""Installation staff's work: bringing a hospital onto the installation, and taking it off.

Installation staff are superusers or users with ``User.is_installation_admin``: a flag of the
installation, not a role inside any organization (they see no organization's data through it).
"""

from __future__ import annotations

import zoneinfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_scopes import scopes_disabled

from comanage.core.models import Invitation, Membership, Organization, Role, User
from comanage.core.people.services import audit_event, invitation_create, user_access_end
from comanage.core.selectors import user_may_sign_in


def is_installation_staff(user: User | None) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or getattr(user, "is_installation_admin", False))
    )


def organization_create(
    *,
    name: str,
    slug: str,
    admin_email: str,
    actor: User | None,
    short_name: str = "",
    time_zone: str = "America/New_York",
    email_domains: str = "",
    restrict_to_domains: bool = False,
    primary_colour: str = "",
    accent_colour: str = "",
    base_url: str | None = None,
) -> tuple[Organization, Invitation, str]:
    """Create an organization and invite its first administrator (the e-mail carries the
    link). Returns the organization, the invitation and the link's raw token."""
    if time_zone not in zoneinfo.available_timezones():
        raise ValidationError(
            {"time_zone": f"“{time_zone}” is not a time zone (such as America/Chicago)."}
        )
    if not (admin_email or "").strip():
        raise ValidationError({"admin_email": "Give the first administrator's e-mail address."})
    domains = ", ".join(
        d.strip().lstrip("@").lower() for d in (email_domains or "").split(",") if d.strip()
    )
    organization = Organization(
        name=(name or "").strip(),
        slug=(slug or "").strip(),
        short_name=(short_name or "").strip(),
        time_zone=time_zone,
        email_domains=domains,
        restrict_to_domains=restrict_to_domains,
    )
    if primary_colour:
        organization.primary_colour = primary_colour
    if accent_colour:
        organization.accent_colour = accent_colour
    organization.full_clean()  # name, slug (and its uniqueness), colours
    with transaction.atomic():
        organization.save()
        audit_event(
            organization=organization,
            name="organization.created",
            actor=actor,
            obj=organization,
            summary=f"{organization.name} created on the installation",
            data={"slug": organization.slug, "admin_email": admin_email.strip().lower()},
        )
        try:
            invitation, raw = invitation_create(
                organization=organization,
                email=admin_email,
                role=Role.ADMINISTRATOR,
                actor=actor,
                base_url=base_url,
            )
        except ValidationError as exc:  # the administrator's address: name the form's field
            raise ValidationError({"admin_email": exc.messages}) from None
    return organization, invitation, raw


def organization_deactivate(*, organization: Organization, actor: User | None) -> Organization:
    """Nobody of the organization can sign in to it or use it with a token any more; its data
    stays. Members who belong nowhere else lose their sessions and tokens now; the others'
    next request to it is refused (the tenant check's cache follows the organizations'
    version, bumped by this save)."""
    if not organization.is_active:
        return organization
    with transaction.atomic():
        organization.is_active = False
        organization.deactivated_at = timezone.now()
        organization.save(update_fields=["is_active", "deactivated_at"])
        audit_event(
            organization=organization,
            name="organization.deactivated",
            actor=actor,
            obj=organization,
            summary=f"{organization.name} deactivated",
        )
    with scopes_disabled():
        users = list(User.objects.filter(memberships__organization=organization).distinct())
    for user in users:
        if not user_may_sign_in(user):
            user_access_end(user)
    return organization


def organization_reactivate(*, organization: Organization, actor: User | None) -> Organization:
    if organization.is_active:
        return organization
    with transaction.atomic():
        organization.is_active = True
        organization.deactivated_at = None
        organization.save(update_fields=["is_active", "deactivated_at"])
        audit_event(
            organization=organization,
            name="organization.reactivated",
            actor=actor,
            obj=organization,
            summary=f"{organization.name} reactivated",
        )
    return organization


def organization_summaries() -> list[dict]:
    """Every organization with its member count and first administrator, for the staff page."""
    with scopes_disabled():
        rows = []
        for organization in Organization.objects.defer("case_id_key").order_by("name"):
            members = Membership.objects.filter(organization=organization, is_active=True)
            rows.append(
                {
                    "organization": organization,
                    "members": members.count(),
                    "administrators": [
                        m.user.email
                        for m in members.filter(role=Role.ADMINISTRATOR).select_related("user")
                    ],
                }
            )
    return rows
