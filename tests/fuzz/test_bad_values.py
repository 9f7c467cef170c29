"""Bad values at every API write and every web form that takes numbers or overrides: huge and
non-finite decimals, NUL characters, wrong types, unknown keys. Each must be a 4xx that names the
field (a 400 with the field in the error, or the form's error), never a 5xx, and nothing may be
stored. API writes are discovered from the drf-spectacular schema; web forms are a table.

Run on SQLite and on PostgreSQL (a NUL only fails on PostgreSQL, which cannot store it):
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/h_<name> pytest tests/fuzz/test_bad_values.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django_scopes import scopes_disabled
from rest_framework.test import APIClient

from comanage.core.models import ApiToken, Job, User
from tests.api.conftest import first_object_url
from tests.api.openapi import api_schema
from tests.api.write_examples import SESSION_ONLY_WRITES
from tests.fuzz.tables import RowCounts

ORG = "riverside"
# Non-finite, huge and malformed numbers, NUL, and wrong types where a number is expected.
BAD_NUMBERS: list[Any] = [
    "1e400",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e30",
    1e308,
    "1\x00",
    [1],
    {"a": 1},
    True,
]
BAD_TEXT: list[Any] = ["a\x00b"]
# Read-only or server-set fields the schema lists in a body; file uploads are fuzzed elsewhere.
SKIP_FIELDS = {"file"}
SKIP_OPERATIONS = {("POST", "/api/v1/organizations/{org_slug}/indicator-imports/")}


@pytest.fixture(scope="module")
def demo(seeded_demo, django_db_blocker):  # type: ignore[no-untyped-def]
    """The demo (tests/demo_database.py: loaded once per worker, rolled back after the module;
    each test's own writes roll back too)."""
    from agreements.models import AgreementKind, ProgrammeYear
    from indicators.selectors import definitions_in_force

    with django_db_blocker.unblock(), scopes_disabled():
        years = list(
            ProgrammeYear.objects.filter(agreement__organization__slug=ORG)
            .select_related("agreement")
            .order_by("agreement__kind", "number")
        )
        co = next(y for y in years if y.agreement.kind == AgreementKind.CO_MANAGEMENT)
        ss = next(y for y in years if y.agreement.kind == AgreementKind.SHARED_SAVINGS)
        keys = [d.key for d in definitions_in_force(programme_year=co)]
        _addressable_extras()
    return {"co": co, "ss": ss, "indicator_keys": keys}


def _addressable_extras() -> None:
    """What the demo does not hold but a write operation addresses by id: a pending invitation,
    a webhook endpoint and one of its failed deliveries (the endpoint's address takes nothing:
    port 9 on the loopback)."""
    from comanage.core.models import Organization
    from comanage.core.people import services as people_services
    from tests.seed_extras import webhook_with_failed_delivery

    org = Organization.objects.get(slug=ORG)
    people_services.invitation_create(
        organization=org, email=f"fuzz.invitee@{ORG}.example", role="auditor", actor=None
    )
    webhook_with_failed_delivery(org, url="https://127.0.0.1:9/hook")


@pytest.fixture
def counts() -> RowCounts:
    """Rows of every tenant table and of jobs, asked before and after each request; counted
    again only when a row may have come or gone since the last count (tests/fuzz/tables.py).
    One per test: each test's writes roll back at its end."""
    return RowCounts(also=(Job,))


def _api(email: str) -> APIClient:
    with scopes_disabled():
        _token, raw = ApiToken.issue(user=User.objects.get(email=email), name="fuzz")
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _named(response: Any, field: str) -> bool:
    """The 400's errors name ``field`` (or a path inside it)."""
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(
        (e.get("field") or "") == field
        or (e.get("field") or "").startswith((f"{field}.", f"{field}["))
        for e in errors
    )


def _check(
    counts: RowCounts,
    client: Any,
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
    failures: list[str],
    *,
    named: str | None = None,
) -> None:
    """``body`` is a 400 naming ``named`` (default ``field``), changes nothing, never a 5xx."""
    before = counts()
    cache.clear()  # the per-token rate limit is not what is under test
    response = getattr(client, method.lower())(url, body, format="json")
    after = counts()
    field = named or field
    shown = f"{method} {url} {json.dumps(body, default=repr)[:120]}"
    if response.status_code >= 500:
        failures.append(f"{shown}: {response.status_code}")
    elif response.status_code != 400:
        failures.append(
            f"{shown}: {response.status_code} (expected 400) {response.content[:200]!r}"
        )
    elif not _named(response, field):
        failures.append(f"{shown}: 400 without the field: {response.content[:300]!r}")
    if before != after:
        changed = {k: (before.get(k), after.get(k)) for k in after if before.get(k) != after[k]}
        failures.append(f"{shown}: stored {changed}")


# ---------------------------------------------------------------------------------------------
# API: write operations from the schema


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].split("/")[-1]]
    return node


