"""Start-slot backpressure: at most ``careflow_max_concurrent_starts`` workflow starts in flight
per API process, and an overload answered 503 + ``Retry-After`` instead of a queue wait.

Unbounded, a burst of ~1,000 concurrent starts queues inside the SQLite dev server past the 5 s
RPC timeout, and most starts are cancelled after costing the server their work.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.metrics import ApiMetrics
from careflow.settings import Settings

# Overload answers: the Retry-After is the time the recent start rate needs for the senders told to
# wait in the last OVERLOAD_WINDOW seconds, between 1 and OVERLOAD_RETRY_MAX seconds.
OVERLOAD_WINDOW = 2.0
OVERLOAD_RETRY_MAX = 10


class TemporalUnavailableError(Exception):
    """Temporal did not accept the workflow start; the outcome is unknown to the sender."""


class StartOverloadedError(TemporalUnavailableError):
    """No workflow-start slot freed up within ``careflow_start_wait_seconds``: nothing was
    started. Answered like Temporal being unreachable (503 + Retry-After); a resend is safe.

    Attributes:
        retry_after: seconds the sender should wait (``StartGate.overload_retry_after``).
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__("no workflow start slot free")
        self.retry_after = retry_after


class StartGate:
    """The start slots of one API process.

    Args:
        settings: ``careflow_max_concurrent_starts`` (slots) and ``careflow_start_wait_seconds``
            (longest wait for one).
        metrics: where slot waits, overloads and slots in use are counted.
    """

    def __init__(self, settings: Settings, metrics: ApiMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._slots = asyncio.Semaphore(settings.careflow_max_concurrent_starts)
        # Requests waiting for a slot; once as many wait as there are slots, more are answered
        # 503 at once (``queue_full``), before their body is read or validated.
        self._waiting = 0
        self._overloaded_at: deque[float] = deque()  # monotonic times of recent overload 503s
        self._started_at: deque[float] = deque()  # monotonic times of recent finished starts

    def queue_full(self) -> int | None:
        """Whether a new request would only queue for a start slot (every slot taken and as
        many requests already waiting): then it is answered 503 at once, unread.

        Returns:
            None when a request may go ahead, else the Retry-After seconds to answer with.
        """
        if not self._slots.locked():
            return None
        if self._waiting < self._settings.careflow_max_concurrent_starts:
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

    def started(self) -> None:
        """Count one finished start (the rate ``overload_retry_after`` spreads resends by)."""
        self._started_at.append(time.monotonic())

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one start slot for the body of the ``async with``.

        Raises:
            StartOverloadedError: no slot freed up within ``careflow_start_wait_seconds``.
        """
        metrics = self._metrics
        if self._slots.locked():
            metrics.slot_waits.inc()
        self._waiting += 1
        try:
            async with asyncio.timeout(self._settings.careflow_start_wait_seconds):
                await self._slots.acquire()
        except TimeoutError:
            metrics.overloaded.inc()
            metrics.start_failures.labels("overloaded").inc()
            raise StartOverloadedError(self.overload_retry_after()) from None
        finally:
            self._waiting -= 1
        metrics.slots_in_use.inc()
        try:
            yield
        finally:
            metrics.slots_in_use.dec()
            self._slots.release()
