"""Rounding in one place (house style "One rounding helper"; spec: "Rounding is ROUND_HALF_UP
to cents, applied only at the named points"): application code rounds only through
``comanage/core/money.py``, never with ``.quantize(`` or ``round(`` of its own, whose default
(half-even) moves a cent."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from comanage.core.charts import bar_chart
from comanage.core.templatetags.money import pct

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {ROOT / "comanage" / "core" / "money.py"}
SKIPPED_PARTS = {"tests", "bench", "migrations", ".venv", "node_modules", "scripts"}
FORBIDDEN = re.compile(r"\.quantize\(|(?<![\w.])round\(|\bnp\.round\(|\.round\(")


def application_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if SKIPPED_PARTS & set(relative.parts) or relative.parts[0].startswith("."):
            continue
        files.append(path)
    return files


def test_nothing_outside_money_py_calls_quantize_or_round():
    offenders = []
    for path in application_files():
        if path in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if FORBIDDEN.search(code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "round through comanage.core.money:\n" + "\n".join(offenders)


def test_the_scan_sees_application_code():
    names = {p.relative_to(ROOT).as_posix() for p in application_files()}
    assert {
        "savings/engine/calculation.py",
        "agreements/models.py",
        "comanage/core/charts/text.py",
    } <= names


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("92.305", "92.31%"),
        ("92.315", "92.32%"),
        ("94.996", "95.00%"),
        (Decimal("12") / 13 * 100, "92.31%"),
    ],
)
def test_a_percentage_in_a_table_rounds_half_up_like_the_chart(value, shown):
    """Spec 2: "A score is ... shown to two decimals", half-up everywhere (92.305 shows as
    92.31% in a table as in a chart, never half-even's 92.30%)."""
    assert pct(Decimal(value) if isinstance(value, str) else value) == shown


def test_a_chart_label_and_the_table_agree():
    chart = str(
        bar_chart(
            title="Score",
            categories=["VTE"],
            value_format="percent",
            series=[("Result", [Decimal("92.305")])],
            height=200,
        )
    )
    assert "92.31%" in chart and "92.30%" not in chart
    assert pct(Decimal("92.305")) == "92.31%"
