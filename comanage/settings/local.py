"""Development: `make run`. SQLite, filesystem broker, console e-mail."""

from .base import *  # noqa: F403
from .env import env_bool

DEBUG = env_bool("DEBUG", True)
STORAGES = {  # no manifest needed when serving from runserver
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# The local demo lets administrators, counsel and CEOs in without an authenticator app;
# REQUIRE_2FA=true turns the gate on (production always has it on; the browser tests use it).
COMANAGE_REQUIRE_2FA = env_bool("REQUIRE_2FA", False)
# The API docs are open on a developer's machine (COMANAGE_API_DOCS_PUBLIC=false to try the
# production behaviour).
COMANAGE_API_DOCS_PUBLIC = env_bool("COMANAGE_API_DOCS_PUBLIC", True)
COMANAGE_WEBHOOKS_ALLOW_PRIVATE = True  # deliveries to a local test server
