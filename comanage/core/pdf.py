"""The one way the product turns HTML into a PDF: WeasyPrint with a fetcher that reaches nothing.

Every PDF (adjudication report, physician statement, FMV summary) carries user text: an
organization's, an agreement's, a physician's name. Escaping keeps that text out of markup, but
a renderer that follows ``file:``/``http:`` URLs turns one escaping slip into reading the
server's files into the document (``<link rel=attachment href=file:///proc/self/environ>``) or
into requests to internal services. So the renderer itself refuses: :func:`safe_url_fetcher`
serves ``data:`` URLs and the product's own static files, nothing else, and relative URLs
resolve against a base that is not the filesystem (:data:`BASE_URL`), so ``../../etc/passwd``
never becomes a path.

Callers use :func:`render_pdf`; nothing else in the product imports WeasyPrint's ``HTML``
(``tests/security/test_pdf_injection.py`` checks).
"""

from __future__ import annotations

import mimetypes
import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

#: Relative URLs in a document resolve against this origin, which the fetcher maps onto the
#: static files (``/static/...``) and refuses otherwise. ``.invalid`` is reserved (RFC 2606):
#: nothing on any network answers to it, and the fetcher never opens a connection anyway.
BASE_URL = "https://comanage-pdf.invalid/"

_FONT_CONFIG: Any = None


class PdfResourceRefused(ValueError):
    """A document asked for a resource outside ``data:`` and the product's static files."""


def _static_path(url: str) -> Path | None:
    """The file under the product's static files that ``url`` names, or None.

    Only ``BASE_URL`` + ``STATIC_URL`` + a path with no ``..`` segments, found through Django's
    static-file finders, and only when the real file (symlinks resolved) lies in a static
    folder.
    """
    from django.conf import settings
    from django.contrib.staticfiles import finders
    from django.core.exceptions import SuspiciousFileOperation

    base = urlsplit(BASE_URL)
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        return None
    prefix = "/" + (settings.STATIC_URL or "/static/").strip("/") + "/"
    path = unquote(parts.path)
    if not path.startswith(prefix) or "\\" in path or "\x00" in path:
        return None
    relative = path[len(prefix) :]
    normal = posixpath.normpath(relative)
    if normal != relative or normal.startswith(("/", "..")) or ".." in normal.split("/"):
        return None
    try:
        found = finders.find(normal)
    except SuspiciousFileOperation:
        return None
    if not isinstance(found, str):
        return None
    real = Path(found).resolve()
    return (
        real
        if real.is_file() and any(real.is_relative_to(root) for root in _static_roots())
        else None
    )


def _static_roots() -> list[Path]:
    """Every folder static files are served from: STATICFILES_DIRS, each app's ``static/``
    and STATIC_ROOT, with symlinks resolved."""
    from django.apps import apps
    from django.conf import settings

    roots = [
        Path(d[1] if isinstance(d, tuple | list) else d)
        for d in getattr(settings, "STATICFILES_DIRS", [])
    ]
    roots += [Path(app.path) / "static" for app in apps.get_app_configs()]
    if settings.STATIC_ROOT:
        roots.append(Path(settings.STATIC_ROOT))
    return [root.resolve() for root in roots]


def _fetcher_class() -> type:
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class SafeURLFetcher(URLFetcher):
        """WeasyPrint's fetcher limited to ``data:`` and the product's static files."""

        def __init__(self) -> None:
            super().__init__(
                allowed_protocols=("data",), allow_redirects=False, fail_on_errors=False, timeout=1
            )

        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme == "data":
                return super().fetch(url, headers)
            path = _static_path(url)
            if path is None:
                raise PdfResourceRefused(f"PDF resource refused: {url[:200]}")
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": mime})

    return SafeURLFetcher


_FETCHER: Any = None


def safe_url_fetcher() -> Any:
    """The shared fetcher instance (a WeasyPrint ``URLFetcher``): ``data:`` and static only."""
    global _FETCHER
    if _FETCHER is None:
        _FETCHER = _fetcher_class()()
    return _FETCHER


def font_config() -> Any:
    """One FontConfiguration per process: a fresh one per document reloads fontconfig and
    Pango's font map, which was most of a statement's time and a third of the report's
    (bench/adjudication_bench.py). Documents use system fonts only (no @font-face), so sharing
    it changes no byte of the output."""
    global _FONT_CONFIG
    if _FONT_CONFIG is None:
        from weasyprint.text.fonts import FontConfiguration

        _FONT_CONFIG = FontConfiguration()
    return _FONT_CONFIG


def render_pdf(html: str, *, metadata: dict[str, str] | None = None, **write_options: Any) -> bytes:
    """``html`` as PDF bytes, resources limited to ``data:`` and the product's static files.

    ``metadata`` sets the document's fields (``title``, ``created``, ``modified``,
    ``generator``…); ``write_options`` go to WeasyPrint's ``write_pdf`` (``pdf_identifier``).
    """
    from weasyprint import HTML

    document = HTML(string=html, base_url=BASE_URL, url_fetcher=safe_url_fetcher()).render(
        font_config=font_config()
    )
    for name, value in (metadata or {}).items():
        setattr(document.metadata, name, value)
    return bytes(document.write_pdf(**write_options))
