"""A JSON response rendered by orjson (fast, and strict: it refuses NaN rather than emit invalid JSON)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse

__all__ = ["JsonResponse"]


class JsonResponse(JSONResponse):  # a JSONResponse, so the OpenAPI schema shows the JSON answers
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except TypeError:
            # A string orjson cannot encode (a lone surrogate echoed in a message, say): escape it rather
            # than fail the answer.
            return json.dumps(content, ensure_ascii=True, allow_nan=False, default=str).encode()
