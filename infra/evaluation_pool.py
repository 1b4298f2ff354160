"""Worker processes that evaluate request bodies (parse + validate) off the caller's thread.

JSONPath evaluation is pure-Python CPU work: on the API's event loop one body of many values
with a mapping such as ``$..x`` stalled every other request, and a thread pool would not help
(the GIL). Large bodies are therefore evaluated here, in ``processes`` worker processes (started
with ``spawn`` on first use, so no lock or thread of the parent is copied), which bounds how many
run at once: heavy requests queue among themselves while the event loop keeps serving. Each
evaluation gets a time budget counted from when it was submitted (time spent queued counts), and
enforced inside the worker process by ``SIGALRM`` (Python checks signals between bytecodes, so a
long JSONPath walk stops within microseconds); a job that runs out of budget returns unfinished
(``queued_too_long`` when it never got to run) and the caller decides what to do (the ingest
handler answers 202 RECEIVED and lets ``validate_request`` decide; the activity retries later
when the processes were busy, else rejects ``mapping_too_costly``).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from types import FrameType

from careflow.evaluation import Evaluation, EvaluationJob, evaluate

log = logging.getLogger("careflow.evaluation_pool")

NICENESS = 10


class _BudgetSpent(BaseException):
    """Raised in a worker process by the alarm when a job's time budget is spent (a
    BaseException, so that no ``except Exception`` in the evaluated code swallows it)."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise _BudgetSpent


def _initialise() -> None:
    # Below the parent's CPU priority: on a busy machine the event loop (light requests,
    # health checks) runs first and heavy evaluations take what is left.
    os.nice(NICENESS)
    # Ctrl-C in a terminal reaches the whole process group: the parent shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, _alarm)


def _ready() -> None:
    """A no-op: run once per process when the pool starts, so that starting the processes
    (a second or two of imports) is not counted against any job's budget."""


def _evaluate_within(job: EvaluationJob, deadline: float) -> Evaluation:
    """Runs in a worker process (its main thread): ``evaluate`` under an alarm that rings at
    ``deadline`` (``time.time()`` seconds)."""
    evaluation = Evaluation()
    seconds = deadline - time.time()
    if seconds <= 0:
        evaluation.queued_too_long = True
        return evaluation
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            evaluate(job, evaluation)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _BudgetSpent:
        pass  # ``evaluation`` keeps the steps done; ``finished`` tells whether a verdict is in
    return evaluation


class EvaluationPool:
    """Evaluates jobs in worker processes, each within a time budget.

    Args:
        processes: worker processes (at most this many evaluations run at once).
        budget_seconds: wall-clock seconds one evaluation may take, from its submission (time
            spent waiting for a free process counts; the processes' start, on first use, does
            not).
    """

    def __init__(self, processes: int, budget_seconds: float) -> None:
        self._processes = processes
        self._budget = budget_seconds
        self._executor: ProcessPoolExecutor | None = None
        self._started: list[Future[None]] = []
        self._lock = threading.Lock()

    def _pool(self) -> tuple[ProcessPoolExecutor, list[Future[None]]]:
        """The executor (created on first use, all its processes started at once) and the
        futures that complete when its processes are up."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self._processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_initialise,
                )
                self._started = [self._executor.submit(_ready) for _ in range(self._processes)]
            return self._executor, self._started

    def _broken(self, executor: ProcessPoolExecutor) -> Evaluation:
        """A worker process died (killed, out of memory): start afresh next time."""
        log.warning("an evaluation process died; starting a new pool")
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)
        return Evaluation()

    async def evaluate(self, job: EvaluationJob) -> Evaluation:
        """Evaluate ``job`` in a worker process without blocking the event loop.

        Returns:
            The evaluation; unfinished (``finished`` False) when the budget ran out or the worker
            process died.
        """
        executor, started = self._pool()
        try:
            if not all(future.done() for future in started):
                await asyncio.to_thread(wait, started)
            deadline = time.time() + self._budget
            return await asyncio.wrap_future(executor.submit(_evaluate_within, job, deadline))
        except BrokenProcessPool:
            return self._broken(executor)

    def evaluate_blocking(self, job: EvaluationJob) -> Evaluation:
        """Like :meth:`evaluate`, for a thread (e.g. a synchronous activity) that may block."""
        executor, started = self._pool()
        try:
            wait(started)
            deadline = time.time() + self._budget
            return executor.submit(_evaluate_within, job, deadline).result()
        except BrokenProcessPool:
            return self._broken(executor)

    def shutdown(self) -> None:
        """Stop the worker processes (waiting jobs are cancelled)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
