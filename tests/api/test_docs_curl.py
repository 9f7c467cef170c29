"""docs/api.md is executable: its ```sh blocks, run in order as one shell script (variables
carry from one block to the next), walk a whole programme year with curl against a live server:
an agreement, its physicians, the year's files, the calculation, the report and its payment
lines. Nothing is prepared but an organization and four people with a token each."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from django_scopes import scopes_disabled

from comanage.core.models import ApiToken, Role
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "api.md"
EXAMPLES = ROOT / "docs" / "examples"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def guide_script() -> str:
    return "\n".join(BLOCK.findall(GUIDE.read_text()))


def test_the_guide_walks_a_programme_year_in_sh_blocks():
    blocks = BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 10
    assert all(re.search(r"\b(curl|call|post)\b", block) for block in blocks)
    script = guide_script()
    for step in (
        "agreements/",
        "physicians/",
        "participations/",
        "savings-imports/",
        "/confirm/",
        "indicator-imports/",
        "indicator-results/",
        "jobs/",
        "savings-calculations/run/",
        "adjudication/runs/start/",
        "/submit/",
        "/payment-lines/",
    ):
        assert step in script, step
    for name in re.findall(r"\$EXAMPLES/([\w.]+)", script):
        assert (EXAMPLES / name).is_file(), name


def _people() -> dict[str, str]:
    """riverside with an administrator, counsel, a CEO and a physician: one token each."""
    with scopes_disabled():
        organization = f.OrganizationFactory(name="Riverside Medical Center", slug="riverside")
        f.OrganizationFactory(name="Lakeview Health", slug="lakeview")
        tokens = {}
        for role in (Role.ADMINISTRATOR, Role.COUNSEL, Role.CEO):
            user = f.UserFactory(email=f"{role}@riverside.example")
            f.MembershipFactory(organization=organization, user=user, role=role)
            tokens[role] = ApiToken.issue(user=user, name="docs")[1]
    return {
        "TOKEN": tokens[Role.ADMINISTRATOR],
        "COUNSEL_TOKEN": tokens[Role.COUNSEL],
        "CEO_TOKEN": tokens[Role.CEO],
    }


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:HarfBuzz-Subset:DeprecationWarning")
@pytest.mark.django_db(transaction=True)
def test_the_guide_runs_a_whole_programme_year_against_a_live_server(live_server, tmp_path):
    # `make test` installs both (scripts/system_deps.py --for test); a missing one is a failure.
    for tool in ("curl", "jq"):
        assert shutil.which(tool), f"{tool} is not installed: run scripts/system_deps.py --for test"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BASE": live_server.url,
        "ORG": "riverside",
        "EXAMPLES": str(EXAMPLES),
        **_people(),
    }
    script = guide_script() + '\nprintf "%s" "$LINES" > lines.json\n'
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"→ {result.returncode}\n{result.stderr}\n{result.stdout}"

    # The walk ended with example A's payment lines: Adams, Baker and Clark share the pool
    # (spec example A: 18,629.34 / 18,629.34 / 18,629.33), Diaz (terminated for cause) nothing.
    # Both key quality indicators were met (92.31% from the case file, 8.01% entered), so the
    # quality gate kept the whole pool.
    export = json.loads((tmp_path / "lines.json").read_text())
    assert export["report"]["report_status"] == "payment_authorised"
    assert {(line["npi"], line["amount"]) for line in export["lines"]} == {
        ("1000000004", "18629.34"),
        ("1000000012", "18629.34"),
        ("1000000020", "18629.33"),
    }
    assert export["total"] == "55888.01"
    csv_rows = (tmp_path / f"payment-lines-{export['report']['report_id']}.csv").read_text()
    assert csv_rows.count("\n") >= 4 and "18629.33" in csv_rows
    with scopes_disabled():
        from indicators.models import IndicatorResult

        values = sorted(
            str(r.value.quantize(Decimal("0.01")))
            for r in IndicatorResult.objects.filter(is_current=True)
        )
    assert values == ["8.01", "92.31"]
