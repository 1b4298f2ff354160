"""Debounce claims at the door: a SCHEDULED request claims its webhook's debounce window (or is
IGNORED ``debounced``), and the test link shows the window's state without claiming it."""

from __future__ import annotations

import logging
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError

from api.start_gate import TemporalUnavailableError
from careflow.conditions.models import DEBOUNCED, IgnoredReason
from careflow.debounce import window_id
from careflow.keyed_ids import id_hash_key
from careflow.messages import ValidationResult
from careflow.models import RequestStatus, Webhook
from careflow.settings import Settings
from infra import debounce_windows as debounce

log = logging.getLogger("api.ingest")


async def claim(
    client: Client,
    settings: Settings,
    hook: Webhook,
    request_id: str,
    key: str | None,
    result: ValidationResult,
) -> tuple[ValidationResult, str | None]:
    """Claim the request's debounce window (none when the key is absent).

    Args:
        client: the Temporal client.
        settings: the task queue and the id-hash key.
        hook: the webhook (with a debounce).
        request_id: the request claiming the window.
        key: the body's debounce key text (``careflow.debounce.key_text``), None when absent.
        result: the request's SCHEDULED validation result.

    Returns:
        (the result, the window id this request holds), or an IGNORED ``debounced`` result
        naming the holder and None.

    Raises:
        TemporalUnavailableError: Temporal did not answer the claim.
    """
    assert hook.debounce is not None
    if key is None:
        return result, None
    window = window_id(hook.id, key, id_hash_key(settings))
    try:
        holder = await debounce.claim(
            client,
            settings.careflow_task_queue,
            window,
            request_id,
            hook.debounce.seconds,
        )
    except (RPCError, RuntimeError) as exc:
        log.warning("temporal unavailable: debounce claim failed")
        raise TemporalUnavailableError from exc
    if holder is None:
        return result, window
    reason = IgnoredReason(
        code=DEBOUNCED,
        message="a request with the same debounce key arrived within the window",
        request_id=holder,
    )
    ignored = result.model_copy(
        update={
            "verdict": RequestStatus.IGNORED,
            "reasons": [reason],
            "data_points": {},
            "patient_identifier": None,
            "profile": {},
        }
    )
    return ignored, None


async def state(
    client: Client, settings: Settings, hook: Webhook, key: str | None
) -> dict[str, Any]:
    """The test link's view of the debounce, claiming nothing: ``no_key``, ``free``,
    ``held`` (with the holder's ``request_id``: a real request now would be IGNORED
    ``debounced``) or ``unknown`` (Temporal did not answer).

    Args:
        client: the Temporal client.
        settings: the id-hash key.
        hook: the webhook (with a debounce).
        key: the body's debounce key text (``careflow.debounce.key_text``), None when absent.
    """
    assert hook.debounce is not None
    if key is None:
        return {"state": "no_key"}
    window = window_id(hook.id, key, id_hash_key(settings))
    try:
        held_by = await debounce.holder(client, window)
    except (RPCError, RuntimeError):
        return {"state": "unknown"}
    return {"state": "free"} if held_by is None else {"state": "held", "request_id": held_by}
