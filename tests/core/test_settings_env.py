import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from comanage.settings.env import env_bool, env_int, env_secret_key, env_url


def test_a_malformed_boolean_stops_start_up_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEBUG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="DEBUG='maybe'"):
        env_bool("DEBUG", False)


def test_a_malformed_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("SESSION_COOKIE_AGE", "ten")
    with pytest.raises(ImproperlyConfigured, match="SESSION_COOKIE_AGE"):
        env_int("SESSION_COOKIE_AGE", 60)


def test_a_missing_required_variable_is_named(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is required"):
        env_int("SECRET_KEY")


def test_a_database_url_with_a_wrong_scheme_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql2://nope")
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        env_url("DATABASE_URL", schemes=("postgres", "sqlite"))


def test_production_settings_refuse_to_start_without_a_secret(tmp_path):
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
        "DATABASE_URL": "postgres://x@localhost/db",
        "REDIS_URL": "redis://localhost:6379/0",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


# --- Production's SECRET_KEY and the container's health check --------------------------------

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "kT3v9Qz-8Lr_Xw2Pn5Jm7Hs4Fd6Gb1Yc0Na8Ue3Wi5Oq9Rt2Zx7Cv4Bn6Ml1Kj"


def _example_secret_key() -> str:
    """The SECRET_KEY value .env.example ships (as published before it was blanked)."""
    return "change-me-to-at-least-fifty-random-characters-0123456789abcdefghij"


@pytest.mark.parametrize(
    "value",
    [
        _example_secret_key(),
        "x" * 49 + "yz",  # long enough, but 3 different characters
        "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",  # 4 different characters
        "Ab3$kT9!qZ",  # random, but short
        "django-insecure-" + "Ab3kT9qZx7Lm2Pw5Rn8Vc1Jh4Gf6Ds0Ye3Uo9Ti2",  # Django's dev marker
        "dev-insecure-key-change-me" + "Ab3kT9qZx7Lm2Pw5Rn8Vc1Jh4Gf6Ds",
    ],
)
def test_production_secret_key_refuses_placeholders_and_weak_keys(monkeypatch, value):
    monkeypatch.setenv("SECRET_KEY", value)
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY") as caught:
        env_secret_key("SECRET_KEY")
    assert value not in str(caught.value)  # the message never repeats the secret


def test_production_secret_key_accepts_a_random_key(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", GOOD_KEY)
    assert env_secret_key("SECRET_KEY") == GOOD_KEY


def test_env_example_ships_no_usable_secrets():
    values = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["SECRET_KEY"] == "" and values["POSTGRES_PASSWORD"] == ""


def _production(code: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
        "SECRET_KEY": GOOD_KEY,
        "ALLOWED_HOSTS": "comanage.example.org",
        # Nothing listens on port 1: the health page reports degraded (503), quickly.
        "DATABASE_URL": "postgres://comanage:s3cret@127.0.0.1:1/comanage",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_production_start_up_refuses_the_example_secret_key():
    result = _production("import django; django.setup()", SECRET_KEY=_example_secret_key())
    assert result.returncode != 0
    assert "ImproperlyConfigured: Environment variable SECRET_KEY" in result.stderr


def test_production_start_up_refuses_the_example_database_password():
    result = _production(
        "import django; django.setup()",
        DATABASE_URL="postgres://comanage:change-me@db:5432/comanage",
    )
    assert result.returncode != 0
    assert "Environment variable DATABASE_URL has a placeholder password" in result.stderr


HEALTH_PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client()
def get(path, host):
    response = client.get(path, HTTP_HOST=host)
    return [response.status_code, response.get("Location"), response.get("Content-Type")]
print(json.dumps({
    "health_loopback": get("/healthz", "127.0.0.1:8000"),
    "health_localhost": get("/healthz", "localhost"),
    "health_public": get("/healthz", "comanage.example.org"),
    "health_other_host": get("/healthz", "evil.example"),
    "page_loopback": get("/account/login/", "127.0.0.1:8000"),
    "page_public": get("/account/login/", "comanage.example.org"),
}))
"""


def test_the_container_health_check_passes_under_production_settings():
    """docker-compose's web health check: GET http://127.0.0.1:8000/healthz inside the container.
    It is neither redirected to https (301) nor refused for its Host (400); every other page
    still is, and another Host still gets 400 on /healthz."""
    result = _production(HEALTH_PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for name in ("health_loopback", "health_localhost", "health_public"):
        status, _location, content_type = seen[name]
        assert status in (200, 503), (name, seen[name])  # 503: nothing listens on port 1
        assert content_type == "application/json", (name, seen[name])
    assert seen["health_other_host"][0] == 400
    assert seen["page_loopback"][0] == 400  # a loopback Host reaches /healthz and nothing else
    assert seen["page_public"][:2] == [301, "https://comanage.example.org/account/login/"]


def test_the_compose_health_check_calls_the_exempt_path_on_loopback():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    test = compose["services"]["web"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "http://127.0.0.1:8000/healthz" in test[-1]
    compile(test[-1], "healthcheck", "exec")  # the python -c program is valid Python


def test_library_progress_logging_is_off_by_default():
    """WeasyPrint logs every step of every PDF at INFO ("Step 1 - Fetching…", 163 lines while
    the demo loads); fontTools likewise. Warnings still show."""
    import logging

    for name in ("weasyprint", "weasyprint.progress", "fontTools.subset"):
        logger = logging.getLogger(name)
        assert not logger.isEnabledFor(logging.INFO), name
        assert logger.isEnabledFor(logging.WARNING), name
