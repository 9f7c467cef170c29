"""Isolation, exhaustively (issue 9): every organization route × every method × every role.

The test walks the URL configuration. For each route under ``/o/<org_slug>/`` and
``/api/v1/organizations/<org_slug>/`` and each method the view supports, it checks every role of
organization A (riverside) and the outsider (administrator of B, lakeview) against real objects of
A, using the permission the route *declares*:

* function views: ``view.comanage_permission`` (``comanage.core.views.org_view``): one
  permission for every method, or ``{"GET": ..., "POST": ...}`` when they differ;
* class views: ``view_class.permission_required`` (``OrgPermissionMixin``);
* DRF views: ``cls.permission_map[action]`` (actions from the router's ``callback.actions``).

A route without a declaration fails. Roles granted the permission get through (2xx/3xx; for a
bodyless unsafe method also a 4xx validation answer — never 403/404); a physician holding it for
their own records only may get 404 on someone else's; other roles get 403; the outsider gets 404;
and for forbidden and outsider attempts the database does not change (row counts of every table
of the apps, history tables included, so an UPDATE shows up too). Permitted attempts run in a
rolled-back savepoint so one check never changes the objects the next one uses.

Engineers adding a route: use a kwarg name this test can map to a model (``<int:pk>`` after a
plural path segment naming the model, ``<int:agreement_pk>``, ...) or add it to ``EXPLICIT``;
when only some objects make sense for a route (a shared-savings agreement for the savings pages),
say which in ``ROUTE_OBJECTS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.db import models, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django_scopes import scopes_disabled

from comanage.core.models import Membership, Organization, Role
from comanage.core.permissions import PERMISSION_TABLE
from tests.fuzz.tables import row_counts

ORG_A, ORG_B = "riverside", "lakeview"
PREFIXES = ("o/<org_slug>/", "api/v1/organizations/<org_slug>/")
APPS = ["core", "agreements", "indicators", "savings", "adjudication", "webhooks"]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PROBED_METHODS = ["GET", "POST"]  # function views do not say which methods they accept

# What cannot be inferred: url name -> {kwarg: model label, or a literal value to use}.
EXPLICIT: dict[str, dict[str, str]] = {
    "record_history": {"kind": "=agreement", "pk": "agreements.Agreement"},
    "agreement_setup": {"step": "=parties"},
    "executive_agreement_csv": {"table": "=years"},
    "admin_workspace_csv": {"table": "=jobs"},
    "physician_home_csv": {"table": "=timelogs"},
    "savings_column_docs": {"kind": "=usage"},
    "savings_template": {"kind": "=usage"},
    **{
        name: {"pk": "indicators.IndicatorDefinition"}
        for name in (
            "indicator_definition_edit",
            "indicator_definition_history",
            "indicator_result_create",
            "indicator_benchmark_create",
            "indicator_action_plan_create",
        )
    },
    **{
        name: {"import_pk": "indicators.CaseImport"}
        for name in (
            "indicator_import_detail",
            "indicator_import_confirm",
            "indicator_import_discard",
        )
    },
    **{
        name: {"import_pk": "savings.DataImport"}
        for name in (
            "savings_import",
            "savings_import_confirm",
            "savings_import_file",
            "savings_import_history",
            "savings_import_discard",
        )
    },
    **{
        name: {"import_pk": "agreements.RosterImport"}
        for name in ("roster_import", "roster_import_confirm", "roster_import_discard")
    },
    **{
        name: {"import_pk": "indicators.ResultImport"}
        for name in (
            "indicator_result_import",
            "indicator_result_import_confirm",
            "indicator_result_import_discard",
        )
    },
    **{
        name: {"import_pk": "savings.ItemImport"}
        for name in (
            "savings_item_import",
            "savings_item_import_confirm",
            "savings_item_import_discard",
        )
    },
    "webhook_detail": {"pk": "webhooks.WebhookEndpoint"},
    "webhook_redeliver": {"pk": "webhooks.WebhookDelivery"},
}
# Query strings a route needs to be a page at all (an htmx fragment's parameters).
QUERY: dict[str, str] = {
    "indicator_criteria_row": "population=denominator",
}
# Which objects a route needs, when not any of its model will do: url-name prefix ->
# {model label: filter}. The first matching prefix wins.
ROUTE_OBJECTS: list[tuple[str, dict[str, dict[str, Any]]]] = [
    # Savings pages exist for shared-savings agreements only (others are 404 by design).
    ("savings_", {"agreements.Agreement": {"kind": "shared_savings"}}),
    # Case drill-downs exist for results computed from a case file.
    (
        "indicator_result_cases",
        {
            "agreements.Agreement": {"indicator_definitions__results__source": "case_file"},
            "indicators.IndicatorResult": {"source": "case_file"},
        },
    ),
]
# kwarg name -> model label, for names that do not spell their model.
KWARG_MODELS: dict[str, str] = {
    "job_id": "core.Job",
    "result_pk": "indicators.IndicatorResult",  # (not the ResultImport the word also fits)
    "year_pk": "agreements.ProgrammeYear",
    "year_id": "agreements.ProgrammeYear",
    "programme_year_pk": "agreements.ProgrammeYear",
    "report_pk": "adjudication.AdjudicationReport",
    "report_id": "adjudication.AdjudicationReport",
    "run_pk": "adjudication.CalculationRun",
    "run_id": "adjudication.CalculationRun",
    "calculation_pk": "savings.SavingsCalculation",
}


@dataclass
class Route:
    pattern: str  # the full route with kwargs as <name>, e.g. "o/<org_slug>/jobs/<job_id>/"
    name: str
    callback: Any
    kwargs: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- URL walking

_ROUTE_KWARG = re.compile(r"<(?:(?P<conv>[^>:]+):)?(?P<name>\w+)>")


def _pattern_text(pattern: Any) -> str:
    """A RoutePattern or RegexPattern as text with kwargs written ``<name>``."""
    text = str(pattern.pattern if hasattr(pattern, "pattern") else pattern)
    if type(pattern).__name__ == "RegexPattern":
        text = text.lstrip("^").rstrip("$").removesuffix(r"\Z")
        out, i = [], 0
        while i < len(text):
            match = re.match(r"\(\?P<(\w+)>", text[i:])
            if match:  # skip to the group's closing parenthesis
                depth, j = 1, i + match.end()
                while depth:
                    depth += {"(": 1, ")": -1}.get(text[j], 0) if text[j - 1] != "\\" else 0
                    j += 1
                out.append(f"<{match.group(1)}>")
                i = j
            else:
                out.append(text[i])
                i += 1
        text = "".join(out).replace("\\.", ".").replace("\\-", "-")
        text = re.sub(r"\(\?:?([^)]*)\)\??", "", text)  # optional format suffixes and the like
    return _ROUTE_KWARG.sub(lambda m: f"<{m.group('name')}>", text)


def walk(patterns: list | None = None, prefix: str = "") -> list[Route]:
    routes: list[Route] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        text = prefix + _pattern_text(entry.pattern)
        if isinstance(entry, URLResolver):
            routes.extend(walk(entry.url_patterns, text))
        elif isinstance(entry, URLPattern):
            routes.append(
                Route(text, entry.name or "", entry.callback, re.findall(r"<(\w+)>", text))
            )
    return routes


def org_routes() -> list[Route]:
    return [r for r in walk() if r.pattern.startswith(PREFIXES)]


# ----------------------------------------------------------------------------- declarations


def methods_and_permissions(route: Route) -> tuple[dict[str, str | None], list[str]]:
    """{method: declared permission (None: members only)} and problems found."""
    callback, problems = route.callback, []
    cls = getattr(callback, "cls", None)
    actions = getattr(callback, "actions", None)
    if cls is not None and actions:  # a DRF view set
        declared = getattr(cls, "permission_map", None)
        result: dict[str, str | None] = {}
        for method, action in actions.items():
            if method.upper() in {"HEAD", "OPTIONS"}:
                continue
            if declared is None or action not in declared:
                problems.append(
                    f"{route.pattern} [{method.upper()} → {action}]: no "
                    f"permission_map entry for action '{action}'"
                )
                continue
            result[method.upper()] = declared[action]
        return result, problems
    if cls is not None:  # a DRF APIView
        declared = getattr(cls, "permission_map", {}) or {}
        result = {}
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(cls, method):
                if method in declared:
                    result[method.upper()] = declared[method]
                else:
                    problems.append(
                        f"{route.pattern} [{method.upper()}]: DRF view "
                        f"{cls.__name__} declares no permission_map['{method}']"
                    )
        return result, problems
    view_class = getattr(callback, "view_class", None)
    if view_class is not None:  # a Django class-based view
        permission = getattr(view_class, "permission_required", None)
        if not permission:
            problems.append(
                f"{route.pattern}: class view {view_class.__name__} declares no "
                f"permission_required (use OrgPermissionMixin)"
            )
            return {}, problems
        methods = [
            m.upper()
            for m in view_class.http_method_names
            if m not in ("head", "options") and hasattr(view_class, m)
        ]
        return dict.fromkeys(methods, permission), problems
    if not hasattr(callback, "comanage_permission"):
        problems.append(
            f"{route.pattern}: function view {callback.__module__}."
            f"{callback.__name__} declares no permission (use @org_view)"
        )
        return {}, problems
    declared = callback.comanage_permission
    if isinstance(declared, dict):  # org_view("x.view", post="x.edit")
        return {m: declared.get(m) for m in PROBED_METHODS if m in declared}, problems
    return dict.fromkeys(PROBED_METHODS, declared), problems


# ----------------------------------------------------------------------------- URL filling


def _models() -> list[type[models.Model]]:
    return [
        m
        for label in APPS
        for m in apps.get_app_config(label).get_models()
        if not m.__name__.startswith("Historical")
    ]


def _model_for_segment(segment: str) -> type[models.Model] | None:
    """``programme-years`` -> ProgrammeYear, ``duties`` -> ManagementDuty, ..."""
    word = segment.replace("-", "").replace("_", "").lower()
    candidates = {
        word,
        word.removesuffix("s"),
        word.removesuffix("es"),
        word.removesuffix("ies") + "y" if word.endswith("ies") else word,
    }
    everything = _models()
    exact = [m for m in everything if m._meta.model_name in candidates]
    if len(exact) == 1:
        return exact[0]
    loose = [
        m
        for m in everything
        if any(
            c and (m._meta.model_name.endswith(c) or m._meta.model_name.startswith(c))
            for c in candidates
        )
    ]
    return loose[0] if len(loose) == 1 else None


def _view_model(route: Route) -> type[models.Model] | None:
    cls = getattr(route.callback, "cls", None) or getattr(route.callback, "view_class", None)
    if cls is None:
        return None
    model = getattr(cls, "model", None)
    if isinstance(model, type) and issubclass(model, models.Model):
        return model
    queryset = getattr(cls, "queryset", None)
    if queryset is not None and hasattr(queryset, "model"):
        return queryset.model
    serializer = getattr(cls, "serializer_class", None)
    meta = getattr(serializer, "Meta", None)
    return getattr(meta, "model", None)


def _kwarg_model(route: Route, kwarg: str) -> type[models.Model] | str | None:
    explicit = EXPLICIT.get(route.name, {}).get(kwarg)
    if explicit:
        return explicit if explicit.startswith("=") else apps.get_model(explicit)
    if kwarg in KWARG_MODELS:
        return apps.get_model(KWARG_MODELS[kwarg])
    if kwarg in ("pk", "id"):
        model = _view_model(route)
        if model is not None:
            return model
        before = route.pattern.split(f"<{kwarg}>")[0].rstrip("/").split("/")
        return _model_for_segment(before[-1]) if before else None
    stem = re.sub(r"_(pk|id)$", "", kwarg)
    if stem != kwarg:
        return _model_for_segment(stem)
    return None


def _route_filter(route: Route, model: type[models.Model]) -> dict[str, Any]:
    for prefix, filters in ROUTE_OBJECTS:
        if route.name.startswith(prefix):
            return filters.get(model._meta.label, {})
    return {}


def fill(route: Route, organization: Organization) -> tuple[str | None, str]:
    """The concrete URL for ``route`` with objects of ``organization``, or (None, why)."""
    values: dict[str, str] = {"org_slug": organization.slug}
    chosen: list[models.Model] = []
    for kwarg in route.kwargs:
        if kwarg == "org_slug":
            continue
        target = _kwarg_model(route, kwarg)
        if isinstance(target, str):
            values[kwarg] = target[1:]
            continue
        if target is None:
            return None, (
                f"{route.pattern} (name '{route.name}'): cannot fill <{kwarg}> — "
                f"name it after its model or add it to EXPLICIT in {__name__}"
            )
        with scopes_disabled():
            queryset = target._default_manager.all()
            if any(f.name == "organization" for f in target._meta.fields):
                queryset = queryset.filter(organization=organization)
            for parent in chosen:  # a child of the objects already chosen, when related
                for f in target._meta.fields:
                    if not f.is_relation:
                        continue
                    if f.related_model is type(parent):
                        queryset = queryset.filter(**{f.name: parent})
                        continue
                    # ... or related through one step (a result's definition's agreement);
                    # not through an optional link (a result's import, when it came from one)
                    if f.null:
                        continue
                    for g in f.related_model._meta.fields:
                        if (
                            g.is_relation
                            and g.related_model is type(parent)
                            and not any(
                                h.is_relation and h.related_model is type(parent)
                                for h in target._meta.fields
                            )
                        ):
                            queryset = queryset.filter(**{f"{f.name}__{g.name}": parent})
            queryset = queryset.filter(**_route_filter(route, target))
            obj = queryset.order_by("pk").first()
        if obj is None:
            return None, (
                f"{route.pattern} (name '{route.name}'): no {target.__name__} of "
                f"'{organization.slug}' to fill <{kwarg}> — seed_demo should create one"
            )
        chosen.append(obj)
        values[kwarg] = str(obj.pk)
    url = "/" + re.sub(r"<(\w+)>", lambda m: values[m.group(1)], route.pattern)
    match = resolve(url)
    assert match.func is route.callback or getattr(match.func, "cls", 0) is getattr(
        route.callback, "cls", 1
    ), f"{url} resolves elsewhere than {route.pattern}"
    return url + (f"?{QUERY[route.name]}" if route.name in QUERY else ""), ""


# ----------------------------------------------------------------------------- the test


def _row_counts() -> dict[str, int]:
    """Rows of every table of the apps, as stored (no manager's filter), in one query: counted
    before and after each unsafe method, a query per table was a fifth of the walk's time."""
    models = [m for label in APPS for m in apps.get_app_config(label).get_models()]
    return row_counts(models)


def _request(client: Client, method: str, url: str):  # type: ignore[no-untyped-def]
    kwargs: dict[str, Any] = {}
    if method in UNSAFE and "/api/" in url:
        kwargs = {"data": "{}", "content_type": "application/json"}
    try:
        return client.generic(method, url, **kwargs).status_code, ""
    except Exception as exc:  # noqa: BLE001 - a crash is a finding, not the end of the walk
        return 500, f"{type(exc).__name__}: {exc}"[:300]


def _attempt(client: Client, method: str, url: str, rollback: bool):  # type: ignore[no-untyped-def]
    if not rollback:
        return _request(client, method, url)
    with transaction.atomic():
        result = _request(client, method, url)
        transaction.set_rollback(True)
    return result


def _expectation(permission: str | None, role: str) -> str:
    if role == "outsider":
        return "404"
    if permission is None:
        return "through"
    full, own = PERMISSION_TABLE[permission]
    if role in full:
        return "through"
    if role in own:
        return "own"
    return "403"


def _verdict(expected: str, method: str, status: int) -> bool:
    if status >= 500:
        return False
    if expected == "404":
        return status == 404
    if expected == "403":
        return status == 403
    if status in (403, 404):
        return expected == "own" and status == 404
    if method in UNSAFE:
        return status < 500  # 4xx validation of a bodyless request counts as "got through"
    return status < 400


def _complete_the_seed(organization: Organization) -> None:
    """Objects the demo does not make but routes need: a job, a stored document, a saved column
    mapping, made with the apps' own services as an administrator would."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django_scopes import scope

    from agreements.models import Agreement
    from agreements.services import document_upload
    from comanage.core.jobs import job_create
    from comanage.core.models import Invitation, Job
    from comanage.core.people.services import invitation_create
    from savings.services import CALCULATION_JOB_KIND

    with scopes_disabled():
        admin = Membership.objects.get(
            organization=organization,
            role=Role.ADMINISTRATOR,
            user__email=f"administrator@{organization.slug}.example",
        ).user
    with scope(organization=organization):
        if not Job.objects.exists():
            # A savings job serves the job pages and the savings job page alike.
            job_create(organization=organization, kind=CALCULATION_JOB_KIND, user=admin)
        if not Invitation.objects.exists():  # the People pages' invitation routes
            invitation_create(
                organization=organization,
                email="invited@example.org",
                role=Role.AUDITOR,
                actor=admin,
            )
        agreement = Agreement.objects.order_by("pk").first()
        if agreement is not None and not agreement.documents.exists():
            pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
            document_upload(
                agreement=agreement,
                kind=agreement.documents.model._meta.get_field("kind").choices[0][0],
                title="Signed agreement",
                upload=SimpleUploadedFile("agreement.pdf", pdf, "application/pdf"),
                user=admin,
            )
        from comanage.core.import_mappings import import_mapping_save
        from comanage.core.models import ImportMapping
        from comanage.core.tabular.mapping import ColumnMapping

        if not ImportMapping.objects.exists():  # the saved column mappings pages
            import_mapping_save(
                organization=organization,
                kind="prices",
                name="OR contract prices",
                header=["Item No", "Contract Price"],
                mapping=ColumnMapping(
                    columns={"Item No": "item_code", "Contract Price": "unit_cost"}
                ),
                user=admin,
            )
        from indicators.aggregate_import import result_import_receive
        from indicators.models import ResultImport

        if agreement is not None and not ResultImport.objects.exists():  # results from a file
            result_import_receive(
                organization=organization,
                agreement=agreement,
                upload=SimpleUploadedFile(
                    "results.csv", b"indicator,programme_year,numerator,denominator\nx,2025,1,2\n"
                ),
                user=admin,
            )
        from comanage.core.webhooks.models import WebhookEndpoint
        from tests.seed_extras import webhook_with_failed_delivery

        if not WebhookEndpoint.objects.exists():
            webhook_with_failed_delivery(organization, url="https://93.184.215.14/hook", user=admin)


@dataclass
class Seeded:
    """Organization A as seed_demo makes it, one signed-in client per role, and the outsider."""

    org_a: Organization
    clients: dict[str, Client]
    missing_roles: list[str]


@pytest.fixture(scope="module")
def seeded(seeded_demo, django_db_blocker):  # type: ignore[no-untyped-def]
    """The demo (tests/demo_database.py: loaded once per worker, its module transaction rolled
    back at the end); every cell runs inside it in its own savepoint (the ``db`` fixture)."""
    with django_db_blocker.unblock():
        with scopes_disabled():
            org_a = Organization.objects.get(slug=ORG_A)
        _complete_the_seed(org_a)
        with scopes_disabled():
            members = {
                m.role: m.user
                for m in Membership.objects.filter(organization=org_a, is_active=True)
                .select_related("user")
                .order_by("pk")
                if m.user.email.endswith(f"@{ORG_A}.example") or m.role == Role.PHYSICIAN
            }
            outsider = Membership.objects.get(
                organization__slug=ORG_B,
                role=Role.ADMINISTRATOR,
                user__email=f"administrator@{ORG_B}.example",
            ).user
        clients: dict[str, Client] = {}
        for role, user in [*members.items(), ("outsider", outsider)]:
            clients[role] = Client()
            clients[role].force_login(user)
        yield Seeded(
            org_a=org_a,
            clients=clients,
            missing_roles=[r for r in Role.values if r not in members],
        )


def _check_method(
    clients: dict[str, Client], url: str, method: str, permission: str | None
) -> list[str]:
    """Every identity against one route and method: the wrong answers, in words."""
    # Does the view accept this method at all? Ask a role that may use it.
    permitted = [r for r in clients if _expectation(permission, r) == "through"]
    prober = Role.ADMINISTRATOR if Role.ADMINISTRATOR in permitted else (permitted or [None])[0]
    if prober is not None:
        status, _ = _attempt(clients[prober], method, url, rollback=True)
        if status == 405:
            return []
    failures = []
    # Forbidden roles and the outsider first, with the row counts compared around them.
    order = sorted(clients, key=lambda r: _expectation(permission, r) == "through")
    before = _row_counts() if method in UNSAFE else None
    for role in order:
        expected = _expectation(permission, role)
        rollback = expected in ("through", "own")
        status, error = _attempt(clients[role], method, url, rollback=rollback)
        if not _verdict(expected, method, status):
            failures.append(
                f"{method} {url} as {role}: expected {expected}, got {status} {error}".rstrip()
                + f"  [declares {permission!r}]"
            )
    if before is not None:
        after = _row_counts()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if changed:
            failures.append(
                f"{method} {url}: rows changed by forbidden or outsider attempts: {changed}"
            )
    return failures


ROUTES = org_routes()


def test_the_walk_finds_the_routes() -> None:
    assert len(ROUTES) >= 150, f"only {len(ROUTES)} organization routes found"


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=[r.pattern for r in ROUTES])
def test_route_enforces_tenant_and_role(seeded: Seeded, route: Route) -> None:
    """One cell per route: every method it accepts × every role of A and the outsider.

    Re-run one alone with ``pytest tests/test_isolation_routes.py -k 'agreements/<int:pk>'``.
    """
    assert not seeded.missing_roles, f"roles missing from the seed: {seeded.missing_roles}"
    methods, problems = methods_and_permissions(route)
    failures: list[str] = []
    if methods:
        url, why = fill(route, seeded.org_a)
        if url is None:
            problems.append(why)
        else:
            for method, permission in methods.items():
                if permission is not None and permission not in PERMISSION_TABLE:
                    problems.append(f"{method} {url}: unknown permission '{permission}'")
                    continue
                failures += _check_method(seeded.clients, url, method, permission)
    report = "\n".join(["Cannot be checked:", *problems, "", "Wrong answers:", *failures])
    assert not problems and not failures, report
