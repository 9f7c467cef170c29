"""The production stage's scenario runs only against a server that
``scripts/ci/production_stage.py`` started (``COMANAGE_PRODUCTION_STAGE_URL``); without one it
is skipped. The stage itself refuses a run in which anything was skipped."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

STAGE_URL = os.environ.get("COMANAGE_PRODUCTION_STAGE_URL", "").rstrip("/")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "production-stage" / "screenshots"
# The TLS-terminating proxy in front of production sets this header; the stage plays that part.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
DEMO_PASSWORD = "comanage-demo-2026"  # noqa: S105 - the documented demo credential
# The bound on each wait; every wait is for a condition (a URL, an element, a status), so a
# generous bound costs nothing when the machine is quick and spares a busy one.
WAIT_MS = 90_000


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if STAGE_URL:
        return
    skip = pytest.mark.skip(
        reason="production stage only: run `make prod-stage` (sets COMANAGE_PRODUCTION_STAGE_URL)"
    )
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


class Authenticator:
    """The authenticator app of one user: the key read from the enrolment page, and the code it
    shows now. A code is accepted once per 30-second step, so for a second code within the same
    step it waits, as a person waits for the app to show the next code."""

    def __init__(self, key_text: str) -> None:
        self.key = base64.b32decode(key_text.replace(" ", ""))
        self.last_step: int | None = None

    def code(self) -> str:
        from django_otp.oath import TOTP

        totp = TOTP(self.key, step=30, digits=6)
        while totp.t() == self.last_step:
            time.sleep(0.5)
            totp = TOTP(self.key, step=30, digits=6)
        self.last_step = totp.t()
        return f"{totp.token():06d}"


class ApiClient:
    """A token client: plain HTTP with ``Authorization: Bearer``, no cookies, no browser."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the stage's loopback server
            self.base_url + path,
            data=data,
            method=method,
            headers={
                **PROXY_HEADERS,
                "Authorization": f"Bearer {self.token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            try:
                return exc.code, json.loads(payload)
            except ValueError:
                return exc.code, payload.decode(errors="replace")[:500]

    def get(self, path: str) -> Any:
        status, payload = self.request("GET", path)
        assert status == 200, (path, status, payload)
        return payload

    def poll(self, path: str, done: Callable[[Any], bool], *, timeout: float = 120) -> Any:
        """GET ``path`` until ``done(payload)``, as a client watches a job's status."""
        deadline = time.monotonic() + timeout
        payload = self.get(path)
        while not done(payload):
            assert time.monotonic() < deadline, f"{path} did not finish: {payload}"
            time.sleep(1)
            payload = self.get(path)
        return payload


@pytest.fixture(scope="session")
def stage_url() -> str:
    return STAGE_URL


@pytest.fixture(scope="session", autouse=True)
def _patient_expectations() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)  # its default is 5 s


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    # Run by the stage, a missing browser is a failure, never a skip.
    assert Path(CHROMIUM).exists(), f"Chromium not installed at {CHROMIUM}"
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
            ],
        )
        yield chromium
        chromium.close()


class Actor:
    """One person at their own browser (own cookies), with their authenticator once enrolled."""

    def __init__(self, browser: Any, base_url: str, email: str, name: str) -> None:
        self.email = email
        self.name = name
        self.context = browser.new_context(
            base_url=base_url,
            extra_http_headers=PROXY_HEADERS,
            viewport={"width": 1360, "height": 900},
            locale="en-US",
            timezone_id="America/New_York",
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.server_errors: list[str] = []
        self.page.on(
            "response",
            lambda r: (
                self.server_errors.append(f"{r.request.method} {r.url} -> {r.status}")
                if r.status >= 500
                else None
            ),
        )
        self.authenticator: Authenticator | None = None

    def shot(self, label: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}.png"), full_page=True)


@pytest.fixture(scope="session")
def actors(browser: Any, stage_url: str) -> Iterator[dict[str, Actor]]:
    people = {
        name: Actor(browser, stage_url, f"{name}@riverside.example", name)
        for name in ("administrator", "counsel", "ceo")
    }
    yield people
    for actor in people.values():
        actor.context.close()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    report = getattr(request.node, "rep_call", None)
    people = request.node.funcargs.get("actors") if hasattr(request.node, "funcargs") else None
    if report is not None and report.failed and people:
        for actor in people.values():
            with contextlib.suppress(Exception):  # a screenshot is a courtesy
                actor.shot(f"failed-{re.sub(r'[^a-z0-9_]', '_', request.node.name)}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report
