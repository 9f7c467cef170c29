"""The OpenAPI schema as the API serves it, generated once per test process.

Generating it walks every view and serializer (one to several seconds, more on a busy machine),
and it is the same for the whole process: the tests that read it (the filters, the uploads, the
number formats, the write walk, the bad-values walk, the fuzzer's explicit cases) share one.
Each caller gets its own copy, in the JSON types a client of /api/schema/ reads, to change as it
likes. tests/api/test_schema.py generates its own: it is the schema's own test.
"""

from __future__ import annotations

import functools
import json
from typing import Any


@functools.cache
def _generated() -> str:
    from comanage.core.schema import SchemaGenerator

    return json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str)


def api_schema() -> dict[str, Any]:
    """A copy of the schema (paths, components…), as JSON."""
    return json.loads(_generated())
