"""The awell backend's GraphQL client and conversions, against the stand-in where it talks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from graphql import parse, validate

from backends import awell_api
from backends.awell import awell_value, patient_resolution_id
from backends.awell_api import AwellApi, _retry_after, create_patient_input
from backends.base import BackendRefusedError, BackendUnavailableError
from careflow.models import Identifier
from tests.backends.awell.stand_in import API_KEY, SCHEMA, AwellStandIn, serve_stand_in, value_ok


@pytest.mark.parametrize(
    "document",
    [
        awell_api.PATIENT_BY_IDENTIFIER,
        awell_api.CREATE_PATIENT,
        awell_api.START_PATHWAY,
        awell_api.PATIENT_PATHWAYS,
        awell_api.PUBLISHED_PATHWAY_DEFINITIONS,
    ],
)
def test_every_document_is_valid_against_awells_schema(document: str) -> None:
    assert validate(SCHEMA, parse(document)) == []


@pytest.mark.parametrize(
    ("value", "value_type", "expected"),
    [
        ("2024-03-01", "DATE", "2024-03-01"),
        ("2024-03-01T10:00:00Z", "DATE", "2024-03-01T10:00:00Z"),
        (10, "NUMBER", "10"),
        (10.0, "NUMBER", "10"),
        (2.5, "NUMBER", "2.5"),
        (-1e-7, "NUMBER", "-1e-07"),
        (True, "BOOLEAN", "true"),
        (False, "BOOLEAN", "false"),
        (["a", "b"], "STRINGS_ARRAY", '["a","b"]'),
        ([1, 2.5], "NUMBERS_ARRAY", "[1,2.5]"),
        ({"k": [1, "é"]}, "JSON", '{"k":[1,"é"]}'),
        ("+14155552671", "TELEPHONE", "+14155552671"),
        ("plain text", "STRING", "plain text"),
    ],
)
def test_data_point_values_travel_as_awell_expects(
    value: Any, value_type: str, expected: str
) -> None:
    assert awell_value(value) == expected
    assert value_ok(value_type, expected)


def test_create_patient_input_maps_the_profile() -> None:
    identifier = Identifier(system="https://example-hospital.org/mrn", value="7")
    profile = {"first_name": "Zelda", "sex": "other", "phone": "+14155552671", "unknown": 1}
    assert create_patient_input(identifier, profile) == {
        "identifier": [{"system": "https://example-hospital.org/mrn", "value": "7"}],
        "first_name": "Zelda",
        "phone": "+14155552671",
        "sex": "NOT_KNOWN",
    }
    assert create_patient_input(None, {"sex": "male"}) == {"identifier": [], "sex": "MALE"}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("1", 1.0),
        (" 2.5 ", 2.5),
        ("600", 60.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015", None),
        (None, None),
    ],
)
def test_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    assert _retry_after(header) == seconds


KEY = b"test id hash key"


def test_resolution_workflow_id_hashes_the_identifier() -> None:
    mrn = Identifier(system="https://example-hospital.org/mrn", value="70011")
    other = Identifier(system="https://example-hospital.org/other", value="70011")
    workflow_id = patient_resolution_id(mrn, "req_1", KEY)
    assert "70011" not in workflow_id and "example-hospital" not in workflow_id
    # Keyed: without the server's id hash key the MRN cannot be found by trying every value.
    assert workflow_id != patient_resolution_id(mrn, "req_1", b"another key")
    assert workflow_id == patient_resolution_id(mrn, "req_2", KEY)  # per identifier, not request
    assert workflow_id != patient_resolution_id(other, "req_1", KEY)
    assert patient_resolution_id(None, "req_1", KEY) != patient_resolution_id(None, "req_2", KEY)


async def test_faults_are_sorted_and_never_quote_the_key_or_awells_text() -> None:
    tenant = AwellStandIn()
    async with serve_stand_in(tenant) as url:
        wrong = AwellApi(url, "wrong-key", timeout=2)
        with pytest.raises(BackendRefusedError) as refused:
            await asyncio.to_thread(wrong.published_pathway_definitions)
        assert refused.value.code == "backend_refused"
        assert refused.value.message == (
            "Awell refused publishedPathwayDefinitions: UNAUTHENTICATED"
        )
        api = AwellApi(url, API_KEY, timeout=0.5)
        assert API_KEY not in repr(api)
        tenant.fail("patientByIdentifier", "5xx")
        identifier = Identifier(system="urn:x", value="1")
        with pytest.raises(BackendUnavailableError) as unavailable:
            await asyncio.to_thread(api.patient_by_identifier, identifier)
        assert unavailable.value.code == "awell_unavailable"
        tenant.fail("patientByIdentifier", "429")
        with pytest.raises(BackendUnavailableError) as limited:
            await asyncio.to_thread(api.patient_by_identifier, identifier)
        assert (limited.value.code, limited.value.retry_after) == ("awell_rate_limited", 1.0)
        tenant.slow_seconds = 1.5
        tenant.fail("patientByIdentifier", "slow")
        with pytest.raises(BackendUnavailableError) as slow:
            await asyncio.to_thread(api.patient_by_identifier, identifier)
        assert slow.value.public_message == "Awell patientByIdentifier timed out"
        with pytest.raises(BackendRefusedError) as unknown:
            await asyncio.to_thread(api.start_pathway, "nobody", "pd", [], None)
        assert unknown.value.message == "Awell refused startPathway: NOT_FOUND"
        assert all(h.get("apikey") in (API_KEY, "wrong-key") for h in tenant.seen_headers)
        await asyncio.sleep(1.5)  # let the slow answer finish before the server stops
        assert tenant.invalid == []
