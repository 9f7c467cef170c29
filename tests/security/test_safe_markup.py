"""User text is data: templates never mark it safe, and the SVG charts escape every label.

``|safe`` is allowed only on the values listed in ``ALLOWED_SAFE``: SVG charts built by
``comanage.core.charts``, which escapes every string it puts inside (checked below with
labels carrying ``<script>``). A new ``|safe``, ``{% autoescape off %}`` or ``mark_safe`` fails
here until it is reviewed and listed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

from comanage.core import charts

ROOT = Path(settings.BASE_DIR)
SKIP = (".venv/", "node_modules/", "tests/", "staticfiles/", "var/")

# (template, expression piped to |safe): product-built SVG from comanage.core.charts.
ALLOWED_SAFE = {
    ("adjudication/templates/adjudication/pdf/report.html", "i.chart"),
    ("adjudication/templates/adjudication/pdf/report.html", "c.waterfall"),
    ("adjudication/templates/adjudication/pdf/report.html", "c.opportunity_chart"),
    ("adjudication/templates/adjudication/pdf/fmv.html", "c.split_chart"),
    ("adjudication/templates/adjudication/pdf/fmv.html", "c.rate_chart"),
    ("adjudication/templates/adjudication/run_detail.html", "i.chart"),
}
# Python files allowed to mark strings safe (none today: charts.SvgMarkup escapes itself).
ALLOWED_MARK_SAFE: set[str] = set()

SAFE_FILTER = re.compile(r"\{\{\s*([^}|]+?)\s*((?:\|[^}]*)?)\}\}")


def _files(suffix: str) -> list[Path]:
    return [
        p
        for p in ROOT.rglob(f"*{suffix}")
        if not p.relative_to(ROOT).as_posix().startswith(SKIP)
        and "/." not in p.relative_to(ROOT).as_posix()
    ]


def test_templates_mark_safe_only_product_built_charts():  # type: ignore[no-untyped-def]
    found, autoescape_off = set(), []
    for path in _files(".html") + _files(".txt"):
        text = path.read_text(encoding="utf-8", errors="replace")
        relative = path.relative_to(ROOT).as_posix()
        for expression, filters in SAFE_FILTER.findall(text):
            if re.search(r"\|\s*safe(seq)?\b", filters):
                found.add((relative, expression.strip()))
        if re.search(r"\{%-?\s*autoescape\s+off", text):
            autoescape_off.append(relative)
    assert autoescape_off == []
    assert found - ALLOWED_SAFE == set(), "review these |safe uses (user text must be escaped)"


def test_python_never_marks_strings_safe_outside_the_list():  # type: ignore[no-untyped-def]
    offenders = []
    for path in _files(".py"):
        relative = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8", errors="replace")
        if (
            re.search(r"\bmark_safe\s*\(|\bSafeString\s*\(|\bSafeText\s*\(", text)
            and relative not in ALLOWED_MARK_SAFE
        ):
            offenders.append(relative)
        # format_html with an f-string or a pre-formatted string escapes nothing.
        if re.search(r"format_html\(\s*f[\"']|format_html\([^)]*\.format\(", text):
            offenders.append(relative)
    assert offenders == []


EVIL = '<script>alert(1)</script>"><img src=x onerror=alert(2)>&amp;'


def _charts() -> dict[str, str]:
    money = [Decimal("1200.50"), Decimal("-300")]
    return {
        "bar": charts.bar_chart(
            title=EVIL, categories=[EVIL, "B"], series=[(EVIL, money), ("Other", money)]
        ),
        "stacked": charts.bar_chart(
            title=EVIL, categories=[EVIL, "B"], series=[(EVIL, money)], stacked=True
        ),
        "waterfall": charts.waterfall_chart(
            title=EVIL,
            steps=[
                (EVIL, Decimal(1000)),
                (EVIL + "2", Decimal(-200)),
                (EVIL + "3", charts.SUBTOTAL),
            ],
            total_label=EVIL,
        ),
        "progress": charts.progress_bar_chart(
            title=EVIL, items=[(EVIL, 5, 10), ("x", 12, 10)], unit=EVIL
        ),
        "line": charts.line_chart(
            title=EVIL, x_labels=[EVIL, "Q2"], series=[(EVIL, [Decimal(1), Decimal(2)])]
        ),
        "indicator": charts.indicator_chart(
            title=EVIL,
            direction="higher_is_better",
            threshold=Decimal(80),
            target=Decimal(90),
            stretch=Decimal(95),
            baseline=Decimal(70),
            results=[(EVIL, Decimal("91.5"))],
            unit=EVIL,
        ),
    }


@pytest.mark.parametrize("kind", ["bar", "stacked", "waterfall", "progress", "line", "indicator"])
def test_a_chart_label_typed_with_script_is_text(kind):  # type: ignore[no-untyped-def]
    svg = str(_charts()[kind])
    # Well-formed: nothing broke out of an attribute or a node (our own output, no DTD).
    tree = ET.fromstring(svg)  # noqa: S314
    names = {el.tag.rsplit("}", 1)[-1].lower() for el in tree.iter()}
    assert not names & {"script", "img", "foreignobject", "iframe", "a"}
    for el in tree.iter():
        assert not [a for a in el.attrib if a.lower().startswith("on")], el.attrib
    texts = " ".join(t for el in tree.iter() for t in (el.text, el.tail, *el.attrib.values()) if t)
    assert "<script>" in texts  # shown as typed (possibly shortened), as text


def test_a_chart_in_a_template_stays_escaped():  # type: ignore[no-untyped-def]
    chart = _charts()["bar"]
    for source in ("{{ chart }}", "{{ chart|safe }}"):
        html = Template(source).render(Context({"chart": chart}))
        assert "<script>" not in html and "&lt;script&gt;" in html
