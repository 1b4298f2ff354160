"""Logging set-up shared by the worker, the API and the CLI.

No patient data in logs: our own messages carry ids and codes only, and the Temporal SDK's
DEBUG records (which print activity inputs and results, i.e. payload values) are never emitted,
whatever level the root logger is at.
"""

from __future__ import annotations

import logging

# SDK loggers whose DEBUG records include payloads.
_PAYLOAD_LOGGERS = ("temporalio.worker", "temporalio.activity", "temporalio.workflow")


def silence_payload_debug_logs() -> None:
    """Clamp the Temporal SDK loggers that print payloads at DEBUG to INFO."""
    for name in _PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        # Pin the level (so a later DEBUG root cannot reach it), never lower it below its own.
        if logger.level < logging.INFO:
            logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))


def configure(level: int = logging.INFO) -> None:
    """Process-wide logging: timestamped lines on stderr, payload DEBUG records silenced."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    silence_payload_debug_logs()
