"""Read-only fields in a write: the one rule every PUT and PATCH follows.

A client may send back the body a GET returned: read-only fields (``id``, ``name`` of an
identifier system, timestamps, URLs, ``enabled``) are accepted when they equal the stored values
and refused, each by name, when they differ. Only configuration is compared, never payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from careflow.models import RequestError

_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


def _same(given: Any, stored: Any) -> bool:
    if isinstance(stored, datetime):
        if isinstance(given, datetime):
            return given == stored
        try:  # the GET answer's RFC 3339 text ("Z" or "+00:00" alike)
            return _DATETIME.validate_python(given) == stored
        except ValidationError:
            return False
    return bool(given == stored) and type(given) is type(stored)


def read_only_problems(given: Mapping[str, Any], stored: Mapping[str, Any]) -> list[RequestError]:
    """One ``read_only_field`` error per read-only field of ``given`` that differs from ``stored``.

    Args:
        given: the client's body (a JSON object, already parsed), or the read-only part of it.
        stored: read-only field name → stored value (datetimes compare as instants).

    Returns:
        Errors naming each differing field (``path`` is the field name); empty when all match.
    """
    return [
        RequestError(
            code="read_only_field",
            message=f"{key} is read-only: send the stored value or leave it out",
            path=key,
        )
        for key, value in stored.items()
        if key in given and not _same(given[key], value)
    ]
