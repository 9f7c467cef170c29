"""Schema-driven fuzzing of the API with schemathesis (used by tests/api/test_fuzz.py and
scripts/fuzz_api.py).

Two passes over the generated OpenAPI schema against a running server:

* as an administrator of organization A: every response is no 5xx and conforms to the schema
  (status code documented, content type, body);
* as the outsider (administrator of B) on A's organization URLs: every response is 401/403/404,
  never data.

Examples are bounded per operation and derandomized, so a run is reproducible.
"""

from __future__ import annotations

from collections import Counter
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

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
OUTSIDER_ALLOWED = {401, 403, 404}
# Operations the fuzzer must not run as itself: revoking tokens would revoke its own.
SKIP = {("DELETE", "/api/v1/tokens/{id}/")}


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self, label: str) -> str:
        return (f"{label}: {self.operations} operations, {self.cases} cases, "
                f"{len(self.failures)} failures; statuses {dict(sorted(self.statuses.items()))}")


def load_schema(base_url: str | None = None) -> Any:
    """The schema served at /api/schema/: fetched from ``base_url``, or generated in-process
    (tests: the live server's thread shares this process's code, so the schema is the same)."""
    if base_url:
        return schemathesis.openapi.from_url(
            f"{base_url}/api/schema/", timeout=120,
            headers={"Accept": "application/vnd.oai.openapi+json"})
    import json

    from .schema import SchemaGenerator

    generated = SchemaGenerator().get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(json.loads(json.dumps(generated, default=str)))


def _operations(schema: Any) -> list[Any]:
    operations = []
    for result in schema.get_all_operations():
        operations.append(result.ok())
    return sorted(operations, key=lambda op: (op.path, op.method))


def _run(operation: Any, examples: int, seed_note: str, body: Any) -> None:
    strategy = operation.as_strategy(path_parameters=body["path_parameters"])

    @settings(max_examples=examples, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], print_blob=False,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case: Any) -> None:
        body["check"](case)

    run()


def fuzz_as_member(base_url: str, token: str, org_slug: str, examples: int = 10,
                   schema: Any = None) -> FuzzReport:
    """No 5xx and nothing that contradicts the schema, as a member of ``org_slug``."""
    schema = schema or load_schema(base_url)
    report = FuzzReport()
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    for operation in _operations(schema):
        if (operation.method.upper(), operation.path) in SKIP:
            report.skipped.append(f"{operation.method.upper()} {operation.path}")
            continue
        report.operations += 1
        seen: set[str] = set()

        def check(case: Any, operation: Any = operation, seen: set[str] = seen) -> None:
            report.cases += 1
            response = case.call(base_url=base_url, session=session, headers=headers,
                                 timeout=60)
            report.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - all reported together
                key = f"{operation.method.upper()} {operation.path}: {type(exc).__name__}"
                if key not in seen:
                    seen.add(key)
                    report.failures.append(f"{key}\n{str(exc).strip()[:1500]}")

        _run(operation, examples, "member", {"path_parameters": {"org_slug": org_slug}
                                             if "{org_slug}" in operation.path else {},
                                             "check": check})
    return report


def fuzz_as_outsider(base_url: str, token: str, org_slug: str, examples: int = 5,
                     schema: Any = None) -> FuzzReport:
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
            response = case.call(base_url=base_url, session=session, headers=headers,
                                 timeout=60)
            report.statuses[response.status_code] += 1
            if response.status_code not in OUTSIDER_ALLOWED:
                report.failures.append(
                    f"{operation.method.upper()} {case.formatted_path} as outsider: "
                    f"{response.status_code} {response.text[:300]}")

        _run(operation, examples, "outsider",
             {"path_parameters": {"org_slug": org_slug}, "check": check})
    return report
