"""The Temporal UI proxy of ``make run`` (``api.temporal_ui_proxy``), under uvicorn on a free port.

In front of a real dev server's Web UI: the UI's settings come back with the codec endpoint on the
proxy's own origin and "include credentials" on, every other field and path as the dev server
answers. In front of a small upstream of the test's own: streaming both ways, redirects, cookies,
headers and raw paths relayed; an upstream that is down, slow or breaks off mid-answer gets a
clear 502 / 504 (or a cut connection) and the proxy keeps serving; no path or query in its logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp
from temporalio.testing import WorkflowEnvironment

from api.temporal_ui_proxy import ProxyConfig, build_app, rewrite_settings
from tests.conftest import TEMPORAL_BIN, free_port
from tests.serving import serve_asgi


def serve(app: ASGIApp, port: int | None = None) -> contextlib.AbstractAsyncContextManager[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 (a free port unless given); its base URL."""
    return serve_asgi(app, port, lifespan="on")


def serve_proxy(
    config: ProxyConfig, port: int | None = None
) -> contextlib.AbstractAsyncContextManager[str]:
    """The proxy under uvicorn, as ``make run`` serves it (minus the process)."""
    return serve(build_app(config), port)


# --- in front of the real dev server's Web UI --------------------------------------------------


@pytest.fixture(scope="module")
async def dev_ui() -> AsyncIterator[str]:
    ui_port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=[
            "--ui-codec-endpoint",
            "http://127.0.0.1:9/codec",
            "--ui-disable-news-fetch",
        ],
    )
    try:
        yield f"http://127.0.0.1:{ui_port}"
    finally:
        await env.shutdown()


async def test_settings_turn_credentials_on_and_move_the_codec_same_origin(dev_ui: str) -> None:
    config = ProxyConfig(upstream=dev_ui, codec_upstream="http://127.0.0.1:9/codec")
    async with serve_proxy(config) as proxy, httpx.AsyncClient(timeout=30) as http:
        direct = await http.get(f"{dev_ui}/api/v1/settings")
        relayed = await http.get(f"{proxy}/api/v1/settings")
        localhost = await http.get(proxy.replace("127.0.0.1", "localhost") + "/api/v1/settings")
    assert relayed.status_code == 200
    assert relayed.headers["content-type"] == "application/json"
    assert relayed.cookies.get("_csrf")  # the UI's CSRF cookie still set
    expected = direct.json()
    assert expected["Codec"]["IncludeCredentials"] is False  # the dev server has no flag for it
    expected["Codec"].update(IncludeCredentials=True, Endpoint=f"{proxy}/codec")
    assert relayed.json() == expected
    # The endpoint follows the name the browser used, so the codec is always same-origin.
    assert (
        localhost.json()["Codec"]["Endpoint"] == proxy.replace("127.0.0.1", "localhost") + "/codec"
    )


async def test_other_ui_paths_pass_through_unchanged(dev_ui: str) -> None:
    async with (
        serve_proxy(ProxyConfig(upstream=dev_ui)) as proxy,
        httpx.AsyncClient(timeout=30) as http,
    ):
        for path in ("/", "/namespaces/default/workflows", "/api/v1/namespaces/default"):
            direct = await http.get(dev_ui + path)
            relayed = await http.get(proxy + path)
            assert (relayed.status_code, relayed.content) == (
                direct.status_code,
                direct.content,
            )
            assert relayed.headers["content-type"] == direct.headers["content-type"]
        # Compressed as the dev server compressed it, for a browser that asks for it.
        gzipped = await http.get(proxy + "/", headers={"Accept-Encoding": "gzip"})
        plain = await http.get(proxy + "/", headers={"Accept-Encoding": "identity"})
        assert gzipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert gzipped.content == plain.content and b"<html" in plain.content
        # No codec upstream configured: /api/v1/settings keeps the dev server's endpoint.
        settings = (await http.get(proxy + "/api/v1/settings")).json()
        assert settings["Codec"] == {
            **settings["Codec"],
            "Endpoint": "http://127.0.0.1:9/codec",
            "IncludeCredentials": True,
        }


def test_rewrite_settings_leaves_unexpected_documents_alone() -> None:
    assert rewrite_settings([1, 2], "http://x/codec") == [1, 2]
    assert rewrite_settings({"Version": "2"}, None) == {
        "Version": "2",
        "Codec": {"IncludeCredentials": True},
    }
    assert rewrite_settings({"Codec": None}, "http://x/codec") == {
        "Codec": {"IncludeCredentials": True, "Endpoint": "http://x/codec"}
    }


# --- in front of an upstream of the test's own -------------------------------------------------


