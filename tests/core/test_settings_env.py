import pytest
from django.core.exceptions import ImproperlyConfigured

from comanage.settings.env import env_bool, env_int, env_url


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

    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
           "DATABASE_URL": "postgres://x@localhost/db", "REDIS_URL": "redis://localhost:6379/0"}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
