"""Every list endpoint, found from the URL conf (a new list joins without being listed here):
documents filters in the OpenAPI schema, refuses a query parameter it does not know (400
naming it), and honours every filter it documents.

"Honours" is shown on the demo data (``seed_demo`` plus the isolation walk's completion): a
filter given a value no row has (an id of 2^62, a date range in the year 2999 or 1900, a text
no row holds) must answer no rows where the list has rows, and for a choice or yes/no filter
one of its values must answer fewer rows than the whole list. A filter the list silently
ignored would answer every row.
"""

from __future__ import annotations

from typing import Any

import pytest
from django_scopes import scopes_disabled

from comanage.core.api import GENERIC_QUERY_PARAMS
from comanage.core.models import Membership, Organization
from tests.api.conftest import token_client
from tests.api.openapi import api_schema
from tests.test_isolation_routes import _complete_the_seed, walk

ORG = "riverside"
PREFIX = "api/v1/organizations/<org_slug>/"
NOT_FILTERS = set(GENERIC_QUERY_PARAMS) | {"ordering", "search"}


def list_routes() -> list[str]:
    """The path (after the organization) of every organization list endpoint."""
    paths = []
    for route in walk():
        actions = getattr(route.callback, "actions", None) or {}
        if route.pattern.startswith(PREFIX) and actions.get("get") == "list":
            paths.append(route.pattern[len(PREFIX) :])
    return sorted(set(paths))


LISTS = list_routes()


def _schema_filters() -> dict[str, list[dict[str, Any]]]:
    schema = api_schema()
    out = {}
    for path in LISTS:
        operation = schema["paths"][f"/api/v1/organizations/{{org_slug}}/{path}"]["get"]
        out[path] = [
            p
            for p in operation.get("parameters", [])
            if p["in"] == "query" and p["name"] not in NOT_FILTERS
        ]
    return out


def test_the_walk_finds_every_list():
    assert len(LISTS) >= 28
    for path in ("savings-imports/", "adjudication/payment-lines/", "webhooks/", "jobs/"):
        assert path in LISTS


@pytest.mark.parametrize("path", LISTS)
def test_every_list_documents_its_filters(path):
    assert _schema_filters()[path], f"{path} documents no filter in the schema"


@pytest.mark.django_db
@pytest.mark.parametrize("path", LISTS)
def test_every_list_refuses_an_unknown_parameter_naming_it(world, api, path):
    response = api("administrator").get(f"/api/v1/organizations/{ORG}/{path}", {"agreemnt": "1"})
    assert response.status_code == 400, response.content[:300]
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("agreemnt", "unknown_filter")
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("path", LISTS)
def test_every_moment_filter_refuses_an_impossible_offset_naming_it(world, api, path):
    """A UTC offset Python accepts and PostgreSQL refuses (past about ±16 h) is a 400 naming
    the filter, on every list and every date-time filter it documents (the API fuzz found a
    500 on one declared by hand, after the generated ones had been bounded)."""
    client = api("administrator")
    for parameter in _schema_filters()[path]:
        if parameter.get("schema", {}).get("format") != "date-time":
            continue
        name = parameter["name"]
        for value in ("0316-07-28T11:23:33.8+19:33", "2026-01-01T00:00:00-20:04"):
            response = client.get(f"/api/v1/organizations/{ORG}/{path}", {name: value})
            assert response.status_code == 400, (path, name, value, response.content[:300])
            assert [e["field"] for e in response.json()["errors"]] == [name]


def _nothing_matches(parameter: dict[str, Any]) -> str | None:
    """A value of this filter that no demo row has; None for choices and yes/no."""
    name, schema = parameter["name"], parameter.get("schema", {})
    moment = schema.get("format") == "date-time"
    if name.endswith("__gte"):
        return "2999-01-01T00:00:00Z" if moment else "2999-01-01"
    if name.endswith("__lte"):
        return "1900-01-01T00:00:00Z" if moment else "1900-01-01"
    if schema.get("enum") or schema.get("type") == "boolean":
        return None
    if schema.get("type") in ("integer", "number"):
        return str(2**62)
    return "no-such-value-zz"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:HarfBuzz-Subset:DeprecationWarning")
@pytest.mark.django_db
def test_every_list_honours_every_filter_it_documents(seeded_demo):
    with scopes_disabled():
        organization = Organization.objects.get(slug=ORG)
        admin = Membership.objects.select_related("user").get(
            organization=organization, user__email=f"administrator@{ORG}.example"
        )
    _complete_the_seed(organization)
    client = token_client(admin.user)
    filters = _schema_filters()

    def count(path: str, params: dict[str, str]) -> int:
        # The count is of every matching row; one row on the page is enough to read it (the
        # walk makes a few hundred requests, and a full page is serialised for nothing).
        response = client.get(f"/api/v1/organizations/{ORG}/{path}", {**params, "page_size": "1"})
        assert response.status_code == 200, (path, params, response.content[:300])
        return int(response.json()["count"])

    ignored: list[str] = []
    unproven: list[str] = []
    for path in LISTS:
        total = count(path, {})
        if total == 0:
            unproven.append(f"{path}: the demo data has no rows")
            continue
        proven = False
        for parameter in filters[path]:
            name, schema = parameter["name"], parameter.get("schema", {})
            value = _nothing_matches(parameter)
            if value is not None:
                if count(path, {name: value}) != 0:
                    ignored.append(f"{path}?{name}={value}")
                proven = True
                continue
            values = schema.get("enum") or ["true", "false"]
            if any(count(path, {name: str(v)}) < total for v in values if v not in (None, "")):
                proven = True
        if not proven:
            unproven.append(f"{path}: no filter could be shown to narrow")
    assert not ignored, "filters documented but ignored:\n" + "\n".join(ignored)
    assert not unproven, "\n".join(unproven)
