"""Schemathesis against a live server on the generated schema (issue 8): zero 5xx and zero
responses violating the schema as an administrator of a seeded organization, and nothing but
401/403/404 for an administrator of another organization on the first one's URLs."""

from __future__ import annotations

import os

import pytest
from django.core.management import call_command
from django_scopes import scopes_disabled

from comanage.core.models import ApiToken, User
from tests.api.fuzzing import fuzz_as_member, fuzz_as_outsider, load_schema

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fuzz_the_api(live_server, record_property):  # type: ignore[no-untyped-def]
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115, PTH123
    with scopes_disabled():
        _t, admin_token = ApiToken.issue(
            user=User.objects.get(email="administrator@riverside.example"), name="fuzz")
        _t, outsider_token = ApiToken.issue(
            user=User.objects.get(email="administrator@lakeview.example"), name="fuzz")
    # The schema as served (this once answered 500 under live_server: Django's live server wraps
    # a media handler that crashes on MEDIA_URL = None; tests/conftest.py's live_server gives it
    # a URL on another host, so every request, /api/schema/ included, now gets through).
    schema = load_schema(live_server.url)
    outsider = fuzz_as_outsider(live_server.url, outsider_token, "riverside",
                                examples=max(2, EXAMPLES // 2), schema=schema)
    member = fuzz_as_member(live_server.url, admin_token, "riverside", examples=EXAMPLES,
                            schema=schema)
    print(member.summary("administrator of riverside"))
    print(outsider.summary("administrator of lakeview on riverside's URLs"))
    record_property("fuzz_cases", member.cases + outsider.cases)
    assert member.operations > 0 and outsider.operations > 0
    assert not outsider.failures, "\n".join(outsider.failures[:30])
    assert not member.failures, "\n\n".join(member.failures[:30])
