"""User text in a PDF is text: it never becomes markup, and the renderer reaches nothing.

An agreement named ``P</style><link rel=attachment href=file:///proc/self/environ><style>``
once closed the page-header ``<style>`` and had WeasyPrint attach the server's environment to
every report; ``url(http://127.0.0.1:…)`` had the worker fetch internal URLs. Each PDF kind
(adjudication report, physician statement, FMV summary) is rendered here from a world whose
organization, agreement and physician carry such names, with a local HTTP server counting the
requests it receives and a secret file that must never reach the document.
"""

from __future__ import annotations

import base64
import io
import shutil
import tempfile
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django_scopes import scopes_disabled
from pypdf import PdfReader

from adjudication import pdf, services
from agreements import fees
from agreements import models as am
from agreements.models import AgreementKind
from comanage.core.models import Organization
from comanage.core.pdf import BASE_URL, PdfResourceRefused, render_pdf, safe_url_fetcher
from tests import factories as f
from tests.adjudication.conftest import YEAR, co_management_payload

SECRET = "COMANAGE-SECRET-7d1f0c"
# A 1x1 PNG: an <img src=file://…> that worked would put an image XObject in the PDF.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


class _Counter(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        body = f"body{{background:red}} {SECRET}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server():  # type: ignore[no-untyped-def]
    """A server on 127.0.0.1 that records every request (none may arrive)."""
    handler = type("Counter", (_Counter,), {"hits": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler.hits
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def secrets_on_disk():  # type: ignore[no-untyped-def]
    """A secret file and an image, at short paths (the names that point at them fit a field)."""
    folder = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))
    secret = folder / "s.txt"
    secret.write_text(f"SECRET_KEY={SECRET}\n")
    png = folder / "p.png"
    png.write_bytes(PIXEL)
    yield secret, png
    shutil.rmtree(folder)


@pytest.fixture
def hostile(world, http_server, secrets_on_disk):  # type: ignore[no-untyped-def]
    """Example C whose organization, agreement and physicians carry hostile names."""
    server, _hits = http_server
    secret, png = secrets_on_disk
    port = server.server_address[1]
    names = {
        "org": f"R</style><link rel=attachment href=file://{secret}><style>",
        "agreement": (
            f"P</style><img src=file://{png}><style>"
            f"*{{background:url(http://127.0.0.1:{port}/css)}}"
        ),
        "first": f"<img src=http://127.0.0.1:{port}/img>",
        "last": f"</style><link rel=attachment href=file://{secret}>",
    }
    assert all(len(v) <= 100 for k, v in names.items() if k in ("first", "last"))
    assert all(len(v) <= 200 for v in names.values())
    with scopes_disabled():
        Organization.objects.filter(pk=world.org.pk).update(name=names["org"])
        am.Physician.objects.filter(pk=world.physician.pk).update(
            first_name=names["first"], last_name=names["last"]
        )
    world.org.refresh_from_db()
    org = world.org
    agreement = f.AgreementFactory(
        organization=org, name=names["agreement"], kind=AgreementKind.CO_MANAGEMENT
    )
    f.TermsFactory(agreement=agreement)
    year = f.ProgrammeYearFactory(agreement=agreement)
    f.FMVOpinionFactory(agreement=agreement)
    duty = f.DutyFactory(agreement=agreement, required_monthly_hours=Decimal("67"))
    with scopes_disabled():
        world.physician.refresh_from_db()
        for physician in (world.physician, world.other_physician):
            f.ParticipationFactory(agreement=agreement, physician=physician)
            for month in fees.months_between(*YEAR):
                sheet = am.TimeSheet.objects.create(
                    organization=org,
                    agreement=agreement,
                    physician=physician,
                    month=month,
                    status=am.TimeSheetStatus.APPROVED,
                )
                am.TimeEntry.objects.create(
                    organization=org,
                    timesheet=sheet,
                    duty=duty,
                    hours=Decimal("67.5"),
                    description="Duties",
                )
    with world.scope():
        outcome = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year),
            user=world.users["administrator"],
        )
    return outcome, names


