"""No payload-printing DEBUG records from the Temporal SDK, whatever the root level."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from careflow import logs

PAYLOAD_LOGGERS = ("temporalio.worker", "temporalio.activity", "temporalio.workflow")


@pytest.fixture(autouse=True)
def restore_levels() -> Iterator[None]:
    names = ("", *PAYLOAD_LOGGERS, "temporalio.client", "temporalio.worker._activity")
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    logging.getLogger().handlers[:] = handlers


def unset_payload_loggers() -> None:
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_payload_loggers_are_clamped_to_info_under_a_debug_root() -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    unset_payload_loggers()
    logs.silence_payload_debug_logs()
    for name in PAYLOAD_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
        assert logging.getLogger(name).isEnabledFor(logging.INFO)
    # children (the SDK logs from submodules) inherit the clamp; other SDK loggers do not
    assert not logging.getLogger("temporalio.worker._activity").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("temporalio.client").isEnabledFor(logging.DEBUG)


def test_an_explicit_debug_level_is_clamped_too() -> None:
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("temporalio.activity").setLevel(logging.DEBUG)
    logs.silence_payload_debug_logs()
    assert logging.getLogger("temporalio.activity").level == logging.INFO


def test_quieter_levels_are_left_alone() -> None:
    logging.getLogger("temporalio.workflow").setLevel(logging.ERROR)
    logs.silence_payload_debug_logs()
    assert logging.getLogger("temporalio.workflow").level == logging.ERROR


def test_configure_silences_even_at_debug() -> None:
    logging.getLogger().setLevel(logging.DEBUG)
    unset_payload_loggers()
    logs.configure(logging.DEBUG)
    for name in PAYLOAD_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)


def test_a_warning_root_is_not_made_more_verbose() -> None:
    logging.getLogger().setLevel(logging.WARNING)
    unset_payload_loggers()
    logs.silence_payload_debug_logs()
    for name in PAYLOAD_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    logging.getLogger().setLevel(logging.DEBUG)  # a later DEBUG root still gets no payloads
    for name in PAYLOAD_LOGGERS:
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)


def _capture(log_format: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(log_format))
    handler.addFilter(logs.RequestIdFilter())
    logger = logging.getLogger(f"tests.logs.{log_format}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_json_lines_carry_the_bound_request_id_and_fields() -> None:
    logger, stream = _capture("json")
    with logs.request_context("req_abc"):
        logger.info("request outcome", extra={"status": "FAILED", "codes": ["x_y"]})
    logger.info("between requests")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["request_id"] == "req_abc"
    assert first["status"] == "FAILED" and first["codes"] == ["x_y"]
    assert first["level"] == "INFO" and first["logger"] == "tests.logs.json"
    assert first["message"] == "request outcome"
    assert "request_id" not in second and "request_suffix" not in second


def test_text_lines_end_with_the_request_id() -> None:
    logger, stream = _capture("text")
    token = logs.bind_request_id("req_def")
    try:
        logger.info("hello")
    finally:
        logs.unbind_request_id(token)
    logger.info("bye")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("hello request_id=req_def")
    assert second.endswith("bye")
    assert logs.current_request_id() is None


def test_the_request_id_follows_tasks_not_neighbours() -> None:
    async def handle(request_id: str) -> str | None:
        with logs.request_context(request_id):
            await asyncio.sleep(0.01)
            return logs.current_request_id()

    async def both() -> list[str | None]:
        return list(await asyncio.gather(handle("req_1"), handle("req_2")))

    assert asyncio.run(both()) == ["req_1", "req_2"]


def test_configure_installs_json_lines_on_a_bare_root() -> None:
    root = logging.getLogger()
    root.handlers[:] = []
    logs.configure(log_format="json")
    assert len(root.handlers) == 1
    handler = root.handlers[0]
    assert isinstance(handler.formatter, logs.JsonFormatter)
    assert any(isinstance(f, logs.RequestIdFilter) for f in handler.filters)
    logs.configure(log_format="json")  # idempotent
    assert len(root.handlers) == 1 and len(handler.filters) == 1
