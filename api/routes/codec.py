"""The codec server: ``POST /codec/encode`` and ``POST /codec/decode`` for the Temporal UI.

Temporal's remote codec protocol (samples-go ``codec-server/protocol.md``): the body is a
``Payloads`` message in protobuf JSON, ``{"payloads": [{"metadata": {k: base64}, "data":
base64}]}``, and so is the answer. The Temporal UI posts to ``<endpoint>/decode`` with an
``X-Namespace`` header; under ``make run`` it reaches this router through the Temporal UI
proxy's same-origin ``/codec`` (``api.temporal_ui_proxy``).

Operators only: the admin bearer token, or the ``/ui`` session cookie (which the Temporal UI
sends same-origin through the proxy, or cross-origin when its codec setting "include
credentials" is on, as the proxy and docker-compose set it). Missing, wrong or
expired credentials → 401 JSON ``unauthorized``; a body that is not ``Payloads`` JSON → 400
``invalid_codec_request``; a payload whose key is not in the ring is answered as it came (still
encrypted) so the UI shows ciphertext rather than an error. CORS (with credentials) is allowed
for the Temporal UI's origin on these two paths only (``CodecCors``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from api.deps import Services, ServicesDep
from api.ui.common import ui_sessions
from careflow.errors import DomainError, UnauthorizedError
from careflow.models import RequestError
from infra.codec import EncryptionCodec, EncryptionKeyNotFound

log = logging.getLogger("careflow.codec")

PREFIX = "/codec"
MAX_BODY_BYTES = 8 * 1024 * 1024  # the UI batches a history page's payloads (2 MiB each at most)
# The decoded payloads of one answer, in all: each inflates to at most 8 MiB
# (``infra.codec.MAX_PAYLOAD_BYTES``), and an 8 MiB body holds hundreds of them.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
# Payloads in one request: a history page holds far fewer. 2.8 million "{}" fit in 8 MiB.
MAX_PAYLOADS = 10_000
_bearer = HTTPBearer(auto_error=False)


def require_operator(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The admin bearer token, or the cookie of a live ``/ui`` session (not signed out, not
    idle or older than its limits, signed with the current admin token).

    Raises:
        UnauthorizedError: neither (401 ``unauthorized``).
        TransientStoreError: the session store cannot be read (503).
    """
    token = services.admin_token
    given = credentials.credentials if credentials else ""
    if given and hmac.compare_digest(given.encode(), token.encode()):
        return
    if (
        request.cookies
        and _from_an_allowed_origin(request, services)
        and ui_sessions(services).current(request) is not None
    ):
        return
    raise UnauthorizedError(
        RequestError(
            code="unauthorized",
            message="sign in at /ui (session cookie) or send the admin bearer token",
        )
    )


def _from_an_allowed_origin(request: Request, services: Services) -> bool:
    """Whether a cookie-carrying request comes from the Temporal UI (or the API's own pages).

    A browser sends the ``/ui`` cookie on a POST that another page makes: SameSite=Strict
    does not separate two ports of one host, and a ``text/plain`` body needs no preflight.
    CORS would only hide the answer from that page; the payloads would still be decrypted.
    So a request the browser marks ``Sec-Fetch-Site: cross-site`` is refused, and one with an
    ``Origin`` passes only when the browser marks it ``same-origin`` (a page served by the
    API, or by a proxy that serves the Temporal UI and relays ``/codec`` under one origin) or
    the origin is the Temporal UI's (``ui_origins``, as CORS allows) or the API's own. A
    request without ``Origin`` (a browser sends one on every cross-origin POST) passes.
    """
    site = request.headers.get("sec-fetch-site", "").lower()
    if site == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or site == "same-origin":
        return True
    settings = services.settings
    return origin in {*ui_origins(settings.ui_base_url), *ui_origins(settings.public_base_url)}


router = APIRouter(prefix=PREFIX, tags=["codec"], dependencies=[Depends(require_operator)])

