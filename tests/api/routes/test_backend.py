"""``/v1/patients`` and ``/v1/care-flows``: the built-in backend's patients and care flows, as
requests create them — one patient per identifier under concurrency, profiles from the mapping,
anonymous patients, no PHI in logs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from persistence.store import Store
from tests.conftest import Api, RunningWorker
from tests.factories import (
    EHR_PATIENT,
    MRN_SYSTEM,
    add_identifier_system,
    configure_fhir_webhook,
    ehr_webhook,
    post_sample,
)


async def test_patient_lookup_needs_system_and_value(api: Api) -> None:
    for identifier in ("24680", f"{MRN_SYSTEM}|", "|24680", f"{MRN_SYSTEM}|12%0034"):
        answer = await api.admin("GET", f"/v1/patients?identifier={identifier}")
        assert answer.status_code == 400, identifier
        assert answer.json()["errors"][0]["code"] == "invalid_identifier"
    # A system that is not configured is named (issue 17), not answered with an empty list.
    unknown = await api.admin("GET", f"/v1/patients?identifier={MRN_SYSTEM}|24680")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["code"] == "unknown_identifier_system"
    assert (await api.admin("GET", "/v1/patients/pat_nope")).status_code == 404
    assert (await api.admin("GET", "/v1/care-flows/cf_nope")).status_code == 404


async def test_thirty_concurrent_requests_one_new_patient(
    api: Api, worker: RunningWorker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook_id = await ehr_webhook(api)
    answers = await asyncio.gather(
        *(
            api.http.post(
                f"/hooks/{hook_id}", json={"reason": f"visit {i}", "patient": EHR_PATIENT}
            )
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

    found = (await api.admin("GET", f"/v1/patients?identifier={MRN_SYSTEM}|70011")).json()["items"]
    assert len(found) == 1
    assert found[0]["identifiers"] == [{"system": MRN_SYSTEM, "value": "70011"}]
    assert found[0]["profile"] == {
        "first_name": "Zelda",
        "last_name": "Quartermaine",
        "birth_date": "1980-02-29",
        "phone": "+14155552671",
        "sex": "female",
        "preferred_language": "nl",
        "email": "zq@example.org",
    }
    flows = (await api.admin("GET", f"/v1/care-flows?patient_id={found[0]['id']}")).json()
    assert sorted(f["request_id"] for f in flows["items"]) == sorted(
        d["request_id"] for d in details
    )
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
    hook_id = await ehr_webhook(api)
    first = await api.http.post(f"/hooks/{hook_id}", json={"reason": "a", "patient": EHR_PATIENT})
    await api.wait_status(first.json()["request_id"], {"SUCCESS"})
    changed = {**EHR_PATIENT, "given": "Other", "mrn": " 70011 "}
    second = await api.http.post(f"/hooks/{hook_id}", json={"reason": "b", "patient": changed})
    detail = await api.wait_status(second.json()["request_id"], {"SUCCESS"})
    patient = (await api.admin("GET", f"/v1/patients/{detail['patient_id']}")).json()
    assert patient["profile"]["first_name"] == "Zelda"
    assert any("patient matched" in (t["message"] or "") for t in detail["timeline"])
    assert store.patients.count_patients() == 1


async def test_anonymous_requests_get_distinct_patients(
    api: Api, worker: RunningWorker, store: Store
) -> None:
    hook = await configure_fhir_webhook(api, enable=False)
    answer = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"patient_identifier": None},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["patient_identifier"] is None
    assert (await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")).status_code == 200
    ids = []
    for _ in range(2):
        answer = await post_sample(api, hook["id"])
        assert answer.status_code == 202, answer.text
        detail = await api.wait_status(answer.json()["request_id"], {"SUCCESS", "FAILED"})
        assert detail["status"] == "SUCCESS"
        ids.append(detail["patient_id"])
    assert ids[0] != ids[1]
    for patient_id in ids:
        patient = (await api.admin("GET", f"/v1/patients/{patient_id}")).json()
        assert patient["anonymous"] is True
        assert patient["identifiers"] == []
    assert store.patients.count_patients() == 2


async def test_patient_lookup_value_with_a_bar_and_no_value_in_errors(
    api: Api, store: Store
) -> None:
    """Break-it review: the split was on the last '|', so a value holding '|' was never found;
    the system is now the longest configured URI or name before a '|', and no error echoes the
    value."""
    from urllib.parse import quote

    from careflow.models import Identifier

    await add_identifier_system(api, "bar-mrn", MRN_SYSTEM)
    patient, _ = store.patients.create_patient(
        Identifier(system=MRN_SYSTEM, value="A|778812"), {}, "req_bar"
    )
    for system in (MRN_SYSTEM, "bar-mrn"):
        found = await api.admin("GET", f"/v1/patients?identifier={quote(system + '|A|778812')}")
        assert found.status_code == 200, found.text
        assert [p["id"] for p in found.json()["items"]] == [patient.id]
    unknown = await api.admin("GET", f"/v1/patients?identifier={quote('nope|SECRET-778812|x')}")
    assert unknown.status_code == 422
    assert "SECRET" not in unknown.text and "778812" not in unknown.text
    assert "'nope'" in unknown.json()["errors"][0]["message"]
