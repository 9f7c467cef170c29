"""The mypy gate: the number of type errors may only go down.

    python scripts/mypy_gate.py            # fail if any module has more errors than its baseline
    python scripts/mypy_gate.py --update   # lower mypy-baseline.json to today's counts

``mypy-baseline.json`` maps each module (a file path) to its number of mypy errors. The gate
runs mypy over the packages, counts the errors per module and fails when a module has more than
its baseline, or a module that is not in the baseline has any. Modules that improved are printed;
``--update`` writes the lower counts back (it never raises one, and drops modules now at zero).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "mypy-baseline.json"
PACKAGES = ["comanage", "agreements", "indicators", "savings", "adjudication"]
ERROR = re.compile(r"^(?P<path>[^:\s]+\.pyi?):\d+(?::\d+)?: error: ")


def count_errors(output: str) -> Counter[str]:
    """Errors per module path in mypy's output (notes are not errors)."""
    counts: Counter[str] = Counter()
    for line in output.splitlines():
        match = ERROR.match(line)
        if match:
            counts[match["path"]] += 1
    return counts


def run_mypy() -> tuple[Counter[str], str]:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", *PACKAGES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.stderr.write(output)
        raise SystemExit(f"mypy could not run (exit status {result.returncode})")
    return count_errors(output), output


def compare(current: Counter[str], baseline: dict[str, int]) -> tuple[list[str], list[str]]:
    """(regressions, improvements) as printable lines."""
    worse, better = [], []
    for module in sorted(set(current) | set(baseline)):
        now, allowed = current.get(module, 0), baseline.get(module, 0)
        if now > allowed:
            worse.append(f"  {module}: {now} errors (baseline {allowed})")
        elif now < allowed:
            better.append(f"  {module}: {now} errors (baseline {allowed})")
    return worse, better


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="lower the baseline to today's")
    args = parser.parse_args(argv)

    baseline: dict[str, int] = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    current, output = run_mypy()
    worse, better = compare(current, baseline)
    total, allowed = sum(current.values()), sum(baseline.values())

    if args.update:
        lowered = {
            module: min(count, current.get(module, 0))
            for module, count in baseline.items()
            if current.get(module, 0)
        }
        if not baseline:  # first run: take today's counts as they are
            lowered = dict(current)
        BASELINE.write_text(json.dumps(dict(sorted(lowered.items())), indent=2) + "\n")
        print(f"mypy-baseline.json: {sum(lowered.values())} errors in {len(lowered)} modules")
        if worse and baseline:
            print("Not raised (fix these instead):\n" + "\n".join(worse))
            return 1
        return 0

    if better:
        print("Fewer mypy errors than the baseline (run `make mypy-baseline` to lock it in):")
        print("\n".join(better))
    if worse:
        regressed = {line.split(":")[0].strip() for line in worse}
        print("\n".join(line for line in output.splitlines() if line.split(":")[0] in regressed))
        print("More mypy errors than the baseline (mypy-baseline.json):\n" + "\n".join(worse))
        return 1
    print(f"mypy gate: {total} errors, baseline {allowed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
