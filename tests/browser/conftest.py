"""Browser tests: Debian's Chromium driven by Playwright against a live Comanage.

The server is started as `make run` starts it: `runserver` plus a real Celery worker (kombu's
filesystem broker), once per test session (per xdist worker: each worker that runs browser tests
has its own server and database), on a throwaway database with the demo loaded: on PostgreSQL
(CI) a copy of the run's demo database (tests/demo_database.py), on SQLite a file migrated and
loaded with `seed_demo` (tests/browser/seed.py). One Chromium per session; each test gets a
fresh context, and a role that has signed in once (through the real form and its second factor)
is let in again with the cookies of that sign-in (``sign_in``) instead of typing its password and
a TOTP code for every test.

Screenshots cost more than the checks themselves, so a test saves one under
`test-artifacts/screenshots/` (kept by CI as an artefact) when it fails, and the page checks save
the page (at the width concerned) that has a problem. ``COMANAGE_SCREENSHOTS=all`` (or setting
``COMANAGE_SHOTS_DIR``) saves every screenshot as before, for a visual review.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from pytest_django import DjangoDbBlocker

from .seed import CHROMIUM, ROOT, make_var, seed, seed_shared, server_env, shared_folder

ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
AXE_DIR = Path(__file__).resolve().parent
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
# Every screenshot (a visual review) or only those of failures and of pages with a problem.
ALL_SHOTS = os.environ.get("COMANAGE_SCREENSHOTS", "").lower() == "all" or bool(
    os.environ.get("COMANAGE_SHOTS_DIR")
)
DEMO_PASSWORD = "comanage-demo-2026"  # noqa: S105 - the documented demo credential
# How long a step may take before it fails. Every wait is for a condition a person would wait
# for (a URL, an element, a job's status), never for network idleness or a fixed time, so a
# generous bound costs nothing on a fast machine and keeps a busy one from failing the journey.
WAIT_MS = 90_000

# The browser tests are two xdist groups (`--dist loadgroup`), so that with two workers each
# takes a share on its own server and database (see ``e2e``): the administrator's and the
# auditor's page crawls with page quality and smoke in one, the other roles' crawls and the
# journeys in the other. Every test stands on the seeded demo alone, so one server for all
# (``-n 0``, or both groups on one worker) works as well, and so does any spread over workers:
# pytest-xdist 3.8 marks a group by rewriting ``item._nodeid``, which pytest 9 no longer reads,
# so under pytest 9 `loadgroup` spreads these tests one by one like `load`.
BROWSER_A = pytest.mark.xdist_group("browser")
BROWSER_B = pytest.mark.xdist_group("browser-b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, timeout: float) -> dict:
    deadline = time.time() + timeout
    last: dict = {}
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - localhost
                return json.loads(response.read())
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = {"error": repr(exc)}
            if hasattr(exc, "read"):
                with contextlib.suppress(Exception):
                    last = json.loads(exc.read())
        time.sleep(0.25)
    raise RuntimeError(f"server not healthy at {url}: {last}")


def _axe_installed() -> bool:
    """axe-core is installed at the version package.json pins (a checkout that moved the pin
    installs it again; 4.14 runs the same rules about 40 % faster than 4.11 did)."""
    try:
        pinned = json.loads((AXE_DIR / "package.json").read_text())["devDependencies"]["axe-core"]
        installed = json.loads((AXE_JS.parent / "package.json").read_text())["version"]
    except (OSError, KeyError, ValueError):
        return False
    return AXE_JS.exists() and installed == pinned


def _ensure_axe() -> None:
    if _axe_installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        return
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent"],
        cwd=AXE_DIR,
        check=False,
        capture_output=True,
        timeout=300,
    )


def _seeded_copy(tmp_path_factory: pytest.TempPathFactory, workdir: Path) -> None:
    """Put a migrated database with the demo loaded (and its var/) in ``workdir``.

    Under xdist each worker that runs browser tests has its own server and database, but the
    demo is loaded once per run (tests/browser/seed.py: started in the background as the run
    starts), in a folder all workers share; each copies it, files and queued tasks included
    (nothing in it names its own folder: stored files are relative to the media root)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        seed(workdir)
        return
    shared = shared_folder(tmp_path_factory.getbasetemp().parent)
    seed_shared(shared)
    shutil.copy2(shared / "e2e.sqlite3", workdir / "e2e.sqlite3")
    shutil.copytree(shared / "var", workdir / "var")
    shutil.copy2(shared / "seed.log", workdir / "seed.log")


