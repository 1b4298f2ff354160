"""``DebounceWindowWorkflow``: one open debounce window of a webhook (contract §2 ``debounce``).

A window is a workflow execution whose id hashes (webhook id, debounce key value) — see
``careflow.debounce`` — so Temporal's one-open-execution-per-id rule is the lock, across every
API and worker replica. The ingest handler starts it with ``execution_timeout`` = the window's
seconds (the server closes it then, worker or not) and the holding request's id in the memo; a
second start with the same id while it is open fails, and that request is IGNORED ``debounced``.
The holder releases the window early by signalling ``release`` when it ends FAILED or REJECTED.
The key value itself is never stored: only its hash is in the id, and the memo holds a request id.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from careflow.messages import DebounceWindowInput, ReleaseDebounceInput
    from infra import temporal


@workflow.defn(name=temporal.DEBOUNCE_WORKFLOW_TYPE)
class DebounceWindowWorkflow:
    """Holds the window until its execution timeout, or until its holder releases it."""

    def __init__(self) -> None:
        self._released_by: set[str] = set()

    @workflow.run
    async def run(self, window: DebounceWindowInput) -> None:
        # Only the holder's release counts: a later window reuses the id, and a late signal
        # from an earlier holder must not close it.
        await workflow.wait_condition(lambda: window.request_id in self._released_by)

    @workflow.signal(name=temporal.DEBOUNCE_RELEASE_SIGNAL)
    def release(self, request: ReleaseDebounceInput) -> None:
        """Close the window early when ``request`` is its holder."""
        self._released_by.add(request.request_id)
