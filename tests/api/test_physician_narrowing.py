"""A physician sees only their own data through the API, as on the web pages: only their own
rows in every list, 404 on another physician's row, and nobody else's name or NPI anywhere.

The walk finds every API route from the URL resolver (nothing is listed by hand). For each
route that answers GET it asks, as a physician of the demo hospital (six physicians with
distinct names and NPIs, co-participants on the same agreements), for the list (every page) and
for every object the list showed plus the first objects of the route's model, and checks that
no other physician's NPI or name appears anywhere in any response body, nor another
physician's id where the JSON names a physician (``physician``, ``physicians_present``...).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest
from django.urls import resolve
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from agreements.models import Physician
from comanage.core.models import Membership, Organization, Role
from comanage.core.permissions import membership_can
from tests.api.conftest import token_client
from tests.test_isolation_routes import _complete_the_seed, _view_model, fill, walk

ORG = "riverside"
PER_MODEL = 40  # objects of a route's model tried on a detail route, besides the listed ones


def _api_routes() -> list[Any]:
    return [
        r
        for r in walk()
        if r.pattern.startswith("api/v1/")
        and "get" in (getattr(r.callback, "actions", None) or {"get": "get"})
    ]


def _forbidden(physician: Physician) -> dict[str, re.Pattern[bytes]]:
    """What must never appear: every other physician's NPI and name (whole words)."""
    with scopes_disabled():
        others = Physician.objects.filter(organization=physician.organization).exclude(
            pk=physician.pk
        )
        patterns: dict[str, re.Pattern[bytes]] = {}
        for other in others:
            assert other.npi != physician.npi and other.last_name != physician.last_name
            for text in (other.npi, other.last_name, f"{other.first_name} {other.last_name}"):
                patterns[f"{text} (physician {other.pk})"] = re.compile(
                    rb"(?<![A-Za-z0-9])" + re.escape(text.encode()) + rb"(?![A-Za-z0-9])"
                )
    assert len(patterns) >= 3
    return patterns


OWNER_KEYS = ("physician", "physician_id", "participant_physician_id")
ID_LISTS = ("physicians_present",)


