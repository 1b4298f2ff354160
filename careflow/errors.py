"""Typed domain errors: stable codes, no transport. ``api.errors`` maps each class to an HTTP
status; activities map them to retry decisions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from careflow.models import RequestError


class DomainError(Exception):
    """Base of the errors below; ``errors`` is the list the API answers with (a bad request)."""

    def __init__(self, errors: list[RequestError] | RequestError) -> None:
        self.errors = errors if isinstance(errors, list) else [errors]
        super().__init__("; ".join(e.code for e in self.errors))


class NotFoundError(DomainError):
    """The thing asked for does not exist."""


class ConflictError(DomainError):
    """The request conflicts with the current state (in use, not retryable, incomplete)."""


class InvalidConfigError(DomainError):
    """A configuration save was refused (unparsable path, unknown scheme, …)."""


class UnauthorizedError(DomainError):
    """The caller did not present valid credentials."""


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
