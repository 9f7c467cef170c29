"""The report names flagged physicians and opportunities as a reader would, not by key."""

from types import SimpleNamespace

from adjudication.pdf import _flags_named
from adjudication.read_models import RunFlag


def test_flag_subjects_are_named_for_the_reader():
    physicians = {12: type("P", (), {"__str__": lambda self: "Dr Ann Adams"})()}
    flags = [
        {"source": "savings", "subject": "physician:12", "message": "federal-payer cases"},
        {"source": "savings", "subject": "A", "message": "455 eligible cases"},
        {"source": "savings", "subject": "physician:99", "message": "unknown physician"},
        {"source": "fixed fee", "subject": "2025-03", "message": "hours short"},
    ]
    stored = [RunFlag.from_stored(f) for f in flags]
    opportunities = [SimpleNamespace(key="A", name="Closure devices")]
    named = _flags_named(stored, physicians, opportunities)  # type: ignore[arg-type]
    assert [f.subject for f in named] == [
        "Dr Ann Adams",
        "Closure devices",
        "physician:99",
        "2025-03",
    ]
    assert [f.message for f in named] == [f["message"] for f in flags]
