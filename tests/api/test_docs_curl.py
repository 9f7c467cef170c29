"""docs/api.md is executable: every ```sh block runs with curl against a live server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from comanage.core.models import ApiToken, User

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "api.md"
BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def test_the_guide_has_examples():
    blocks = BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 5
    assert all("curl" in block for block in blocks)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.django_db(transaction=True)
def test_every_curl_example_in_the_guide_succeeds(live_server):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115, PTH123
    from agreements.models import ProgrammeYear

    with scopes_disabled():
        _t, token = ApiToken.issue(
            user=User.objects.get(email="administrator@riverside.example"), name="docs"
        )
        year = ProgrammeYear.objects.filter(organization__slug="riverside").order_by("pk").first()
    assert year is not None, "seed_demo should create a programme year for riverside"
    env = {
        "PATH": os.environ["PATH"],
        "BASE": live_server.url,
        "TOKEN": token,
        "ORG": "riverside",
        "YEAR": str(year.pk),
    }
    blocks = BLOCK.findall(GUIDE.read_text())
    for block in blocks:
        result = subprocess.run(
            ["sh", "-ec", block], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (
            f"{block}\n→ {result.returncode}\n{result.stderr}\n{result.stdout[:500]}"
        )
        assert result.stdout.strip(), f"{block} printed nothing"
