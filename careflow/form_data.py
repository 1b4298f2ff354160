"""``multipart/form-data`` bodies (RFC 7578): text fields become a flat JSON object.

Form tools (Jotform and others) post multipart. Its text fields are read like an urlencoded form:
one key per field name, a repeated name gives a list in body order. A part that is a file
(``Content-Disposition`` with a ``filename``) is refused: the service maps values, it does not
store uploads. The raw bytes are parsed with ``python-multipart``'s streaming parser, after the
signature was checked on those same bytes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

MEDIA_TYPE = "multipart/form-data"
# RFC 2046 §5.1.1: 1 to 70 characters from ``bchars``, not ending in a space.
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# The parser logs malformed input with byte values from the body: give it a logger of its own
# that says nothing below ERROR (the refusal is answered and logged by code instead).
_FILENAME = re.compile(rb";\s*filename\*?\s*=", re.IGNORECASE)
_PARSER_LOG = logging.getLogger("careflow.form_data.parser")
_PARSER_LOG.setLevel(logging.ERROR)


class FormDataError(Exception):
    """The multipart body cannot become a flat object.

    Attributes:
        code: ``invalid_json`` (malformed) or ``unsupported_media_type`` (a file part).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def media_type(params: dict[bytes, bytes]) -> str | None:
    """The canonical media type to carry for a ``multipart/form-data`` header's parameters.

    Args:
        params: the header's parameters, as ``parse_options_header`` returns them.

    Returns:
        ``multipart/form-data; boundary="<boundary>"``, or None when the boundary is missing or
        not a valid RFC 2046 boundary.
    """
    boundary = params.get(b"boundary")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        return None
    return f'{MEDIA_TYPE}; boundary="{boundary.decode("ascii")}"'


def parse(body: bytes, media_type: str) -> dict[str, Any]:
    """The text fields of a multipart body as a flat object.

    Args:
        body: the raw body.
        media_type: the value :func:`media_type` returned (carries the boundary).

    Returns:
        Field name → value (a string; a list of strings for a repeated name, in body order).

    Raises:
        FormDataError: ``unsupported_media_type`` for a file part; ``invalid_json`` for a
            body that is not multipart with this boundary, a part without a ``form-data``
            disposition and a name, or a name or value that is not UTF-8.
    """
    boundary = parse_options_header(media_type)[1].get(b"boundary", b"")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    header: dict[str, bytearray] = {"field": bytearray(), "value": bytearray()}
    ended: list[bool] = []

    def begin() -> None:
        parts.append(({}, bytearray()))

    def header_part(key: str) -> Any:
        def collect(data: bytes, start: int, end: int) -> None:
            header[key] += data[start:end]

        return collect

    def header_end() -> None:
        parts[-1][0][bytes(header["field"]).strip().lower()] = bytes(header["value"]).strip()
        header["field"].clear()
        header["value"].clear()

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(chunk[start:end])

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": begin,
            "on_header_field": header_part("field"),
            "on_header_value": header_part("value"),
            "on_header_end": header_end,
            "on_part_data": data,
            "on_end": lambda: ended.append(True),
        },
    )
    parser.logger = _PARSER_LOG
    try:
        parser.write(body)
    except MultipartParseError as exc:
        raise FormDataError("invalid_json", "the body is not multipart/form-data") from exc
    if not ended or not parts:
        raise FormDataError("invalid_json", "the multipart body has no part or no closing boundary")
    form: dict[str, Any] = {}
    for headers, value in parts:
        name = _field_name(headers)
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormDataError("invalid_json", "a field value is not UTF-8 text") from exc
        if name in form:
            previous = form[name]
            form[name] = [*previous, text] if isinstance(previous, list) else [previous, text]
        else:
            form[name] = text
    return form


def _field_name(headers: dict[bytes, bytes]) -> str:
    """The part's field name, from its ``Content-Disposition: form-data; name=...``."""
    raw = headers.get(b"content-disposition", b"")
    disposition, params = parse_options_header(raw)
    # ``parse_options_header`` drops RFC 5987 ``filename*``: look at the raw header too.
    if b"filename" in params or _FILENAME.search(raw):
        raise FormDataError(
            "unsupported_media_type",
            "multipart/form-data with a file part is not accepted; send text fields only",
        )
    name = params.get(b"name")
    if disposition != b"form-data" or name is None:
        raise FormDataError(
            "invalid_json", "every part needs Content-Disposition: form-data with a name"
        )
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormDataError("invalid_json", "a field name is not UTF-8 text") from exc
