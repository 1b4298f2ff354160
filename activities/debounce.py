"""``claim_debounce_window``: a retried request claims its debounce window like a new one."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from careflow.messages import ClaimDebounceInput, ClaimDebounceResult
from infra import debounce_windows, temporal


class DebounceActivities:
    """Debounce windows from a workflow (the ingest handler claims for new requests)."""

    @activity.defn(name=temporal.CLAIM_DEBOUNCE_WINDOW)
    async def claim_debounce_window(self, claim: ClaimDebounceInput) -> ClaimDebounceResult:
        """Claim the window for the request, or name the request holding it.

        Returns:
            ``holder`` None when the request holds the window (now, or already).

        Raises:
            ApplicationError: retryable ``temporal_unavailable`` when Temporal did not answer.
        """
        try:
            holder = await debounce_windows.claim(
                activity.client(),
                claim.task_queue,
                claim.window_id,
                claim.request_id,
                claim.seconds,
            )
        except RPCError as exc:
            raise ApplicationError("debounce claim failed", type="temporal_unavailable") from exc
        return ClaimDebounceResult(holder=holder)
