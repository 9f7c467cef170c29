"""The CSP forbids inline script: no template may carry inline handlers or script bodies."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


def templates():
    for path in ROOT.rglob("*.html"):
        parts = set(path.parts)
        if parts & {".venv", "node_modules", "test-artifacts"}:
            continue
        yield path


def test_no_template_has_inline_event_handlers_or_inline_scripts():
    offenders = []
    for path in templates():
        text = path.read_text()
        for pattern in (INLINE_HANDLER, INLINE_SCRIPT):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert offenders == []
