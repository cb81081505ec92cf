"""Parse a JSON body strictly: no NaN or Infinity, no non-zero number read as 0, bounded nesting."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from telemetra.errors import InvalidJson, PayloadTooLarge, ValidationFailed

__all__ = ["parse_json", "check_depth", "check_parsed", "refuse_nul", "PayloadLimits", "decode_payload"]


# orjson keeps an integer as an int from -2**63 to 2**64 - 1 and reads any other as a double. The standard
# parser, used when orjson refuses a body, does the same: a bigger int would be refused by orjson's writer
# when the store serialises the message (a batch that fails for one message).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
# A literal whose value is below the smallest double (about 4.9e-324) is read as 0 by both parsers. A
# non-zero number stored as 0 is refused instead. For that, a literal needs a negative exponent of three
# digits or more, or (with an exponent above -100) more than 200 zeros after its decimal point. Nearly all
# bodies are cleared by three short substring searches (about a third of orjson's parse of a small
# message); the few left are searched by a regular expression, and read again only when it matches.
_TINY_EXPONENT = re.compile(rb"[eE]-0*[1-9][0-9]{2}")
_MANY_ZEROS = b"." + b"0" * 200
NUL = "\x00"


def _refuse_constant(name: str) -> float:
    raise ValidationFailed(f"{name} is not a number JSON allows; send a finite number or null", code="invalid_number")


def _int_as_orjson_reads_it(literal: str) -> int | float:
    if len(literal) > 21:  # beyond 64 bits whatever its digits (and int() refuses past 4,300 of them)
        return float(literal)
    value = int(literal)
    return value if _INT_MIN <= value <= _INT_MAX else float(literal)


def _float_not_underflowing(literal: str) -> float:
    value = float(literal)
    if value == 0.0 and any(c in "123456789" for c in literal.split("e")[0].split("E")[0]):
        raise ValidationFailed(
            f"the number {literal[:40]} is too small to be stored (it would become 0); send 0 "
            "or a number of magnitude above 1e-300",
            code="number_out_of_range",
        )
    return value


def _check_underflow(body: bytes | bytearray) -> None:
    if ((b"e-" in body or b"E-" in body) and _TINY_EXPONENT.search(body)) or (
        b".0000000000" in body and _MANY_ZEROS in body
    ):
        # Read the numbers again, one literal at a time: a string that looks like one is no number, and
        # the bytes alone cannot tell.
        json.loads(body, parse_float=_float_not_underflowing, parse_int=float)


def parse_json(body: bytes, *, max_depth: int) -> Any:
    """Return the document in ``body``; 400 when it is not JSON, 422 for NaN/Infinity, a non-zero number
    that reads as 0, or deep nesting."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson refuses NaN, Infinity and numbers beyond a double's range alike; the standard parser tells
        # "valid JSON with a value we refuse" (422) from "not JSON at all" (400).
        try:
            doc = json.loads(
                body,
                parse_constant=_refuse_constant,
                parse_int=_int_as_orjson_reads_it,
                parse_float=_float_not_underflowing,
            )
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidJson(f"The body is not valid JSON ({str(exc)[:80]}); send a JSON document.") from exc
        check_depth(doc, max_depth)  # before walking the strings: bounded
        _check_unicode(doc)
        return doc
    check_parsed(body, doc, max_depth)
    return doc


def check_parsed(body: bytes | bytearray, doc: Any, max_depth: int) -> None:
    """``check_depth`` for a document orjson parsed from ``body``: orjson refuses non-finite numbers itself,
    so the nesting and numbers read as 0 are left to check, and a body with no more brackets than
    ``max_depth`` (most single messages) cannot nest deeper: no walk at all."""
    if body.count(b"{") + body.count(b"[") > max_depth:
        _check_nesting(doc, max_depth)
    _check_underflow(body)  # after the nesting: the standard parser recurses


def _check_nesting(doc: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(doc, 1)] if isinstance(doc, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise ValidationFailed(f"the JSON nests deeper than {max_depth} levels", code="too_deep")
        for child in node.values() if isinstance(node, dict) else node:
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
                raise ValidationFailed(
                    "strings must be valid Unicode (a lone surrogate escape was sent)", code="invalid_string"
                ) from None
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def refuse_nul(doc: Any) -> None:
    """Raise 422 ``invalid_string`` (``invalid_key`` for a key) naming where ``doc`` holds a NUL character,
    in any string or key at any depth.

    PostgreSQL's text and jsonb cannot hold a NUL (the write fails: 500), and no name, id or setting means
    one. The telemetry routes check each field where their validation holds it (``domain.telemetry``);
    every other body is checked whole with this, before it reaches a model or a service.
    """
    stack: list[tuple[Any, tuple[str, ...]]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                _refuse_nul("'" + ".".join(path) + "'" if path else "the body", path, "invalid_string")
        elif isinstance(node, dict):
            for key, value in node.items():
                if NUL in key:
                    _refuse_nul("a key of " + ("'" + ".".join(path) + "'" if path else "the body"), path, "invalid_key")
                stack.append((value, (*path, key)))
        elif isinstance(node, list):
            stack.extend((value, (*path, str(index))) for index, value in enumerate(node))


def _refuse_nul(where: str, path: tuple[str, ...], code: str) -> None:
    message = f"{where} contains the NUL character (\\u0000), which cannot be stored; remove it"
    raise ValidationFailed(message, code=code, details=[{"loc": list(path), "msg": message}])


def check_depth(doc: Any, max_depth: int) -> None:
    """Raise ValidationFailed when ``doc`` nests deeper than ``max_depth`` or holds a non-finite number."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    children: Iterable[Any]
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


@dataclass(frozen=True, slots=True)
class PayloadLimits:
    """The limits of a JSON document read off a broker: the same settings as an HTTP body's
    (``TELEMETRA_MAX_BODY_BYTES``, ``TELEMETRA_MAX_JSON_DEPTH``), passed in by whoever builds the reader."""

    max_bytes: int
    max_depth: int


def decode_payload(payload: bytes | bytearray, limits: PayloadLimits) -> Any:
    """Parse a broker message's payload as JSON within ``limits``: 413 past the size, 400 if not JSON, 422 for
    a non-zero number that reads as 0, or deep nesting."""
    if len(payload) > limits.max_bytes:
        raise PayloadTooLarge()
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson() from exc
    check_parsed(payload, doc, limits.max_depth)
    return doc
