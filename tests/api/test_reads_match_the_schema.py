"""Every read of the API, on objects that exist, answers with a status and a content type the
schema documents for it (a script generated from the schema trusts both).

The fuzzing (test_fuzz.py) checks the same on generated requests, but generated ids seldom name
an object that exists, so a detail or download operation was checked only when an id happened
to hit one: the document download answered ``application/pdf`` while the schema said JSON, and
the fuzzing saw it on one run in several. Here every GET operation of the schema is asked, as
the demo hospital's administrator, with the first id its list shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scopes_disabled

from comanage.core.models import Membership
from comanage.core.schema import SchemaGenerator
from tests.api.conftest import token_client
from tests.test_isolation_routes import _complete_the_seed

ORG = "riverside"


def _documented(operation: dict[str, Any], status: int) -> set[str] | None:
    """The content types documented for ``status`` (None: the status is not documented)."""
    responses = operation.get("responses", {})
    answer = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    if answer is None:
        answer = responses.get("default")
    if answer is None:
        return None
    return set(answer.get("content", {}))


def _fill(path: str, client: Any) -> str | None:
    """``path`` with the organization and the first id the list before ``{id}`` shows."""
    url = path.replace("{org_slug}", ORG)
    if "{id}" not in url:
        return None if "{" in url else url
    listing = client.get(url.split("{id}")[0])
    if listing.status_code != 200:
        return None
    body = listing.json()
    rows = body.get("results", body) if isinstance(body, dict) else body
    if not rows:
        return None
    url = url.replace("{id}", str(rows[0]["id"]), 1)
    return None if "{" in url else url


@pytest.mark.slow
@pytest.mark.django_db
def test_every_read_answers_with_a_documented_status_and_content_type(seeded_demo):
    with scopes_disabled():
        admin = Membership.objects.select_related("user", "organization").get(
            organization__slug=ORG, user__email=f"administrator@{ORG}.example"
        )
    _complete_the_seed(admin.organization)
    client = token_client(admin.user)
    schema = SchemaGenerator().get_schema(request=None, public=True)

    wrong: list[str] = []
    asked: list[str] = []
    for path, item in sorted(schema["paths"].items()):
        operation = item.get("get")
        if operation is None or "/api/v1/" not in path:
            continue
        url = _fill(path, client)
        if url is None:
            continue
        response = client.get(url)
        asked.append(path)
        documented = _documented(operation, response.status_code)
        media = (response.get("Content-Type") or "").split(";")[0].strip()
        if documented is None:
            wrong.append(f"GET {path}: status {response.status_code} is not documented")
        elif response.status_code != 204 and documented and media not in documented:
            wrong.append(
                f"GET {path}: {response.status_code} answered {media!r}, "
                f"the schema documents {sorted(documented)}"
            )
    details = [p for p in asked if "{id}" in p]
    assert len(details) >= 20, f"too few detail reads reached an object: {details}"
    assert any(p.endswith("/documents/{id}/download/") for p in asked), asked
    assert wrong == [], "\n".join(wrong)
