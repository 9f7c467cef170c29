"""OpenAPI: the token scheme, and a postprocessing hook that documents every operation's errors.

Every error the API returns has one shape (``comanage.core.api.exception_handler``), so the hook
adds it once, to every operation, instead of each view repeating ``@extend_schema`` lines:
400/401/403/404/429 everywhere, 409/422 where an ``Idempotency-Key`` or a running job can clash,
and the ``Idempotency-Key`` header on every POST.
"""

from __future__ import annotations

from typing import Any

from django_scopes import scopes_disabled
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator as BaseSchemaGenerator

ERROR_COMPONENT = "Error"
ERROR_LIST_COMPONENT = "ErrorResponse"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_LIST_COMPONENT}"}

ERROR_DESCRIPTIONS = {
    "400": "Validation error: one entry per problem, ``field`` names the input at fault.",
    "401": "Not authenticated: no, an invalid, an expired or a revoked token.",
    "403": "Your role in this organization does not allow this.",
    "404": "Not found, or not yours to see (another organization's data is always 404).",
    "409": "Conflicts with work already under way (a running job, an in-flight retry).",
    "422": "This Idempotency-Key was already used for a different request.",
    "429": "Too many requests for this token; retry after ``Retry-After`` seconds.",
}
ALWAYS = ("400", "401", "403", "404", "429")
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": (
        "Makes a POST with money effects safe to retry: a retry with the same key and body "
        "returns the first response (header ``Idempotent-Replayed: true``) and does nothing "
        "twice; the same key with a different request is refused with 422."
    ),
}


class SchemaGenerator(BaseSchemaGenerator):
    """Generates the schema outside any tenant scope.

    Describing the API reads no tenant's rows (views see ``swagger_fake_view`` and return
    ``.none()``), but django-filter builds filter sets with ``Model._default_manager.all()``,
    which the scoped managers refuse without a scope. Disabling scopes here is the explicit,
    data-free escape the tenancy rules allow.
    """

    def get_schema(self, request=None, public=False):
        with scopes_disabled():
            return super().get_schema(request=request, public=public)


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "comanage.core.api_auth.TokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cm_…",
            "description": "A personal API token (``Authorization: Bearer cm_…``), created at "
            "/account/tokens/ or POST /api/v1/tokens/.",
        }


def _error_components() -> dict[str, Any]:
    return {
        ERROR_COMPONENT: {
            "type": "object",
            "properties": {
                "field": {
                    "type": "string",
                    "nullable": True,
                    "description": "The input at fault (dotted path), or null.",
                },
                "code": {"type": "string", "description": "Machine-readable code."},
                "message": {"type": "string", "description": "For people."},
            },
            "required": ["field", "code", "message"],
        },
        ERROR_LIST_COMPONENT: {
            "type": "object",
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"},
                },
            },
            "required": ["errors"],
        },
    }


def _handler(view: Any, method: str) -> Any:
    action = getattr(view, "action", None)
    return getattr(view, action or method.lower(), None)


def _conflicting_operations(generator: Any) -> dict[tuple[str, str], set[str]]:
    """(path, method) -> extra error codes, from what the views declare.

    ``@idempotent`` handlers can answer 409 (retry while the first is running) and 422 (key
    reused); a view lists further actions that may answer 409 in ``conflict_actions``.
    """
    extra: dict[tuple[str, str], set[str]] = {}
    for path, _regex, method, callback in generator.endpoints or []:
        view = generator.create_view(callback, method)
        path = generator.coerce_path(path, method, view)
        codes: set[str] = set()
        if getattr(_handler(view, method), "comanage_idempotent", False):
            codes |= {"409", "422"}
        action = getattr(view, "action", None) or method.lower()
        if action in getattr(view, "conflict_actions", ()):
            codes.add("409")
        if codes:
            extra[(path, method.lower())] = codes
    return extra


def postprocess_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Add the shared error responses and the Idempotency-Key header to every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.update(_error_components())
    extra = _conflicting_operations(generator)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "put", "post", "patch", "delete", "head", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            codes = list(ALWAYS) + sorted(extra.get((path, method), ()))
            for code in codes:
                responses.setdefault(
                    code,
                    {
                        "description": ERROR_DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
            if "429" in responses:
                responses["429"].setdefault(
                    "headers",
                    {
                        "Retry-After": {
                            "schema": {"type": "integer"},
                            "description": "Seconds to wait before retrying.",
                        }
                    },
                )
            if method == "post":
                parameters = operation.setdefault("parameters", [])
                if not any(
                    p.get("in") == "header" and p.get("name") == "Idempotency-Key"
                    for p in parameters
                ):
                    parameters.append(dict(IDEMPOTENCY_HEADER))
    return result
