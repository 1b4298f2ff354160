"""Collecting key ids from raw history events (infra/key_usage.py)."""

from __future__ import annotations

from temporalio.api.common.v1 import Memo, Payload, Payloads, SearchAttributes
from temporalio.api.history.v1 import (
    HistoryEvent,
    MarkerRecordedEventAttributes,
    WorkflowExecutionStartedEventAttributes,
)

from infra.codec import ENCODING, KEY_ID
from infra.key_usage import payload_key_ids


def _sealed(key_id: str) -> Payload:
    return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=b"\x00")


def test_key_ids_of_input_memo_and_plaintext_skipping_search_attributes() -> None:
    event = HistoryEvent(
        event_id=1,
        workflow_execution_started_event_attributes=WorkflowExecutionStartedEventAttributes(
            input=Payloads(payloads=[_sealed("a")]),
            memo=Memo(fields={"state": _sealed("b")}),
            search_attributes=SearchAttributes(
                indexed_fields={"RequestStatus": Payload(data=b'"RECEIVED"')}
            ),
        ),
    )
    found: set[str | None] = set()
    payload_key_ids(event, found)
    assert found == {"a", "b"}
    payload_key_ids(Payloads(payloads=[Payload(data=b"1")]), found)
    assert found == {"a", "b", None}


def test_a_local_activity_marker_counts_its_result_not_cores_own_details() -> None:
    # validate_request runs as a local activity: core writes the marker's ``data`` (type,
    # attempt, times) as plain JSON; only the ``result`` is a payload of ours.
    event = HistoryEvent(
        event_id=5,
        marker_recorded_event_attributes=MarkerRecordedEventAttributes(
            marker_name="core_local_activity",
            details={
                "data": Payloads(payloads=[Payload(data=b'{"activity_type":"validate_request"}')]),
                "result": Payloads(payloads=[_sealed("a")]),
            },
        ),
    )
    found: set[str | None] = set()
    payload_key_ids(event, found)
    assert found == {"a"}
    plain = MarkerRecordedEventAttributes(
        marker_name="core_local_activity",
        details={"result": Payloads(payloads=[Payload(data=b"{}")])},
    )
    payload_key_ids(plain, found)
    assert found == {"a", None}  # an unencrypted result still counts as plaintext
