"""Lockout, session expiry, password strength, security headers, production settings."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse

from tests.security.helpers import pass_two_factor

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


def test_repeated_failures_lock_the_account_even_for_the_right_password(world, client):
    user = world.users["executive"]
    limit = settings.AXES_FAILURE_LIMIT
    for attempt in range(limit):
        response = client.post(reverse("login"), {"username": user.email, "password": "wrong"})
        if attempt < limit - 1:
            assert response.status_code == 200  # the form again, with an error
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    locked = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/o/riverside/").status_code == 302  # still signed out


def test_fewer_failures_than_the_limit_still_allow_the_right_password(world, client):
    user = world.users["executive"]
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post(reverse("login"), {"username": user.email, "password": "wrong"})
    response = client.post(reverse("login"), {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302


def test_a_session_ends_after_an_hour_of_inactivity_not_while_in_use(world, client):
    assert settings.SESSION_COOKIE_AGE == 3600
    client.post(
        reverse("login"), {"username": world.users["executive"].email, "password": PASSWORD}
    )
    start = dt.datetime.now(tz=dt.UTC)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(3):  # active: every request pushes the expiry forward
            clock.shift(dt.timedelta(minutes=50))
            response = client.get("/o/riverside/")
            assert not response.get("Location", "").startswith("/account/login/")
        clock.shift(dt.timedelta(minutes=61))
        response = client.get("/o/riverside/")
        assert response.status_code == 302
        assert response["Location"].startswith("/account/login/")


def test_a_weak_password_is_refused_on_change(world, client):
    user = world.users["executive"]
    client.force_login(user)
    for weak in ("password123", "12345678901", "executive-riverside"[:9], "Executive1"):
        response = client.post(
            reverse("password_change"),
            {"old_password": PASSWORD, "new_password1": weak, "new_password2": weak},
        )
        assert response.status_code == 200, weak
        user.refresh_from_db()
        assert user.check_password(PASSWORD), weak
    strong = "Tangerine-violin-harbour-42"
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": strong, "new_password2": strong},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(strong)


INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
INLINE_HANDLER = re.compile(rb"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


@pytest.mark.parametrize(
    ("who", "url"),
    [
        ("anonymous", "/account/login/"),
        ("anonymous", "/account/password/reset/"),
        ("counsel", "/o/riverside/audit/"),
        ("counsel", "/account/security/2fa/setup/"),
        ("executive", "/account/tokens/"),
        ("executive", "/account/password/change/"),
        ("anonymous", "/no-such-page/"),
    ],
)
def test_pages_carry_a_csp_without_inline_script(world, settings, who, url):
    settings.COMANAGE_REQUIRE_2FA = True
    client = world.client(who)
    if who == "counsel" and "2fa" not in url:
        pass_two_factor(client, world.users["counsel"])
    response = client.get(url)
    expected = 404 if url == "/no-such-page/" else 200
    assert response.status_code == expected, (url, response.status_code)
    csp = dict(
        part.strip().split(" ", 1)
        for part in response["Content-Security-Policy"].split(";")
        if part.strip()
    )
    assert csp["script-src"] == "'self'"
    assert "unsafe-inline" not in csp["default-src"]
    assert "data:" in csp["img-src"]
    assert csp["frame-ancestors"] == "'self'" and csp["object-src"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert not INLINE_SCRIPT.search(response.content), url
    assert not INLINE_HANDLER.search(response.content), url


def _production_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
        "SECRET_KEY": "k" * 20 + "Zq8#vN2$wL5@pR9!xT3&yH6*mJ1^bC4%dF7",
        "DATABASE_URL": "postgres://comanage:pw@db.internal:5432/comanage",
        "REDIS_URL": "redis://redis.internal:6379/0",
        "ALLOWED_HOSTS": "comanage.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://comanage.example.org",
    }


def test_check_deploy_is_clean_under_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_cookies_are_secure_and_2fa_cannot_be_switched_off():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.COMANAGE_REQUIRE_2FA, "
        "s.DEBUG)"
    )
    env = {**_production_env(), "REQUIRE_2FA": "false"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True", "True", "True", "False"]
