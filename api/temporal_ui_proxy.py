"""The Temporal UI proxy of ``make run``: the dev server's Web UI, the codec server same-origin.

``make run`` serves the Temporal UI on ``TEMPORAL_UI_PORT`` through this reverse proxy; the dev
server's own UI listens on the internal port ``TEMPORAL_UI_INTERNAL_PORT`` (loopback only). The
proxy passes every request through unchanged — method, raw path and query, headers, cookies,
body and answer streamed both ways, redirects not followed (a ``Location`` naming the internal
port is rewritten to the proxy's origin) — except for two paths:

- ``GET /api/v1/settings`` (the UI reads its configuration there): the dev server's JSON with
  ``Codec.Endpoint`` set to ``<the proxy's origin as the browser named it>/codec`` and
  ``Codec.IncludeCredentials`` set to true; every other field as the dev server wrote it.
- ``/codec/encode`` and ``/codec/decode`` (any other ``/codec/...`` is 404): relayed to the
  API's codec server (``--codec-upstream``, e.g. ``http://127.0.0.1:8000/codec``). The UI's
  decode requests are then same-origin: the browser sends the operator's ``/ui`` session cookie
  (host-only, ``Path=/``, and cookies do not depend on the port) with no CORS and no browser
  setting. Without a session the codec server answers 401 and the UI shows the ciphertext.

Why not CORS alone: ``IncludeCredentials`` with the API's own origin works too (the API answers
CORS with credentials for the UI's origin), but only for the one host name in
``TEMPORAL_UI_URL``; same-origin works under whichever name the operator typed, needs no
preflight and is not affected by browsers' cross-site cookie rules.

Upstream down or not answering: 502 ``temporal_ui_unavailable`` / ``codec_server_unavailable``
(504 ``..._timeout`` past the read timeout) as JSON with ``Retry-After``, never a crash; an answer
cut off mid-stream is cut off for the browser too (the connection is closed, not completed).
No access log and no paths in log lines (a query may name a patient's identifier): one line when
an upstream stops answering and one when it answers again.

Run as ``python -m api.temporal_ui_proxy --port 8233 --upstream http://127.0.0.1:8234
--codec-upstream http://127.0.0.1:8000/codec`` (``cli.ui_proxy_command``).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

log = logging.getLogger("ui_proxy")

SETTINGS_PATH = b"/api/v1/settings"
CODEC_PREFIX = b"/codec"
# Only the protocol's two paths reach the API: not ``/codec/../ui/...`` (httpx would resolve the
# dot segments, and the proxy's origin would serve the API's other pages).
CODEC_PATHS = frozenset({b"/codec/encode", b"/codec/decode"})
# RFC 9110 §7.6.1: meaningful for one connection only, never relayed.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy sends requests.

    Attributes:
        upstream: the dev server's Web UI, ``http://127.0.0.1:8234`` (no trailing slash).
        codec_upstream: the API's codec server, ``http://127.0.0.1:8000/codec``; None: ``/codec``
            is relayed to the UI like any path and the settings' codec endpoint is left alone.
        connect_seconds: time to open an upstream connection.
        read_seconds: time allowed between two reads of an upstream answer (the UI's history
            requests may long-poll).
    """

    upstream: str
    codec_upstream: str | None = None
    connect_seconds: float = 5.0
    read_seconds: float = 120.0


class _Health:
    """Logs one line when an upstream stops answering and one when it is back (no paths)."""

    def __init__(self) -> None:
        self._down: set[str] = set()

    def failed(self, upstream: str, error: Exception) -> None:
        if upstream not in self._down:
            self._down.add(upstream)
            log.warning(
                "%s does not answer (%s); answering 502/504", upstream, type(error).__name__
            )

    def answered(self, upstream: str) -> None:
        if upstream in self._down:
            self._down.discard(upstream)
            log.info("%s answers again", upstream)


def rewrite_settings(document: Any, codec_endpoint: str | None) -> Any:
    """The UI settings with ``Codec.IncludeCredentials`` on (and the codec endpoint, if given).

    Args:
        document: the dev server's ``/api/v1/settings`` JSON (an object with a ``Codec`` object:
            ``Endpoint``, ``PassAccessToken``, ``IncludeCredentials``, ``DefaultErrorMessage``,
            ``DefaultErrorLink`` in UI 2.54); anything else is returned unchanged.
        codec_endpoint: the codec server's URL as the browser should call it, or None.

    Returns:
        The same document, changed in place.
    """
    if not isinstance(document, dict):
        return document
    codec = document.get("Codec")
    if not isinstance(codec, dict):
        codec = document["Codec"] = {}
    codec["IncludeCredentials"] = True
    if codec_endpoint is not None:
        codec["Endpoint"] = codec_endpoint
    return document


def _request_headers(request: Request) -> list[tuple[bytes, bytes]]:
    named = {
        token.strip().lower().encode()
        for token in request.headers.get("connection", "").split(",")
        if token.strip()
    }
    return [
        (name, value)
        for name, value in request.scope["headers"]
        if name not in HOP_BY_HOP and name not in named and name != b"host"
    ]


def _answer_headers(
    answer: httpx.Response, upstream: str, origin: str
) -> list[tuple[bytes, bytes]]:
    headers = []
    for name, value in answer.headers.raw:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            continue
        if lower == b"location" and value.startswith(upstream.encode()):
            value = origin.encode() + value[len(upstream) :]
        headers.append((lower, value))
    return headers


