"""Ingest routes: ``POST /hooks/{webhook_id}`` and its test link. No admin token."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from api.deps import ServicesDep
from api.ingest import Outcome
from api.start_gate import StartOverloadedError, TemporalUnavailableError
from careflow import logs
from careflow.models import RequestError

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


def _overloaded(retry_after: int) -> JSONResponse:
    log.warning("overloaded: no workflow start slot free; answering 503")
    return _error(
        503,
        "temporal_unavailable",
        "overloaded: the request was not recorded; retry after Retry-After seconds",
        {"Retry-After": str(retry_after)},
    )


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
    hook = ingest.webhook(webhook_id)
    if hook is None:
        return _error(404, "webhook_not_found", "no webhook with this id")
    wait = ingest.retry_after(webhook_id)
    if wait is not None:
        return _error(
            429, "rate_limited", "too many requests for this webhook", {"Retry-After": str(wait)}
        )
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
