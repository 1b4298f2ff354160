"""Domain errors → HTTP statuses: decided in one place, most specific class first."""

from __future__ import annotations

import pytest

from api.errors import http_status
from careflow.errors import (
    ConflictError,
    DomainError,
    InvalidConfigError,
    NotFoundError,
    UnauthorizedError,
)
from careflow.models import RequestError


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (DomainError, 400),
        (UnauthorizedError, 401),
        (NotFoundError, 404),
        (ConflictError, 409),
        (InvalidConfigError, 422),
    ],
)
def test_status_of_each_domain_error(cls: type[DomainError], status: int) -> None:
    assert http_status(cls(RequestError(code="x", message="y"))) == status


def test_a_subclass_gets_its_parents_status() -> None:
    class WebhookMissing(NotFoundError):
        pass

    assert http_status(WebhookMissing(RequestError(code="x", message="y"))) == 404
