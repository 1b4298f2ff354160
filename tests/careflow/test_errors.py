"""Domain errors: the error list they carry, and pydantic errors turned into request errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from careflow.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    from_validation,
    not_found,
)
from careflow.models import IdentifierSystemCreate, RequestError, WebhookFields


def test_one_error_becomes_a_list_and_the_message_names_the_codes() -> None:
    single = DomainError(RequestError(code="a", message="first"))
    assert single.errors == [RequestError(code="a", message="first")]
    assert str(single) == "a"
    several = ConflictError(
        [RequestError(code="a", message="x"), RequestError(code="b", message="y")]
    )
    assert [e.code for e in several.errors] == ["a", "b"]
    assert str(several) == "a; b"


def test_not_found_names_the_thing_and_the_code() -> None:
    error = not_found("webhook", "webhook_not_found")
    assert isinstance(error, NotFoundError)
    assert error.errors == [RequestError(code="webhook_not_found", message="webhook not found")]


def _validation_errors(model: type, data: dict) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    return raised.value


def test_validation_errors_give_the_field_path_and_reason() -> None:
    exc = _validation_errors(
        WebhookFields,
        {
            "name": "h",
            "care_flow_definition_id": "intake",
            "data_point_mappings": [{"data_point_definition_id": "a", "path": ""}],
        },
    )
    errors = from_validation(exc.errors())
    assert len(errors) == 1
    assert errors[0].code == "invalid_request"
    assert errors[0].message.startswith("data_point_mappings.0.path: ")
    assert "at least 1 character" in errors[0].message


def test_every_validation_error_is_kept_with_the_given_code() -> None:
    exc = _validation_errors(IdentifierSystemCreate, {"name": "BAD NAME", "system": "nope"})
    errors = from_validation(exc.errors(), code="invalid_identifier_system")
    assert {e.code for e in errors} == {"invalid_identifier_system"}
    assert sorted(e.message.split(":")[0] for e in errors) == ["name", "system"]


def test_the_rejected_input_never_shows() -> None:
    secret = "Jane Doe 1970-01-01"
    exc = _validation_errors(IdentifierSystemCreate, {"name": secret, "system": secret})
    assert secret in str(exc)  # pydantic's own text quotes it
    assert all(secret not in e.message for e in from_validation(exc.errors()))