class Upstream:
    """A small HTTP server standing in for the dev server's UI and the API's codec server."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.seen: list[dict[str, object]] = []

    async def echo(self, request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
        self.seen.append(
            {
                "raw_path": request.scope["raw_path"].decode(),
                "query": request.scope["query_string"].decode(),
                "headers": [(k.decode(), v.decode()) for k, v in request.scope["headers"]],
                "body_bytes": len(body),
            }
        )
        answer = JSONResponse({"method": request.method, "body_bytes": len(body)}, status_code=201)
        answer.headers.append("x-upstream", "yes")
        answer.raw_headers.append((b"set-cookie", b"a=1; Path=/"))
        answer.raw_headers.append((b"set-cookie", b"b=2; Path=/"))
        return answer

    async def stream(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            await self.release.wait()  # only once the client has read the first chunk
            yield b"second"

        return StreamingResponse(chunks(), media_type="text/plain")

    async def broken(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("the upstream dies mid-answer")

        return StreamingResponse(chunks(), media_type="text/plain")

    async def slow(self, request: Request) -> Response:
        await asyncio.sleep(2)
        return Response("late")

    async def redirect(self, request: Request) -> Response:
        target = request.query_params["to"]
        return RedirectResponse(target, status_code=302)

    def app(self) -> Starlette:
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
        return Starlette(
            routes=[
                Route("/stream", self.stream),
                Route("/broken", self.broken),
                Route("/slow", self.slow),
                Route("/redirect", self.redirect),
                Route("/{path:path}", self.echo, methods=methods),
            ]
        )


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    fake = Upstream()
    async with serve(fake.app()) as url:
        yield fake, url


async def test_requests_and_answers_are_relayed_as_they_are(
    upstream: tuple[Upstream, str],
) -> None:
    fake, url = upstream
    big = b"x" * (3 * 1024 * 1024)
    config = ProxyConfig(upstream=url, codec_upstream=f"{url}/api/codec")
    async with serve_proxy(config) as proxy, httpx.AsyncClient(base_url=proxy, timeout=30) as http:
        answer = await http.post(
            "/a%2Fb/c?identifier=x%7Cy&q=1",
            content=big,
            headers={"X-Custom": "kept", "Cookie": "careflow_session=s1; _csrf=c"},
        )
        assert answer.status_code == 201
        assert answer.json() == {"method": "POST", "body_bytes": len(big)}
        assert answer.headers["x-upstream"] == "yes"
        assert answer.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]
        seen = fake.seen[-1]
        assert (seen["raw_path"], seen["query"]) == ("/a%2Fb/c", "identifier=x%7Cy&q=1")
        headers = dict(seen["headers"])  # type: ignore[arg-type]
        assert headers["x-custom"] == "kept"
        assert headers["cookie"] == "careflow_session=s1; _csrf=c"
        assert headers["host"] == url.removeprefix("http://")
        assert "user-agent" in headers and headers["user-agent"].startswith("python-httpx")

        # /codec/* goes to the codec upstream, cookie included (same-origin for the browser).
        answer = await http.post("/codec/decode", json={"payloads": []}, headers={"Cookie": "s=1"})
        assert answer.status_code == 201
        seen = fake.seen[-1]
        assert seen["raw_path"] == "/api/codec/decode"
        assert ("cookie", "s=1") in seen["headers"]  # type: ignore[operator]

        # A client that asks for nothing gets nothing added (no Accept-Encoding of httpx's).
        bare = http.build_request("GET", "/plain")
        del bare.headers["accept-encoding"]
        await http.send(bare)
        assert "accept-encoding" not in dict(fake.seen[-1]["headers"])  # type: ignore[arg-type]

        # Redirects are relayed, not followed; one naming the upstream is rewritten.
        answer = await http.get("/redirect", params={"to": "/namespaces/default"})
        assert (answer.status_code, answer.headers["location"]) == (302, "/namespaces/default")
        answer = await http.get("/redirect", params={"to": f"{url}/x?y=1"})
        assert answer.headers["location"] == f"{proxy}/x?y=1"

        head = await http.head("/something")
        assert head.status_code == 201 and head.content == b""


async def test_answers_are_streamed(upstream: tuple[Upstream, str]) -> None:
    fake, url = upstream
    async with (
        serve_proxy(ProxyConfig(upstream=url)) as proxy,
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", f"{proxy}/stream") as answer,
    ):
        chunks = answer.aiter_raw()
        # The upstream sends its second chunk only after this first one arrived here.
        assert await asyncio.wait_for(chunks.__anext__(), timeout=10) == b"first;"
        fake.release.set()
        assert b"".join([c async for c in chunks]) == b"second"


async def test_an_upstream_that_is_down_gets_a_clear_502_and_the_proxy_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ui_port, codec_port = free_port(), free_port()
    config = ProxyConfig(
        upstream=f"http://127.0.0.1:{ui_port}",
        codec_upstream=f"http://127.0.0.1:{codec_port}/codec",
    )
    async with serve_proxy(config) as proxy, httpx.AsyncClient(base_url=proxy, timeout=30) as http:
        for _ in range(3):
            answer = await http.get("/namespaces/default/workflows?query=MRN-55120987")
            assert answer.status_code == 502
            assert answer.json()["code"] == "temporal_ui_unavailable"
            assert answer.headers["retry-after"] == "1"
        answer = await http.post("/codec/decode", json={"payloads": []})
        assert (answer.status_code, answer.json()["code"]) == (502, "codec_server_unavailable")
        answer = await http.get("/api/v1/settings")
        assert (answer.status_code, answer.json()["code"]) == (502, "temporal_ui_unavailable")

        fake = Upstream()
        async with serve(fake.app(), ui_port):  # the dev server is back (make run restarted it)
            answer = await http.get("/namespaces/default/workflows?query=MRN-55120987")
            assert answer.status_code == 201
    proxy_lines = [r.getMessage() for r in caplog.records if r.name == "ui_proxy"]
    assert len(proxy_lines) == 3  # UI down, codec down, UI back: one line each, not per request
    # Every line but the test client's own (httpx's request lines, which the proxy never logs).
    served = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "MRN" not in served and "/namespaces" not in served, served


async def test_a_slow_or_broken_upstream_never_takes_the_proxy_down(
    upstream: tuple[Upstream, str],
) -> None:
    _, url = upstream
    config = ProxyConfig(upstream=url, read_seconds=0.5)
    async with serve_proxy(config) as proxy, httpx.AsyncClient(base_url=proxy, timeout=30) as http:
        answer = await http.get("/slow")
        assert (answer.status_code, answer.json()["code"]) == (504, "temporal_ui_timeout")
        # Cut off mid-answer upstream: cut off here too, not passed off as a whole answer.
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/broken")
        assert (await http.get("/still-there")).status_code == 201
