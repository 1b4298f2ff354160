"""The enable gate refuses a webhook whose definition's backend is not configured, naming it."""

from __future__ import annotations

from tests.conftest import Api
from tests.factories import add_webhook


async def test_awell_definition_without_settings_cannot_be_enabled(api: Api) -> None:
    answer = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        json={
            "id": "pathway",
            "title": "Pathway",
            "published": True,
            "backend": {"kind": "awell", "pathway_definition_id": "pd-1"},
            "data_point_definitions": [{"id": "a", "value_type": "string", "optional": True}],
        },
    )
    assert answer.status_code == 201, answer.text
    hook = await add_webhook(
        api,
        enable=False,
        name="h",
        care_flow_definition_id="pathway",
        data_point_mappings=[{"data_point_definition_id": "a", "path": "$.a"}],
    )
    answer = await api.admin("POST", f"/v1/webhooks/{hook['id']}/enable")
    assert answer.status_code == 409
    (error,) = answer.json()["errors"]
    assert error["code"] == "care_flow_backend_not_configured"
    assert "awell" in error["message"] and "AWELL_API_URL" in error["message"]
    answer = await api.admin("POST", "/v1/care-flow-definitions/import")
    assert answer.status_code == 409
    assert answer.json()["errors"][0]["code"] == "awell_not_configured"