# Documented, not validated by FastAPI: the body is parsed as protobuf JSON (``_payloads``).
_PAYLOADS_SCHEMA = {
    "type": "object",
    "properties": {
        "payloads": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "format": "byte"},
                    },
                    "data": {"type": "string", "format": "byte"},
                },
            },
        }
    },
}
_OPENAPI = {
    "requestBody": {"content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
    "responses": {
        "200": {"content": {"application/json": {"schema": _PAYLOADS_SCHEMA}}},
        "400": {"description": "invalid_codec_request: the body is not Payloads JSON"},
        "401": {"description": "unauthorized: no admin token and no valid /ui session"},
        "413": {
            "description": "codec_request_too_large: more than 10,000 payloads; "
            "codec_answer_too_large: they decode to more than 32 MiB"
        },
    },
}


def _payloads(body: bytes) -> Payloads:
    """Parse a request body (run off the event loop: up to 8 MiB of JSON).

    Raises:
        DomainError: not Payloads JSON (400 ``invalid_codec_request``).
        _TooManyPayloads: more than ``MAX_PAYLOADS``.
    """
    try:
        if len(body) > MAX_BODY_BYTES:
            raise ValueError("too large")
        document = json.loads(body or b"{}")
        if not isinstance(document, dict):
            raise ValueError("not an object")
        listed = document.get("payloads")
        if isinstance(listed, list) and len(listed) > MAX_PAYLOADS:
            raise _TooManyPayloads
        message = json_format.ParseDict(document, Payloads())
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        raise DomainError(
            RequestError(
                code="invalid_codec_request",
                message='the body must be Payloads JSON: {"payloads": [{"metadata", "data"}]}',
            )
        ) from None
    return message


class _TooManyPayloads(Exception):
    """More than ``MAX_PAYLOADS`` payloads in one request."""


def _refused(code: str, message: str) -> JSONResponse:
    error = RequestError(code=code, message=message).model_dump(exclude_none=True)
    return JSONResponse({"errors": [error]}, status_code=413)


def _answer(payloads: Payloads) -> JSONResponse:
    content: Any = json.loads(json_format.MessageToJson(payloads))
    return JSONResponse({"payloads": content.get("payloads", [])})


def _codec(services: Services) -> EncryptionCodec:
    codec = services.client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)  # infra.temporal.connect always sets it
    return codec


async def _off_loop(request: Request, work: Callable[[Payloads], JSONResponse]) -> JSONResponse:
    """Read the body, then parse it and do ``work`` in a thread: up to ``MAX_PAYLOADS``
    payloads and 8 MiB of JSON each way must not hold the event loop (webhook deliveries)."""
    body = await request.body()

    def run() -> JSONResponse:
        try:
            payloads = _payloads(body)
        except _TooManyPayloads:
            return _refused(
                "codec_request_too_large", f"more than {MAX_PAYLOADS} payloads; send fewer at once"
            )
        return work(payloads)

    return await asyncio.to_thread(run)


@router.post("/encode", response_class=JSONResponse, openapi_extra=_OPENAPI)
async def encode(request: Request, services: ServicesDep) -> JSONResponse:
    """Encrypt each payload with the ring's first key (payloads already encrypted stay)."""
    codec = _codec(services)
    return await _off_loop(
        request,
        lambda payloads: _answer(Payloads(payloads=[codec.encrypt(p) for p in payloads.payloads])),
    )


@router.post("/decode", response_class=JSONResponse, openapi_extra=_OPENAPI)
async def decode(request: Request, services: ServicesDep) -> JSONResponse:
    """Decrypt each payload; one whose key is not in the ring is returned unchanged.

    Past ``MAX_ANSWER_BYTES`` decoded in all: 413 ``codec_answer_too_large``.
    """
    codec = _codec(services)
    return await _off_loop(request, lambda payloads: _decoded(codec, payloads))


def _decoded(codec: EncryptionCodec, payloads: Payloads) -> JSONResponse:
    out = []
    left: Counter[tuple[str, str]] = Counter()
    size = 0
    for payload in payloads.payloads:
        try:
            out.append(codec.decrypt(payload, log_failure=False))
        except EncryptionKeyNotFound as exc:
            out.append(payload)
            left[(exc.type or "", exc.key_id)] += 1
        size += out[-1].ByteSize()
        if size > MAX_ANSWER_BYTES:
            log.warning("codec server: decoded payloads past %d bytes; answered 413", size)
            return _refused(
                "codec_answer_too_large",
                f"the decoded payloads exceed {MAX_ANSWER_BYTES} bytes; send fewer at once",
            )
    if left:  # one line per request: the UI decodes a whole history page at once
        log.warning(
            "codec server: %s left encrypted",
            ", ".join(
                f"{n} payload(s) {code} key id {key_id!r}" for (code, key_id), n in left.items()
            ),
        )
    return _answer(Payloads(payloads=out))


def ui_origins(ui_base_url: str) -> list[str]:
    """The Temporal UI's origin, plus its loopback twin (``localhost`` ↔ ``127.0.0.1``)."""
    parts = urlsplit(ui_base_url)
    origins = [f"{parts.scheme}://{parts.netloc}"]
    twins = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    if parts.hostname in twins:
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{twins[parts.hostname]}{port}")
    return origins


class CodecCors:
    """CORS with credentials for the Temporal UI's origin, on ``/codec/*`` only.

    The allowed origins come from the running app's settings (``TEMPORAL_UI_URL``, else the
    embedded UI's port), read on the first codec request. Every other path is passed through
    untouched: ``/v1`` and ``/ui`` answer no cross-origin requests.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cors: CORSMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if self._cors is None:
            settings = scope["app"].state.services.settings
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=ui_origins(settings.ui_base_url),
                allow_credentials=True,
                allow_methods=["POST"],
                allow_headers=["Content-Type", "X-Namespace", "Authorization"],
                max_age=600,
            )
        await self._cors(scope, receive, send)
