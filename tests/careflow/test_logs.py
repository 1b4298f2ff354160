"""No payload-printing DEBUG records from the Temporal SDK, whatever the root level."""

from __future__ import annotations

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
