"""Benchmark the adjudication PDFs (prints figures; not a test).

    .venv/bin/python bench/adjudication_bench.py

Renders the adjudication report of a programme with 10 indicators, 50 savings opportunities
and 40 physicians, then the 40 physician statements with a process pool of the worker's
concurrency (2). Rendering needs no database: the documents are made from the stored figures,
which are built here as the plain dicts ``adjudication.pdf`` reads. Django is set up with
SQLite in a temporary directory (or ``DATABASE_URL`` if set) only for settings and templates.
Targets: the report < 1.5 s; all statements < 10 s.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.test")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")

import django  # noqa: E402

django.setup()

from adjudication.pdf import _opportunity_chart  # noqa: E402
from comanage.core import charts  # noqa: E402
from comanage.core.money import allocate_in_order  # noqa: E402

WORKERS = 2


def _indicators() -> list[dict]:
    rows = []
    for i in range(10):
        higher = i % 2 == 0
        cuts = (
            (Decimal(80 + i), Decimal(85 + i), Decimal(90 + i))
            if higher
            else (Decimal(8 - i / 2).quantize(Decimal("0.1")), Decimal(6), Decimal(4))
        )
        rows.append(
            {
                "key": f"ind{i}",
                "name": f"Quality indicator {i + 1} with a descriptive name",
                "direction": "higher_is_better" if higher else "lower_is_better",
                "weight": "10",
                "score": str(cuts[1]),
                "display_score": str(cuts[1]),
                "denominator": 120 + i,
                "minimum_denominator": 25,
                "status": "scored",
                "tier_met": "target",
                "payout_pct": "75",
                "policy_applied": None,
                "earned": "30000.00",
                "note": "",
                "cut_threshold": str(cuts[0]),
                "cut_target": str(cuts[1]),
                "cut_stretch": str(cuts[2]),
                "chart": str(
                    charts.indicator_chart(
                        title=f"Quality indicator {i + 1}",
                        direction="higher_is_better" if higher else "lower_is_better",
                        threshold=cuts[0],
                        target=cuts[1],
                        stretch=cuts[2],
                        baseline=None,
                        results=[("Year 1 · 2025", cuts[1])],
                        height=190,
                    )
                ),
            }
        )
    return rows


def _context() -> dict:
    opportunities = [
        {
            "key": f"o{i}",
            "name": f"Opportunity {i + 1}",
            "earns": True,
            "eligible_cases": 455,
            "base_cases": 400,
            "baseline_per_case": "1250.00",
            "actual_per_case": "1020.36",
            "floor_per_case": None,
            "raw_savings": "10448.62",
            "applied_volume_factor": "0.8791",
            "capped_savings": "9185.60",
        }
        for i in range(50)
    ]
    amounts = allocate_in_order(Decimal("300000.00"), [Decimal(1)] * 40)
    distributions = [
        {
            "physician": f"Dr Pat Doctor{i:02d}",
            "npi": f"10000000{i:02d}",
            "component": "Shared-savings distribution",
            "entitlement": "full",
            "weight": "1",
            "amount": str(a),
            "note": "365 of 365 days",
        }
        for i, a in enumerate(amounts)
    ]
    results = {
        "gross_savings": "459280.00",
        "admin_fees": "36000.00",
        "net_savings": "423280.00",
        "physician_pool": "211640.00",
        "hospital_share": "211640.00",
        "withheld_by_quality_gate": "0.00",
        "distribution_cap": "1000000.00",
        "already_distributed": "0.00",
        "withheld_by_cap": "0.00",
        "amount_paid": "211640.00",
        "cap_headroom": "788360.00",
        "hospital_keeps": "211640.00",
        "total_to_pay": "211640.00",
        "incentive_earned": "300000.00",
        "incentive_pool": "400000.00",
    }
    waterfall = str(
        charts.waterfall_chart(
            title="From gross savings to the physicians' distribution",
            steps=[
                ("Gross savings", Decimal("459280.00")),
                ("Fees", Decimal("-36000.00")),
                ("Net", charts.SUBTOTAL),
                ("Hospital", Decimal("-211640.00")),
            ],
            total_label="Paid",
            height=320,
        )
    )
    return {
        "kind": "shared_savings",
        "title": "Adjudication report",
        "branding": {
            "name": "Riverside Medical Center",
            "primary": "#1f4e79",
            "accent": "#2a9d8f",
            "logo": "",
        },
        "agreement": {
            "name": "Benchmark programme",
            "practice": "Heart Associates",
            "service_line": "Cardiovascular",
        },
        "programme_year": {"label": "Year 1 · 2025", "start": "2025-01-01", "end": "2025-12-31"},
        "terms": {
            "version": 1,
            "effective_from": "2025-01-01",
            "admin_fee_monthly": "3000.00",
            "physician_share_pct": "50",
            "quality_gate": "all_or_nothing",
            "negative_opportunities": "net",
            "volume_cap_scope": "all_payors",
        },
        "fmv": None,
        "report": {
            "id": 1,
            "version": 1,
            "status": "approved_by_counsel",
            "status_label": "Approved by counsel",
            "is_frozen": True,
            "supersedes": None,
        },
        "run": {"version": 1, "hash": "0" * 64, "rules_version": "2026.1"},
        "results": results,
        "fixed_fee_lines": [],
        "incentive": None,
        "indicators": _indicators(),
        "savings": {"opportunities": opportunities, "fee_months": 12},
        "opportunity_chart": _opportunity_chart(opportunities),
        "waterfall": waterfall,
        "distributions": distributions,
        "calculation_flags": [],
        "compliance_flags": [],
        "transitions": [
            {
                "at": "2026-02-01T10:00:00+00:00",
                "at_display": "2026-02-01 10:00",
                "from": "Submitted to counsel",
                "to": "Approved by counsel",
                "actor": "Corey Lindqvist",
                "role": "Legal counsel",
                "comment": "",
            }
        ],
        "diff": [],
        "diff_count": 0,
        "stamp": "2026-02-01T10:00:00+00:00",
    }


def _statement(context: dict, index: int) -> dict:
    d = context["distributions"][index]
    return {
        "kind": context["kind"],
        "branding": context["branding"],
        "title": "Physician statement",
        "agreement": context["agreement"],
        "programme_year": context["programme_year"],
        "report": context["report"],
        "run": context["run"],
        "results": context["results"],
        "incentive": None,
        "savings_summary": context["results"],
        "physician": {
            "id": index,
            "name": d["physician"],
            "npi": d["npi"],
            "specialty": "Cardiology",
        },
        "lines": [d],
        "total": d["amount"],
        "stamp": context["stamp"],
        "participants": 40,
    }


def _render_statement(context: dict) -> int:
    from adjudication.pdf import render_statement

    return len(render_statement(context))


def main() -> None:
    import logging

    from adjudication.pdf import render_report

    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores (figures scale with contention)")

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    context = _context()
    render_report(context)  # warm up fonts and templates once, as a worker would be
    best = None
    for _ in range(3):
        start = time.perf_counter()
        content = render_report(context)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    again = render_report(context)
    print(
        f"adjudication report (10 indicators, 50 opportunities, 40 physicians): "
        f"{best:.2f} s best of 3, {len(content) / 1024:.0f} KiB, "
        f"deterministic={hashlib.sha256(content).digest() == hashlib.sha256(again).digest()}"
        f"  [target < 1.5 s]"
    )
    statements = [_statement(context, i) for i in range(40)]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=WORKERS) as pool:
        sizes = list(pool.map(_render_statement, statements))
    elapsed = time.perf_counter() - start
    print(
        f"40 physician statements with {WORKERS} processes: {elapsed:.2f} s "
        f"({elapsed / 40 * 1000:.0f} ms each wall, {sum(sizes) / 1024:.0f} KiB total)"
        f"  [target < 10 s]"
    )
    # The same work in this one warmed process, for comparison: which is faster depends on how
    # loaded the 2 cores are (load 4: 10.5 s pooled vs 8.0 s sequential; load 3: 3.4 vs 4.6 s).
    from adjudication.pdf import render_statement

    start = time.perf_counter()
    for statement in statements:
        render_statement(statement)
    print(
        f"40 physician statements sequentially in one process: {time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()
