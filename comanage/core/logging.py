"""Keep patient-level data and secrets out of the logs.

``RedactPatientDataFilter`` (on every handler in ``settings.LOGGING``) rewrites the formatted
message and any exception text: case/patient identifiers in ``key=value``, JSON/dict and
PostgreSQL ``Key (...)=(...)`` forms; passwords, secrets, OAuth codes and tokens; bearer
credentials, JWTs and Comanage API tokens.
"""

from __future__ import annotations

import logging
import re

_PATIENT_KEYS = (
    r"case_?id|case_?number|patient(?:_?id|_?name)?|mrn|medical_record_number|"
    r"dob|date_of_birth|birth_?date|ssn|member_?id|encounter_?id|account_number"
)
_CREDENTIAL_FIELDS = "|".join(
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "api_?key",
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "authorization",
        "code",
        "code_verifier",
        "nonce",
        "state",
        "otp_token",
        "case_id_key",
        "sessionid",
        "csrftoken",
    ]
)
_KEYS = f"{_PATIENT_KEYS}|{_CREDENTIAL_FIELDS}"
_VALUE = r"(?:\"[^\"]*\"|'[^']*'|[^\s,;&)}\]]+)"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer <credential> / Basic <credential>
    (re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    # Signed tokens (OIDC ID tokens, JWT access tokens) wherever they appear.
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    # Comanage API tokens.
    (re.compile(r"cm_[A-Za-z0-9_\-]{20,}"), "cm_[redacted]"),
    # JSON and Python dict reprs: "case_id": "ENC-1", 'password': 'x'
    (re.compile(rf"(?i)([\"'])({_KEYS})\1(\s*:\s*){_VALUE}"), r'\1\2\1\3"[redacted]"'),
    # key=value and key: value (query strings, messages, headers)
    (re.compile(rf"(?i)(?<![A-Za-z0-9_])({_KEYS})(\s*[=:]\s*){_VALUE}"), r"\1\2[redacted]"),
    # PostgreSQL constraint details: Key (organization_id, case_id)=(3, ENC-1) already exists.
    (re.compile(r"(Key \([^)]*\))=\([^)]*\)"), r"\1=([redacted])"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactPatientDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken log call must not break the request
            return True
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Exception messages carry values too (IntegrityError details, request bodies).
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
