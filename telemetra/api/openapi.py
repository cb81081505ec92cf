"""The OpenAPI document: FastAPI's, completed where it falls short of what the server does.

- Bodies read by ``read_model`` are documented inline (``deps.json_body_doc``); the models they name are added
  to the components here, so that every ``$ref`` resolves (``SelectorIn`` did not).
- FastAPI drops every None of the document (it dumps it with ``exclude_none``), examples included, so an example
  lost the null fields its own schema requires: the route's ``openapi_extra`` and the models' examples and
  defaults are put back as written.
- A bad path or query parameter is answered by ``api/errors.py`` with our error body, not FastAPI's
  ``HTTPValidationError``; any request may be answered 431 (``api/guards.py``) or 500 (an unexpected failure).
- The notifications a webhook channel receives are the document's ``webhooks`` (``notification_doc``).

A test validates every example against its schema, and every answer the test suite receives against the
documented schema of its route and status.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from telemetra.api.errors import REASONS
from telemetra.api.notification_doc import EMAIL_DESCRIPTION, NotificationBody, webhooks_section
from telemetra.api.schemas import ErrorBody

__all__ = ["install_openapi", "register_body_model", "complete_document"]

REF = "#/components/schemas/{model}"
ERROR_REF = {"$ref": REF.format(model="ErrorBody")}
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
# Statuses any request may get, whatever its route: headers past the limits, an unexpected failure.
EVERY_ROUTE_ERRORS = (431, 500)
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def register_body_model(model: type[BaseModel]) -> None:
    """Note a model documented inline as a request body, so that the models it refers to become components."""
    _BODY_MODELS[model.__name__] = model


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and /openapi.json, /docs) serve the completed document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_document(app, FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace the document


def complete_document(app: FastAPI, generated: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(generated)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    models: dict[str, type[BaseModel]] = {
        **_BODY_MODELS,
        **_answer_models(app),
        "NotificationBody": NotificationBody,
        "ErrorBody": ErrorBody,
    }
    for name, model in models.items():
        fresh = model.model_json_schema(ref_template=REF)
        for def_name, definition in {**fresh.pop("$defs", {}), name: fresh}.items():
            if def_name in schemas:
                _restore_written_values(definition, schemas[def_name])
            else:  # a model only a body (inline) or the webhooks refer to
                schemas[def_name] = definition
    for route in _api_routes(app):
        if route.include_in_schema and route.openapi_extra:
            for method in route.methods:
                operation = document["paths"].get(route.path_format, {}).get(method.lower())
                if operation is not None:
                    _restore_written_values(route.openapi_extra, operation)
    for operations in document["paths"].values():
        for operation in operations.values():
            _our_errors(operation["responses"])
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    document["webhooks"] = webhooks_section()
    document["info"]["description"] = document["info"].get("description", "") + "\n" + EMAIL_DESCRIPTION
    return document


def _api_routes(app: FastAPI) -> list[Any]:
    """The app's API routes, those of included routers too (each as mounted: its full path, merged responses)."""
    return [route for route in iter_route_contexts(app.routes) if isinstance(route.original_route, APIRoute)]


def _answer_models(app: FastAPI) -> dict[str, type[BaseModel]]:
    """The models the routes document their answers with (``answer_doc``)."""
    found: dict[str, type[BaseModel]] = {}
    for route in _api_routes(app):
        if route.include_in_schema:
            for answer in route.responses.values():
                model = answer.get("model")
                if isinstance(model, type) and issubclass(model, BaseModel):
                    found[model.__name__] = model
    return found


def _our_errors(responses: dict[str, Any]) -> None:
    """422 is our error body (FastAPI documents its own for parameters); 431 and 500 may answer anything."""
    for status in ("422", *map(str, EVERY_ROUTE_ERRORS)):
        entry = responses.get(status)
        if entry is None and status == "422":
            continue
        description = entry["description"] if entry and status != "422" else REASONS[int(status)]
        responses[status] = {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


_WRITTEN_KEYS = ("examples", "example", "default")


def _restore_written_values(written: Any, target: Any) -> None:
    """Put back into ``target`` the examples and defaults of ``written`` (same shape), nulls included."""
    if isinstance(written, dict) and isinstance(target, dict):
        for key, value in written.items():
            if key in _WRITTEN_KEYS:
                target[key] = copy.deepcopy(value)
            elif key in target:
                _restore_written_values(value, target[key])
    elif isinstance(written, list) and isinstance(target, list) and len(written) == len(target):
        for one, other in zip(written, target, strict=True):
            _restore_written_values(one, other)
