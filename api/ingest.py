"""Ingest: turn one HTTP request to a webhook URL into a logged request (one workflow start).

Checks run in the contract's order (§4): size → media type → signature → parse → dedupe →
validation. The answer never waits for a worker: validation runs here, in-process, on the
cached configuration, and the verdict travels to the workflow as input (contract §7).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api import debounce_claims, door
from api.evaluation import Evaluator
from api.metrics import ApiMetrics
from api.request_log import RequestLog
from api.start_gate import StartGate, TemporalUnavailableError
from careflow import logs, request_ids, signatures
from careflow.errors import TransientStoreError
from careflow.keyed_ids import id_hash_key
from careflow.messages import ValidationResult, WebhookRequestInput
from careflow.models import RequestError, RequestStatus, TestPayload, Webhook
from careflow.payload import media_type_of
from careflow.settings import Settings
from careflow.validation import without_enabled_check
from infra import debounce_windows as debounce
from infra import temporal
from persistence.config_cache import ConfigCache
from persistence.store import Store
from workflows.request import WebhookRequestWorkflow

log = logging.getLogger("api.ingest")

START_TIMEOUT = timedelta(seconds=5)


# How old the configuration cache may be before a request naming an unknown webhook checks it.
MISS_REFRESH_SECONDS = 0.1


@dataclass
class Outcome:
    """What to answer: an HTTP status and a JSON body (plus headers)."""

    http_status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class IngestService:
    """Args: client: Temporal client; config: the configuration cache; settings: settings;
    requests: the request log (for duplicate answers); metrics: the API's metrics (start
    latency, failures and backpressure are counted here)."""

    def __init__(
        self,
        client: Client,
        config: ConfigCache,
        settings: Settings,
        requests: RequestLog,
        store: Store,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self._metrics = metrics or ApiMetrics()
        self._client = client
        self._config = config
        self._settings = settings
        self._requests = requests
        self._store = store
        self._rate_limits = parse_many(settings.careflow_rate_limit)
        self._limiter = FixedWindowRateLimiter(MemoryStorage())
        # Backpressure: at most careflow_max_concurrent_starts start_workflow calls in flight.
        self._gate = StartGate(settings, self._metrics)
        self._evaluator = Evaluator(config, settings)
        self._miss_refresh = asyncio.Lock()

    def start_queue_full(self) -> int | None:
        """Whether a new request would only queue for a start slot (``StartGate.queue_full``).

        Returns:
            None when a request may go ahead, else the Retry-After seconds to answer with.
        """
        return self._gate.queue_full()

    def start_queue_is_full(self) -> bool:
        """``start_queue_full``'s condition alone, counting nothing (``StartGate.is_full``)."""
        return self._gate.is_full()

    def close(self) -> None:
        """Release what the service started (the evaluation processes)."""
        self._evaluator.close()

    def retry_after(self, webhook_id: str) -> int | None:
        """Count one request against the webhook's rate limit (per API process).

        Returns:
            None when within the limit, else the seconds to wait before sending again.
        """
        for limit in self._rate_limits:
            if not self._limiter.hit(limit, webhook_id):
                reset = self._limiter.get_window_stats(limit, webhook_id).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    async def _keep_test_payload(
        self, hook: Webhook, request_id: str, verdict: RequestStatus, payload: Any
    ) -> None:
        item = TestPayload(
            webhook_id=hook.id,
            request_id=request_id,
            received_at=datetime.now(UTC),
            verdict=verdict,
            payload=payload,
        )
        await asyncio.to_thread(self._store.test_payloads.add_test_payload, item)

    def webhook(self, webhook_id: str) -> Webhook | None:
        """The live (not deleted) webhook with this id from the cache, or None."""
        hook = self._config.snapshot.webhooks.get(webhook_id)
        return None if hook is None or hook.deleted else hook

    async def webhook_checked(self, webhook_id: str) -> Webhook | None:
        """``webhook``, but on a miss the configuration is checked again first when the cache
        is older than ``MISS_REFRESH_SECONDS``: a webhook created through another API process
        answers at once instead of 404 until this process's next refresh (a sender drops a
        delivery answered 404). One check at a time; a store that cannot be read keeps the
        snapshot."""
        hook = self.webhook(webhook_id)
        if hook is not None or self._config.age_seconds() < MISS_REFRESH_SECONDS:
            return hook
        async with self._miss_refresh:
            if self._config.age_seconds() >= MISS_REFRESH_SECONDS:
                try:
                    await asyncio.to_thread(self._config.refresh)
                except TransientStoreError:
                    log.warning("configuration check after an unknown webhook id failed")
        return self.webhook(webhook_id)

    async def reject_too_large(self, hook: Webhook, *, test: bool) -> Outcome:
        """413: logged REJECTED ``payload_too_large``, payload omitted."""
        error = door.too_large(self._settings)
        return await self._log_door_rejection(hook, 413, error, None, "", test=test)

    async def reject_timeout(self, hook: Webhook, *, test: bool) -> Outcome:
        """408: the body did not arrive within ``careflow_body_read_seconds``; logged REJECTED
        ``request_timeout``, payload omitted (it never arrived whole)."""
        error = door.timed_out(self._settings)
        return await self._log_door_rejection(hook, 408, error, None, "", test=test)

    async def accept(
        self,
        hook: Webhook,
        body: bytes,
        content_type: str | None,
        headers: Mapping[str, str],
        *,
        test: bool = False,
        repeated_headers: list[str] | None = None,
    ) -> Outcome:
        """Handle a body that passed the size check.

        Args:
            hook: the webhook (from ``webhook``).
            body: the raw body, byte for byte.
            content_type: the ``Content-Type`` header.
            headers: all request headers (case-insensitive mapping).
            test: a request to the test link (status TEST, never processed).
            repeated_headers: names (lower case) of headers the request carries more than once.

        Returns:
            The outcome to answer with (contract §4's table).

        Raises:
            TemporalUnavailableError: the workflow could not be started (answer 503).
        """
        media_type = media_type_of(content_type)
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if media_type is None or encoding not in ("", "identity"):
            error = door.UNSUPPORTED_MEDIA_TYPE
            return await self._log_door_rejection(hook, 415, error, body, "", test=test)
        duplicated = door.duplicate_headers(hook, repeated_headers)
        if duplicated is not None:
            return await self._log_door_rejection(
                hook, 400, duplicated, body, media_type, test=test
            )
        signature_valid: bool | None = None
        if hook.signature is not None:
            signature_valid = signatures.verify(hook.signature, body, headers)
            if not signature_valid and not test:
                error = door.INVALID_SIGNATURE
                return await self._log_door_rejection(hook, 401, error, body, media_type, test=test)
        header_delivery_id = door.header_delivery_id(headers)
        evaluation = await self._evaluator.evaluate(
            hook,
            body,
            media_type,
            delivery_id_path=None if header_delivery_id else hook.delivery_id_path,
            keep_parsed=test,
        )
        if evaluation.error is not None:
            http = door.DOOR_STATUS.get(evaluation.error.code, 400)
            return await self._log_door_rejection(
                hook,
                http,
                evaluation.error,
                body,
                media_type,
                test=test,
                signature_valid=signature_valid,
            )

        delivery_id = header_delivery_id or evaluation.delivery_id
        if delivery_id is not None:
            request_id = request_ids.request_id_for_delivery(
                hook.id, delivery_id, hash_key=id_hash_key(self._settings), test=test
            )
        else:
            request_id = request_ids.new_request_id(test=test)
        logs.bind_request_id(request_id)  # the route's context: every later line carries it

        # No verdict within the evaluation budget: RECEIVED, ``validate_request`` decides.
        result = evaluation.result or ValidationResult(verdict=RequestStatus.RECEIVED)
        if test:
            result = without_enabled_check(result)
        window: str | None = None
        if not test and result.verdict == RequestStatus.SCHEDULED and hook.debounce is not None:
            result, window = await debounce_claims.claim(
                self._client, self._settings, hook, request_id, evaluation.debounce_key, result
            )
        status = result.verdict
        try:
            await self._start(
                hook, request_id, body, media_type, status, result, test=test, window=window
            )
        except WorkflowAlreadyStartedError:
            current = await self._requests.current_status(request_id)
            return Outcome(200, {"request_id": request_id, "status": current, "duplicate": True})
        except TemporalUnavailableError:
            if window is not None:
                await debounce.release(self._client, window, request_id)
            raise
        if status == RequestStatus.IGNORED and not test:
            door.log_ignored(hook.id, request_id, result.reasons)
            return Outcome(
                200,
                {
                    "request_id": request_id,
                    "status": status.value,
                    "reasons": [r.model_dump(exclude_none=True) for r in result.reasons],
                },
            )
        if test:
            kept = evaluation.parsed
            if kept is None and evaluation.result is None:  # the budget ran out while parsing
                kept = body.decode("utf-8", errors="replace")
            await self._keep_test_payload(hook, request_id, status, kept)
            answer = door.test_link_answer(request_id, result, hook, signature_valid)
            if hook.debounce is not None:
                answer["debounce"] = await debounce_claims.state(
                    self._client, self._settings, hook, evaluation.debounce_key
                )
            return Outcome(200, answer)
        if status in (RequestStatus.SCHEDULED, RequestStatus.RECEIVED):
            return Outcome(
                202,
                {
                    "request_id": request_id,
                    "status": status.value,
                    "status_url": f"/v1/requests/{request_id}",
                },
            )
        http_status = 403 if any(e.code == "webhook_disabled" for e in result.errors) else 422
        return Outcome(http_status, door.rejected_body(request_id, result.errors))

    async def _log_door_rejection(
        self,
        hook: Webhook,
        http_status: int,
        error: RequestError,
        body: bytes | None,
        media_type: str,
        *,
        test: bool,
        signature_valid: bool | None = None,
    ) -> Outcome:
        """Log a request refused before dedupe: a fresh random id, never retryable."""
        request_id = request_ids.new_request_id(test=test)
        logs.bind_request_id(request_id)
        result = ValidationResult(verdict=RequestStatus.REJECTED, errors=[error])
        await self._start(
            hook,
            request_id,
            body,
            media_type or "application/json",
            RequestStatus.REJECTED,
            result,
            test=test,
            door_rejected=True,
        )
        if test:
            text = body.decode("utf-8", errors="replace") if body is not None else None
            await self._keep_test_payload(hook, request_id, RequestStatus.REJECTED, text)
            return Outcome(200, door.test_link_answer(request_id, result, hook, signature_valid))
        return Outcome(http_status, door.rejected_body(request_id, [error]))

    @staticmethod
    def _handler_mapping(
        status: RequestStatus, result: ValidationResult, *, test: bool, door_rejected: bool
    ) -> dict[str, Any]:
        """What a handler-REJECTED request maps to, carried so the workflow need not validate
        again (the body's size limit and ``MAX_DATA_POINTS_BYTES`` keep the input under 2 MiB)."""
        if test or door_rejected or status != RequestStatus.REJECTED:
            return {}
        return {
            "handler_data_points": result.data_points,
            "handler_patient_identifier": result.patient_identifier,
        }

    async def _start(
        self,
        hook: Webhook,
        request_id: str,
        body: bytes | None,
        media_type: str,
        status: RequestStatus,
        result: ValidationResult,
        *,
        test: bool,
        door_rejected: bool = False,
        window: str | None = None,
    ) -> None:
        request = WebhookRequestInput(
            request_id=request_id,
            webhook_id=hook.id,
            webhook_name=hook.name,
            care_flow_definition_id=hook.care_flow_definition_id,
            received_at=datetime.now(UTC),
            body=body,
            media_type=media_type,
            is_test=test,
            handler_status=status,
            handler_errors=result.errors,
            **self._handler_mapping(status, result, test=test, door_rejected=door_rejected),
            door_rejected=door_rejected,
            handler_reasons=result.reasons,
            debounce_window_id=window,
            activity_max_attempts=self._settings.activity_max_attempts,
            activity_max_seconds=self._settings.activity_max_seconds,
            memo_on_completion=False,  # a completed run's result holds its state (issue 19)
            local_first=True,  # one workflow task when the backend answers at once (issue 19)
        )
        if test:
            initial = RequestStatus.TEST if door_rejected else RequestStatus.RECEIVED
        elif status in (RequestStatus.REJECTED, RequestStatus.IGNORED):
            initial = status
        else:
            initial = RequestStatus.RECEIVED
        metrics = self._metrics
        async with self._gate.slot():
            started = time.perf_counter()
            try:
                await self._client.start_workflow(
                    WebhookRequestWorkflow.run,
                    request,
                    id=request_id,
                    task_queue=self._settings.careflow_task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=TypedSearchAttributes(
                        [
                            SearchAttributePair(temporal.SA_WEBHOOK_ID, hook.id),
                            SearchAttributePair(
                                temporal.SA_CARE_FLOW_DEFINITION_ID, hook.care_flow_definition_id
                            ),
                            SearchAttributePair(temporal.SA_REQUEST_STATUS, initial.value),
                            SearchAttributePair(temporal.SA_IS_TEST, test),
                        ]
                    ),
                    static_summary=f"{hook.name} → {hook.care_flow_definition_id}",
                    rpc_timeout=START_TIMEOUT,
                )
                self._gate.started()
                metrics.start_seconds.observe(time.perf_counter() - started)
            except WorkflowAlreadyStartedError:
                raise
            except RPCError as exc:
                reason = exc.status.name if exc.status else "unknown"
                log.warning("temporal unavailable: %s", reason)
                metrics.start_failures.labels(reason).inc()
                raise TemporalUnavailableError from exc
            except RuntimeError as exc:  # the lazy client could not connect at all
                log.warning("temporal unavailable: cannot connect")
                metrics.start_failures.labels("connect").inc()
                raise TemporalUnavailableError from exc