def _documents(world, outcome) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Every PDF kind the product renders, through the code the services and views call."""
    with world.scope():
        report = services.report_render(report=outcome.report)
        documents = {
            "report": bytes(report.pdf),
            "fmv": pdf.render_fmv(pdf.fmv_context(run=report.run)),
        }
        for context in pdf.statement_contexts(report=report):
            documents[f"statement-{context['physician']['id']}"] = pdf.render_statement(context)
    return documents


def _squeezed(text: str) -> str:
    return "".join(text.split())


def _assert_inert(content: bytes, hits: list[str]) -> PdfReader:
    reader = PdfReader(io.BytesIO(content))
    assert reader.attachments == {}, "a file was attached to the PDF"
    assert "/EmbeddedFiles" not in str(reader.trailer["/Root"].get("/Names", {}))
    assert all(len(page.images) == 0 for page in reader.pages), "an image was fetched"
    assert SECRET.encode() not in content
    assert hits == [], f"the renderer made HTTP requests: {hits}"
    return reader


def test_every_pdf_kind_prints_hostile_names_as_text_and_fetches_nothing(
    world, hostile, http_server
):  # type: ignore[no-untyped-def]
    outcome, names = hostile
    _server, hits = http_server
    documents = _documents(world, outcome)
    assert {"report", "fmv"} < set(documents) and len(documents) == 4
    for kind, content in documents.items():
        reader = _assert_inert(content, hits)
        text = _squeezed("\n".join(page.extract_text() for page in reader.pages))
        # The names are shown as typed, in the body and in the running header.
        assert _squeezed(names["agreement"]) in text, kind
        assert text.count(_squeezed(names["org"])) >= len(reader.pages), kind
        assert text.count(_squeezed(names["agreement"])) >= len(reader.pages) + 1, kind
        if kind.startswith("statement") and str(world.physician.pk) in kind:
            assert _squeezed(names["last"]) in text


def test_the_header_shows_the_hostile_name_on_every_page(world, hostile):  # type: ignore[no-untyped-def]
    outcome, names = hostile
    content = _documents(world, outcome)["report"]
    reader = PdfReader(io.BytesIO(content))
    assert len(reader.pages) > 1
    for page in reader.pages:
        text = _squeezed(page.extract_text())
        assert _squeezed(names["org"]) in text
        assert "Adjudicationreport·" + _squeezed(names["agreement"]) in text


HOSTILE_HTML = """<!doctype html><html><head>
<link rel="attachment" href="file://{secret}">
<link rel="attachment" href="../../../../../../{secret}">
<link rel="stylesheet" href="http://127.0.0.1:{port}/sheet.css">
<style>@import url(http://127.0.0.1:{port}/import.css);
body {{ background: url(http://127.0.0.1:{port}/bg.png); }}
@font-face {{ font-family: x; src: url(http://127.0.0.1:{port}/font.woff); }}</style>
</head><body><p>Visible text</p>
<img src="file://{png}"><img src="http://127.0.0.1:{port}/img.png"><img src="{png_relative}">
<object data="file://{secret}"></object><embed src="http://127.0.0.1:{port}/embed">
<svg width="10" height="10"><image href="file://{png}" width="10" height="10"/>
<image href="http://127.0.0.1:{port}/svg.png" width="10" height="10"/></svg>
<img src="data:image/svg+xml;base64,{svg_b64}">
<a rel="attachment" href="file://{secret}">attached link</a>
</body></html>"""


def test_the_renderer_itself_refuses_files_and_network(http_server, secrets_on_disk):  # type: ignore[no-untyped-def]
    """Defence in depth: even raw hostile markup handed to render_pdf reaches nothing."""
    server, hits = http_server
    secret, png = secrets_on_disk
    port = server.server_address[1]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="10" height="10"><image xlink:href="file://{png}" width="10" height="10"/>'
        f'<image href="http://127.0.0.1:{port}/nested.png" width="10" height="10"/></svg>'
    )
    html = HOSTILE_HTML.format(
        secret=secret,
        png=png,
        port=port,
        png_relative=f"../../../../../..{png}",
        svg_b64=base64.b64encode(svg.encode()).decode(),
    )
    content = render_pdf(html)
    reader = _assert_inert(content, hits)
    assert "Visible text" in reader.pages[0].extract_text()


def test_the_renderer_draws_data_uris_and_static_files(http_server):  # type: ignore[no-untyped-def]
    """What the product does use still works: a data: image (the logo) and its own static."""
    _server, hits = http_server
    logo = f'<img src="data:image/png;base64,{base64.b64encode(PIXEL).decode()}">'
    content = render_pdf(f"<p>Logo</p>{logo}")
    assert len(PdfReader(io.BytesIO(content)).pages[0].images) == 1
    # The static favicon (an SVG, drawn as vectors) adds its drawing to the page.
    plain = render_pdf("<p>Logo</p>")
    favicon = render_pdf(f'<p>Logo</p><img src="{settings.STATIC_URL}favicon.svg" width="20">')
    assert len(favicon) > len(plain) + 100
    assert hits == []


class TestSafeURLFetcher:
    def test_it_refuses_file_urls(self, secrets_on_disk):  # type: ignore[no-untyped-def]
        secret, _png = secrets_on_disk
        for url in (
            f"file://{secret}",
            "file:///etc/passwd",
            "FILE:///etc/hostname",
            "file://localhost/etc/passwd",
        ):
            with pytest.raises(PdfResourceRefused):
                safe_url_fetcher()(url)

    def test_it_refuses_network_schemes_without_connecting(self, http_server):  # type: ignore[no-untyped-def]
        server, hits = http_server
        port = server.server_address[1]
        for url in (
            f"http://127.0.0.1:{port}/x",
            f"https://127.0.0.1:{port}/x",
            f"ftp://127.0.0.1:{port}/x",
            "http://169.254.169.254/latest/meta-data/",
            f"gopher://127.0.0.1:{port}/x",
            "jar:file:///etc/passwd!/",
            f"//127.0.0.1:{port}/x",
            "/etc/passwd",
        ):
            with pytest.raises(PdfResourceRefused):
                safe_url_fetcher()(url)
        assert hits == []

    def test_it_refuses_paths_that_leave_the_static_files(self):  # type: ignore[no-untyped-def]
        for path in (
            "static/../comanage/settings/base.py",
            "static/%2e%2e/manage.py",
            "static/css/../../../manage.py",
            "static/..%2f..%2fmanage.py",
            "manage.py",
            "etc/passwd",
            "static/",
            "static/does-not-exist.css",
            "media/branding/logo.png",
            "static/%2fetc%2fpasswd",
            "static//etc/passwd",
        ):
            with pytest.raises(PdfResourceRefused):
                safe_url_fetcher()(BASE_URL + path)
        # Same path, another origin: refused too.
        with pytest.raises(PdfResourceRefused):
            safe_url_fetcher()("https://example.org/static/css/app.css")

    def test_it_serves_data_urls(self):  # type: ignore[no-untyped-def]
        response = safe_url_fetcher()("data:text/plain;base64," + base64.b64encode(b"hi").decode())
        assert response.read() == b"hi"

    def test_it_serves_the_products_own_static_files(self):  # type: ignore[no-untyped-def]
        response = safe_url_fetcher()(BASE_URL + "static/css/app.css")
        expected = (Path(settings.BASE_DIR) / "comanage/static/css/app.css").read_bytes()
        assert response.read() == expected
        assert response.content_type == "text/css"


def test_no_module_renders_html_to_pdf_outside_the_safe_helper():  # type: ignore[no-untyped-def]
    """Every render goes through comanage.core.pdf (its fetcher); no other WeasyPrint entry."""
    root = Path(settings.BASE_DIR)
    offenders = []
    for path in root.rglob("*.py"):
        relative = path.relative_to(root).as_posix()
        if relative.startswith((".venv/", "tests/", "node_modules/")) or "/." in relative:
            continue
        if relative == "comanage/core/pdf.py":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if (
            ("from weasyprint import" in text and ("HTML" in text or "CSS" in text))
            or "weasyprint.HTML" in text
            or "weasyprint.CSS" in text
            or ".write_pdf(" in text
        ):
            offenders.append(relative)
    assert offenders == []


def test_a_branding_colour_that_is_not_a_hex_colour_never_reaches_the_stylesheet():  # type: ignore[no-untyped-def]
    org = Organization(
        name="X", slug="x", primary_colour="red;}</style><p>x", accent_colour="#2A9D8F"
    )
    branding = pdf._branding(org)
    assert branding["primary"] == "#1f4e79" and branding["accent"] == "#2A9D8F"
