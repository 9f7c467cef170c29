"""Typed environment helpers that fail loudly, naming the variable.

``env_bool("DEBUG", default=False)`` accepts only true/false/1/0/yes/no/on/off; anything else
stops start-up with an ``ImproperlyConfigured`` that names the variable and the bad value.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str, default: object) -> str | object:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _MISSING:
            raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
        return default
    return value


def env_str(name: str, default: object = _MISSING) -> str:
    return _raw(name, default)  # type: ignore[return-value]


def env_bool(name: str, default: object = _MISSING) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"Environment variable {name}={value!r} is not a boolean (use true/false, 1/0, yes/no)."
    )


def env_int(name: str, default: object = _MISSING, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    if isinstance(value, int):
        return value
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not a whole number."
        ) from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"Environment variable {name}={number} is below {minimum}.")
    return number


def env_list(name: str, default: object = _MISSING) -> list[str]:
    value = _raw(name, default)
    if isinstance(value, list):
        return value
    return [part.strip() for part in str(value).split(",") if part.strip()]


def env_url(name: str, default: object = _MISSING, *, schemes: tuple[str, ...] = ()) -> str:
    value = _raw(name, default)
    if value is None:
        return value  # type: ignore[return-value]
    parsed = urlparse(str(value))
    if not parsed.scheme or (schemes and parsed.scheme not in schemes):
        allowed = ", ".join(schemes) or "any scheme"
        raise ImproperlyConfigured(
            f"Environment variable {name}={value!r} is not a URL ({allowed} expected)."
        )
    return str(value)


# Values that were ever shipped as examples or placeholders (.env.example, the Dockerfile's build
# step, the development default): a key anyone can read signs nobody's sessions.
_PLACEHOLDER_SECRETS = {
    "change-me-to-at-least-fifty-random-characters-0123456789abcdefghij",
    "build-only-placeholder-key-that-is-long-enough-for-the-check-xxxxxxxx",
    "dev-insecure-key-change-me",
    "test-secret-key-not-for-production",
}
_PLACEHOLDER_MARKERS = ("change-me", "changeme", "placeholder", "insecure", "not-for-production")


def env_secret_key(name: str, *, min_length: int = 50, min_distinct: int = 5) -> str:
    """A required secret: at least ``min_length`` characters, ``min_distinct`` different ones,
    and not a published placeholder (Django's own ``security.W009`` rule, made fatal)."""
    value = env_str(name)
    lowered = value.lower()
    if value in _PLACEHOLDER_SECRETS or any(m in lowered for m in _PLACEHOLDER_MARKERS):
        raise ImproperlyConfigured(
            f"Environment variable {name} is a published placeholder; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    if len(value) < min_length or len(set(value)) < min_distinct:
        raise ImproperlyConfigured(
            f"Environment variable {name} must be at least {min_length} random characters "
            f"with at least {min_distinct} different ones; generate one with "
            "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
        )
    return value
