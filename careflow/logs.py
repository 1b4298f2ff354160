"""Logging set-up shared by the worker, the API and the CLI.

No patient data in logs: our own messages carry ids and codes only, and the Temporal SDK's
DEBUG records (which print activity inputs and results, i.e. payload values) are never emitted,
whatever level the root logger is at.

Every record written while one request is handled carries that request's id as the
``request_id`` attribute: the ingest handler and the worker's activity interceptor bind it in a
context variable (so it follows ``asyncio`` tasks and the threads activities run on), and a filter
on the root handlers copies it onto each record. ``CAREFLOW_LOG_FORMAT=json`` writes one JSON
object per line (python-json-logger) instead of text.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

# SDK loggers whose DEBUG records include payloads.
_PAYLOAD_LOGGERS = ("temporalio.worker", "temporalio.activity", "temporalio.workflow")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s%(request_suffix)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "careflow_request_id", default=None
)


def current_request_id() -> str | None:
    """The request id bound in this context (task or thread), or None."""
    return _request_id.get()


def bind_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Bind ``request_id`` for every later log record of this context.

    Returns:
        A token for ``unbind_request_id``.
    """
    return _request_id.set(request_id)


def unbind_request_id(token: contextvars.Token[str | None]) -> None:
    """Restore the request id bound before ``bind_request_id`` returned ``token``."""
    _request_id.reset(token)


@contextmanager
def request_context(request_id: str | None) -> Iterator[None]:
    """Bind ``request_id`` for the duration of the block."""
    token = bind_request_id(request_id)
    try:
        yield
    finally:
        unbind_request_id(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) and ``request_suffix`` (text format) to every
    record that passes the handler it is attached to. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(record, "request_id", None) or _request_id.get()
        record.request_id = request_id
        record.request_suffix = f" request_id={request_id}" if request_id else ""
        return True


class JsonFormatter(_BaseJsonFormatter):
    """JSON lines without the text format's helper field."""

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:  # type: ignore[type-arg]
        super().add_fields(log_data, record, message_dict)
        log_data.pop("request_suffix", None)
        if log_data.get("request_id") is None:
            log_data.pop("request_id", None)


def formatter(log_format: str = "text") -> logging.Formatter:
    """The formatter for ``log_format`` (``text`` or ``json``)."""
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"})
    return logging.Formatter(TEXT_FORMAT)


def silence_payload_debug_logs() -> None:
    """Clamp the Temporal SDK loggers that print payloads at DEBUG to INFO."""
    for name in _PAYLOAD_LOGGERS:
        logger = logging.getLogger(name)
        # Pin the level (so a later DEBUG root cannot reach it), never lower it below its own.
        if logger.level < logging.INFO:
            logger.setLevel(max(logging.INFO, logger.getEffectiveLevel()))


def configure(level: int = logging.INFO, log_format: str = "text") -> None:
    """Process-wide logging on stderr: text or JSON lines, each with the bound ``request_id``;
    payload DEBUG records silenced. Does nothing to a root logger that already has handlers
    except adding the request-id filter (so a host's set-up, e.g. pytest's, is kept)."""
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(formatter(log_format))
        root.addHandler(stream)
        root.setLevel(level)
    for handler in root.handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())
    silence_payload_debug_logs()
