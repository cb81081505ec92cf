"""The OpenAPI document is complete and true to itself: every reference resolves, every example validates
against its schema, bad parameters are documented as our error body, and the webhook notification is in it.
(That every answer the suite receives matches it is checked by the hook of tests/answers.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest

from telemetra.api.app import create_app
from telemetra.settings import Settings
from tests.answers import AnswerChecker

SCHEMA_KEYS = ("properties", "patternProperties", "$defs")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
SCHEMA_ONE = ("items", "additionalProperties", "not", "contains")


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict[str, Any]:
    database = tmp_path_factory.mktemp("doc") / "unused.db"
    return create_app(Settings(database_url=f"sqlite:///{database}", _env_file=None)).openapi()


def _schema_nodes(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema inside ``schema`` (itself included), with where it lies."""
    if not isinstance(schema, dict):
        return
    yield where, schema
    for key in SCHEMA_KEYS:
        for name, sub in (schema.get(key) or {}).items():
            yield from _schema_nodes(sub, f"{where}.{key}.{name}")
    for key in SCHEMA_LISTS:
        for i, sub in enumerate(schema.get(key) or []):
            yield from _schema_nodes(sub, f"{where}.{key}[{i}]")
    for key in SCHEMA_ONE:
        yield from _schema_nodes(schema.get(key), f"{where}.{key}")


def _media_examples(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    return found + [example["value"] for example in (media.get("examples") or {}).values() if "value" in example]


def examples_with_schemas(document: dict[str, Any]) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(where, example, schema) for every example the document gives: in schemas, media types, parameters."""
    roots: list[tuple[str, Any]] = [
        (f"components.schemas.{name}", schema) for name, schema in document["components"]["schemas"].items()
    ]
    for section in ("paths", "webhooks"):
        for path, operations in document.get(section, {}).items():
            for method, operation in operations.items():
                at = f"{method.upper()} {path}"
                for parameter in operation.get("parameters", []):
                    roots.append((f"{at} parameter {parameter['name']}", parameter.get("schema")))
                    for example in _media_examples(parameter):
                        yield f"{at} parameter {parameter['name']}", example, parameter["schema"]
                contents = [("body", operation.get("requestBody", {}).get("content", {}))]
                contents += [(status, answer.get("content", {})) for status, answer in operation["responses"].items()]
                for what, content in contents:
                    for media_type, media in content.items():
                        schema = media.get("schema", {})
                        roots.append((f"{at} {what} {media_type}", schema))
                        for example in _media_examples(media):
                            yield f"{at} {what} {media_type}", example, schema
    for root, schema in roots:
        for where, node in _schema_nodes(schema, root):
            examples = node.get("examples")
            for example in examples if isinstance(examples, list) else []:
                yield where, example, node
            if "example" in node:
                yield where, node["example"], node


def test_every_reference_resolves(document) -> None:
    text = repr(document)
    referred = set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text))
    assert referred <= set(document["components"]["schemas"]), referred - set(document["components"]["schemas"])
    assert "SelectorIn" in document["components"]["schemas"]


def test_every_example_validates_against_its_schema(document) -> None:
    failures, checked = [], 0
    for where, example, schema in examples_with_schemas(document):
        checked += 1
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})
        errors = [f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in validator.iter_errors(example)]
        if errors:
            failures.append(f"{where}: {errors[:3]}")
    assert checked > 40  # the walk finds the examples (a broken walk would pass vacuously)
    assert not failures, "\n".join(failures)


def test_examples_keep_their_nulls(document) -> None:
    """FastAPI dropped every None of the document: the AlertList example lacked the fields its schema requires."""
    (example,) = document["components"]["schemas"]["AlertList"]["examples"]
    alert = example["alerts"][0]
    assert alert["acknowledged_at"] is None and alert["cleared_at"] is None
    assert document["components"]["schemas"]["SelectorIn"]["properties"]["device_type"]["default"] is None


def test_selection_of_devices_is_documented(document) -> None:
    selector = document["components"]["schemas"]["SelectorIn"]
    said = selector["description"]
    assert "All devices" in said and "`device_ids`" in said and "`device_type` is not looked at" in said
    assert "invalid_rule" in said


def test_parameter_errors_are_our_error_body(document) -> None:
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("422", "431", "500"):
                if status in operation["responses"] or status != "422":
                    media = operation["responses"][status]["content"]["application/json"]
                    assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_the_webhook_and_the_email_are_documented(document) -> None:
    for event in ("alert.raised", "alert.cleared"):
        post = document["webhooks"][event]["post"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/NotificationBody"}
        assert {p["name"] for p in post["parameters"]} == {
            "X-Telemetra-Signature",
            "X-Telemetra-Event",
            "Idempotency-Key",
        }
    notification = document["components"]["schemas"]["NotificationBody"]
    assert notification["properties"]["alert"]["$ref"] == "#/components/schemas/AlertOut"
    assert "device_name" in document["components"]["schemas"]["AlertOut"]["required"]
    description = document["info"]["description"]
    assert "Subject: `[Telemetra] {SEVERITY}: {rule} on {device}`" in description and "left out" in description


def test_the_hook_refuses_an_undocumented_status_and_a_body_off_its_schema(document) -> None:
    checker = AnswerChecker(document)
    good = b'{"alerts": [], "pagination": {"page": 1, "per_page": 50, "total": 0, "pages": 0, "has_next": false, "has_prev": false}}'
    assert checker.problem("GET", "/api/v1/alerts", 200, "application/json", good) is None
    assert "does not list" in checker.problem("GET", "/api/v1/alerts", 418, "application/json", good)
    assert "contradicts" in checker.problem("GET", "/api/v1/alerts", 200, "application/json", b'{"alerts": []}')
    error = b'{"error": "Unprocessable Entity", "code": "validation_error", "message": "x", "details": []}'
    assert checker.problem("POST", "/api/v1/alerts/7/ack", 422, "application/json", error) is None
    framework = b'{"detail": [{"loc": ["path", "alert_id"], "msg": "x", "type": "int_parsing"}]}'
    assert "contradicts" in checker.problem("POST", "/api/v1/alerts/x/ack", 422, "application/json", framework)
    # A fixed path wins over a template, as the app routes it.
    assert checker.route("GET", "/api/v1/devices/status")[0] == "/api/v1/devices/status"
    assert checker.route("GET", "/api/v1/devices/boiler-1")[0] == "/api/v1/devices/{device_id}"
    assert checker.route("GET", "/docs") == (None, None)  # not in the document: not checked


async def test_a_bad_path_parameter_is_answered_as_documented(client, make_tenant) -> None:
    """Answered through the hook: a 422 of the framework's shape, or an undocumented one, fails the call."""
    tenant = await make_tenant()
    resp = await client.post("/api/v1/alerts/not-a-number/ack", headers=tenant["headers"])
    assert resp.status_code == 422 and resp.json()["code"] == "validation_error", resp.text
