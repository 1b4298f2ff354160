"""Patient resolution through HTTP (issue 4): exactly one patient per identifier under
concurrency, profiles from the mapping, identifier rules, no PHI in logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from persistence.store import Store
from tests.conftest import Api, RunningWorker

SYSTEM = "https://example-hospital.org/mrn"


async def _configure(api: Api) -> str:
    await api.admin("POST", "/v1/identifier-systems", json={"name": "mrn", "system": SYSTEM})
    await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        json={
            "id": "visit",
            "title": "Visit",
            "published": True,
            "data_point_definitions": [{"id": "reason", "value_type": "string"}],
        },
    )
    answer = await api.admin(
        "POST",
        "/v1/webhooks",
        json={
            "name": "EHR",
            "care_flow_definition_id": "visit",
            "data_point_mappings": [{"data_point_definition_id": "reason", "path": "$.reason"}],
            "patient_identifier": {"system": SYSTEM, "value_path": "$.patient.mrn"},
            "patient_profile": {
                "first_name": "$.patient.given",
                "last_name": "$.patient.family",
                "birth_date": "$.patient.born",
                "phone": "$.patient.phone",
                "sex": "$.patient.sex",
                "preferred_language": "$.patient.lang",
                "email": "$.patient.email",
            },
        },
    )
    assert answer.status_code == 201, answer.text
    hook_id = answer.json()["id"]
    assert (await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")).status_code == 200
    return str(hook_id)


PATIENT = {
    "mrn": 70011,
    "given": "Zelda",
    "family": "Quartermaine",
    "born": "1980-02-29",
    "phone": "(415) 555-2671",
    "sex": "Female",
    "lang": "NL",
    "email": "zq@example.org",
}


async def test_thirty_concurrent_requests_one_new_patient(
    api: Api, worker: RunningWorker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook_id = await _configure(api)
    answers = await asyncio.gather(
        *(
            api.http.post(f"/hooks/{hook_id}", json={"reason": f"visit {i}", "patient": PATIENT})
            for i in range(30)
        )
    )
    assert [a.status_code for a in answers] == [202] * 30
    details = await asyncio.gather(
        *(api.wait_status(a.json()["request_id"], {"SUCCESS", "FAILED"}, 60) for a in answers)
    )
    assert [d["status"] for d in details] == ["SUCCESS"] * 30
    assert len({d["patient_id"] for d in details}) == 1
    assert store.patients.count_patients() == 1
    assert store.patients.count_care_flows() == 30

    found = (await api.admin("GET", f"/v1/patients?identifier={SYSTEM}|70011")).json()["items"]
    assert len(found) == 1
    assert found[0]["identifiers"] == [{"system": SYSTEM, "value": "70011"}]
    assert found[0]["profile"] == {
        "first_name": "Zelda",
        "last_name": "Quartermaine",
        "birth_date": "1980-02-29",
        "phone": "+14155552671",
        "sex": "female",
        "preferred_language": "nl",
        "email": "zq@example.org",
    }
    # Everything the service logged (the test's own HTTP client logs URLs; leave it out).
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))
    )
    for secret in ("70011", "Zelda", "Quartermaine", "1980-02-29", "555-2671", "zq@example"):
        assert secret not in logged
        for d in details:
            assert secret not in d["request_id"]


async def test_known_patient_profile_is_not_overwritten(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook_id = await _configure(api)
    first = await api.http.post(f"/hooks/{hook_id}", json={"reason": "a", "patient": PATIENT})
    await api.wait_status(first.json()["request_id"], {"SUCCESS"})
    changed = {**PATIENT, "given": "Other", "mrn": " 70011 "}
    second = await api.http.post(f"/hooks/{hook_id}", json={"reason": "b", "patient": changed})
    detail = await api.wait_status(second.json()["request_id"], {"SUCCESS"})
    patient = (await api.admin("GET", f"/v1/patients/{detail['patient_id']}")).json()
    assert patient["profile"]["first_name"] == "Zelda"
    assert any("patient matched" in (t["message"] or "") for t in detail["timeline"])
    assert store.patients.count_patients() == 1


async def test_identifier_problems_are_rejected(api: Api, worker: RunningWorker) -> None:
    hook_id = await _configure(api)
    missing = await api.http.post(f"/hooks/{hook_id}", json={"reason": "x", "patient": {}})
    assert missing.status_code == 422
    assert [e["code"] for e in missing.json()["errors"]] == ["missing_patient_identifier"]
    empty = await api.http.post(
        f"/hooks/{hook_id}", json={"reason": "x", "patient": {"mrn": "   "}}
    )
    assert [e["code"] for e in empty.json()["errors"]] == ["invalid_identifier_value"]
    bad_profile = await api.http.post(
        f"/hooks/{hook_id}",
        json={"reason": "x", "patient": {**PATIENT, "sex": "robot", "lang": "xx"}},
    )
    assert bad_profile.status_code == 422
    assert {e["code"] for e in bad_profile.json()["errors"]} == {"invalid_profile_field"}


async def test_body_identifier_needs_a_configured_system(api: Api, worker: RunningWorker) -> None:
    await _configure(api)
    answer = await api.admin(
        "POST",
        "/v1/webhooks",
        json={
            "name": "body ids",
            "care_flow_definition_id": "visit",
            "data_point_mappings": [{"data_point_definition_id": "reason", "path": "$.reason"}],
        },
    )
    hook_id = answer.json()["id"]
    await api.admin("POST", f"/v1/webhooks/{hook_id}/enable")
    unknown = await api.http.post(
        f"/hooks/{hook_id}",
        json={"reason": "x", "patient_identifier": {"system": "mrn", "value": "1"}},
    )
    assert unknown.status_code == 422
    assert [e["code"] for e in unknown.json()["errors"]] == ["unknown_identifier_system"]
    known = await api.http.post(
        f"/hooks/{hook_id}",
        json={"reason": "x", "patient_identifier": {"system": SYSTEM, "value": 12.0}},
    )
    assert known.status_code == 202
    detail = await api.wait_status(known.json()["request_id"], {"SUCCESS"})
    assert detail["patient_identifier"] == {"system": SYSTEM, "value": "12"}
    in_use = await api.admin("DELETE", "/v1/identifier-systems/mrn")
    assert in_use.status_code == 409
