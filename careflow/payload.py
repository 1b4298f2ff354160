"""Turning a request body into JSON: media types, BOM, form encoding, depth and number limits.

The same functions run in the ingest handler (to answer at once) and in ``validate_request``
(on the body carried in the workflow input), so both see the same tree.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header

from careflow import form_data
from careflow.models import RequestError

MAX_DEPTH = 64
# Evaluating a JSONPath such as ``$..x`` visits every node of the body (about 5 µs each in
# jsonpath-ng): the node cap bounds what one mapping path can cost (issue 15, finding 1).
MAX_NODES = 100_000
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


class PayloadError(Exception):
    """The body cannot be turned into JSON; ``error.code`` is the contract's stable code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.error = RequestError(code=code, message=message)


def media_type_of(content_type: str | None) -> str | None:
    """The supported media type named by a ``Content-Type`` header, or None.

    Parameters such as ``charset`` are ignored; ``application/*+json`` counts as JSON (the
    structured syntax suffix, RFC 6839 §3.1); ``multipart/form-data`` keeps its boundary
    (``multipart/form-data; boundary="..."``; None without a valid one). The header is split by
    ``python-multipart``'s ``parse_options_header`` (RFC 9110 §8.3), which lowercases the type.
    """
    if not content_type:
        return None
    # HTTP header values are Latin-1 (RFC 9110 §5.5); anything else cannot name a known type.
    raw = content_type.encode("latin-1", errors="replace")
    essence = parse_options_header(raw)[0].decode("latin-1")
    if essence == JSON or (essence.startswith("application/") and essence.endswith("+json")):
        return JSON
    if essence == FORM:
        return FORM
    if essence == form_data.MEDIA_TYPE:
        return form_data.media_type(parse_options_header(raw)[1])
    return None


def _reject_constant(name: str) -> Any:
    raise PayloadError("non_finite_number", "NaN and Infinity are not JSON numbers")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise PayloadError("non_finite_number", "a number overflows a 64-bit float")
    return value


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError as exc:  # over Python's int digit limit
        raise PayloadError("non_finite_number", "an integer has too many digits") from exc


def _shape(value: Any) -> tuple[int, int]:
    """Nesting depth (a scalar is 0) and node count (every value: objects, arrays, members and
    elements, scalars included) of a JSON value, computed without recursion. Stops counting as
    soon as either limit is passed."""
    deepest = 0
    nodes = 1
    if not isinstance(value, dict | list):
        return 0, 1
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children: Any = node.values() if isinstance(node, dict) else node
        depth += 1
        deepest = max(deepest, depth)
        nodes += len(children)
        if deepest > MAX_DEPTH or nodes > MAX_NODES:
            break
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest, nodes


def parse_body(body: bytes, media_type: str) -> Any:
    """Parse a request body into a JSON value.

    Args:
        body: the raw bytes as received.
        media_type: ``application/json`` (UTF-8, optional BOM),
            ``application/x-www-form-urlencoded`` (a flat object; repeated keys give a list) or
            ``multipart/form-data; boundary=...`` as :func:`media_type_of` gives it (its text
            fields as a flat object, like a urlencoded form).

    Returns:
        The JSON value: object, array or scalar (RFC 8259).

    Raises:
        PayloadError: ``empty_body``, ``invalid_json``, ``unsupported_media_type`` (a multipart
            file part), ``nesting_too_deep`` (more than 64
            levels), ``too_many_nodes`` (more than 100,000 JSON values, counting every object,
            array, member value, element and scalar) or ``non_finite_number`` (NaN, Infinity,
            overflowing numbers).
    """
    if not body.strip():
        raise PayloadError("empty_body", "the request body is empty")
    if media_type == FORM:
        value: Any = _parse_form(body)
    elif media_type.startswith(form_data.MEDIA_TYPE):
        try:
            value = form_data.parse(body, media_type)
        except form_data.FormDataError as exc:
            raise PayloadError(exc.code, exc.message) from exc
    else:
        value = _parse_json(body)
    depth, nodes = _shape(value)
    if depth > MAX_DEPTH:
        raise PayloadError("nesting_too_deep", f"JSON nests deeper than {MAX_DEPTH} levels")
    if nodes > MAX_NODES:
        raise PayloadError("too_many_nodes", f"the body has more than {MAX_NODES} JSON values")
    return value


def _parse_form(body: bytes) -> dict[str, Any]:
    try:
        # Percent-escapes must decode as UTF-8 too: replacing them with U+FFFD would make
        # different identifiers equal.
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError("invalid_json", "the form body cannot be decoded") from exc
    form: dict[str, Any] = {}
    for key, value in pairs:
        if key in form:
            previous = form[key]
            form[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            form[key] = value
    return form


def _parse_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PayloadError("invalid_json", "the body is not UTF-8 text") from exc
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
        )
    except RecursionError as exc:
        raise PayloadError(
            "nesting_too_deep", f"JSON nests deeper than {MAX_DEPTH} levels"
        ) from exc
    except json.JSONDecodeError as exc:
        raise PayloadError(
            "invalid_json", f"the body is not valid JSON (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if "\\u" in text and _has_lone_surrogate(value):
        raise PayloadError("invalid_json", "a string escapes a lone UTF-16 surrogate")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether an escaped lone surrogate (``"\\ud800"``) made a string that is not Unicode
    text (RFC 8259 §8.2); such strings cannot be stored or shown as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