# Actions (POST-only paths): the schema documents some of their bodies with the resource's
# serializer, not the one the action reads, so their real fields and the role allowed to call
# them are listed here. A new action fails the test until it is added.
API_ORG = "/api/v1/organizations/{org_slug}"
ACTIONS: dict[str, tuple[str, dict[str, str]]] = {
    f"{API_ORG}/adjudication/payment-lines/{{id}}/record/": (
        "administrator",
        {"paid_amount": "number", "reference": "text"},
    ),
    **{
        f"{API_ORG}/adjudication/reports/{{id}}/{name}/": (role, {"comment": "text"})
        for name, role in (
            ("approve", "counsel"),
            ("return", "counsel"),
            ("authorise", "ceo"),
            ("review", "administrator"),
            ("submit", "administrator"),
        )
    },
    f"{API_ORG}/adjudication/reports/{{id}}/verify/": ("administrator", {}),  # a PDF body
    f"{API_ORG}/adjudication/runs/start/": ("administrator", {"programme_year": "number"}),
    # Overrides: fuzzed by test_what_if_api_refuses_bad_overrides_naming_them.
    f"{API_ORG}/adjudication/runs/scenario/": ("administrator", {"programme_year": "number"}),
    f"{API_ORG}/savings-calculations/run/": ("administrator", {"programme_year": "number"}),
    f"{API_ORG}/items/assign/": ("administrator", {"opportunity": "number", "item_codes": "text"}),
    f"{API_ORG}/agreements/{{id}}/transition/": (
        "administrator",
        {"signatories": "text", "reason": "text"},
    ),
    f"{API_ORG}/compliance-flags/{{id}}/resolve/": ("administrator", {"resolution_note": "text"}),
    **{
        f"{API_ORG}/timesheets/{{id}}/{name}/": ("administrator", {"note": "text"})
        for name in ("approve", "return")
    },
    f"{API_ORG}/timesheets/{{id}}/submit/": ("administrator", {}),  # reads no body
    # A reference file's confirm may name the saved mapping that reads it (by id).
    **{
        f"{API_ORG}/{path}/{{id}}/confirm/": ("administrator", {"mapping": "number"})
        for path in ("roster-imports", "item-imports", "indicator-result-imports")
    },
    # Actions added with imports, people and webhooks: they read no number or free text (the
    # role change's one field is a choice, refused by name in tests/api/write_examples.py).
    **{
        f"{API_ORG}/{path}/": ("administrator", {})
        for path in (
            "indicator-imports/{id}/discard",
            "savings-imports/{id}/discard",
            "savings-imports/{id}/confirm",
            "roster-imports/{id}/discard",
            "item-imports/{id}/discard",
            "indicator-result-imports/{id}/discard",
            "invitations/{id}/resend",
            "invitations/{id}/revoke",
            "members/{id}/deactivate",
            "members/{id}/reactivate",
            "members/{id}/role",
            "webhook-deliveries/{id}/redeliver",
            "webhooks/{id}/rotate-secret",
        )
    },
}


