"""Every page each role can reach, as a demanding reader sees it, at 1440 and 390 px wide.

Per role one sign-in, then a walk from the page the role lands on: every link in the menu and in
the pages' main content that stays inside the organization (downloads, sign-out and the API's
machine pages aside) is opened, and each page is held to ``page_problems`` (no template syntax
or snake_case code in the visible text, nothing wider than the window, no clipped table cell,
chart text at least 11 px as drawn) at both widths, to axe-core (no serious or critical
violation, at 1440 px) and to its status (a link that leads to an error page is a broken
link). Each page is loaded once and checked at both widths by resizing the window. Pages that
differ only by a record's id are visited for the first id met, so the walk covers every kind
of page without opening every agreement (and stays within a CI run's time). A full-page
screenshot of every page and width with a problem is saved under
``$COMANAGE_SHOTS_DIR/<role>/`` (default ``test-artifacts/screenshots/crawl/``); setting
``COMANAGE_SHOTS_DIR`` (or ``COMANAGE_SCREENSHOTS=all``) saves every page and width, for a
visual review.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import ARTIFACTS, BROWSER_A, BROWSER_B, check_widths, preload_axe, sign_in

# Each role's crawl in the xdist group (conftest) that balances the two workers' shares: the
# administrator's and the auditor's are the longest.
pytestmark = [pytest.mark.browser]
SHARE_A = ("administrator", "auditor")

SHOTS = Path(os.environ.get("COMANAGE_SHOTS_DIR", str(ARTIFACTS / "crawl")))
ROLES = ["administrator", "executive", "counsel", "ceo", "physician", "auditor"]
WIDTHS = (1440, 390)
# axe-core runs at the desktop width on every page of the walk (its rules read the markup, the
# names and the colours, which the phone width does not change; a run costs about 0.2 s, most
# of the walk's time). The phone width's layout (overflow, clipping, chart text) is checked on
# every page, and axe runs at both widths on each role's main pages (test_page_quality.py).
AXE_WIDTHS = (1440,)
# Same pattern (ids replaced) is visited at most this many times; the whole walk at most
# MAX_PAGES pages per role, so a role with thousands of records still finishes.
PER_PATTERN = 1
MAX_PAGES = 100
# Not pages a person reads: files, sign-out, the API's schema and machine endpoints, the
# Django admin, and links that start a download of a stored document.
SKIP = re.compile(
    r"\.(csv|pdf|xlsx|xls|json|zip|txt|parquet)$|/logout/|/account/logout|/api/(?!docs/$)"
    r"|^/admin/|/download/?$|/files?/\d+/?$|/documents/\d+/(file|download)"
)
LINKS = """() => [...document.querySelectorAll('nav a[href], main a[href], header a[href]')]
  .filter(a => !a.hasAttribute('download') && !a.closest('[hidden]'))
  .map(a => a.href)"""


MENU = """() => [...document.querySelectorAll('nav[aria-label=Main] a[href]')]
  .map(a => [a.textContent.trim(), new URL(a.href).pathname])"""


def menu_problems(page, role: str) -> list[str]:  # type: ignore[no-untyped-def]
    """One menu entry per destination and one destination per entry."""
    entries = page.evaluate(MENU)
    out = []
    for kind, index in (("destination", 1), ("entry", 0)):
        counts: dict[str, list[str]] = {}
        for entry in entries:
            counts.setdefault(entry[index], []).append(entry[1 - index])
        out += [
            f"{role} menu: {kind} {key!r} more than once ({others})"
            for key, others in counts.items()
            if len(others) > 1
        ]
    return out


def _pattern(path: str) -> str:
    """Pages of one kind: ids replaced; every record's history page is one kind of page."""
    path = re.sub(r"/\d+(?=/|$)", "/{id}", path)
    return re.sub(r"/history/[\w-]+/", "/history/*/", path)


def _slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


def _follow(href: str, base: str) -> str | None:
    """The path to visit for a link, or None for a link the walk leaves alone."""
    parts = urlsplit(href)
    if f"{parts.scheme}://{parts.netloc}" != base or SKIP.search(parts.path):
        return None
    return parts.path


def _visit(page, url: str) -> tuple[int | None, str | None]:  # type: ignore[no-untyped-def]
    """Open ``url``; (status, content type), or (None, None) when it was a download."""
    try:
        response = page.goto(url, wait_until="load")
    except Exception as exc:  # noqa: BLE001 - a link that starts a download is not a page
        if "Download is starting" in str(exc):
            return None, None
        raise
    if response is None:
        return None, None
    return response.status, response.headers.get("content-type", "")


def _check(page, role: str, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    return check_widths(
        page, f"{role} {path}", SHOTS / role, _slug(path), WIDTHS, axe_widths=AXE_WIDTHS
    )


def crawl(page, base: str, role: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """Walk every page reachable from where ``role`` landed: (pages visited, problems)."""
    start = urlsplit(page.url).path
    queue, seen, per_pattern = [start], {start}, {_pattern(start): 1}
    visited: list[str] = []
    problems: list[str] = []
    while queue and len(visited) < MAX_PAGES:
        path = queue.pop(0)
        status, kind = _visit(page, base + path)
        if status is None or not (kind or "").startswith("text/html"):
            continue
        if status >= 400:
            problems.append(f"{role} {path}: HTTP {status} (linked from a page of this role)")
            continue
        visited.append(path)
        problems += _check(page, role, path)
        for href in page.evaluate(LINKS):
            target = _follow(href, base)
            if target is None or target in seen:
                continue
            pattern = _pattern(target)
            if per_pattern.get(pattern, 0) >= PER_PATTERN:
                continue
            seen.add(target)
            per_pattern[pattern] = per_pattern.get(pattern, 0) + 1
            queue.append(target)
    return visited, problems


@pytest.mark.slow
@pytest.mark.parametrize(
    "role", [pytest.param(r, marks=BROWSER_A if r in SHARE_A else BROWSER_B) for r in ROLES]
)
def test_every_page_a_role_reaches_reads_well_at_both_widths(page, e2e, role):
    sign_in(page, e2e, f"{role}@riverside.example")
    preload_axe(page)  # every page of the walk is checked by axe
    menu = menu_problems(page, role)
    visited, problems = crawl(page, e2e.base_url, role)
    problems = menu + problems
    (SHOTS / role).mkdir(parents=True, exist_ok=True)
    (SHOTS / role / "pages.txt").write_text("\n".join(visited) + "\n")
    (SHOTS / role / "problems.txt").write_text("\n".join(problems) + "\n")
    assert len(visited) >= 2, f"{role} reached only {visited}"
    assert problems == [], "\n".join(problems)
