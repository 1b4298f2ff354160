"""Ingest routes: ``POST /hooks/{webhook_id}`` and its test link. No admin token."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import Services, ServicesDep
from api.ingest import Outcome
from api.start_gate import StartOverloadedError, TemporalUnavailableError
from careflow import logs
from careflow.models import RequestError
from infra import tracing

log = logging.getLogger("api.ingest")

router = APIRouter(prefix="/hooks", tags=["ingest"])

_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "IGNORED (conditions not met, or debounced), a duplicate delivery, or a "
        "test request's answer"
    },
    400: {"description": "Empty body, invalid JSON, too deep, non-finite number"},
    401: {"description": "Signature missing or wrong"},
    403: {"description": "Webhook disabled"},
    404: {"description": "Unknown webhook"},
    408: {"description": "Body not received within CAREFLOW_BODY_READ_SECONDS"},
    413: {"description": "Body over MAX_PAYLOAD_BYTES, or more than 100,000 JSON values"},
    415: {"description": "Unsupported media type, or a multipart body with a file part"},
    429: {"description": "Over the webhook's rate limit; see Retry-After"},
    422: {"description": "Invalid payload"},
    503: {"description": "Temporal unreachable; retry (safe with a delivery id)"},
}


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {}},
            "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            "multipart/form-data": {"schema": {"type": "object"}},
        },
    }
}


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"errors": [RequestError(code=code, message=message).model_dump(exclude_none=True)]}
    return JSONResponse(body, status_code=status, headers=headers)


def _rate_limited(wait: int) -> JSONResponse:
    return _error(
        429, "rate_limited", "too many requests for this webhook", {"Retry-After": str(wait)}
    )


class _Rendered(JSONResponse):
    """A JSON answer whose body is already rendered (bytes are sent as they are)."""

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else super().render(content)


# The overload answer's body, rendered once: under a burst it is sent thousands of times a second.
_OVERLOADED = {
    "errors": [
        RequestError(
            code="temporal_unavailable",
            message="overloaded: the request was not recorded; retry after Retry-After seconds",
        ).model_dump(exclude_none=True)
    ]
}
_OVERLOADED_BODY = json.dumps(_OVERLOADED, separators=(",", ":")).encode()


class _OverloadLog:
    """One warning per ``every`` seconds at most, with the count of overload answers since."""

    def __init__(self, every: float = 1.0) -> None:
        self._every = every
        self._last = -math.inf
        self._count = 0

    def note(self) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._last >= self._every:
            log.warning(
                "overloaded: no workflow start slot free; answered 503 to %d request(s) "
                "since the last such line",
                self._count,
            )
            self._last, self._count = now, 0


_overload_log = _OverloadLog()


def _overloaded(retry_after: int) -> JSONResponse:
    _overload_log.note()
    return _Rendered(_OVERLOADED_BODY, 503, headers={"Retry-After": str(retry_after)})


class OverloadFirst:
    """ASGI middleware: a ``POST /hooks/{id}`` (or its test link) for a known webhook that
    would only queue for a workflow-start slot (``IngestService.start_queue_full``) is answered
    503 + ``Retry-After`` here, before routing, dependencies and the body: under a burst of
    thousands at once, each such answer costs a fraction of the routed one, so the first answers
    come in time. The route's order holds: the rate limit is checked first (429
    ``rate_limited``). Counted in the metrics like the route's answers, with no outcome line per
    answer (``_OverloadLog`` logs the overloads' count once a second). Everything else, and every
    request while a start could proceed, passes through to the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    async def _answer(
        services: Services, webhook_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """429 when over the rate limit (counted like the route counts it), else 503."""
        started = time.perf_counter()
        ingest = services.ingest
        wait = ingest.retry_after(webhook_id)
        if wait is not None:
            response = _rate_limited(wait)
            body: dict[str, Any] = json.loads(bytes(response.body))
        else:
            response = _overloaded(ingest.start_queue_full() or 1)
            body = _OVERLOADED
        seconds = time.perf_counter() - started
        services.metrics.observe_answer(webhook_id, response.status_code, body, seconds)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            parts = scope["path"].split("/")  # "", "hooks", id[, "test"]
            if parts[1:2] == ["hooks"] and (len(parts) == 3 or parts[3:] == ["test"]):
                services: Services | None = getattr(scope["app"].state, "services", None)
                hook = services.ingest.webhook(parts[2]) if services is not None else None
                full = services is not None and services.ingest.start_queue_is_full()
                if services is not None and hook is not None and full:
                    await self._answer(services, hook.id, scope, receive, send)
                    return
        await self.app(scope, receive, send)


async def _read_capped(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds ``limit`` bytes (never buffers more)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _observed(
    webhook_id: str, request: Request, services: ServicesDep, *, test: bool
) -> JSONResponse:
    """``_handle`` with its metrics and outcome log line; the request id it binds is unbound
    when the answer is ready."""
    started = time.perf_counter()
    with logs.request_context(None):
        response = await _handle(webhook_id, request, services, test=test)
        hook = services.ingest.webhook(webhook_id)
        services.telemetry.observe(hook, response, time.perf_counter() - started)
    return response


async def _handle(
    webhook_id: str, request: Request, services: ServicesDep, *, test: bool
) -> JSONResponse:
    ingest = services.ingest
    hook = await ingest.webhook_checked(webhook_id)
    if hook is None:
        tracing.hide_unknown_path("/hooks/{webhook_id}" + ("/test" if test else ""))
        return _error(404, "webhook_not_found", "no webhook with this id")
    wait = ingest.retry_after(webhook_id)
    if wait is not None:
        return _rate_limited(wait)
    overload = ingest.start_queue_full()
    if overload is not None:
        # Answered at once, body unread: under a burst the answer comes fast instead of after
        # a queue wait the sender may time out on. Nothing was started, so a resend is safe.
        return _overloaded(overload)
    timed_out = False
    body: bytes | None = None
    try:
        async with asyncio.timeout(services.settings.careflow_body_read_seconds):
            body = await _read_capped(request, services.settings.max_payload_bytes)
    except TimeoutError:
        timed_out = True
    except ClientDisconnect:
        # Nobody is left to answer and nothing was received whole: one quiet line, no request.
        log.info("client disconnected before sending its whole body webhook=%s", webhook_id)
        return JSONResponse({}, status_code=400)
    try:
        if timed_out:
            outcome: Outcome = await ingest.reject_timeout(hook, test=test)
        elif body is None:
            outcome = await ingest.reject_too_large(hook, test=test)
        else:
            outcome = await ingest.accept(
                hook,
                body,
                request.headers.get("content-type"),
                request.headers,
                test=test,
                repeated_headers=[
                    name
                    for name in set(request.headers.keys())
                    if len(request.headers.getlist(name)) > 1
                ],
            )
    except StartOverloadedError as exc:
        return _overloaded(exc.retry_after)
    except TemporalUnavailableError:
        return _error(
            503,
            "temporal_unavailable",
            "the request could not be recorded; retry (safe only with a delivery id)",
            {"Retry-After": "5"},
        )
    return JSONResponse(outcome.body, status_code=outcome.http_status, headers=outcome.headers)


@router.post("/{webhook_id}", status_code=202, responses=_ANSWERS, openapi_extra=_BODY)
async def receive(webhook_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    """Receive a webhook request: 202 SCHEDULED, 200 IGNORED, or a REJECTED answer (§4)."""
    return await _observed(webhook_id, request, services, test=False)


@router.post("/{webhook_id}/test", status_code=200, responses=_ANSWERS, openapi_extra=_BODY)
async def receive_test(webhook_id: str, request: Request, services: ServicesDep) -> JSONResponse:
    """A test request: validated and logged with status TEST, never processed."""
    return await _observed(webhook_id, request, services, test=True)