def _write_operations() -> list[tuple[str, str, str, dict[str, str]]]:
    """(method, path, role, {field: "number" | "text"}) for every POST/PUT/PATCH."""
    import django

    django.setup()
    schema = api_schema()
    found = []
    for path, operations in sorted(schema["paths"].items()):
        for method, operation in sorted(operations.items()):
            if method not in ("post", "put", "patch"):
                continue
            if (method.upper(), path) in SKIP_OPERATIONS:
                continue
            if "get" not in operations:  # an action: its real body is in the table
                role, fields = ACTIONS.get(path, ("administrator", {"?": "unlisted"}))
                found.append((method.upper(), path, role, fields))
                continue
            content = operation.get("requestBody", {}).get("content", {})
            body = content.get("application/json") or content.get("multipart/form-data")
            fields = {}
            if body:
                for name, prop in _resolve(schema, body["schema"]).get("properties", {}).items():
                    prop = _resolve(schema, prop)
                    if prop.get("readOnly") or name in SKIP_FIELDS:
                        continue
                    kind = prop.get("type")
                    if kind in ("integer", "number") or prop.get("format") == "decimal":
                        fields[name] = "number"
                    elif kind == "string" and "format" not in prop and "enum" not in prop:
                        fields[name] = "text"
            found.append((method.upper(), path, "administrator", fields))
    return found


WRITES = _write_operations() if os.environ.get("DJANGO_SETTINGS_MODULE") else []


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "role", "fields"), WRITES, ids=[f"{m} {p}" for m, p, _r, _f in WRITES]
)
def test_api_write_refuses_bad_values_naming_the_field(demo, counts, method, path, role, fields):  # type: ignore[no-untyped-def]
    assert fields.get("?") != "unlisted", f"{path} is a new action: list its body in ACTIONS"
    client = _api(f"{role}@{ORG}.example")
    url = first_object_url(client, path, ORG)
    if f"{method} {path}" in SESSION_ONLY_WRITES:
        # Tokens are managed from a signed-in session only (a token cannot mint a token).
        client = APIClient(raise_request_exception=False)
        with scopes_disabled():
            client.force_login(User.objects.get(email=f"{role}@{ORG}.example"))
    assert url is not None, (
        f"no object to address at {path}: add one to the demo fixture (_addressable_extras)"
    )
    failures: list[str] = []
    for field, kind in fields.items():
        for value in BAD_NUMBERS if kind == "number" else BAD_TEXT:
            _check(counts, client, method, url, {field: value}, field, failures)
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# API: override mappings (the what-if and the savings run)


def _co_overrides(keys: list[str]) -> list[tuple[dict[str, Any], str]]:
    k = keys[0]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"pool": "1e30"}, "overrides.pool"),
        ({"pool": "1e400"}, "overrides.pool"),
        ({"pool": 1e308}, "overrides.pool"),
        ({"pool": "NaN"}, "overrides.pool"),
        ({"pool": "-5"}, "overrides.pool"),
        ({"pool": "1.001"}, "overrides.pool"),
        ({"pool": True}, "overrides.pool"),
        ({"pool": [1]}, "overrides.pool"),
        ({"weights": "x"}, "overrides.weights"),
        ({"weights": {k: "x"}}, f"overrides.weights.{k}"),
        ({"weights": {k: "Infinity"}}, f"overrides.weights.{k}"),
        ({"weights": {k: "101"}}, f"overrides.weights.{k}"),
        ({"weights": {"no_such_indicator": "5"}}, "overrides.weights"),
        ({"results": {k: "x"}}, f"overrides.results.{k}"),
        ({"results": {k: []}}, f"overrides.results.{k}"),
        ({"results": {k: {"score": "1e400"}}}, f"overrides.results.{k}.score"),
        ({"results": {k: {"score": "NaN"}}}, f"overrides.results.{k}.score"),
        ({"results": {k: {"score": 1e308}}}, f"overrides.results.{k}.score"),
        ({"results": {k: {"denominator": -1}}}, f"overrides.results.{k}.denominator"),
        ({"results": {k: {"denominator": "1e400"}}}, f"overrides.results.{k}.denominator"),
        ({"results": {k: {"score": "1", "extra": 1}}}, f"overrides.results.{k}"),
        ({"tier_mode": "a\x00b"}, "overrides.tier_mode"),
        ({"tier_mode": ["step"]}, "overrides.tier_mode"),
        ({"no_such_override": 1}, "overrides"),
        ({"pool\x00": "1"}, "overrides"),
    ]
    return cases