def _foreign_ids(value: Any, own: int, path: str = "") -> list[str]:
    """Where the JSON names another physician by id: an owner key, an id list, a subject."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if key in OWNER_KEYS and isinstance(item, int | str) and str(item) != str(own):
                found.append(f"{here}={item}")
            elif key in ID_LISTS and isinstance(item, list):
                found += [f"{here} has {i}" for i in item if str(i) != str(own)]
            elif (
                key == "subject"
                and isinstance(item, str)
                and item.startswith("physician:")
                and item != f"physician:{own}"
            ):
                found.append(f"{here}={item}")
            else:
                found += _foreign_ids(item, own, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _foreign_ids(item, own, f"{path}[{index}]")
    return found


def _owner_field(model: Any) -> str | None:
    """How a row names the one physician it belongs to: ``pk`` for the physician itself, the
    ``physician`` foreign key otherwise; None for rows that belong to no single physician."""
    if model is None:
        return None
    if model is Physician:
        return "pk"
    for field in model._meta.concrete_fields:
        if field.name == "physician" and getattr(field, "related_model", None) is Physician:
            return "physician"
    return None


def _ids(body: Any) -> list[int]:
    rows = body.get("results", body) if isinstance(body, dict) else body
    return (
        [r["id"] for r in rows if isinstance(r, dict) and isinstance(r.get("id"), int)]
        if isinstance(rows, list)
        else []
    )


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:HarfBuzz-Subset:DeprecationWarning")
@pytest.mark.django_db
def test_a_physician_sees_no_other_physicians_npi_or_name_in_any_api_response(seeded_demo):
    with scopes_disabled():
        organization = Organization.objects.get(slug=ORG)
        membership = Membership.objects.select_related("user", "physician").get(
            organization=organization, role=Role.PHYSICIAN, user__email=f"physician@{ORG}.example"
        )
    _complete_the_seed(organization)
    forbidden = _forbidden(membership.physician)
    client: APIClient = token_client(membership.user)
    own = membership.physician_id

    leaks: list[str] = []
    crashes: list[str] = []
    answered: Counter[str] = Counter()
    listed: dict[str, list[int]] = {}  # view set class name -> ids the physician was shown

    def check(url: str) -> Any:
        response = client.get(url)
        if response.status_code >= 500:
            crashes.append(f"{url}: {response.status_code}")
            return None
        if response.status_code != 200:
            return None
        answered[url] += 1
        content = b"".join(response.streaming_content) if response.streaming else (response.content)
        for what, pattern in forbidden.items():
            if pattern.search(content):
                leaks.append(f"{url}: {what}")
        try:
            body = json.loads(content)
        except ValueError:
            return None
        leaks.extend(f"{url}: {where}" for where in _foreign_ids(body, own))
        return body

    routes = _api_routes()
    lists = [r for r in routes if not [k for k in r.kwargs if k != "org_slug"]]
    details = [r for r in routes if r not in lists]
    assert len(lists) >= 15 and len(details) >= 20, "the walk found too few API routes"
    for route in lists:
        url: str | None = "/" + route.pattern.replace("<org_slug>", ORG)
        cls = getattr(route.callback, "cls", None)
        while url:
            body = check(url)
            if cls is not None:
                listed.setdefault(cls.__name__, []).extend(_ids(body) if body else [])
            url = body.get("next") if isinstance(body, dict) else None
    for route in details:
        cls = getattr(route.callback, "cls", None)
        kwarg = next(k for k in route.kwargs if k != "org_slug")
        ids = set(listed.get(getattr(cls, "__name__", ""), []))
        model = _view_model(route)
        if model is not None:
            with scopes_disabled():
                queryset = model._default_manager.all()
                if any(f.name == "organization" for f in model._meta.fields):
                    queryset = queryset.filter(organization=organization)
                ids |= set(queryset.order_by("pk").values_list("pk", flat=True)[:PER_MODEL])
        filled, _why = fill(route, organization)
        if filled:
            ids.add(int(resolve(filled.split("?")[0]).kwargs[kwarg]))
        for pk in sorted(ids):
            check("/" + route.pattern.replace("<org_slug>", ORG).replace(f"<{kwarg}>", str(pk)))

    # Rows that belong to one physician (the model names its physician, or is the physician):
    # every list shows only the viewer's own, and another physician's row is not found (404;
    # a 403 only where the role may not use the route at all, whatever the row).
    foreign_listed: list[str] = []
    foreign_found: list[str] = []
    owned_routes = 0
    for route in lists:
        cls = getattr(route.callback, "cls", None)
        owner = _owner_field(_view_model(route))
        if cls is None or owner is None or not listed.get(cls.__name__):
            continue
        with scopes_disabled():
            theirs = set(
                _view_model(route)
                ._default_manager.filter(pk__in=listed[cls.__name__])
                .exclude(**{owner: own})
                .values_list("pk", flat=True)
            )
        foreign_listed += [f"{route.pattern}: row {pk}" for pk in sorted(theirs)]
    for route in details:
        model = _view_model(route)
        owner = _owner_field(model)
        if model is None or owner is None:
            continue
        kwarg = next(k for k in route.kwargs if k != "org_slug")
        path = "/" + route.pattern.replace("<org_slug>", ORG)
        with scopes_disabled():
            rows = model._default_manager.filter(organization=organization)
            theirs = list(
                rows.exclude(**{owner: own}).order_by("pk").values_list("pk", flat=True)[:3]
            )
        if not theirs:
            continue
        owned_routes += 1
        cls = getattr(route.callback, "cls", None)
        action = (getattr(route.callback, "actions", None) or {}).get("get", "")
        permission = getattr(cls, "permission_map", {}).get(action)
        role_may_not = permission is not None and not membership_can(membership, permission)
        for pk in theirs:
            status = client.get(path.replace(f"<{kwarg}>", str(pk))).status_code
            if status == 404 or (status == 403 and role_may_not):
                continue
            foreign_found.append(f"{path.replace(f'<{kwarg}>', str(pk))}: {status}")
    assert owned_routes >= 8, f"too few physician-owned detail routes tried ({owned_routes})"
    assert not foreign_listed, "another physician's rows listed:\n" + "\n".join(foreign_listed)
    assert not foreign_found, "another physician's row answered:\n" + "\n".join(foreign_found)

    # Not vacuous: the physician was shown their own data on many routes.
    assert len(answered) >= 40, sorted(answered)
    for must in (
        "savings-calculations/",
        "participations/",
        "adjudication/statements/",
        "agreements/",
        "timesheets/",
    ):
        assert any(must in url for url in answered), must
    assert not crashes, crashes
    assert not leaks, "\n".join(sorted(set(leaks)))
