"""Lone surrogates in stored configuration (issue 16 review, finding 2): refused at save with
422, in every place a webhook keeps text; a row stored before the rule still reads (never 500)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from careflow.models import Webhook
from persistence.store import Store
from tests.conftest import Api
from tests.factories import add_webhook, save_definition

SURROGATE = "\ud800"
RULE = {"path": "$.a", "op": "equals", "value": "x"}


def _raw(body: dict[str, Any]) -> bytes:
    # json.dumps escapes the lone surrogate as \ud800, the way a sender's JSON carries it.
    return json.dumps(body).encode()


CASES = {
    "condition value": {"conditions": {"rules": [{**RULE, "value": SURROGATE}]}},
    "condition path": {"conditions": {"rules": [{**RULE, "path": "$." + SURROGATE}]}},
    "in element": {"conditions": {"rules": [{**RULE, "op": "in", "value": ["a", SURROGATE]}]}},
    "exists value": {"conditions": {"rules": [{**RULE, "op": "exists", "value": SURROGATE}]}},
    "delivery_id_path": {"delivery_id_path": "$." + SURROGATE},
    "debounce key_path": {"debounce": {"key_path": "$." + SURROGATE, "seconds": 5}},
    "name": {"name": "a" + SURROGATE},
}


@pytest.mark.parametrize("fields", CASES.values(), ids=list(CASES))
async def test_lone_surrogate_is_refused_at_create_patch_and_preview(
    api: Api, fields: dict[str, Any]
) -> None:
    await save_definition(api, "intake", [{"id": "a", "value_type": "string"}])
    base = {
        "name": "n",
        "care_flow_definition_id": "intake",
        "data_point_mappings": [{"data_point_definition_id": "a", "path": "$.a"}],
    }
    headers = {"Content-Type": "application/json"}
    created = await api.admin(
        "POST", "/v1/webhooks", content=_raw({**base, **fields}), headers=headers
    )
    assert created.status_code == 422, created.text
    assert "\\ud800" not in created.text
    hook = await add_webhook(api, **base)
    patched = await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        content=_raw(fields),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 422, patched.text
    assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).status_code == 200
    assert (await api.admin("GET", "/v1/webhooks")).status_code == 200
    if "conditions" in fields:
        preview = await api.admin(
            "POST", f"/v1/webhooks/{hook['id']}/preview", content=_raw(fields), headers=headers
        )
        assert preview.status_code == 422, preview.text


async def test_a_row_stored_with_a_surrogate_still_reads(api: Api, store: Store) -> None:
    await save_definition(api, "intake", [{"id": "a", "value_type": "string"}])
    hook = await add_webhook(
        api,
        enable=False,
        name="n",
        care_flow_definition_id="intake",
        data_point_mappings=[{"data_point_definition_id": "a", "path": "$.a"}],
    )
    stored = store.configuration.get_webhook(hook["id"])
    # Written the way an earlier version let it through (no validation).
    broken = Webhook.model_construct(
        **{**dict(stored), "name": "n" + SURROGATE, "delivery_id_path": "$." + SURROGATE}
    )
    store.configuration.save_webhook(broken)
    for method, path in [
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("GET", "/v1/webhooks"),
        ("POST", f"/v1/webhooks/{hook['id']}/enable"),
        ("GET", f"/ui/webhooks/{hook['id']}"),
    ]:
        answer = await api.admin(method, path)
        assert answer.status_code < 500, (path, answer.text)
    shown = await api.admin("GET", f"/v1/webhooks/{hook['id']}")
    assert shown.json()["name"] == "n\ufffd"
