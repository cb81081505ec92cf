"""A JSON response rendered by orjson (fast, and strict: it refuses NaN rather than emit invalid JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["JsonResponse"]


class JsonResponse(JSONResponse):  # a JSONResponse, so the OpenAPI schema shows the JSON answers
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