@contextlib.contextmanager
def _demo_on_postgres(
    demo: str, workdir: Path, blocker: DjangoDbBlocker
) -> Iterator[dict[str, str]]:
    """The server's environment on a copy of this worker's demo database (PostgreSQL), dropped
    at the end: the demo the other tests use, loaded once per run, instead of migrating and
    loading a SQLite one (a minute and a half of CPU on a 2-core machine). The demo was loaded
    under the test settings' password hasher, which the server's settings
    (tests/browser/server_settings.py) use too. The server reads the demo's stored files where
    the tests stored them."""
    from django.conf import settings

    from tests.demo_database import copy_database, drop_database

    name = f"{demo}_e2e"
    with blocker.unblock():
        copy_database(demo, name)
    url = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()
    make_var(workdir)
    try:
        yield server_env(workdir, database_url=url, media_root=Path(settings.MEDIA_ROOT))
    finally:
        with blocker.unblock():
            drop_database(name)


@pytest.fixture(scope="session")
def e2e(
    tmp_path_factory: pytest.TempPathFactory,
    demo_database: str | None,
    django_db_blocker: DjangoDbBlocker,
) -> Iterator[SimpleNamespace]:
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"Chromium not installed at {CHROMIUM} (apt-get install chromium-headless-shell)"
        )
    workdir = tmp_path_factory.mktemp("e2e")
    with contextlib.ExitStack() as stack:
        if demo_database is not None:  # PostgreSQL
            env = stack.enter_context(_demo_on_postgres(demo_database, workdir, django_db_blocker))
        else:
            env = server_env(workdir)
            _seeded_copy(tmp_path_factory, workdir)
        yield from _serve(workdir, env)


def _serve(workdir: Path, env: dict[str, str]) -> Iterator[SimpleNamespace]:
    """Run the web server and a Celery worker on ``env`` until the session ends."""
    port = _free_port()
    manage = [sys.executable, str(ROOT / "manage.py")]
    log = open(workdir / "server.log", "w")  # noqa: SIM115 - closed at teardown
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "comanage",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--pool",
            "solo",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        health = _wait_healthy(base_url + "/healthz", timeout=120)
        _ensure_axe()
        yield SimpleNamespace(
            base_url=base_url, env=env, workdir=workdir, health=health, log=workdir / "server.log"
        )
    finally:
        # The database and the broker's folder are thrown away, so the worker is killed: even
        # Celery's cold shutdown (SIGQUIT) took 3.4 s, at the end of every worker's run.
        for process, stop in ((web, signal.SIGTERM), (worker, signal.SIGKILL)):
            if process.poll() is None:
                os.killpg(process.pid, stop)
        for process in (web, worker):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session", autouse=True)
