"""Production: every secret and endpoint from the environment; `check --deploy` clean."""

from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .env import env_bool, env_int, env_secret_key, env_url

DEBUG = False
COMANAGE_PRODUCTION = True  # seed_demo refuses to run here unless forced
SECRET_KEY = env_secret_key("SECRET_KEY")
_database_url = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql"))  # required
if (urlparse(_database_url).password or "").lower() in {"change-me", "changeme", "password"}:
    raise ImproperlyConfigured(
        "Environment variable DATABASE_URL has a placeholder password (POSTGRES_PASSWORD from "
        ".env.example?); set a real one."
    )
env_url("REDIS_URL", schemes=("redis", "rediss"))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# The container's own health check calls http://127.0.0.1:8000/healthz: no redirect for it, and
# HealthCheckHostMiddleware answers it for a loopback Host that ALLOWED_HOSTS does not list.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page's meta tag, not the cookie
COMANAGE_REQUIRE_2FA = True  # not switchable in production
OIDC_VERIFY_SSL = True
# Before CommonMiddleware, which rejects a Host that ALLOWED_HOSTS does not list.
MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.common.CommonMiddleware"),
    "comanage.core.healthcheck.HealthCheckHostMiddleware",
)
# The API schema and docs map every endpoint: signed-in users only unless explicitly opened.
COMANAGE_API_DOCS_PUBLIC = env_bool("COMANAGE_API_DOCS_PUBLIC", False)
# Webhook URLs must be public HTTPS addresses in production, whatever the environment says.
COMANAGE_WEBHOOKS_ALLOW_PRIVATE = False
