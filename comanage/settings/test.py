"""Tests: PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set, SQLite otherwise."""

import os
from typing import Any, cast
from urllib.parse import urlparse

from .base import *  # noqa: F403
from .base import CACHES, DATABASES, IS_POSTGRES, REDIS_URL, VAR_DIR

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"  # noqa: S105
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
if not REDIS_URL:
    CELERY_BROKER_URL = "memory://"
    CACHES = {**CACHES, "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif os.environ.get("PYTEST_XDIST_WORKER", "").startswith("gw"):
    # Each parallel test worker gets its own Redis database: a test that empties the cache
    # (FLUSHDB) or the broker must never wipe another worker's keys or queued messages.
    _worker = int(os.environ["PYTEST_XDIST_WORKER"][2:])
    _parsed = urlparse(REDIS_URL)
    _db = (int(_parsed.path.lstrip("/") or 0) - _worker) % 16
    REDIS_URL = _parsed._replace(path=f"/{_db}").geturl()
    CELERY_BROKER_URL = REDIS_URL
    CACHES = {**CACHES, "default": {**CACHES["default"], "LOCATION": REDIS_URL}}
if IS_POSTGRES:
    # A commit does not wait for its WAL record to reach the disk (what a crash of the test
    # database server could lose is a test run): the live-server, transactional and
    # template-building work commits thousands of times. Nothing a test checks depends on it.
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c synchronous_commit=off".strip()
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "test-media"
AXES_ENABLED = True
# Off ONLY so that the other suites' clients need not pass the 2FA gate; tests/security switches
# it on with the `settings` fixture (tests/security/helpers.py helps a client pass it).
COMANAGE_REQUIRE_2FA = False
REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "10000/minute"}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# The suite's schema readers (tests/api/test_schema.py, the API fuzzer) fetch it anonymously;
# tests/security/test_no_store.py checks the signed-in-only default of base and production.
COMANAGE_API_DOCS_PUBLIC = True
COMANAGE_WEBHOOKS_ALLOW_PRIVATE = True  # deliveries to a local test server


class InvalidTemplateVariable(str):
    """A template that prints a variable its context lacks fails the test at once, instead of
    showing an empty cell to a reader (Django substitutes ``string_if_invalid % name``).
    ``{% if %}`` and ``{% for %}`` still treat a missing variable as empty, as in production."""

    def __mod__(self, name: object) -> str:
        from django.template import TemplateSyntaxError

        raise TemplateSyntaxError(f"The template prints a variable its context lacks: {name!r}")


def _loud(template: dict[str, Any]) -> dict[str, Any]:
    options = cast(dict[str, Any], template["OPTIONS"])
    return {**template, "OPTIONS": {**options, "string_if_invalid": InvalidTemplateVariable("%s")}}


TEMPLATES = [_loud(t) for t in TEMPLATES]  # noqa: F405
