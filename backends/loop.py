"""Run the worker's async Temporal client from the synchronous backend methods.

Activities run on the worker's thread pool, while a Temporal ``Client`` belongs to the event
loop it was created on. Backends that start or describe workflows hand their coroutines to that
loop and wait for the answer in their own thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopRunner:
    """Args: loop: the event loop the Temporal client runs on (the worker's)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for it from this (non-loop) thread.

        Args:
            coro: the coroutine.
            timeout: seconds to wait before giving up (the coroutine is then cancelled).

        Raises:
            TimeoutError: no answer within ``timeout``.
            Exception: whatever the coroutine raised.
        """
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise
