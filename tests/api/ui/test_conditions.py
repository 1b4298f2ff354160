"""``api/ui/conditions.py``: the webhook page's condition rows, the enrollment rule and debounce,
and the verdict fragment on the newest test payload; IGNORED in the request pages."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from tests.conftest import Api, RunningWorker
from tests.factories import add_webhook, post_sample, save_definition, ui_sign_in


async def calcom_hook(api: Api) -> dict[str, Any]:
    await save_definition(api, "open", [{"id": "anything", "value_type": "json", "optional": True}])
    return await add_webhook(
        api,
        name="Cal.com",
        care_flow_definition_id="open",
        data_point_mappings=[{"data_point_definition_id": "anything", "path": "$.payload.uid"}],
    )


def rows(csrf: str, *rules: tuple[str, str, str, str], **extra: str) -> dict[str, str]:
    form = {"csrf": csrf, **extra}
    for index, (path, op, value, value_type) in enumerate(rules):
        form |= {
            f"cond_path__{index}": path,
            f"cond_op__{index}": op,
            f"cond_value__{index}": value,
            f"cond_type__{index}": value_type,
        }
    return form


async def test_rows_save_and_the_verdict_follows_the_newest_test_payload(
    api: Api, worker: RunningWorker
) -> None:
    hook = await calcom_hook(api)
    csrf = await ui_sign_in(api)
    page = (await api.http.get(f"/ui/webhooks/{hook['id']}")).text
    assert 'id="conditions-form"' in page and 'name="cond_path__0"' in page

    verdict = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions/preview",
        data=rows(csrf, ("$.triggerEvent", "equals", "BOOKING_CREATED", "string")),
    )
    assert "No test payload yet" in verdict.text

    await post_sample(api, hook["id"], "calcom-booking-created", test=True)
    met = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions/preview",
        data=rows(
            csrf,
            ("$.triggerEvent", "in", '["BOOKING_CREATED", "BOOKING_RESCHEDULED"]', "string"),
            ("$.payload.length", "gte", "30", "number"),
        ),
    )
    assert ">Met<" in met.text and met.text.count("does not hold") == 0
    not_met = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions/preview",
        data=rows(csrf, ("$.payload.length", "gt", "60", "number")),
    )
    assert "Not met: IGNORED" in not_met.text and "does not hold" in not_met.text
    refused = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions/preview",
        data=rows(csrf, ("$.payload.length", "gt", "sixty", "number")),
    )
    assert "invalid_condition" in refused.text

    saved = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data=rows(
            csrf,
            ("$.triggerEvent", "equals", "BOOKING_CREATED", "string"),
            ("$.payload.cancellationReason", "not_exists", "", "string"),
            ("", "equals", "ignored row", "string"),
            skip_if_enrolled="on",
            debounce_key_path="$.payload.uid",
            debounce_seconds="45",
            cond_match="all",
        ),
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    stored = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert stored["conditions"] == {
        "match": "all",
        "rules": [
            {
                "path": "$.triggerEvent",
                "op": "equals",
                "value": "BOOKING_CREATED",
                "value_type": "string",
            },
            {
                "path": "$.payload.cancellationReason",
                "op": "not_exists",
                "value": None,
                "value_type": "string",
            },
        ],
    }
    assert stored["skip_if_enrolled"] is True
    assert stored["debounce"] == {"key_path": "$.payload.uid", "seconds": 45}
    page = (await api.http.get(f"/ui/webhooks/{hook['id']}")).text
    assert 'value="$.triggerEvent"' in page and "checked" in page

    cleared = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions", data={"csrf": csrf}, follow_redirects=False
    )
    assert cleared.status_code == 303
    stored = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert (stored["conditions"], stored["skip_if_enrolled"], stored["debounce"]) == (
        None,
        False,
        None,
    )


async def test_unusable_rows_are_a_422_page_naming_the_rule(api: Api) -> None:
    hook = await calcom_hook(api)
    csrf = await ui_sign_in(api)
    answer = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data=rows(
            csrf,
            ("$.a", "exists", "", "string"),
            ("$.b", "contains", "x", "number"),
        ),
    )
    assert answer.status_code == 422
    assert "invalid_condition" in answer.text and "conditions rule 2 (contains)" in answer.text
    bad_seconds = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data={"csrf": csrf, "debounce_key_path": "$.a", "debounce_seconds": "soon"},
    )
    assert bad_seconds.status_code == 422


async def test_ignored_requests_show_their_reasons_and_filter(
    api: Api, worker: RunningWorker
) -> None:
    hook = await calcom_hook(api)
    await api.admin(
        "PATCH",
        f"/v1/webhooks/{hook['id']}",
        json={"conditions": {"rules": [{"path": "$.triggerEvent", "op": "equals", "value": "X"}]}},
    )
    answer = await post_sample(api, hook["id"], "calcom-booking-created")
    request_id = answer.json()["request_id"]
    await api.wait_status(request_id, {"IGNORED"})
    await ui_sign_in(api)
    listed = (await api.http.get(f"/ui/requests?status=IGNORED&webhook_id={hook['id']}")).text
    assert request_id in listed and 'value="IGNORED" selected' in listed
    detail = (await api.http.get(f"/ui/requests/{request_id}")).text
    assert "Ignored because" in detail and "conditions_not_met" in detail
    assert "$.triggerEvent" in detail and "not met" in detail
    assert 'action="/ui/requests/' in detail  # IGNORED is retryable
    counts = (await api.http.get("/ui/webhooks")).text
    assert 'status=IGNORED">1<' in counts


async def test_in_values_round_trip_exactly_as_json(api: Api) -> None:
    hook = await calcom_hook(api)
    csrf = await ui_sign_in(api)
    values = ["Smith, John", " padded ", 'quote " and <tag> & amp', "Ünïcode"]
    saved = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data=rows(csrf, ("$.payload.title", "in", json.dumps(values), "string")),
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    stored = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert stored["conditions"]["rules"][0]["value"] == values
    # The page shows the list as JSON; posting the page's field back changes nothing.
    page = (await api.http.get(f"/ui/webhooks/{hook['id']}")).text
    shown = re.search(r'name="cond_value__0"[^>]*value="([^"]*)"', page)
    assert shown is not None
    again = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data=rows(csrf, ("$.payload.title", "in", html.unescape(shown.group(1)), "string")),
        follow_redirects=False,
    )
    assert again.status_code == 303, again.text
    stored = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert stored["conditions"]["rules"][0]["value"] == values
    # Comma-separated text is no longer split: refused, naming the rule.
    split = await api.http.post(
        f"/ui/webhooks/{hook['id']}/conditions",
        data=rows(csrf, ("$.payload.title", "not_in", "Smith, John", "string")),
    )
    assert split.status_code == 422
    assert "invalid_condition_form" in split.text and "rule 1 (not_in)" in split.text


async def test_crafted_condition_fields_are_refused(api: Api) -> None:
    hook = await calcom_hook(api)
    csrf = await ui_sign_in(api)
    rule = ("$.triggerEvent", "equals", "BOOKING_CREATED", "string")
    for extra in (
        {"cond_match": "xor"},
        {"cond_path__50": "$.a"},
        {"cond_path__-1": "$.a"},
        {"cond_path__01": "$.a"},
        {"cond_value__x": "1"},
        {"cond_colour__0": "red"},
    ):
        for route in ("conditions", "conditions/preview"):
            answer = await api.http.post(
                f"/ui/webhooks/{hook['id']}/{route}", data=rows(csrf, rule, **extra)
            )
            assert "invalid_condition_form" in answer.text, (extra, route)
            if route == "conditions":
                assert answer.status_code == 422
    stored = (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()
    assert stored["conditions"] is None