SS_OVERRIDES: list[tuple[dict[str, Any], str]] = [
    ({"terms": {"physician_share_pct": "1e400"}}, "overrides.terms.physician_share_pct"),
    ({"terms": {"physician_share_pct": "51"}}, "overrides.terms.physician_share_pct"),
    ({"terms": {"physician_share_pct": "NaN"}}, "overrides.terms.physician_share_pct"),
    ({"terms": {"admin_fee_monthly": "-1"}}, "overrides.terms.admin_fee_monthly"),
    ({"terms": {"admin_fee_monthly": 1e308}}, "overrides.terms.admin_fee_monthly"),
    ({"terms": {"distribution_cap": "-0.01"}}, "overrides.terms.distribution_cap"),
    ({"terms": {"reprice_baseline": "maybe"}}, "overrides.terms.reprice_baseline"),
    ({"terms": {"quality_gate": "lenient"}}, "overrides.terms.quality_gate"),
    ({"terms": {"no_such_term": 1}}, "overrides.terms"),
    ({"terms": "x"}, "overrides.terms"),
    ({"prices": {"__ITEM__": "-5"}}, "overrides.prices.__ITEM__"),
    ({"prices": {"__ITEM__": "Infinity"}}, "overrides.prices.__ITEM__"),
    ({"prices": {"__ITEM__": {"a": 1}}}, "overrides.prices.__ITEM__"),
    ({"prices": {"__ITEM__\x00": "1"}}, "overrides"),
    ({"prices": {"NO-SUCH-ITEM": "1"}}, "overrides.prices"),
    ({"prices": ["x"]}, "overrides.prices"),
    ({"quantity_pct": {"__ITEM__": "-10"}}, "overrides.quantity_pct.__ITEM__"),
    ({"quantity_pct": {"__ITEM__": "1e400"}}, "overrides.quantity_pct.__ITEM__"),
    ({"already_distributed": 1e308}, "overrides.already_distributed"),
    ({"already_distributed": "-1"}, "overrides.already_distributed"),
    ({"key_indicators_met": "maybe"}, "overrides.key_indicators_met"),
    ({"key_indicators_met": 2}, "overrides.key_indicators_met"),
    ({"key_indicators_met": "a\x00"}, "overrides.key_indicators_met"),
    ({"no_such_override": 1}, "overrides"),
]


