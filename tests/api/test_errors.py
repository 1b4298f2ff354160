"""Domain errors → HTTP statuses: decided in one place, most specific class first."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api.errors import http_status, install
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


async def test_an_unexpected_error_is_500_and_logged_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()

    @app.get("/boom")
    async def boom() -> None:
        # A driver quoting its parameters (built here so that the frame's source line, which the
        # log keeps, does not hold it).
        raise ValueError("value too long: " + "-".join(["MRN", "SECRET", "77"]))

    install(app)
    transport = httpx.ASGITransport(app=app)  # raises if the app lets the exception out
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/boom")
    assert answer.status_code == 500
    [error] = answer.json()["errors"]
    assert error["code"] == "internal_error" and error["error_id"]
    assert "ValueError" in caplog.text and error["error_id"] in caplog.text
    assert "MRN-SECRET-77" not in caplog.text and "MRN-SECRET-77" not in answer.text
