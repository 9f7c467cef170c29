"""`make bench`: run every benchmark one after another and print their figures.

Each benchmark sets Django up itself; the database ones use PostgreSQL (their ``--help`` says
which ``DATABASE_URL`` they default to). Run on a quiet machine: the figures are wall-clock.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("Indicator import: 1M cases x 10 indicators", "indicators_bench.py"),
    ("Savings: 3 x 1M usage rows, 50 opportunities", "savings_bench.py"),
    ("Adjudication PDFs: report and 40 statements", "adjudication_bench.py"),
    ("Web load: dashboard and agreement page, 20 users", "load_bench.py"),
]


def main() -> int:
    failures = 0
    for title, script in BENCHMARKS:
        print(f"\n=== {title} ({script}) ===", flush=True)
        started = time.perf_counter()
        result = subprocess.run([sys.executable, str(HERE / script), *sys.argv[1:]], check=False)
        print(
            f"--- {script}: exit {result.returncode}, {time.perf_counter() - started:.1f} s wall",
            flush=True,
        )
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
