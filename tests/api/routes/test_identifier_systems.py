"""``/v1/identifier-systems``: paged lists, system URIs checked, and a system in use stays."""

from __future__ import annotations

from tests.conftest import Api
from tests.factories import MRN_SYSTEM, add_identifier_system, ehr_webhook


async def test_config_lists_page(api: Api) -> None:
    for i in range(3):
        await add_identifier_system(api, f"s{i}", f"urn:s:{i}")
    first = (await api.admin("GET", "/v1/identifier-systems?limit=2")).json()
    assert len(first["items"]) == 2 and first["next_page_token"]
    rest = (
        await api.admin(
            "GET", f"/v1/identifier-systems?limit=2&page_token={first['next_page_token']}"
        )
    ).json()
    assert [s["name"] for s in rest["items"]] == ["s2"] and rest["next_page_token"] is None
    assert (await api.admin("GET", "/v1/identifier-systems?limit=0")).status_code == 422
    assert (await api.admin("GET", "/v1/identifier-systems?page_token=zzz")).status_code == 400


async def test_odd_system_uris_are_422(api: Api) -> None:
    for system in ("http://x y", "urn:a\0b", "urn:oid:1.2 ", "urn:x\n"):
        answer = await api.admin(
            "POST", "/v1/identifier-systems", json={"name": "odd", "system": system}
        )
        assert answer.status_code == 422, system


async def test_a_system_in_use_keeps_its_uri_and_cannot_be_deleted(api: Api) -> None:
    await ehr_webhook(api)  # its patient identifier is of system "mrn"
    in_use = await api.admin("DELETE", "/v1/identifier-systems/mrn")
    assert in_use.status_code == 409
    assert in_use.json()["errors"][0]["code"] == "identifier_system_in_use"
    moved = await api.admin(
        "PUT", "/v1/identifier-systems/mrn", json={"system": "urn:elsewhere:mrn", "description": ""}
    )
    assert moved.status_code == 409
    described = await api.admin(
        "PUT", "/v1/identifier-systems/mrn", json={"system": MRN_SYSTEM, "description": "MRNs"}
    )
    assert described.status_code == 200, described.text
    assert (await api.admin("GET", "/v1/identifier-systems/mrn")).json()["description"] == "MRNs"

    await add_identifier_system(api, "unused", "urn:unused")
    assert (await api.admin("DELETE", "/v1/identifier-systems/unused")).status_code == 204
    gone = await api.admin("GET", "/v1/identifier-systems/unused")
    assert gone.status_code == 404
