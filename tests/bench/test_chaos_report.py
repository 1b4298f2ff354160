"""The chaos bench's checks: the app database read back (a migrated SQLite file), logs, verdict."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bench.chaos_report import (
    count_care_flows,
    database_checks,
    log_summary,
    passed,
    percentile,
)
from persistence import tables
from persistence.store import Store

SYSTEM = "urn:careflow:chaos:mrn"
NOW = datetime.now(UTC)


def database(path: Path, patients: dict[str, list[str]], care_flows: list[tuple[Any, ...]]) -> Path:
    """A migrated app database: ``patients`` id → MRNs held; care flows (id, request id,
    patient id, seq, mrn)."""
    store = Store(f"sqlite:///{path}")
    store.migrate()
    store.dispose()
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(
            tables.patients.insert(),
            [{"id": p, "anonymous": False, "profile": {}, "created_at": NOW} for p in patients],
        )
        identifiers = [
            {"patient_id": p, "system": SYSTEM, "value": mrn}
            for p, mrns in patients.items()
            for mrn in mrns
        ]
        if identifiers:
            conn.execute(tables.patient_identifiers.insert(), identifiers)
        conn.execute(
            tables.care_flows.insert(),
            [
                {
                    "id": cf,
                    "care_flow_definition_id": "chaos",
                    "patient_id": patient,
                    "data_points": {"seq": seq, "mrn": mrn},
                    "request_id": request,
                    "started_at": NOW,
                }
                for cf, request, patient, seq, mrn in care_flows
            ],
        )
    engine.dispose()
    return path


def success(care_flow_id: str) -> dict[str, Any]:
    return {"status": "SUCCESS", "care_flow_id": care_flow_id}


def test_a_clean_run_has_nothing_to_report(tmp_path: Path) -> None:
    db = database(
        tmp_path / "careflow.db",
        {"pat_a": ["MRN-0000"], "pat_b": ["MRN-0001"]},
        [
            ("cf_0", "req_0", "pat_a", 0, "MRN-0000"),
            ("cf_1", "req_1", "pat_b", 1, "MRN-0001"),
            ("cf_2", "req_2", "pat_a", 2, "MRN-0000"),
        ],
    )
    details = {"req_0": success("cf_0"), "req_1": success("cf_1"), "req_2": success("cf_2")}
    assert count_care_flows(db) == 3
    assert database_checks(db, details) == {
        "care_flows": 3,
        "patients": 2,
        "identifiers": 2,
        "duplicate_care_flows": 0,
        "duplicate_patients": 0,
        "missing_care_flows": 0,
        "misattributed_care_flows": 0,
    }


def test_duplicates_missing_and_misattributed_care_flows_are_counted(tmp_path: Path) -> None:
    db = database(
        tmp_path / "careflow.db",
        # pat_c holds no identifier at all: a duplicate patient too.
        {"pat_a": ["MRN-0000"], "pat_b": ["MRN-0001"], "pat_c": []},
        [
            ("cf_0", "req_0", "pat_a", 0, "MRN-0000"),
            # seq 0 again under another request id: one delivery processed twice.
            ("cf_0b", "req_0b", "pat_a", 0, "MRN-0000"),
            # MRN-0001's care flow on pat_a, who does not hold it.
            ("cf_1", "req_1", "pat_a", 1, "MRN-0001"),
            ("cf_3", "req_3", "pat_b", 3, "MRN-0001"),
        ],
    )
    details = {
        "req_0": success("cf_0"),
        "req_1": success("cf_1"),
        "req_2": success("cf_2"),  # SUCCESS, but no care flow
        "req_3": success("cf_other"),  # SUCCESS with another care flow than the database's
        "req_4": {"status": "REJECTED"},  # not SUCCESS: no care flow expected
    }
    checks = database_checks(db, details)
    assert checks["duplicate_care_flows"] == 1
    assert checks["duplicate_patients"] == 1
    assert checks["missing_care_flows"] == 2
    assert checks["misattributed_care_flows"] == 1
    assert (checks["care_flows"], checks["patients"], checks["identifiers"]) == (4, 3, 2)


def test_percentile_is_nearest_rank_below() -> None:
    values = [0.5, 0.1, 0.4, 0.2, 0.3]
    assert percentile([], 0.5) is None
    assert percentile(values, 0.5) == 0.3
    assert percentile(values, 0.99) == 0.5
    assert percentile(values, 0.0) == 0.1
    assert percentile([1 / 3], 0.5) == 0.333


def test_log_summary_keeps_warnings_and_errors_commonest_first() -> None:
    temporal = "\n".join(
        [
            'time=1 level=warn msg="history size exceeds warn limit" shard-id=1',
            '\x1b[33mtime=2 level=warn msg="history size exceeds warn limit"\x1b[0m',
            'time=3 level=error msg="Persistent store operation failure" store-operation=x',
            'time=4 level=info msg="started"',
        ]
    )
    worker = "\n".join(
        [
            "2026-01-01 10:00:00 WARNING temporalio.worker: Failed activation " + "x" * 200,
            "2026-01-01 10:00:01 INFO careflow.worker: worker polling task queue chaos",
        ]
    )
    summary = log_summary({"temporal": temporal, "worker": worker, "api": ""})
    assert summary["temporal"] == {
        "warn: history size exceeds warn limit": 2,
        "error: Persistent store operation failure": 1,
    }
    (message,) = summary["worker"]
    assert message.startswith("warning: temporalio.worker: Failed activation xxx")
    assert len(message) == len("warning: ") + 90
    assert summary["api"] == {}


RESULT = {
    "lost": 0,
    "duplicate_care_flows": 0,
    "duplicate_patients": 0,
    "missing_care_flows": 0,
    "misattributed_care_flows": 0,
    "wrong_request_ids": 0,
    "unexpected_exits": [],
}


def test_passed_only_when_nothing_went_wrong() -> None:
    assert passed(RESULT)


@pytest.mark.parametrize(
    ("key", "value"),
    [(key, 1) for key in RESULT if key != "unexpected_exits"] + [("unexpected_exits", ["api"])],
)
def test_any_loss_duplicate_or_death_fails_the_run(key: str, value: object) -> None:
    assert not passed({**RESULT, key: value})
