"""Parse a JSON body strictly: no NaN or Infinity, bounded nesting."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from telemetra.errors import InvalidJson, ValidationFailed

__all__ = ["parse_json", "check_depth", "check_parsed"]


def _refuse_constant(name: str) -> float:
    raise ValidationFailed(f"{name} is not a number JSON allows; send a finite number or null",
                           code="invalid_number")


def parse_json(body: bytes, *, max_depth: int) -> Any:
    """Return the document in ``body``; 400 when it is not JSON, 422 for NaN/Infinity or deep nesting."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses NaN, Infinity and integers beyond 64 bits alike; the standard parser tells
        # "valid JSON with a value we refuse" (422) from "not JSON at all" (400).
        try:
            doc = json.loads(body, parse_constant=_refuse_constant)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidJson(f"The body is not valid JSON ({str(exc)[:80]}); send a JSON document.") from exc
        check_depth(doc, max_depth)  # before walking the strings: bounded
        _check_unicode(doc)
        return doc
    check_parsed(body, doc, max_depth)
    return doc


def check_parsed(body: bytes, doc: Any, max_depth: int) -> None:
    """``check_depth`` for a document orjson parsed from ``body``: orjson refuses non-finite numbers and
    integers past 64 bits itself, so only the nesting is left to check, and a body with no more brackets
    than ``max_depth`` (most single messages) cannot nest deeper: no walk at all."""
    if body.count(b"{") + body.count(b"[") <= max_depth:
        return
    stack: list[tuple[Any, int]] = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise ValidationFailed(f"the JSON nests deeper than {max_depth} levels", code="too_deep")
        for child in (node.values() if isinstance(node, dict) else node):
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def _check_unicode(doc: Any) -> None:
    # The standard parser (unlike orjson) lets "\ud800" escapes through: a string no database or answer can
    # hold. Only reached when orjson refused the body, so the common path pays nothing.
    stack = [doc]
    while stack:
        node = stack.pop()
        texts: list[Any] = [node] if isinstance(node, str) else list(node) if isinstance(node, dict) else []
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationFailed("strings must be valid Unicode (a lone surrogate escape was sent)",
                                       code="invalid_string") from None
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def check_depth(doc: Any, max_depth: int) -> None:
    """Raise ValidationFailed when ``doc`` nests deeper than ``max_depth`` or holds a non-finite number."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            if isinstance(node, float) and not math.isfinite(node):
                raise ValidationFailed("numbers must be finite", code="invalid_number")
            if isinstance(node, int) and not isinstance(node, bool) and abs(node) > 1.7e308:
                raise ValidationFailed("a number is too large to store", code="invalid_number")
            continue
        if depth > max_depth:
            raise ValidationFailed(f"the JSON nests deeper than {max_depth} levels", code="too_deep")
        stack.extend((child, depth + 1) for child in children)
