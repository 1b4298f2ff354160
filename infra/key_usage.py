"""Which encryption key ids requests still depend on (``python cli.py encryption-keys``).

Reads the raw history (and the visibility memo) of each request and collects the
``encryption-key-id`` of every encrypted payload; nothing is decrypted or re-encrypted. An
operator rotating keys drops an old key from ``CAREFLOW_ENCRYPTION_KEYS`` only once no request
they still need to read names it (open requests: they would fail; closed ones: their detail
would show ``encryption_key_not_found`` until the namespace retention deletes them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Header, Payload, SearchAttributes
from temporalio.api.history.v1 import MarkerRecordedEventAttributes
from temporalio.client import Client

from infra import temporal
from infra.codec import ENCODING, KEY_ID

_OURS = f'WorkflowType IN ("{temporal.WORKFLOW_TYPE}", "{temporal.DEBOUNCE_WORKFLOW_TYPE}")'
MARKER_RESULT = "result"  # the one marker detail that holds a payload of ours
OPEN = f'{_OURS} AND ExecutionStatus = "Running"'
ALL = _OURS


@dataclass
class KeyUsage:
    """Per key id, how many requests hold at least one payload under it.

    Attributes:
        requests: the requests looked at.
        by_key_id: key id → number of requests.
        plaintext: requests with at least one unencrypted payload (written before the codec).
    """

    requests: int = 0
    by_key_id: Counter[str] = field(default_factory=Counter)
    plaintext: int = 0


def payload_key_ids(message: Message, found: set[str | None]) -> None:
    """Add the key id of every payload inside ``message`` to ``found`` (None: not encrypted).

    Search attributes and headers are skipped: the codec never encrypts them. So are the
    details of a marker other than ``result``: the SDK core writes them itself as plain JSON
    (a local activity's type, attempt and times; a patch id), no payload of ours; the local
    activity's ``result`` beside them is encrypted.
    """
    if isinstance(message, SearchAttributes | Header):
        return
    if isinstance(message, MarkerRecordedEventAttributes):
        if MARKER_RESULT in message.details:
            payload_key_ids(message.details[MARKER_RESULT], found)
        if message.HasField("failure"):
            payload_key_ids(message.failure, found)
        return
    if isinstance(message, Payload):
        if message.metadata.get("encoding") == ENCODING:
            found.add(message.metadata.get(KEY_ID, b"").decode("utf-8", "replace"))
        else:
            found.add(None)
        return
    for descriptor, value in message.ListFields():
        kind = descriptor.message_type
        if descriptor.type != FieldDescriptor.TYPE_MESSAGE or kind is None:
            continue
        if kind.GetOptions().map_entry:
            value_field = kind.fields_by_name["value"]
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value.values():
                    payload_key_ids(item, found)
        elif descriptor.is_repeated:
            for item in value:
                payload_key_ids(item, found)
        else:
            payload_key_ids(value, found)


async def key_usage(client: Client, query: str = OPEN) -> KeyUsage:
    """Scan the requests matching ``query`` (a visibility query; default: the open ones).

    Args:
        client: any client of the namespace (histories are read raw, never decoded).
        query: ``OPEN`` or ``ALL`` (every request within the retention), or narrower.
    """
    usage = KeyUsage()
    async for execution in client.list_workflows(query):
        found: set[str | None] = set()
        payload_key_ids(execution.raw_info.memo, found)
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        async for event in handle.fetch_history_events():
            payload_key_ids(event, found)
        usage.requests += 1
        usage.plaintext += None in found
        usage.by_key_id.update(key_id for key_id in found if key_id is not None)
    return usage