def _unavailable(code: str, status: int, what: str) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": f"{what}; make run restarts it, try again shortly"},
        status_code=status,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"},
    )


class _Relay(StreamingResponse):
    """Streams an upstream answer; an upstream failure mid-answer closes the connection
    (the response is left incomplete on purpose, so the browser does not take it as whole)."""

    async def stream_response(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except httpx.HTTPError as error:
            log.warning("an upstream answer broke off (%s)", type(error).__name__)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def build_app(config: ProxyConfig, transport: httpx.AsyncBaseTransport | None = None) -> Starlette:
    """The proxy as an ASGI app.

    Args:
        config: the upstreams and timeouts.
        transport: the HTTP transport to the upstreams (tests); default: httpx's.

    Returns:
        A Starlette app holding one pooled transport for its lifespan. Requests go to the
        transport itself, not through an ``httpx.AsyncClient``: a client would add its own
        headers (``Accept-Encoding``, ``User-Agent``), keep the upstreams' cookies in a jar
        shared by every browser, and decode bodies; the transport relays bytes as they are.
    """
    health = _Health()
    pool = transport or httpx.AsyncHTTPTransport(trust_env=False)
    timeout = httpx.Timeout(config.read_seconds, connect=config.connect_seconds).as_dict()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with pool:
            yield

    async def relay(request: Request) -> Response:
        raw_path: bytes = request.scope["raw_path"] or request.url.path.encode()
        query: bytes = request.scope["query_string"]
        origin = f"{request.url.scheme}://{request.url.netloc}"
        codec_base = config.codec_upstream
        is_codec = codec_base is not None and (
            raw_path == CODEC_PREFIX or raw_path.startswith(CODEC_PREFIX + b"/")
        )
        if codec_base is not None and is_codec:
            if raw_path not in CODEC_PATHS:
                return JSONResponse(
                    {"code": "not_found", "message": "the codec server has /encode and /decode"},
                    status_code=404,
                )
            base, rest = codec_base.rstrip("/"), raw_path[len(CODEC_PREFIX) :]
            code, what = "codec_server", "the codec server (the API)"
        else:
            base, rest = config.upstream.rstrip("/"), raw_path
            code, what = "temporal_ui", "the Temporal UI (dev server)"
        try:
            url = httpx.URL(
                base + rest.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
            )
        except httpx.InvalidURL:
            return JSONResponse(
                {"code": "invalid_request_target", "message": "not a path this proxy relays"},
                status_code=400,
            )
        headers = _request_headers(request)
        is_settings = not is_codec and raw_path == SETTINGS_PATH and request.method == "GET"
        if is_settings:  # read whole and rewritten: ask for it uncompressed
            headers = [(n, v) for n, v in headers if n != b"accept-encoding"]
            headers.append((b"accept-encoding", b"identity"))
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        outgoing = httpx.Request(
            request.method,
            url,
            headers=headers,
            content=request.stream() if has_body else None,
            extensions={"timeout": timeout},
        )
        try:
            answer = await pool.handle_async_request(outgoing)
            answer.request = outgoing
        except httpx.TimeoutException as error:
            health.failed(base, error)
            return _unavailable(f"{code}_timeout", 504, f"{what} did not answer in time")
        except httpx.HTTPError as error:
            health.failed(base, error)
            return _unavailable(f"{code}_unavailable", 502, f"{what} does not answer")
        health.answered(base)
        out_headers = _answer_headers(answer, base, origin)
        if is_settings and answer.status_code == 200:
            try:
                body = await answer.aread()
                document = json.loads(body)
            except (httpx.HTTPError, ValueError) as error:
                await answer.aclose()
                health.failed(base, error)
                return _unavailable(f"{code}_unavailable", 502, f"{what} does not answer")
            endpoint = origin + CODEC_PREFIX.decode() if config.codec_upstream else None
            body = json.dumps(rewrite_settings(document, endpoint)).encode()
            kept = [
                (n, v) for n, v in out_headers if n not in (b"content-length", b"content-encoding")
            ]
            rewritten = Response(body, status_code=200)
            rewritten.raw_headers = [*kept, (b"content-length", str(len(body)).encode())]
            return rewritten
        relayed = _Relay(
            answer.aiter_raw(),
            status_code=answer.status_code,
            background=BackgroundTask(answer.aclose),
        )
        relayed.raw_headers = out_headers
        return relayed

    return Starlette(routes=[Route("/{path:path}", relay, methods=METHODS)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    """Serve the proxy with uvicorn (no access log) until SIGINT / SIGTERM."""
    import uvicorn

    from careflow import logs

    parser = argparse.ArgumentParser(prog="python -m api.temporal_ui_proxy")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the dev server's Web UI")
    parser.add_argument("--codec-upstream", help="the API's codec server, .../codec")
    parser.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-Proto / -For are believed (else none are)",
    )
    args = parser.parse_args(argv)
    logs.configure()
    for noisy in ("httpx", "httpcore"):  # their INFO / DEBUG lines print URLs (PHI in queries)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = ProxyConfig(upstream=args.upstream, codec_upstream=args.codec_upstream)
    uvicorn.run(
        build_app(config),
        host=args.host,
        port=args.port,
        access_log=False,  # paths and queries may carry PHI
        server_header=False,  # the dev server's own Date / Server headers are relayed
        date_header=False,
        log_config=None,
        log_level="warning",
        proxy_headers=bool(args.forwarded_allow_ips),
        forwarded_allow_ips=args.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
