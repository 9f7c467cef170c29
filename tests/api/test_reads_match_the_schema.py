"""Every read of the API, on objects that exist, answers as the schema documents it: a documented
status, a documented content type and a body that conforms (a script generated from the schema
trusts all three).

The fuzzing (test_fuzz.py) checks the same on generated requests, but generated ids seldom name
an object that exists, so a detail or download operation was checked only when an id happened
to hit one: the document download answered ``application/pdf`` while the schema said JSON, and
the fuzzing saw it on one run in several. Here every GET operation of the schema is asked, as
the demo hospital's administrator, with the first id its list shows, and the answer is put
through the fuzzing's own checks (schemathesis: status, content type, body).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django_scopes import scopes_disabled
from schemathesis.core.transport import Response

from comanage.core.models import Membership
from tests.api.conftest import first_object_url, token_client
from tests.api.fuzzing import CHECKS, _path_parameters, load_schema
from tests.test_isolation_routes import _complete_the_seed

ORG = "riverside"


def _response(url: str, response: Any) -> Response:
    """A Django test response as schemathesis' response, for its checks."""
    content = (
        b"".join(response.streaming_content) if response.streaming else bytes(response.content)
    )
    return Response(
        status_code=response.status_code,
        headers={name: [value] for name, value in response.headers.items()},
        content=content,
        request=requests.Request("GET", f"http://testserver{url}").prepare(),
        elapsed=0.0,
        verify=True,
    )


@pytest.mark.slow
@pytest.mark.django_db
def test_every_read_answers_with_a_documented_status_and_content_type(seeded_demo):
    with scopes_disabled():
        admin = Membership.objects.select_related("user", "organization").get(
            organization__slug=ORG, user__email=f"administrator@{ORG}.example"
        )
    _complete_the_seed(admin.organization)
    client = token_client(admin.user)
    schema = load_schema()

    wrong: list[str] = []
    asked: list[str] = []
    for operation in sorted(schema.get_all_operations(), key=lambda r: r.ok().path):
        operation = operation.ok()
        if operation.method.upper() != "GET" or not operation.path.startswith("/api/v1/"):
            continue
        url = first_object_url(client, operation.path, ORG)
        if url is None:
            continue
        asked.append(operation.path)
        case = operation.Case(path_parameters=_path_parameters(operation.path, url))
        try:
            case.validate_response(_response(url, client.get(url)), checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported together
            wrong.append(f"GET {url}: {type(exc).__name__}\n{str(exc).strip()[:1200]}")
    details = [p for p in asked if "{id}" in p]
    assert len(details) >= 20, f"too few detail reads reached an object: {details}"
    assert any(p.endswith("/documents/{id}/download/") for p in asked), asked
    assert wrong == [], "\n\n".join(wrong)
