"""Where the ingest handler parses and validates a body: on the event loop or in a worker process.

A small body (up to ``CAREFLOW_INLINE_EVAL_BYTES``) costs microseconds to milliseconds and is
evaluated in place. A larger one may cost seconds of pure-Python CPU (a mapping such as ``$..x``
visits every value of the body) and goes to ``infra.evaluation_pool``: at most
``CAREFLOW_EVAL_PROCESSES`` run at once, the heavy requests queue among themselves, and the event
loop keeps answering light requests and ``/healthz``. There it gets ``CAREFLOW_EVAL_SECONDS``; an
evaluation that runs out comes back unfinished and the handler leaves the verdict to the worker.
"""

from __future__ import annotations

from careflow.evaluation import Evaluation, EvaluationJob, evaluate, slice_for
from careflow.models import Webhook
from careflow.settings import Settings
from infra.evaluation_pool import EvaluationPool
from persistence.config_cache import ConfigCache


class Evaluator:
    """Args: config: the configuration cache; settings: the lane's size limit and the pool's
    size and budget."""

    def __init__(self, config: ConfigCache, settings: Settings) -> None:
        self._config = config
        self._inline_bytes = settings.careflow_inline_eval_bytes
        self._pool = EvaluationPool(
            settings.careflow_eval_processes, settings.careflow_eval_seconds
        )

    async def evaluate(
        self,
        hook: Webhook,
        body: bytes,
        media_type: str,
        *,
        delivery_id_path: str | None,
        keep_parsed: bool,
    ) -> Evaluation:
        """Parse ``body``, find its delivery id at ``delivery_id_path`` (None: do not look) and
        its debounce key (when the webhook has a debounce), and validate it against the cached
        configuration.

        Returns:
            The evaluation; unfinished only for a large body whose budget ran out.
        """
        snapshot = self._config.snapshot
        inline = len(body) <= self._inline_bytes
        job = EvaluationJob(
            body,
            media_type,
            snapshot if inline else slice_for(snapshot, hook.id),
            hook.id,
            delivery_id_path,
            keep_parsed,
            hook.debounce,
        )
        return evaluate(job) if inline else await self._pool.evaluate(job)

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.shutdown()
