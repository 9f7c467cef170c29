"""What a person must never read: a raw Decimal with four or more places, a snake_case key,
template syntax. Shared by the fast page/PDF tests and the browser page checks."""

from __future__ import annotations

import re
from html import unescape

RAW_DECIMAL = re.compile(r"(?<![\w.])\d[\d,]*\.\d{4,}(?![\d])")
SNAKE = re.compile(r"\b[a-z]+(?:_[a-z0-9]+)+\b(?!\.[a-z]{2,4}\b)")  # a file name is data
TEMPLATE_SYNTAX = ("{#", "#}", "{{", "}}", "{%", "%}")
# Text a reader may see verbatim: file column names and hashes are shown as <code>, the
# fingerprints in <span class="hash">; styles and scripts are not text.
_HIDDEN = re.compile(
    r"<(style|script|code|title)\b[^>]*>.*?</\1>|<span class=\"hash\"[^>]*>.*?</span>"
    r"|<input\b[^>]*>",
    re.S | re.I,
)
_TAG = re.compile(r"<[^>]+>")


def visible_text(html: str) -> str:
    """The text of an HTML document as read (tags, styles, code and hashes removed)."""
    body = html.split("<body", 1)[-1]
    return unescape(_TAG.sub(" ", _HIDDEN.sub(" ", body)))


def problems(text: str) -> list[str]:
    found = [f"template syntax {m!r}" for m in TEMPLATE_SYNTAX if m in text]
    found += [f"raw decimal {m!r}" for m in sorted(set(RAW_DECIMAL.findall(text)))]
    found += [f"code {m!r}" for m in sorted(set(SNAKE.findall(text)))]
    return found
