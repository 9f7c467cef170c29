"""Schemathesis against a live server on the generated schema (issue 8): zero 5xx and zero
responses violating the schema as an administrator of a seeded organization, and nothing but
401/403/404 for an administrator of another organization on the first one's URLs.

Generated bodies seldom carry ids that exist, so the member pass starts with explicit cases
built on the seeded data (tests/api/write_examples.py: a refused and a valid body per write
operation, in an order where each finds its state): every write operation must reach 2xx at
least once, and the count per operation is printed."""

from __future__ import annotations

import os

import pytest
from django_scopes import scopes_disabled

from agreements.models import Physician
from comanage.core.models import ApiToken, Organization, User
from tests.api.fuzzing import fuzz_as_member, fuzz_as_outsider, load_schema
from tests.api.write_examples import SESSION_ONLY_WRITES, explicit_cases, walk_day
from tests.conftest import World

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


def _seeded():  # type: ignore[no-untyped-def]
    """An API token per role that writes, and the outsider's token, on the demo (``demo_copy``:
    a fresh copy of the demo loaded once per worker, tests/demo_database.py)."""
    with scopes_disabled():
        _t, outsider_token = ApiToken.issue(
            user=User.objects.get(email="administrator@lakeview.example"), name="fuzz"
        )
        riverside = Organization.objects.get(slug="riverside")
        world = World(org=riverside, other_org=Organization.objects.get(slug="lakeview"))
        tokens = {}
        for role in ("administrator", "counsel", "ceo"):
            world.users[role] = User.objects.get(email=f"{role}@riverside.example")
            tokens[role] = ApiToken.issue(user=world.users[role], name="fuzz")[1]
        world.physician, world.other_physician = Physician.objects.filter(
            organization=riverside
        ).order_by("pk")[:2]
    return world, tokens, outsider_token


# The two passes are two tests (each on its own copy of the demo), so that xdist runs them side
# by side.


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fuzz_the_api_as_an_outsider(demo_copy, live_server, record_property):  # type: ignore[no-untyped-def]
    _world, _tokens, outsider_token = _seeded()
    # The schema as served (this once answered 500 under live_server: Django's live server wraps
    # a media handler that crashes on MEDIA_URL = None; tests/conftest.py's live_server gives it
    # a URL on another host, so every request, /api/schema/ included, now gets through).
    schema = load_schema(live_server.url)
    outsider = fuzz_as_outsider(
        live_server.url, outsider_token, "riverside", examples=max(2, EXAMPLES // 2), schema=schema
    )
    print(outsider.summary("administrator of lakeview on riverside's URLs"))
    record_property("fuzz_cases", outsider.cases)
    assert outsider.operations > 0
    assert not outsider.failures, "\n".join(outsider.failures[:30])
    assert outsider.server_errors() == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_fuzz_the_api_as_a_member(demo_copy, live_server, record_property):  # type: ignore[no-untyped-def]
    world, tokens, _outsider_token = _seeded()
    schema = load_schema(live_server.url)
    with walk_day():  # the examples' dates assume it (the live server shares the clock)
        member = fuzz_as_member(
            live_server.url,
            tokens["administrator"],
            "riverside",
            examples=EXAMPLES,
            schema=schema,
            explicit=lambda: explicit_cases(world, tokens),
        )
    print(member.summary("administrator of riverside"))
    record_property("fuzz_cases", member.cases)
    assert member.operations > 0
    assert not member.failures, "\n\n".join(member.failures[:30])
    assert member.server_errors() == 0
    never = [label for label in member.writes_never_2xx() if label not in SESSION_ONLY_WRITES]
    assert not never, f"write operations no case got through (2xx): {never}"
