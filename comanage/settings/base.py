"""Settings shared by every environment. Configured only through environment variables."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import dj_database_url

from .env import env_bool, env_int, env_list, env_str, env_url

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("COMANAGE_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "simple_history",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "comanage.core",
    "comanage.workspaces",
    "agreements",
    "indicators",
    "savings",
    "adjudication",
    "comanage.core.webhooks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "comanage.core.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "comanage.core.middleware.SlidingSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "axes.middleware.AxesMiddleware",
    "comanage.core.middleware.TenantMiddleware",
    "comanage.core.security.middleware.TwoFactorMiddleware",
]

ROOT_URLCONF = "comanage.urls"
WSGI_APPLICATION = "comanage.wsgi.application"
ASGI_APPLICATION = "comanage.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "comanage.core.context_processors.tenant",
            ],
            "builtins": ["comanage.core.templatetags.money"],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_url(
            "DATABASE_URL",
            f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
            schemes=("sqlite", "postgres", "postgresql", "pgsql"),
        ),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
    )
}
IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "core.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "comanage.core.security.oidc.OrganizationOIDCBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Sessions end after inactivity (issue: security).
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60, minimum=60)
SESSION_SAVE_EVERY_REQUEST = False  # SlidingSessionMiddleware refreshes it once a minute
# Database sessions read through the cache (a minute at most): comanage.core.sessions.
SESSION_ENGINE = "comanage.core.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"

# Two-factor authentication (TOTP) for administrators, counsel and CEOs, and step-up at signing
# (comanage.core.security.otp). Off only in the general test settings.
COMANAGE_REQUIRE_2FA = env_bool("REQUIRE_2FA", True)
OTP_TOTP_ISSUER = "Comanage"
OTP_TOTP_THROTTLE_FACTOR = 1

# Single sign-on: one OpenID Connect provider per organization (core.OIDCProvider), chosen by
# the e-mail domain. Endpoints and clients come from that model, never from settings.
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_CREATE_USER = False  # never: only existing members of the organization may sign in
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
OIDC_STORE_ACCESS_TOKEN = False
OIDC_STORE_ID_TOKEN = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = False

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "comanage" / "static"]
# Uploaded files live outside the web root and are served only through permission-checked views.
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport (no server needed).
REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss"))
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # With acks_late, a message whose worker died is delivered again once it has been
    # unacknowledged for ``visibility_timeout`` seconds (checked every restore interval ×
    # throttle). A redelivery while the first worker is still alive is harmless: the job's
    # lease (comanage.core.jobs.job_start) lets only one live worker run it.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=1),
        "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10, minimum=1),
        "unacked_restore_throttle": env_int("CELERY_UNACKED_RESTORE_THROTTLE", 10, minimum=1),
    }
    # Redis down = cache misses, not server errors (comanage.core.cache).
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "comanage.core.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "comanage"),
        }
    }
else:
    _broker_dir = VAR_DIR / "broker"
    # The filesystem transport needs its folders before anything is queued (seeding included).
    for _folder in ("queue", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
# {% cache %} fragments (rendered HTML keyed on an organization's data version, or the sidebar
# keyed on role) live in each worker's memory: a hit costs no round trip, and a deploy never
# serves HTML rendered by the old templates. The data version itself always comes from
# "default". (Without this alias, Django's {% cache %} falls back to "default".)
CACHES["template_fragments"] = {
    "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
    "LOCATION": "comanage-template-fragments",
    "OPTIONS": {"MAX_ENTRIES": 1000},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "compliance-daily": {
        "task": "agreements.tasks.compliance_scan_all",
        "schedule": 60 * 60 * 24,
    },
    "jobs-requeue-stale": {
        "task": "comanage.core.tasks.jobs_requeue_stale",
        "schedule": 60 * 5,
    },
}

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Comanage <no-reply@comanage.local>")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "comanage.core.api_auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "comanage.core.api_auth.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "EXCEPTION_HANDLER": "comanage.core.api.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    # Every JSON response: money with two decimals, percentages with four (one rule).
    "DEFAULT_RENDERER_CLASSES": [
        "comanage.core.api_renderers.JSONRenderer",
        "comanage.core.api_renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["comanage.core.api_auth.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_RATE_LIMIT", "600/minute")},
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Comanage API",
    "DESCRIPTION": "Co-management agreements and shared-savings programmes.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "DEFAULT_GENERATOR_CLASS": "comanage.core.schema.SchemaGenerator",
    # Swagger UI's files are served by comanage.core.api_views.docs_asset (offline, no CDN).
    "SWAGGER_UI_DIST": "/api/docs/assets",
    "SWAGGER_UI_FAVICON_HREF": "/api/docs/assets/favicon-32x32.png",
    # The token typed into "Authorize" is not kept in localStorage (any script on the origin,
    # or the next user of a shared workstation, could read it there).
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": False},
    # The schema and docs only for signed-in users unless COMANAGE_API_DOCS_PUBLIC.
    "SERVE_PERMISSIONS": ["comanage.core.api_docs.DocsAccess"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "comanage.core.schema.postprocess_error_responses",
    ],
    # Choice sets whose field names collide across apps ("status", "kind") get stable names.
    "ENUM_NAME_OVERRIDES": {
        "AgreementStatusEnum": "agreements.models.AgreementStatus",
        "MeasureKindEnum": "indicators.models.Kind",
        # The list filters name many different choice sets "status" and "kind": one name each.
        "AgreementKindEnum": "agreements.models.AgreementKind",
        "TimeSheetStatusEnum": "agreements.models.TimeSheetStatus",
        "DocumentKindEnum": "agreements.models.DocumentKind",
        "MilestoneStatusEnum": "agreements.models.MilestoneStatus",
        "CaseImportStatusEnum": "indicators.models.ImportStatus",
        "ActionPlanStatusEnum": "indicators.models.ActionPlanStatus",
        "OpportunityStatusEnum": "savings.models.OpportunityStatus",
        "DataImportKindEnum": "savings.models.ImportKind",
        "DataImportStatusEnum": "savings.models.ImportStatus",
        "CalculationKindEnum": "savings.models.CalculationKind",
        "ReportStatusEnum": "adjudication.models.ReportStatus",
        "PaymentKindEnum": "adjudication.models.PaymentKind",
        "JobStatusEnum": "comanage.core.models.JobStatus",
        "DeliveryStatusEnum": "comanage.core.webhooks.models.DeliveryStatus",
        "MasterImportStatusEnum": "comanage.core.master_imports.MasterImportStatus",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "comanage.core.logging.RedactPatientDataFilter"}},
    "formatters": {  # Django's own format for runserver's request log
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Libraries' progress chatter (WeasyPrint logs every step of every PDF at INFO).
        "weasyprint": {"level": env_str("LIBRARY_LOG_LEVEL", "WARNING")},
        "fontTools": {"level": env_str("LIBRARY_LOG_LEVEL", "WARNING")},
        # runserver's request log and reloader; `make run` shows only 4xx/5xx unless VERBOSE=1.
        "django.server": {
            "handlers": ["django.server"],
            "propagate": False,
            "level": env_str("DJANGO_SERVER_LOG_LEVEL", "INFO"),
        },
        "django.utils.autoreload": {"level": env_str("DJANGO_SERVER_LOG_LEVEL", "INFO")},
    },
}

COMANAGE_RULES_VERSION = "2026.1"
# Where each role lands after choosing an organization (first URL name that exists wins).
COMANAGE_ROLE_HOMES = {
    "administrator": ["admin_workspace", "agreement_list"],
    "executive": ["executive_dashboard", "agreement_list"],
    "counsel": ["counsel_queue", "agreement_list"],
    "ceo": ["ceo_queue", "agreement_list"],
    "physician": ["physician_home", "physician_portal"],
    "auditor": ["audit_trail"],
}
COMANAGE_CASE_ID_HASHING = env_bool("CASE_ID_HASHING", False)

# API tokens: every token expires; the default and the longest a user may ask for, in days.
COMANAGE_API_TOKEN_DEFAULT_DAYS = env_int("API_TOKEN_DEFAULT_DAYS", 90, minimum=1)
COMANAGE_API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365, minimum=1)
# The reverse proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated;
# comanage.core.security.clientip). Empty: the client is REMOTE_ADDR and the header is ignored.
COMANAGE_TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in COMANAGE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"Environment variable TRUSTED_PROXIES: {_proxy!r} is not an address or network."
        ) from None
AXES_CLIENT_IP_CALLABLE = "comanage.core.security.clientip.client_ip"
AXES_USERNAME_CALLABLE = "comanage.core.security.clientip.login_username"
# The API schema and docs (/api/schema/, /api/docs/): signed-in users only unless this is set.
COMANAGE_API_DOCS_PUBLIC = env_bool("COMANAGE_API_DOCS_PUBLIC", False)
# Cache-Control: no-store on signed-in and API responses; after WhiteNoise so static files keep
# their caching (comanage/core/cache_headers.py).
MIDDLEWARE.insert(
    MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1,
    "comanage.core.cache_headers.NoStoreMiddleware",
)
# Imports (h/imports): the largest file accepted per kind, in bytes (the upload pages state
# them; a larger file is refused with 413 before anything reads it), and the caps on an Excel
# workbook, checked by the worker before openpyxl opens it: each worksheet's uncompressed XML,
# the rest of the workbook (shared strings, styles: loaded whole into memory) and the rows.
IMPORT_MAX_BYTES = {
    "usage": env_int("IMPORT_MAX_USAGE_BYTES", 1 << 30, minimum=1),
    "prices": env_int("IMPORT_MAX_PRICES_BYTES", 64 << 20, minimum=1),
    "cases": env_int("IMPORT_MAX_CASE_FILE_BYTES", 256 << 20, minimum=1),
    # Rosters and item masters are read whole in memory (comanage.core.master_imports).
    "roster": env_int("IMPORT_MAX_ROSTER_BYTES", 8 << 20, minimum=1),
    "items": env_int("IMPORT_MAX_ITEM_MASTER_BYTES", 32 << 20, minimum=1),
    "results": env_int("IMPORT_MAX_RESULTS_BYTES", 8 << 20, minimum=1),
}
IMPORT_XLSX_MAX_SHEET_BYTES = env_int("IMPORT_XLSX_MAX_SHEET_BYTES", 1 << 30, minimum=1)
IMPORT_XLSX_MAX_OTHER_BYTES = env_int("IMPORT_XLSX_MAX_OTHER_BYTES", 128 << 20, minimum=1)
IMPORT_XLSX_MAX_ROWS = env_int("IMPORT_XLSX_MAX_ROWS", 1_048_576, minimum=1)

# Invitations (comanage.core.people): how long a link works, and the site's address for links
# made outside a request (the organization_create command).
COMANAGE_INVITATION_DAYS = env_int("INVITATION_DAYS", 7, minimum=1)
COMANAGE_SITE_URL = env_str("SITE_URL", "")

# Webhooks: an endpoint on a loopback, private or link-local address (or over plain http) is
# refused, so the server cannot be made to call into the hospital's network. Tests and local
# development receive deliveries on 127.0.0.1 and turn this on.
COMANAGE_WEBHOOKS_ALLOW_PRIVATE = env_bool("WEBHOOKS_ALLOW_PRIVATE", False)
