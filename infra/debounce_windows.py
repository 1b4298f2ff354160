"""Debounce windows on Temporal: claim one for a request, or learn which request holds it.

Used by the ingest handler (new requests) and the ``claim_debounce_window`` activity (a retried
request claims like a new one). Workflow type and signal are addressed by name, so this module
does not import the workflow. A window is a ``DebounceWindowWorkflow`` execution (see
``workflows/debounce.py``) whose id
hashes (webhook id, key value); Temporal allows one open execution per id, so of any number of
concurrent claims on any number of API replicas exactly one starts it. The others read the
holder's request id from its memo.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from careflow.messages import DebounceWindowInput, ReleaseDebounceInput
from infra import temporal
from infra.codec import EncryptionKeyNotFound

log = logging.getLogger("infra.debounce_windows")

RPC_TIMEOUT = timedelta(seconds=5)
_CLAIM_ATTEMPTS = 3


async def claim(
    client: Client, task_queue: str, window_id: str, request_id: str, seconds: int
) -> str | None:
    """Claim the debounce window ``window_id`` for ``request_id`` for ``seconds``.

    Args:
        client: the Temporal client.
        task_queue: the workers' task queue (the window's release signal runs there).
        window_id: from ``careflow.debounce.window_id``.
        request_id: the claiming request.
        seconds: the window's length; Temporal closes it then (its execution timeout).

    Returns:
        None when ``request_id`` holds the window (claimed now, or it already did: a duplicate
        delivery); else the id of the request holding it.

    Raises:
        RPCError: Temporal did not answer (the caller answers 503).
    """
    for _ in range(_CLAIM_ATTEMPTS):
        try:
            await client.start_workflow(
                temporal.DEBOUNCE_WORKFLOW_TYPE,
                DebounceWindowInput(request_id=request_id),
                id=window_id,
                task_queue=task_queue,
                execution_timeout=timedelta(seconds=seconds),
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                memo={temporal.MEMO_DEBOUNCE_HOLDER: request_id},
                static_summary="debounce window",
                rpc_timeout=RPC_TIMEOUT,
            )
            return None
        except WorkflowAlreadyStartedError:
            pass
        try:
            description = await client.get_workflow_handle(window_id).describe(
                rpc_timeout=RPC_TIMEOUT
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        if description.status != WorkflowExecutionStatus.RUNNING:
            continue  # it closed between the start and the describe: claim again
        try:
            holder = await description.memo_value(temporal.MEMO_DEBOUNCE_HOLDER, default=None)
        except EncryptionKeyNotFound:  # written under a key this API lacks: let it through
            log.warning("debounce window %s: holder unreadable here", window_id)
            return None
        if holder is None:
            continue
        return None if holder == request_id else str(holder)
    # The window keeps closing and reopening under us: let this request through rather than
    # answer for a holder we could not read.
    log.warning("debounce window %s could not be claimed or read", window_id)
    return None


async def holder(client: Client, window_id: str) -> str | None:
    """The request holding ``window_id`` now, or None when it is not open (reads only: the
    test link reports the window without claiming it).

    Raises:
        RPCError: Temporal did not answer (other than not found).
    """
    try:
        description = await client.get_workflow_handle(window_id).describe(rpc_timeout=RPC_TIMEOUT)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if description.status != WorkflowExecutionStatus.RUNNING:
        return None
    held_by = await description.memo_value(temporal.MEMO_DEBOUNCE_HOLDER, default=None)
    return None if held_by is None else str(held_by)


async def release(client: Client, window_id: str, request_id: str) -> None:
    """Best effort: close ``window_id`` early if ``request_id`` holds it (its start failed)."""
    try:
        await client.get_workflow_handle(window_id).signal(
            temporal.DEBOUNCE_RELEASE_SIGNAL,
            ReleaseDebounceInput(request_id=request_id),
            rpc_timeout=RPC_TIMEOUT,
        )
    except Exception as exc:  # closed already, or Temporal unreachable: it times out anyway
        log.info("debounce window %s not released (%s)", window_id, type(exc).__name__)
