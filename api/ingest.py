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
from collections import deque
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

from api.evaluation import Evaluator
from api.metrics import ApiMetrics
from api.request_log import RequestLog
from careflow import logs, request_ids, signatures
from careflow.conditions.models import DEBOUNCED, IgnoredReason
from careflow.debounce import window_id
from careflow.evaluation import body_delivery_id
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
# Overload answers: the Retry-After is the time the recent start rate needs for the senders told to
# wait in the last OVERLOAD_WINDOW seconds, between 1 and OVERLOAD_RETRY_MAX seconds.
OVERLOAD_WINDOW = 2.0
OVERLOAD_RETRY_MAX = 10


@dataclass
class Outcome:
    """What to answer: an HTTP status and a JSON body (plus headers)."""

    http_status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class TemporalUnavailableError(Exception):
    """Temporal did not accept the workflow start; the outcome is unknown to the sender."""


class StartOverloadedError(TemporalUnavailableError):
    """No workflow-start slot freed up within ``careflow_start_wait_seconds``: nothing was
    started. Answered like Temporal being unreachable (503 + Retry-After); a resend is safe.

    Attributes:
        retry_after: seconds the sender should wait (``IngestService.overload_retry_after``).
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__("no workflow start slot free")
        self.retry_after = retry_after


def _errors_body(*errors: RequestError) -> dict[str, Any]:
    return {"errors": [e.model_dump(exclude_none=True) for e in errors]}


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
        # Backpressure: at most this many start_workflow calls in flight per API process. Unbounded,
        # a burst of ~1,000 concurrent starts queues inside the SQLite dev server past the 5 s RPC
        # timeout, and most starts are cancelled after costing the server their work.
        self._start_slots = asyncio.Semaphore(settings.careflow_max_concurrent_starts)
        # Requests waiting for a slot; once as many wait as there are slots, more are answered
        # 503 at once (``start_queue_full``), before their body is read or validated.
        self._start_waiting = 0
        self._overloaded_at: deque[float] = deque()  # monotonic times of recent overload 503s
        self._started_at: deque[float] = deque()  # monotonic times of recent finished starts
        self._evaluator = Evaluator(config, settings)

    def start_queue_full(self) -> int | None:
        """Whether a new request would only queue for a start slot (every slot taken and as
        many requests already waiting): then it is answered 503 at once, unread.

        Returns:
            None when a request may go ahead, else the Retry-After seconds to answer with.
        """
        if not self._start_slots.locked():
            return None
        if self._start_waiting < self._settings.careflow_max_concurrent_starts:
            return None
        metrics = self._metrics  # counted like an overload after a wait
        metrics.slot_waits.inc()
        metrics.overloaded.inc()
        metrics.start_failures.labels("overloaded").inc()
        return self.overload_retry_after()

    def overload_retry_after(self) -> int:
        """Seconds a sender told 503 (overload) should wait: the senders told so in the last
        ``OVERLOAD_WINDOW`` seconds ÷ the starts per second finished meanwhile, so resends come
        back spread at about the rate the server takes them (1 to ``OVERLOAD_RETRY_MAX`` s)."""
        now = time.monotonic()
        for times in (self._overloaded_at, self._started_at):
            while times and times[0] < now - OVERLOAD_WINDOW:
                times.popleft()
        self._overloaded_at.append(now)
        rate = max(1.0, len(self._started_at) / OVERLOAD_WINDOW)
        return max(1, min(OVERLOAD_RETRY_MAX, math.ceil(len(self._overloaded_at) / rate)))

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

    async def reject_too_large(self, hook: Webhook, *, test: bool) -> Outcome:
        """413: logged REJECTED ``payload_too_large``, payload omitted."""
        error = RequestError(
            code="payload_too_large",
            message=f"the body exceeds {self._settings.max_payload_bytes} bytes",
        )
        return await self._log_door_rejection(hook, 413, error, None, "", test=test)

    async def reject_timeout(self, hook: Webhook, *, test: bool) -> Outcome:
        """408: the body did not arrive within ``careflow_body_read_seconds``; logged REJECTED
        ``request_timeout``, payload omitted (it never arrived whole)."""
        error = RequestError(
            code="request_timeout",
            message=(
                f"the body was not received within {self._settings.careflow_body_read_seconds:g} s"
            ),
        )
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
            error = RequestError(
                code="unsupported_media_type",
                message=(
                    "send uncompressed application/json, application/x-www-form-urlencoded "
                    "or multipart/form-data (with a boundary)"
                ),
            )
            return await self._log_door_rejection(hook, 415, error, body, "", test=test)
        ambiguous = sorted(set(repeated_headers or ()) & self._single_headers(hook))
        if ambiguous:
            # Dedupe and signature checks must read the same single value.
            error = RequestError(
                code="duplicate_header",
                message=f"send each of these headers once: {', '.join(ambiguous)}",
            )
            return await self._log_door_rejection(hook, 400, error, body, media_type, test=test)
        signature_valid: bool | None = None
        if hook.signature is not None:
            signature_valid = signatures.verify(hook.signature, body, headers)
            if not signature_valid and not test:
                error = RequestError(
                    code="invalid_signature", message="the request signature is missing or wrong"
                )
                return await self._log_door_rejection(hook, 401, error, body, media_type, test=test)
        header_delivery_id = _header_delivery_id(headers)
        evaluation = await self._evaluator.evaluate(
            hook,
            body,
            media_type,
            delivery_id_path=None if header_delivery_id else hook.delivery_id_path,
            keep_parsed=test,
        )
        if evaluation.error is not None:
            http = _DOOR_STATUS.get(evaluation.error.code, 400)
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
            request_id = request_ids.request_id_for_delivery(hook.id, delivery_id, test=test)
        else:
            request_id = request_ids.new_request_id(test=test)
        logs.bind_request_id(request_id)  # the route's context: every later line carries it

        # No verdict within the evaluation budget: RECEIVED, ``validate_request`` decides.
        result = evaluation.result or ValidationResult(verdict=RequestStatus.RECEIVED)
        if test:
            result = without_enabled_check(result)
        window: str | None = None
        if not test and result.verdict == RequestStatus.SCHEDULED and hook.debounce is not None:
            result, window = await self._debounce(hook, request_id, evaluation.debounce_key, result)
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
            _log_ignored(hook.id, request_id, result.reasons)
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
            answer = self._test_answer(request_id, result, hook, signature_valid)
            if hook.debounce is not None:
                answer["debounce"] = await self._debounce_state(hook, evaluation.debounce_key)
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
        return Outcome(http_status, self._rejected_body(request_id, result.errors))

    async def _debounce(
        self, hook: Webhook, request_id: str, key: str | None, result: ValidationResult
    ) -> tuple[ValidationResult, str | None]:
        """Claim the request's debounce window (none when the key is absent).

        Returns:
            (the result, the window id this request holds), or an IGNORED ``debounced`` result
            naming the holder and None.

        Raises:
            TemporalUnavailableError: Temporal did not answer the claim.
        """
        assert hook.debounce is not None
        if key is None:
            return result, None
        window = window_id(hook.id, key, id_hash_key(self._settings))
        try:
            holder = await debounce.claim(
                self._client,
                self._settings.careflow_task_queue,
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

    async def _debounce_state(self, hook: Webhook, key: str | None) -> dict[str, Any]:
        """The test link's view of the debounce, claiming nothing: ``no_key``, ``free``,
        ``held`` (with the holder's ``request_id``: a real request now would be IGNORED
        ``debounced``) or ``unknown`` (Temporal did not answer).

        Args:
            hook: the webhook (with a debounce).
            key: the body's debounce key text (``careflow.debounce.key_text``), None when absent.
        """
        assert hook.debounce is not None
        if key is None:
            return {"state": "no_key"}
        window = window_id(hook.id, key, id_hash_key(self._settings))
        try:
            held_by = await debounce.holder(self._client, window)
        except (RPCError, RuntimeError):
            return {"state": "unknown"}
        return {"state": "free"} if held_by is None else {"state": "held", "request_id": held_by}

    @staticmethod
    def _single_headers(hook: Webhook) -> set[str]:
        """Headers that must not repeat: delivery ids and the webhook's signature headers."""
        names = {"webhook-id", "idempotency-key", "webhook-timestamp", "webhook-signature"}
        if hook.signature is not None:
            names.add((hook.signature.header or signatures.default_header(hook.signature)).lower())
        return names

    @staticmethod
    def _rejected_body(request_id: str, errors: list[RequestError]) -> dict[str, Any]:
        return {
            "request_id": request_id,
            "status": RequestStatus.REJECTED.value,
            **_errors_body(*errors),
        }

    @staticmethod
    def _test_answer(
        request_id: str,
        result: ValidationResult,
        hook: Webhook,
        signature_valid: bool | None = None,
    ) -> dict[str, Any]:
        answer = {
            "request_id": request_id,
            "status": RequestStatus.TEST.value,
            "verdict": result.verdict.value,
            "errors": [e.model_dump(exclude_none=True) for e in result.errors],
            "reasons": [r.model_dump(exclude_none=True) for r in result.reasons],
            "conditions": result.conditions.model_dump() if result.conditions else None,
            "data_points": result.data_points,
            "patient_identifier": (
                result.patient_identifier.model_dump() if result.patient_identifier else None
            ),
            "webhook_enabled": hook.enabled,
        }
        if signature_valid is not None:
            answer["signature_valid"] = signature_valid
        return answer

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
            return Outcome(200, self._test_answer(request_id, result, hook, signature_valid))
        return Outcome(http_status, self._rejected_body(request_id, [error]))

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
        )
        if test:
            initial = RequestStatus.TEST if door_rejected else RequestStatus.RECEIVED
        elif status in (RequestStatus.REJECTED, RequestStatus.IGNORED):
            initial = status
        else:
            initial = RequestStatus.RECEIVED
        metrics = self._metrics
        if self._start_slots.locked():
            metrics.slot_waits.inc()
        self._start_waiting += 1
        try:
            async with asyncio.timeout(self._settings.careflow_start_wait_seconds):
                await self._start_slots.acquire()
        except TimeoutError:
            metrics.overloaded.inc()
            metrics.start_failures.labels("overloaded").inc()
            raise StartOverloadedError(self.overload_retry_after()) from None
        finally:
            self._start_waiting -= 1
        metrics.slots_in_use.inc()
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
            self._started_at.append(time.monotonic())
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
        finally:
            metrics.slots_in_use.dec()
            self._start_slots.release()


