"""Organization settings (issue 18): its administrators edit name, short name, colours, e-mail
domains, time zone and logo on one page; the logo is a PNG or JPEG validated by decoding, kept
per organization and shown to its members only; every change is audited."""

from __future__ import annotations

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from comanage.core.models import BusinessEvent, Organization
from comanage.core.people.organization import LOGO_MAX_BYTES, logo_data_uri

ORG = "/o/riverside"


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (40, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (31, 78, 121)).save(buffer, format=kind)
    return buffer.getvalue()


def _form(**extra):  # type: ignore[no-untyped-def]
    return {
        "name": "Riverside Medical Center",
        "short_name": "Riverside",
        "primary_colour": "#123456",
        "accent_colour": "#abcdef",
        "time_zone": "America/Chicago",
        "email_domains": "Riverside.example, @rmc.example",
        **extra,
    }


@pytest.fixture(autouse=True)
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path


def test_an_administrator_edits_every_setting_on_one_page_and_it_is_audited(world):
    client = world.client("administrator")
    assert client.get(f"{ORG}/settings/").status_code == 200
    logo = SimpleUploadedFile("logo.png", image_bytes(), content_type="image/png")
    response = client.post(f"{ORG}/settings/", {**_form(), "logo": logo})
    assert response.status_code == 302, response.content.decode()[:2000]
    org = Organization.objects.get(pk=world.org.pk)
    assert (org.short_name, org.primary_colour, org.accent_colour, org.time_zone) == (
        "Riverside",
        "#123456",
        "#abcdef",
        "America/Chicago",
    )
    assert org.email_domains == "riverside.example, rmc.example"
    assert org.logo.name.startswith(f"branding/{org.pk}/") and org.logo.name.endswith(".png")
    with world.scope():
        event = BusinessEvent.objects.filter(
            organization=org, name="organization.settings_changed"
        ).get()
    assert {"logo", "time_zone", "primary_colour", "email_domains"} <= set(event.data["changed"])
    # Shown on pages (colours and the logo), to members.
    page = client.get(f"{ORG}/settings/").content.decode()
    assert "--brand: #123456" in page
    assert f'src="{ORG}/settings/logo/"' in page


def test_the_logo_is_served_to_members_only(world):
    client = world.client("administrator")
    png = image_bytes()
    client.post(
        f"{ORG}/settings/",
        {**_form(), "logo": SimpleUploadedFile("l.png", png, content_type="image/png")},
    )
    served = world.client("physician").get(f"{ORG}/settings/logo/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served.content == png
    assert world.client("outsider").get(f"{ORG}/settings/logo/").status_code == 404
    assert world.client("anonymous").get(f"{ORG}/settings/logo/").status_code == 302


def test_a_jpeg_is_accepted_and_stored_as_jpeg(world):
    client = world.client("administrator")
    jpeg = SimpleUploadedFile("photo.png", image_bytes("JPEG"), content_type="image/png")
    assert client.post(f"{ORG}/settings/", {**_form(), "logo": jpeg}).status_code == 302
    org = Organization.objects.get(pk=world.org.pk)
    assert org.logo.name.endswith(".jpg")  # by its content, not its name
    assert logo_data_uri(org).startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "could not be read as a PNG or JPEG",
        ),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "could not be read as a PNG or JPEG"),
        (image_bytes("GIF"), "must be a PNG or JPEG"),
        (image_bytes("PNG", (2100, 10)), "at most 2000×2000"),
        (b"", "empty"),
    ],
)
def test_a_logo_that_is_not_a_small_png_or_jpeg_is_refused_and_nothing_changes(
    world, content, words
):
    client = world.client("administrator")
    upload = SimpleUploadedFile("logo.png", content, content_type="image/png")
    response = client.post(f"{ORG}/settings/", {**_form(short_name="Changed"), "logo": upload})
    assert response.status_code == 400
    assert words in response.content.decode()
    org = Organization.objects.get(pk=world.org.pk)
    assert not org.logo and org.short_name != "Changed"


def test_an_oversized_logo_is_refused_by_size(world):
    noisy = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))  # incompressible
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > LOGO_MAX_BYTES
    upload = SimpleUploadedFile("big.png", buffer.getvalue(), content_type="image/png")
    response = world.client("administrator").post(f"{ORG}/settings/", {**_form(), "logo": upload})
    assert response.status_code == 400 and "at most 512 KB" in response.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("primary_colour", "red", "hex colour"),
        ("time_zone", "Mars/Olympus", "Select a valid choice"),
        ("email_domains", "not a domain", "Not an e-mail domain"),
        ("name", "", "required"),
    ],
)
def test_bad_settings_are_named_and_nothing_changes(world, field, value, words):
    response = world.client("administrator").post(
        f"{ORG}/settings/", _form(short_name="Changed", **{field: value})
    )
    assert response.status_code == 400 and words in response.content.decode()
    assert Organization.objects.get(pk=world.org.pk).short_name != "Changed"


def test_only_the_organizations_administrators_edit_it(world):
    assert world.client("counsel").get(f"{ORG}/settings/").status_code == 403
    assert world.client("executive").post(f"{ORG}/settings/", _form()).status_code == 403
    assert world.client("outsider").get(f"{ORG}/settings/").status_code == 404
    assert world.client("outsider").post(f"{ORG}/settings/", _form()).status_code == 404
    assert Organization.objects.get(pk=world.org.pk).primary_colour != "#123456"


def test_a_logo_stored_around_the_form_is_not_embedded_unless_it_decodes(world):
    from django.core.files.base import ContentFile

    org = Organization.objects.get(pk=world.org.pk)
    org.logo.save("branding/x/logo.png", ContentFile(b"<svg onload=alert(1)>"), save=True)
    assert logo_data_uri(org) == ""
    assert world.client("executive").get(f"{ORG}/settings/logo/").status_code == 404


def test_pages_show_dates_in_the_organizations_time_zone(world):
    import datetime as dt

    from django.utils import timezone

    from comanage.core.audit import event_record

    moment = dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC)  # 7:30 pm the day before in Los Angeles
    with world.scope():
        event = event_record(organization=world.org, name="report.approved", actor=None)
        BusinessEvent.objects.filter(pk=event.pk).update(occurred_at=moment)
    client = world.client("administrator")
    org = Organization.objects.get(pk=world.org.pk)
    org.time_zone = "America/Los_Angeles"
    org.save()
    page = client.get(f"{ORG}/audit/").content.decode()
    assert "Mar 1, 2026 7:30 PM" in page and "Mar 2, 2026" not in page
    org.time_zone = "Asia/Tokyo"
    org.save()
    page = client.get(f"{ORG}/audit/").content.decode()
    assert "Mar 2, 2026 12:30 PM" in page and "Mar 1, 2026" not in page
    assert timezone.get_current_timezone_name() != "Asia/Tokyo"  # only inside the request
