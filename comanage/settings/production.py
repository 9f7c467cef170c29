"""Production: every secret and endpoint from the environment; `check --deploy` clean."""

from .base import *  # noqa: F403
from .env import env_bool, env_int, env_str, env_url

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("dev-insecure"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "Environment variable SECRET_KEY must be at least 50 random characters.")
env_url("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql"))  # required in production
env_url("REDIS_URL", schemes=("redis", "rediss"))

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
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
# The API schema and docs map every endpoint: signed-in users only unless explicitly opened.
COMANAGE_API_DOCS_PUBLIC = env_bool("COMANAGE_API_DOCS_PUBLIC", False)
