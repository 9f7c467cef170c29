"""An organization's own settings, edited by its administrators (and installation staff): name,
short name, colours, e-mail domains, time zone and logo.

The logo is a PNG or JPEG of at most ``LOGO_MAX_BYTES``, accepted only when it decodes as what
it claims to be (no SVG: it is a document that can carry script and fetch URLs). It is stored
under ``branding/<organization id>/``, served to the organization's members through a
permission-checked view, and embedded in PDFs as a ``data:`` URI (the only kind of resource
``comanage.core.pdf``'s fetcher serves besides static files).
"""

from __future__ import annotations

import base64
import io
import secrets
import zoneinfo
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction

from comanage.core.models import Organization, User

from .services import audit_event

LOGO_MAX_BYTES = 512 * 1024
LOGO_MAX_SIDE = 2000
LOGO_FORMATS = {"PNG": ("png", "image/png"), "JPEG": ("jpg", "image/jpeg")}

EDITABLE = (
    "name",
    "short_name",
    "primary_colour",
    "accent_colour",
    "email_domains",
    "restrict_to_domains",
    "time_zone",
)


def logo_validate(content: bytes) -> tuple[str, str]:
    """(extension, MIME type) of a logo that decodes as PNG or JPEG within the limits; else a
    ``ValidationError`` on ``logo`` saying why."""
    from PIL import Image, UnidentifiedImageError

    if not content:
        raise ValidationError({"logo": "The logo file is empty."})
    if len(content) > LOGO_MAX_BYTES:
        raise ValidationError(
            {
                "logo": f"The logo is {len(content) // 1024} KB; at most "
                f"{LOGO_MAX_BYTES // 1024} KB is accepted."
            }
        )
    try:
        with Image.open(io.BytesIO(content)) as probe:
            kind = probe.format or ""
            width, height = probe.size
            if kind not in LOGO_FORMATS:
                raise ValidationError(
                    {"logo": "The logo must be a PNG or JPEG image (SVG and others are refused)."}
                )
            if width > LOGO_MAX_SIDE or height > LOGO_MAX_SIDE:
                raise ValidationError(
                    {
                        "logo": f"The logo is {width}×{height} pixels; at most "
                        f"{LOGO_MAX_SIDE}×{LOGO_MAX_SIDE} is accepted."
                    }
                )
        with Image.open(io.BytesIO(content)) as image:
            image.load()  # decodes every pixel: a truncated or forged file fails here
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError(
            {"logo": "The logo could not be read as a PNG or JPEG image."}
        ) from None
    return LOGO_FORMATS[kind]


def logo_data_uri(organization: Organization) -> str:
    """The stored logo as a ``data:`` URI (for PDFs), its type read from its content."""
    if not organization.logo:
        return ""
    try:
        with organization.logo.open("rb") as handle:
            content = handle.read()
        _ext, mime = logo_validate(content)
    except (OSError, ValueError, ValidationError):
        return ""
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def organization_settings_update(
    *,
    organization: Organization,
    actor: User,
    logo: bytes | None = None,
    remove_logo: bool = False,
    **changes: Any,
) -> Organization:
    """Change the organization's settings (``EDITABLE`` fields) and logo; audited."""
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ValidationError(f"Not a setting: {', '.join(unknown)}.")
    if "time_zone" in changes and changes["time_zone"] not in zoneinfo.available_timezones():
        raise ValidationError(
            {"time_zone": f"“{changes['time_zone']}” is not a time zone (such as America/Chicago)."}
        )
    if "email_domains" in changes:
        domains = [
            d.strip().lstrip("@").lower()
            for d in (changes["email_domains"] or "").split(",")
            if d.strip()
        ]
        bad = [d for d in domains if "." not in d or " " in d or "@" in d]
        if bad:
            raise ValidationError({"email_domains": f"Not an e-mail domain: {', '.join(bad)}."})
        changes["email_domains"] = ", ".join(domains)
    for text in ("name", "short_name"):
        if text in changes:
            changes[text] = (changes[text] or "").strip()
    logo_kind = logo_validate(logo) if logo is not None else None
    before = {f: getattr(organization, f) for f in EDITABLE}
    with transaction.atomic():
        for field, value in changes.items():
            setattr(organization, field, value)
        organization.full_clean(exclude=["logo", "case_id_key"])
        changed = sorted(f for f in EDITABLE if getattr(organization, f) != before[f])
        old_logo = organization.logo.name if organization.logo else ""
        if logo is not None and logo_kind is not None:
            # (upload_to adds "branding/")
            name = f"{organization.pk}/logo-{secrets.token_hex(6)}.{logo_kind[0]}"
            organization.logo.save(name, ContentFile(logo), save=False)
            changed.append("logo")
        elif remove_logo and old_logo:
            organization.logo = ""
            changed.append("logo")
        # An earlier logo's file stays: the organization's history names it.
        organization.save()
        audit_event(
            organization=organization,
            name="organization.settings_changed",
            actor=actor,
            obj=organization,
            summary="Organization settings changed: " + (", ".join(changed) or "none"),
            data={"changed": changed},
        )
    return organization
