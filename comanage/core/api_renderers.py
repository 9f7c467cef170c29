"""The API's renderers: JSON with the one number rule (``serialise.api_numbers``: money with
two decimals, percentages with four) applied to every response, and CSV for exports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import renderers

from .exports import csv_text
from .serialise import api_numbers


class JSONRenderer(renderers.JSONRenderer):
    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        return super().render(api_numbers(data), accepted_media_type, renderer_context)


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    def get_default_renderer(self, view):
        return JSONRenderer()


class CSVRenderer(renderers.BaseRenderer):
    """``{"columns": [...], "rows": [[...], ...]}`` as CSV (formulas neutralised). An error
    body (``{"errors": [...]}``) stays the API's one JSON error shape, as documented."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if isinstance(data, dict) and "errors" in data:
            response = (renderer_context or {}).get("response")
            if response is not None:
                response["Content-Type"] = "application/json"
            return JSONRenderer().render(data)
        if isinstance(data, dict) and "columns" in data:
            return csv_text(data["columns"], data.get("rows", [])).encode()
        return b""