def _log_ignored(webhook_id: str, request_id: str, reasons: list[IgnoredReason]) -> None:
    """Log an IGNORED answer with each rule's path, operator and outcome (never a value)."""
    for reason in reasons:
        rules = " ".join(
            f"{r.rule}:{r.path or '-'}:{r.op}={'true' if r.outcome else 'false'}"
            for r in reason.rules or []
        )
        log.info(
            "ignored webhook=%s request=%s reason=%s%s%s",
            webhook_id,
            request_id,
            reason.code,
            f" rules={rules}" if rules else "",
            f" first_request={reason.request_id}" if reason.request_id else "",
        )


# Door rejections found while parsing that are not 400 (contract §4).
_DOOR_STATUS = {"unsupported_media_type": 415, "too_many_nodes": 413}


def _header_delivery_id(headers: Mapping[str, str]) -> str | None:
    """The dedupe key from the headers: ``webhook-id``, else ``Idempotency-Key``."""
    for name in ("webhook-id", "idempotency-key"):
        value = headers.get(name)
        if value and value.strip():
            return value.strip()
    return None


def _delivery_id(headers: Mapping[str, str], hook: Webhook, body: Any) -> str | None:
    """The dedupe key: ``webhook-id`` header, else ``Idempotency-Key``, else the body path."""
    found = _header_delivery_id(headers)
    if found is None and hook.delivery_id_path:
        found = body_delivery_id(hook.delivery_id_path, body)
    return found
