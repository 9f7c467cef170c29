"""A handler that can answer 409 documents it: a script written from the schema must expect
every status the API sends (the API fuzz found an undocumented 409 on the what-if scenario)."""

from __future__ import annotations

import inspect
import re

from tests.api.openapi import api_schema

# What answers 409 in a handler's own code: the Conflict exception, the status constant, or
# the adjudication API's refusal helper (AdjudicationError's 409s).
ANSWERS_409 = re.compile(r"\bConflict\(|HTTP_409_CONFLICT|\b_refuse\(")


def _handlers() -> list[tuple[str, str, object]]:
    from comanage.core.schema import SchemaGenerator, _handler

    generator = SchemaGenerator()
    generator._initialise_endpoints()
    out = []
    for path, _regex, method, callback in generator.endpoints:
        view = generator.create_view(callback, method)
        handler = _handler(view, method)
        if handler is not None:
            out.append((generator.coerce_path(path, method, view), method.lower(), handler))
    return out


def test_the_scan_sees_the_handlers_that_answer_409():
    found = {
        (path, method)
        for path, method, h in _handlers()
        if ANSWERS_409.search(inspect.getsource(h))
    }
    assert ("/api/v1/organizations/{org_slug}/adjudication/runs/scenario/", "post") in found
    assert len(found) >= 8, found


def test_every_handler_that_can_answer_409_documents_it():
    paths = api_schema()["paths"]
    missing = [
        f"{method.upper()} {path}"
        for path, method, handler in _handlers()
        if ANSWERS_409.search(inspect.getsource(handler))  # type: ignore[arg-type]
        and "409" not in paths[path][method]["responses"]
    ]
    assert not missing, "answers 409 without documenting it:\n" + "\n".join(missing)