def _patient_expectations() -> None:
    """`expect(...)` waits 5 s by default; give it the same bound as the page's own waits."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
def browser(e2e) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """One Chromium for the session. After the server (``e2e``), which may use the database to
    set up: Playwright's synchronous API runs an event loop in this thread, in which Django
    refuses database calls."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                # One site (the test server), so no process per site and no spare renderer
                # kept warm: Chromium is a quarter of a run's CPU, and this takes about an
                # eighth off it (the administrator's crawl and page checks: 32-33 s of
                # Chromium CPU against 36-38 s).
                "--disable-site-isolation-trials",
                "--disable-features=site-per-process,IsolateOrigins,SpareRendererForSitePerProcess",
                "--renderer-process-limit=1",
            ],
        )
        yield chromium
        chromium.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """Keep each phase's report on the test item, so the ``page`` fixture knows at teardown
    whether the test failed (and only then spends a screenshot on it)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, e2e, request):  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 1360, "height": 900}, locale="en-US", timezone_id="America/New_York"
    )
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.console_errors = errors  # type: ignore[attr-defined]
    yield page
    report = getattr(request.node, "rep_call", None)
    failed = report is None or report.failed
    name = request.node.name.replace("/", "_").replace("[", "-").replace("]", "")
    try:
        if failed or ALL_SHOTS:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):  # a closed or crashed page: the report says why
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    finally:
        context.close()


_TOTP_SECRETS: dict[str, str] = {}
_LAST_STEP: dict[str, int] = {}


def totp_code(email: str) -> str:
    """A TOTP code for ``email``'s authenticator that the server has not yet accepted.

    The server accepts each 30-second step once and, as authenticators drift, the step either
    side of its own clock (django-otp's tolerance of 1). So when this step's code was used, the
    next step's code is offered instead of waiting up to 30 s for a fresh window; only a third
    code within one step waits. (The server runs in its own process, out of time-machine's
    reach, so the clock itself cannot be moved.)
    """
    import base64

    from django_otp.oath import TOTP

    key = base64.b32decode(_TOTP_SECRETS[email])
    while True:
        totp = TOTP(key, step=30, digits=6)
        now = totp.t()
        step = max(now, _LAST_STEP.get(email, -1) + 1)
        if step <= now + 1:
            break
        time.sleep(1)
    _LAST_STEP[email] = step
    totp.drift = step - now
    return f"{totp.token():06d}"


def pass_second_factor(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """On the 2FA page after the password: enrol an authenticator (reading the manual-entry
    key) or verify with it, then wait to be let through."""
    if "/2fa/setup/" in page.url:
        _TOTP_SECRETS[email] = page.locator("main code").first.inner_text().replace(" ", "")
    if "/2fa/" in page.url:
        page.locator("input[name=code]").fill(totp_code(email))
        page.locator("form:has(input[name=code]) button[type=submit]").click()
        page.wait_for_url(lambda url: "/2fa/" not in url)


def submit_credentials(page, e2e, email: str, password: str = DEMO_PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Fill and send the sign-in form; the caller waits for what should follow."""
    page.goto(e2e.base_url + "/account/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Sign in", exact=True).click()


# email -> the cookies of that user's last real sign-in (password and second factor).
_SIGNED_IN: dict[str, list] = {}


def login(page, e2e, email: str, password: str = DEMO_PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Sign in through the real form, passing the second factor where the role needs one, and
    wait until the sign-in pages are left behind. The session's cookies are kept for
    ``sign_in``."""
    submit_credentials(page, e2e, email, password)
    page.wait_for_url(lambda url: "/account/login/" not in url)
    pass_second_factor(page, email)
    _SIGNED_IN[email] = page.context.cookies(e2e.base_url)


def sign_in(page, e2e, email: str) -> None:  # type: ignore[no-untyped-def]
    """Be ``email``, signed in, on the page the role lands on: with the session of an earlier
    real sign-in (``login``) when there is one, else through the form. For tests of what comes
    after the sign-in; a test of the sign-in itself, or of something kept in one session (a
    report opened "in this session"), calls ``login``."""
    cookies = _SIGNED_IN.get(email)
    if cookies:
        page.context.add_cookies(cookies)
        page.goto(e2e.base_url + "/")
        if "/account/" not in urlsplit(page.url).path:
            return
        page.context.clear_cookies()  # the session has ended: sign in again
    login(page, e2e, email)


def shot(page, name: str) -> Path | None:  # type: ignore[no-untyped-def]
    """Save a named screenshot of the current page when every screenshot is asked for
    (``COMANAGE_SCREENSHOTS=all``); a failing test gets its own from the ``page`` fixture."""
    if not ALL_SHOTS:
        return None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@functools.cache
def _axe_source() -> str:
    return AXE_JS.read_text()


# axe-core gives each rule a fixed impact, and a violation of a rule carries that impact
# (axe-core 4.x, ``_finalizeRuleResult``; the version is pinned in package.json): a rule whose
# impact is not among those asked for can never report one that counts, so it is switched off
# instead of being run and filtered out (with the default, serious and critical: about 30 of
# axe's rules, such as region, landmark-* and heading-order, a seventh of a run). Rules with no
# impact of their own run. None when axe is not in the page yet (one round trip for both).
_AXE_RUN = """async impacts => {
  if (typeof window.axe !== 'object') return null;
  const rules = {};
  for (const rule of (axe._audit && axe._audit.rules) || [])
    if (rule.impact && !impacts.includes(rule.impact)) rules[rule.id] = {enabled: false};
  return await axe.run(document, {resultTypes: ['violations'], rules});
}"""


def preload_axe(page) -> None:  # type: ignore[no-untyped-def]
    """Have axe-core in every document ``page`` loads from now on, for a test that runs axe on
    each page it opens: the script is sent to the browser once, not with every page."""
    if AXE_JS.exists():
        page.add_init_script(path=str(AXE_JS))


def axe_violations(page, impacts=("serious", "critical")) -> list[dict]:  # type: ignore[no-untyped-def]
    """Run axe-core in the page (evaluate is not subject to the page's CSP) and return the
    violations of the given impacts."""
    if not AXE_JS.exists():
        pytest.fail("axe-core is not installed: run `npm install` in tests/browser")
    result = page.evaluate(_AXE_RUN, list(impacts))
    if result is None:  # injected once per document (``preload_axe`` or here)
        page.evaluate(_axe_source())
        result = page.evaluate(_AXE_RUN, list(impacts))
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
        if v["impact"] in impacts
    ]


def pass_step_up(page, email: str) -> None:  # type: ignore[no-untyped-def]
    """A signing action (counsel's approval, the CEO's authorisation) asks for a fresh code
    with the very request: wait for that page, give the code, and wait to be sent on."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Confirm with your authenticator")).to_be_visible()
    action_url = page.url
    page.locator("form input[autocomplete=one-time-code]").fill(totp_code(email))
    page.get_by_role("button", name="Confirm and sign").click()
    page.wait_for_url(lambda url: url != action_url)


# What every page visited must satisfy (issue 20), measured as drawn: the visible text (code
# elements and hashes aside) has no template syntax and no snake_case code; nothing is wider
# than the window outside a scroll box; no table cell cuts its content; chart text >= 11 px.
MEASURE = """() => {
  const hidden = el => el.closest('code, .hash, [hidden], .sr-only');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const parts = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || hidden(el)) continue;
    if (['SCRIPT', 'STYLE', 'TITLE', 'TEXTAREA'].includes(el.tagName)) continue;
    if (!el.getClientRects().length) continue;
    parts.push(n.textContent);
  }
  const scrollBox = el => el.closest('.table-wrap, [tabindex], pre, .chart');
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > innerWidth + 1 && !scrollBox(el))
    .slice(0, 5).map(el => el.tagName.toLowerCase() + '.' + el.className);
  const clipped = [...document.querySelectorAll('td, th')]
    .filter(c => c.getClientRects().length && c.scrollWidth > c.clientWidth + 1
      && getComputedStyle(c).overflowX !== 'visible')
    .slice(0, 5).map(c => c.innerText.trim().slice(0, 30));
  const sizes = [...document.querySelectorAll('svg text')].flatMap(el => {
    const box = el.getBoundingClientRect();
    const ctm = el.getScreenCTM();
    if (!ctm || box.width === 0 || !el.textContent.trim()) return [];
    const px = parseFloat(getComputedStyle(el).fontSize) * Math.hypot(ctm.a, ctm.b);
    return [[Math.round(px * 100) / 100, el.textContent.trim().slice(0, 40)]];
  });
  return {text: parts.join(' '), scrollWidth: document.documentElement.scrollWidth,
          width: innerWidth, wide, clipped, sizes};
}"""


# Django's default date format ("Jan. 1, 2025", "March 4, 2025"): a template that forgot the
# house style ("Jan 1, 2025").
OTHER_DATE = re.compile(
    r"\b(?:Jan\.|Feb\.|March|April|June|July|Aug\.|Sept\.|Oct\.|Nov\.|Dec\.) \d{1,2}, \d{4}\b"
)


def page_problems(page, label: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Everything a demanding reader would object to on the page as drawn now."""
    from tests.plain_words import problems as text_problems

    found = page.evaluate(MEASURE)
    out = [f"{label}: {p}" for p in text_problems(found["text"])]
    out += [f"{label}: date not in the one style {m!r}" for m in OTHER_DATE.findall(found["text"])]
    if found["scrollWidth"] > found["width"]:
        out.append(
            f"{label}: scrolls sideways ({found['scrollWidth']} > {found['width']}) {found['wide']}"
        )
    if found["clipped"]:
        out.append(f"{label}: table cells clipped {found['clipped']}")
    small = [(size, text) for size, text in found["sizes"] if size < 11 - 0.05]
    if small:
        out.append(f"{label}: chart text under 11 px {small[:4]}")
    return out


def check_widths(  # type: ignore[no-untyped-def]
    page, label: str, folder: Path, slug: str, widths=(1440, 390), axe_widths=None
) -> list[str]:
    """The page as loaded, held at each width in turn (the window resized, the page not loaded
    again: nothing in it depends on the width it was loaded at, the CSS reflows as a phone's
    would; the width the window already has comes first, so a walk that leaves each page at
    its last width resizes once per page, not twice): its problems (text, overflow, clipping,
    chart text) and axe's serious and critical violations (at ``axe_widths``, default every
    width). A page with a problem at a width is saved as ``<slug>-<width>.png`` under
    ``folder`` (every page with ``COMANAGE_SCREENSHOTS=all``)."""
    out: list[str] = []
    current = page.viewport_size
    for width in sorted(widths, key=lambda w: {"width": w, "height": 900} != current):
        if {"width": width, "height": 900} != current:
            page.set_viewport_size({"width": width, "height": 900})
        at = f"{label} @{width}"
        found = page_problems(page, at)
        if axe_widths is None or width in axe_widths:
            found += [
                f"{at}: axe {v['id']} ({v['impact']}) {v['nodes']}" for v in axe_violations(page)
            ]
        if found or ALL_SHOTS:
            folder.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(folder / f"{slug}-{width}.png"), full_page=True)
        out += found
    return out


def check_page(page, base_url: str, path: str, name: str, widths=(1440, 390)) -> list[str]:  # type: ignore[no-untyped-def]
    """Visit ``path`` once and hold it to ``check_widths`` at each width; screenshots of a
    page with a problem under test-artifacts/screenshots/page-quality/."""
    page.goto(base_url + path, wait_until="load")
    slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-{path}".lower()).strip("-")
    return check_widths(page, f"{name} {path}", ARTIFACTS / "page-quality", slug, widths)