def _ss_cases(demo: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    from savings.overrides import agreed_item_codes

    with scopes_disabled():
        item = sorted(agreed_item_codes(agreement=demo["ss"].agreement))[0]
    return [
        (json.loads(json.dumps(o).replace("__ITEM__", item)), f.replace("__ITEM__", item))
        for o, f in SS_OVERRIDES
    ]


@pytest.mark.slow
@pytest.mark.django_db
def test_what_if_api_refuses_bad_overrides_naming_them(demo, counts):  # type: ignore[no-untyped-def]
    client = _api(f"administrator@{ORG}.example")
    url = f"/api/v1/organizations/{ORG}/adjudication/runs/scenario/"
    failures: list[str] = []
    for year, cases in (
        (demo["co"], _co_overrides(demo["indicator_keys"])),
        (demo["ss"], _ss_cases(demo)),
    ):
        for overrides, field in cases:
            _check(
                counts,
                client,
                "POST",
                url,
                {"programme_year": year.pk, "overrides": overrides},
                "overrides",
                failures,
                named=field,
            )
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.django_db
def test_savings_run_api_refuses_bad_overrides_before_queueing(demo, counts):  # type: ignore[no-untyped-def]
    client = _api(f"administrator@{ORG}.example")
    url = f"/api/v1/organizations/{ORG}/savings-calculations/run/"
    failures: list[str] = []
    for overrides, field in _ss_cases(demo):
        body = {"programme_year": demo["ss"].pk, "kind": "scenario", "overrides": overrides}
        _check(counts, client, "POST", url, body, "overrides", failures, named=field)
    # A programme-year calculation takes no overrides: refused now, not by a failed job.
    _check(
        counts,
        client,
        "POST",
        url,
        {
            "programme_year": demo["ss"].pk,
            "kind": "year",
            "overrides": {"key_indicators_met": True},
        },
        "overrides",
        failures,
    )
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# Web forms (a table: url, who, base data, field, bad values)


def _web(email: str) -> Client:
    client = Client(raise_request_exception=False)
    with scopes_disabled():
        client.force_login(User.objects.get(email=email))
    return client


def _web_forms(demo: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str, str, list[str]]]:
    """(url, who, base data, posted field, field the error names, bad values)."""
    from agreements.models import ManagementDuty
    from comanage.core.models import Role

    numbers = ["1e400", "NaN", "Infinity", "-Infinity", "1e308", "1\x00", "abc", "1e30"]
    co, ss = demo["co"], demo["ss"]
    key = demo["indicator_keys"][0]
    with scopes_disabled():
        duty = ManagementDuty.objects.filter(agreement=co.agreement).order_by("pk").first()
    admin, physician = f"{Role.ADMINISTRATOR}@{ORG}.example", f"physician@{ORG}.example"
    what_if_co = f"/o/{ORG}/adjudication/years/{co.pk}/what-if/"
    what_if_ss = f"/o/{ORG}/adjudication/years/{ss.pk}/what-if/"
    portal = f"/o/{ORG}/portal/"
    setup_co = f"/o/{ORG}/agreements/{co.agreement_id}/setup/"
    setup_ss = f"/o/{ORG}/agreements/{ss.agreement_id}/setup/"
    with scopes_disabled():
        from agreements.models import Physician
        from indicators.models import IndicatorTemplate

        template = IndicatorTemplate.objects.order_by("pk").first()
        demo_physician = Physician.objects.filter(organization__slug=ORG).order_by("pk").first()
    hours_base = {"agreement": str(co.agreement_id), "action": "save"}
    mapping_edit, mapping_base = _saved_mapping_form()
    return [
        (what_if_co, admin, {}, f"score__{key}", f"score__{key}", numbers),
        (what_if_co, admin, {}, f"weight__{key}", f"weight__{key}", [*numbers, "-1", "101"]),
        (what_if_co, admin, {}, f"denominator__{key}", f"denominator__{key}", [*numbers, "-1"]),
        (
            what_if_ss,
            admin,
            {},
            "physician_share_pct",
            "physician_share_pct",
            [*numbers, "51", "-1"],
        ),
        (
            what_if_ss,
            admin,
            {},
            "admin_fee_monthly",
            "admin_fee_monthly",
            [*numbers, "-1", "0.001"],
        ),
        (
            what_if_ss,
            admin,
            {},
            "quantity_pct",
            "quantity_pct",
            [f"X = {n}" for n in numbers] + ["X = -5", "NO-SUCH-ITEM = 90"],
        ),
        (what_if_ss, admin, {}, "key_indicators_met", "key_indicators_met", ["maybe"]),
        (
            portal,
            physician,
            hours_base,
            f"hours_{duty.pk}",
            "hours",
            ["NaN", "Infinity", "-1", "1e308", "1e400", "745", "0.001", "abc"],
        ),
        (
            portal,
            physician,
            {**hours_base, f"hours_{duty.pk}": "1"},
            f"desc_{duty.pk}",
            "description",
            ["a\x00b"],
        ),
        ("/account/tokens/", admin, {}, "revoke", "revoke", ["abc", "1e400", "-1", "1\x00", ""]),
        (
            f"/o/{ORG}/savings/items/",
            admin,
            {"action": "assign", "items": "IMP-1"},
            "opportunity",
            "opportunity",
            [*numbers, "-1", ""],
        ),
        # The guided agreement setup's steps that take numbers.
        (
            f"{setup_co}indicators/",
            admin,
            {"template": str(template.pk)},
            "weight",
            "weight",
            [*numbers, "-1", "101"],
        ),
        (
            f"{setup_co}physicians/",
            admin,
            {"physician": str(demo_physician.pk), "join_date": "2025-01-01"},
            "ownership_pct",
            "ownership_pct",
            numbers,
        ),
        (
            f"{setup_ss}opportunities/",
            admin,
            {"name": "X", "case_types": "A", "item_codes": "B", "base_year": "2024"},
            "savings_target",
            "savings_target",
            [*numbers, "-1"],
        ),
        (f"{setup_co}fmv/", admin, {}, "total_max_annual", "total_max_annual", numbers),
        # A saved column mapping's edit form (comanage/core/mapping_views.py).
        (mapping_edit, admin, mapping_base, "name", "name", ["a\x00b", "x" * 101, "  ", ""]),
        (
            mapping_edit,
            admin,
            mapping_base,
            "date_format",
            "date_format",
            ["", "dd/mm", "1\x00", "1e400"],
        ),
        (
            mapping_edit,
            admin,
            mapping_base,
            "column_0",
            "columns",
            ["unit_cost", "no_such_field", "a\x00b", "1e400"],
        ),
        (mapping_edit, admin, mapping_base, "column_1", "columns", [""]),
    ]


