"""The report PDF is dated in the organization's time zone (its approval trail no longer shows
the next day in UTC) and carries the organization's logo as a data: URI (issue 18, issue 20)."""

import datetime as dt
import io

from django.core.files.base import ContentFile
from PIL import Image

from adjudication import pdf, services
from adjudication.models import ReportTransition
from comanage.core.models import Organization
from tests.adjudication.conftest import advance


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 30), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_pdf_approval_trail_is_in_the_organizations_time_zone(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    evening = dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC)  # 9:30 pm on March 1 in Chicago
    with world.scope():
        ReportTransition.objects.filter(report=report).update(at=evening)
        org = Organization.objects.get(pk=world.org.pk)
        org.time_zone = "America/Chicago"
        org.save()
        report.refresh_from_db()
        shown = {t["at_display"] for t in pdf.report_context(report=report)["transitions"]}
        assert shown == {"Mar 1, 2026 9:30 PM CST"}
        org.time_zone = "Asia/Tokyo"
        org.save()
        report.refresh_from_db()
        shown = {t["at_display"] for t in pdf.report_context(report=report)["transitions"]}
        assert shown == {"Mar 2, 2026 12:30 PM JST"}


def test_the_report_page_trail_is_in_the_organizations_time_zone(world, recorded):
    report = advance(world, recorded.report, "review", "submit")
    with world.scope():
        ReportTransition.objects.filter(report=report).update(
            at=dt.datetime(2026, 3, 2, 3, 30, tzinfo=dt.UTC)
        )
    org = Organization.objects.get(pk=world.org.pk)
    org.time_zone = "America/Chicago"
    org.save()
    page = world.client("executive").get(f"/o/{world.org.slug}/adjudication/reports/{report.pk}/")
    assert "Mar 1, 2026 9:30 PM" in page.content.decode()  # one date style: 12-hour clock


def test_the_report_pdf_embeds_the_logo_as_a_data_uri(world, recorded, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    with world.scope():
        without = bytes(services.report_render(report=recorded.report).pdf)
        org = Organization.objects.get(pk=world.org.pk)
        org.logo.save(f"branding/{org.pk}/logo.png", ContentFile(_png()), save=True)
        recorded.report.refresh_from_db()
        context = pdf.report_context(report=recorded.report)
        assert context["branding"]["logo"].startswith("data:image/png;base64,")
        with_logo = pdf.render_report(context)
    assert b"/Subtype /Image" in with_logo
    assert b"/Subtype /Image" not in without
