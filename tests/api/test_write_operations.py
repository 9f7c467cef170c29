"""Every write operation of the API, as the OpenAPI schema lists it, is walked with an example:

(a) a valid body answers 2xx, and (b) a body the service (or the form) refuses answers 400 with
an error naming the field. The examples are a table keyed by ``operationId``; a write operation
without an example fails ``test_every_write_operation_has_an_example``: a new endpoint adds
one. An operation whose body cannot be refused (it takes none) says why instead.

The walk runs twice: on the default database inside a test transaction, and on PostgreSQL with
no transaction around the test or the request (as production runs: no ``ATOMIC_REQUESTS``), which
is where a write outside the services or a lock outside a transaction shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.api.conftest import token_client
from tests.api.write_examples import (
    OK,
    Example,
    Walk,
    example_operation_ids,
    examples_for,
    walk_day,
    write_operations,
)


def test_every_write_operation_has_an_example():
    examples = example_operation_ids()
    operations = {operation_id for operation_id, _method, _path in write_operations()}
    missing = sorted(operations - set(examples))
    assert not missing, (
        f"write operations without an example in tests/api/write_examples.py (add one): {missing}"
    )
    assert not sorted(set(examples) - operations), "examples of operations that are gone"


def _send(client: Any, method: str, example: Example, body: Any) -> Any:
    body = body() if callable(body) else body
    call = getattr(client, method.lower())
    if body is None:
        return call(example.url)
    if example.multipart:
        return call(example.url, body, format="multipart")
    return call(example.url, body, format="json")


def _named_fields(response: Any) -> set[str | None]:
    try:
        return {error.get("field") for error in response.json().get("errors", [])}
    except (ValueError, AttributeError):
        return set()


def walk(world: Any, django_capture_on_commit_callbacks: Any) -> list[str]:
    w = Walk(world)
    examples = examples_for(w)
    clients = {who: token_client(world.users[who]) for who in ("administrator", "counsel", "ceo")}
    sessions = {who: APIClient() for who in clients}
    for who, session in sessions.items():
        session.force_login(world.users[who])
    operations = write_operations()
    missing = sorted(
        operation_id for operation_id, _method, _path in operations if operation_id not in examples
    )
    assert not missing, (
        f"write operations without an example in tests/api/write_examples.py (add one): {missing}"
    )
    order = list(examples)
    problems: list[str] = []
    for operation_id, method, _path in sorted(operations, key=lambda op: order.index(op[0])):
        try:
            example = examples[operation_id]()
            problems += _walk_one(
                operation_id,
                method,
                example,
                sessions if example.session else clients,
                django_capture_on_commit_callbacks,
            )
        except Exception as exc:  # noqa: BLE001 - every operation is reported, not the first
            problems.append(f"{operation_id}: {type(exc).__name__}: {exc}")
    return problems


def _walk_one(
    operation_id: str, method: str, example: Example, clients: dict[str, Any], capture: Any
) -> list[str]:
    problems = []
    client = clients[example.who]
    if example.invalid is None:
        assert example.no_invalid, f"{operation_id}: no refused body and no reason why"
    else:
        refused = _send(client, method, example, example.invalid)
        if refused.status_code != 400 or example.field not in _named_fields(refused):
            problems.append(
                f"{operation_id} refused body: {refused.status_code}, wanted 400 "
                f"naming {example.field!r}: {refused.content[:300]!r}"
            )
    with capture(execute=True):
        accepted = _send(client, method, example, example.valid)
    if accepted.status_code not in OK:
        problems.append(
            f"{operation_id} valid body: {accepted.status_code} {accepted.content[:300]!r}"
        )
    return problems


@pytest.mark.slow
@pytest.mark.django_db
def test_walk_every_write_operation(world, django_capture_on_commit_callbacks):
    with walk_day():
        problems = walk(world, django_capture_on_commit_callbacks)
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_walk_every_write_operation_on_postgres_without_a_transaction(
    world, django_capture_on_commit_callbacks
):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)")
    assert connection.settings_dict["ATOMIC_REQUESTS"] is False  # as production
    with walk_day():
        problems = walk(world, django_capture_on_commit_callbacks)
    assert not problems, "\n".join(problems)
