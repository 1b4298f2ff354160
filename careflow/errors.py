"""Typed domain errors; the API maps them to HTTP answers, activities to retry decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from careflow.models import RequestError


class DomainError(Exception):
    """Base of the errors below; ``errors`` is the list the API answers with."""

    status_code = 400

    def __init__(self, errors: list[RequestError] | RequestError) -> None:
        self.errors = errors if isinstance(errors, list) else [errors]
        super().__init__("; ".join(e.code for e in self.errors))


class NotFoundError(DomainError):
    status_code = 404


class ConflictError(DomainError):
    status_code = 409


class InvalidConfigError(DomainError):
    """A configuration save was refused (unparsable path, unknown scheme, …)."""

    status_code = 422


class TransientStoreError(Exception):
    """The database is locked or unreachable; retrying later may succeed."""


def not_found(what: str, code: str) -> NotFoundError:
    return NotFoundError(RequestError(code=code, message=f"{what} not found"))


def from_validation(
    errors: Iterable[Mapping[str, Any]], code: str = "invalid_request"
) -> list[RequestError]:
    """Request errors for pydantic validation errors (``exc.errors()``): the field path and the
    reason, never the rejected input."""
    return [
        RequestError(code=code, message=f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        for e in errors
    ]
