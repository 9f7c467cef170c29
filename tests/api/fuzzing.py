"""Schema-driven fuzzing of the API with schemathesis (used by tests/api/test_fuzz.py and
scripts/fuzz_api.py).

Two passes over the generated OpenAPI schema against a running server:

* as an administrator of organization A: every response is no 5xx and conforms to the schema
  (status code documented, content type, body);
* as the outsider (administrator of B) on A's organization URLs: every response is 401/403/404,
  never data.

Examples are bounded per operation and derandomized, so a run is reproducible.

Generated bodies rarely carry ids that exist, so on their own they seldom get past validation:
``explicit`` cases (a valid body and a refused one per write operation, built on the server's
own data, in an order where each finds the state it needs) run first, through the same checks.
The report counts, per write operation (POST/PUT/PATCH/DELETE), the cases that reached 2xx;
``writes_never_2xx()`` lists those that never did.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OUTSIDER_ALLOWED = {401, 403, 404}
# Operations the fuzzer must not run as itself: revoking tokens would revoke its own.
SKIP = {("DELETE", "/api/v1/tokens/{id}/")}


WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class ExplicitCase:
    """A request built from the server's data: ``path`` is the schema's template, ``url`` the
    concrete path; ``files`` (multipart) maps a field to ``(filename, bytes)``; ``token`` is
    another role's token when the operation is not the fuzzer's to perform (counsel approves)."""

    method: str
    path: str
    url: str
    body: dict[str, Any] | None = None
    files: dict[str, tuple[str, bytes]] | None = None
    token: str | None = None


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: "METHOD /path" of each write operation → status code → cases.
    writes: dict[str, Counter] = field(default_factory=dict)

    def count(self, method: str, path: str, status: int) -> None:
        self.cases += 1
        self.statuses[status] += 1
        if method.upper() in WRITE_METHODS:
            self.writes.setdefault(f"{method.upper()} {path}", Counter())[status] += 1

    def writes_never_2xx(self) -> list[str]:
        return sorted(
            label
            for label, statuses in self.writes.items()
            if not any(200 <= code < 300 for code in statuses)
        )

    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def summary(self, label: str) -> str:
        lines = [
            f"{label}: {self.operations} operations, {self.cases} cases, "
            f"{len(self.failures)} failures, {self.server_errors()} 5xx; "
            f"statuses {dict(sorted(self.statuses.items()))}"
        ]
        if self.writes:
            lines.append("  write operations: cases reaching 2xx / cases")
            for name, statuses in sorted(self.writes.items(), key=lambda i: i[0].split(" ")[::-1]):
                ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
                lines.append(f"  {ok:4d} / {sum(statuses.values()):<4d} {name}")
        return "\n".join(lines)


def load_schema(base_url: str | None = None) -> Any:
    """The schema served at /api/schema/: fetched from ``base_url``, or generated in-process
    (tests: the live server's thread shares this process's code, so the schema is the same)."""
    if base_url:
        return schemathesis.openapi.from_url(
            f"{base_url}/api/schema/",
            timeout=120,
            headers={"Accept": "application/vnd.oai.openapi+json"},
        )
    from tests.api.openapi import api_schema

    return schemathesis.openapi.from_dict(api_schema())


def _operations(schema: Any) -> list[Any]:
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())
    return sorted(operations, key=lambda op: (op.path, op.method))


def _run(operation: Any, examples: int, seed_note: str, body: Any) -> None:
    strategy = operation.as_strategy(path_parameters=body["path_parameters"])

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        print_blob=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        body["check"](case)

    run()


def _path_parameters(template: str, url: str) -> dict[str, str]:
    pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
    match = re.fullmatch(pattern, url)
    if match is None:
        raise ValueError(f"{url} does not match {template}")
    return match.groupdict()


def _run_explicit(
    base_url: str,
    token: str,
    schema: Any,
    session: requests.Session,
    cases: Iterable[ExplicitCase],
    report: FuzzReport,
) -> None:
    """Send each case as built (in order: each may rely on the state the previous left) and
    put its response through the same checks as a generated case."""
    operations = {(op.method.upper(), op.path): op for op in _operations(schema)}
    for explicit in cases:
        operation = operations[(explicit.method.upper(), explicit.path)]
        headers = {"Authorization": f"Bearer {explicit.token or token}"}
        if explicit.files is not None:
            response = session.request(
                explicit.method,
                base_url + explicit.url,
                data=explicit.body or {},
                files=explicit.files,
                headers=headers,
                timeout=60,
            )
        else:
            response = session.request(
                explicit.method,
                base_url + explicit.url,
                json=explicit.body,
                headers=headers,
                timeout=60,
            )
        report.count(explicit.method, explicit.path, response.status_code)
        case = operation.Case(path_parameters=_path_parameters(explicit.path, explicit.url))
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported together
            report.failures.append(
                f"{explicit.method.upper()} {explicit.url} (explicit): "
                f"{type(exc).__name__}\n{str(exc).strip()[:1500]}"
            )


def fuzz_as_member(
    base_url: str,
    token: str,
    org_slug: str,
    examples: int = 10,
    schema: Any = None,
    explicit: Iterable[ExplicitCase] | Callable[[], Iterable[ExplicitCase]] | None = None,
) -> FuzzReport:
    """No 5xx and nothing that contradicts the schema, as a member of ``org_slug``; the
    ``explicit`` cases (valid ids) first, then the generated ones."""
    schema = schema or load_schema(base_url)
    report = FuzzReport()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    if explicit is not None:
        _run_explicit(
            base_url, token, schema, session, explicit() if callable(explicit) else explicit, report
        )
    for operation in _operations(schema):
        if (operation.method.upper(), operation.path) in SKIP:
            report.skipped.append(f"{operation.method.upper()} {operation.path}")
            continue
        report.operations += 1
        seen: set[str] = set()

        def check(case: Any, operation: Any = operation, seen: set[str] = seen) -> None:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
            report.count(operation.method, operation.path, response.status_code)
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported together
                key = f"{operation.method.upper()} {operation.path}: {type(exc).__name__}"
                if key not in seen:
                    seen.add(key)
                    report.failures.append(f"{key}\n{str(exc).strip()[:1500]}")

        _run(
            operation,
            examples,
            "member",
            {
                "path_parameters": {"org_slug": org_slug} if "{org_slug}" in operation.path else {},
                "check": check,
            },
        )
    return report


def fuzz_as_outsider(
    base_url: str, token: str, org_slug: str, examples: int = 5, schema: Any = None
) -> FuzzReport:
    """Every answer to the outsider on ``org_slug``'s URLs is 401/403/404, never data."""
    schema = schema or load_schema(base_url)
    report = FuzzReport()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for operation in _operations(schema):
        if "{org_slug}" not in operation.path:
            continue
        report.operations += 1

        def check(case: Any, operation: Any = operation) -> None:
            report.cases += 1
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=60)
            report.statuses[response.status_code] += 1
            if response.status_code not in OUTSIDER_ALLOWED:
                report.failures.append(
                    f"{operation.method.upper()} {case.formatted_path} as outsider: "
                    f"{response.status_code} {response.text[:300]}"
                )

        _run(
            operation,
            examples,
            "outsider",
            {"path_parameters": {"org_slug": org_slug}, "check": check},
        )
    return report
