"""Keep patient-level data and secrets out of the logs."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"(?i)(case_id|patient|mrn|dob)=\S+"), r"\1=[redacted]"),
    (re.compile(r"(?i)(password|secret|token|authorization)[\"']?\s*[:=]\s*\S+"), r"\1=[redacted]"),
    (re.compile(r"cm_[A-Za-z0-9_\-]{20,}"), "cm_[redacted]"),
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
        return True