def _saved_mapping_form() -> tuple[str, dict[str, str]]:
    """A saved price-file mapping of the demo organization: its edit url and a valid post."""
    from comanage.core.import_mappings import import_mapping_save
    from comanage.core.models import Organization
    from comanage.core.tabular.mapping import ColumnMapping

    with scopes_disabled():
        org = Organization.objects.get(slug=ORG)
        saved = import_mapping_save(
            organization=org,
            kind="prices",
            name="Fuzzed prices",
            header=["Item No", "Contract Price"],
            mapping=ColumnMapping(columns={"Item No": "item_code", "Contract Price": "unit_cost"}),
            user=None,
        )
    base = {"name": "Fuzzed prices", "date_format": "auto"}
    base.update({"column_0": "item_code", "column_1": "unit_cost"})
    return f"/o/{ORG}/import-mappings/{saved.pk}/edit/", base


def _form_named(response: Any, field: str) -> bool:
    """The page's form, its error dict or its error message names ``field``."""
    context = response.context or {}
    form = context.get("form")
    if form is not None and field in form.errors:
        return True
    errors = context.get("errors")
    if isinstance(errors, dict) and field in errors:
        return True
    message = " ".join(str(m) for m in context.get("messages", []))
    return field in str(context.get("error") or "") or field in message.lower()


@pytest.mark.slow
@pytest.mark.django_db
def test_web_forms_refuse_bad_values_naming_the_field(demo, counts):  # type: ignore[no-untyped-def]
    failures: list[str] = []
    for url, who, base, posted, named, values in _web_forms(demo):
        client = _web(who)
        for value in values:
            before = counts()
            response = client.post(url, {**base, posted: value})
            after = counts()
            shown = f"POST {url} {posted}={value!r}"
            if response.status_code >= 500:
                failures.append(f"{shown}: {response.status_code}")
            elif response.status_code != 400:
                failures.append(f"{shown}: {response.status_code} (expected 400)")
            elif not _form_named(response, named):
                failures.append(f"{shown}: 400 without naming {named}")
            if before != after:
                failures.append(f"{shown}: stored something")
    assert not failures, "\n".join(failures)
