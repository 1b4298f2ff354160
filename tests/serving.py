"""Serve a small ASGI app (a stand-in, a receiver, a proxy under test) on 127.0.0.1 for a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

from tests.conftest import free_port


@contextlib.asynccontextmanager
async def serve_asgi(
    app: ASGIApp, port: int | None = None, lifespan: Literal["on", "off"] = "off"
) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on ``port`` (a free one when None) until the block ends.

    Yields:
        The base URL, ``http://127.0.0.1:<port>``.
    """
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
