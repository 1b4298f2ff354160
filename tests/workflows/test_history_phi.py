"""Finding 10 of issue 15: what of a request's Temporal history carries PHI.

Requests with fictional patient data go through the real stack (API, worker, dev server) and end
SUCCESS, REJECTED, TEST and FAILED. Their histories are then read event by event. PHI may be in
the payloads that carry the request by design, all of which the payload codec encrypts: the
workflow input, activity inputs, activity results and the workflow result. Nowhere else: not in
failure messages or stack traces, the static summary, the memo, search attributes or any other
field, which Temporal stores and shows as they are.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from google.protobuf.json_format import MessageToDict
from temporalio.client import Client

from backends.builtin import BuiltinBackend
from careflow.answers import Patient
from careflow.models import Identifier
from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, RunningWorker
from tests.factories import EHR_PATIENT, JSON, TERMINAL, ehr_webhook
from worker import build_worker

# The fictional patient's values as they may appear in any field (raw, mapped, normalised).
NEEDLES = ("Zelda", "Quartermaine", "70011", "1980-02-29", "5552671", "555-2671", "zq@example")
REASON = "Knee pain after a fall"
# Event attributes whose payloads carry the request (encrypted by the codec).
CARRIERS = (
    "workflowExecutionStartedEventAttributes.input",
    "activityTaskScheduledEventAttributes.input",
    "activityTaskCompletedEventAttributes.result",
    "workflowExecutionCompletedEventAttributes.result",
)


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in a history event (as a dict), payload data decoded, with its path."""
    if isinstance(node, dict):
        if "data" in node and isinstance(node.get("metadata"), dict):
            yield path, base64.b64decode(node["data"]).decode("utf-8", errors="replace")
            return
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield path, node


def _holds(text: str, needle: str) -> bool:
    """Whether ``needle`` is in ``text``; a digits-only needle (the ZIP code) not as part of a
    longer number, such as a timestamp's nanoseconds, where it turns up by chance."""
    if needle.isdigit():
        return re.search(rf"(?<!\d){needle}(?!\d)", text) is not None
    return needle.lower() in text.lower()


async def _phi(client: Client, request_id: str) -> tuple[set[str], list[tuple[str, str]]]:
    """The carrying fields that hold PHI, and (field, needle) for PHI found anywhere else."""
    history = await client.get_workflow_handle(request_id).fetch_history()
    carried, leaks = set(), []
    for event in history.events:
        for path, text in _strings(MessageToDict(event), ""):
            found = [n for n in (*NEEDLES, REASON) if _holds(text, n)]
            if found and path.startswith(CARRIERS):
                carried.add(path)
            else:
                leaks += [(path, n) for n in found]
    return carried, leaks


async def _leaks(client: Client, request_id: str) -> list[tuple[str, str]]:
    return (await _phi(client, request_id))[1]


def _body(**changes: Any) -> bytes:
    return json.dumps({"reason": REASON, "patient": {**EHR_PATIENT, **changes}}).encode()


async def test_no_phi_outside_the_carrying_payloads(
    api: Api, worker: RunningWorker, temporal_client: Client
) -> None:
    hook_id = await ehr_webhook(api)
    ids = {}
    for name, body, test in [
        ("success", _body(), False),
        ("rejected (bad profile values)", _body(phone="Zelda 555", born="Zelda", sex="Z"), False),
        ("rejected (no reason)", json.dumps({"patient": EHR_PATIENT}).encode(), False),
        ("test", _body(), True),
        ("not JSON", b'{"patient": "Zelda Quartermaine", ', False),
    ]:
        url = f"/hooks/{hook_id}/test" if test else f"/hooks/{hook_id}"
        answer = await api.http.post(url, content=body, headers=JSON)
        assert answer.status_code < 500, answer.text
        if not test:  # a test answer shows the mapping (contract §4)
            assert not [n for n in NEEDLES if n in answer.text], answer.text
        ids[name] = answer.json()["request_id"]
    for name, request_id in ids.items():
        detail = await api.wait_status(request_id, TERMINAL, timeout=30)
        assert detail["status"] in TERMINAL, (name, detail)
        assert await _leaks(temporal_client, request_id) == [], name
    # The payloads that carry PHI by design (activity inputs, validate_request's mapping, the
    # request's state in the result) are AES-GCM ciphertext under the payload codec (issue 13):
    # the raw history holds no PHI at all, not even there. (tests/api/test_encryption.py shows
    # the same check finds the values when the codec is off.)
    carried, _ = await _phi(temporal_client, ids["success"])
    assert carried == set()


class _QuotingBackend(BuiltinBackend):
    """A backend whose driver quotes the values it was given, as database drivers do."""

    def create_patient(
        self, identifier: Identifier | None, profile: dict[str, Any], idempotency_key: str
    ) -> tuple[Patient, bool]:
        value = identifier.value if identifier else "-"
        raise RuntimeError(f"duplicate key (mrn)=({value}) for {profile.get('first_name')}")


async def test_a_failing_backend_leaves_no_phi_in_failures(
    api: Api, worker: RunningWorker, temporal_client: Client, store: Store, settings: Settings
) -> None:
    await worker.stop()
    executor = ThreadPoolExecutor(max_workers=4)
    failing = build_worker(
        temporal_client, store, settings, executor, backend=_QuotingBackend(store)
    )
    async with failing:
        hook_id = await ehr_webhook(api)
        answer = await api.http.post(f"/hooks/{hook_id}", content=_body(), headers=JSON)
        assert answer.status_code == 202, answer.text
        request_id = answer.json()["request_id"]
        detail = await api.wait_status(request_id, {"FAILED"}, timeout=60)
    executor.shutdown(wait=False, cancel_futures=True)
    assert [e["code"] for e in detail["errors"]] == ["backend_error"]
    assert await _leaks(temporal_client, request_id) == []
