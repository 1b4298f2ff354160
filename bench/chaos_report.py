"""The chaos bench's verdict: what became of every acknowledged request (``bench/chaos.py``).

``drain`` reads every acknowledged request back through the API until it is terminal; then
``database_checks`` reads the app database (SQLite read only, or PostgreSQL) for duplicate or
missing care
flows and patients and misattributed care flows, ``log_summary`` picks the commonest warnings and
errors out of each component's log, and ``passed`` says whether the run lost, duplicated or
misattributed anything.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

TERMINAL = {"SUCCESS", "REJECTED", "FAILED"}
COMPONENTS = ("temporal", "worker", "api")


def _engine(db: Path | str) -> sa.Engine:
    """An engine on the app database: a SQLite file (opened read only) or a SQLAlchemy URL
    (PostgreSQL in the scaled topology)."""
    if isinstance(db, Path):
        return sa.create_engine(
            "sqlite://",
            creator=lambda: sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30),
            poolclass=sa.NullPool,
        )
    return sa.create_engine(db, poolclass=sa.NullPool)


def count_care_flows(db: Path | str) -> int:
    """Rows in the app database's ``care_flows`` table (``db`` as for ``_engine``)."""
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM care_flows")).scalar_one())
    finally:
        engine.dispose()


async def drain(
    http: httpx.AsyncClient,
    request_ids: list[str],
    seconds: float,
    care_flows_db: Path | str | None = None,
) -> tuple[dict[str, dict[str, Any]], float]:
    """Poll ``GET /v1/requests/{id}`` until every request is terminal or ``seconds`` pass.

    Args:
        http: a client on the API with the admin token (``Stack.admin_client``).
        request_ids: the acknowledged requests.
        seconds: the longest the drain may take.
        care_flows_db: the app database; when given, first wait (cheaply) until it holds a care
            flow per request, or its count stalls for 30 s.

    Returns:
        (the last detail, or ``{"status": "UNKNOWN"|"ERROR"}``, per request id; seconds taken)
    """
    started = time.monotonic()
    latest: dict[str, dict[str, Any]] = {r: {"status": "UNKNOWN"} for r in request_ids}
    pending = set(request_ids)
    gate = asyncio.Semaphore(16)

    async def look(request_id: str) -> None:
        async with gate:
            try:
                answer = await http.get(f"/v1/requests/{request_id}", timeout=10)
            except httpx.HTTPError:
                latest[request_id] = {"status": "ERROR"}
                return
            if answer.status_code == 200:
                latest[request_id] = answer.json()
                if latest[request_id].get("status") in TERMINAL:
                    pending.discard(request_id)
            elif answer.status_code == 404:
                latest[request_id] = {"status": "UNKNOWN"}
            else:
                latest[request_id] = {"status": "ERROR", "http": answer.status_code}

    # Cheap first: wait on the app database until every request has its care flow (or the count
    # stalls for 30 s), so the drain's own status queries do not compete with the worker.
    if care_flows_db is not None:
        last, stalled_since = -1, time.monotonic()
        while time.monotonic() - started < seconds:
            count = await asyncio.to_thread(count_care_flows, care_flows_db)
            if count >= len(request_ids):
                break
            if count != last:
                last, stalled_since = count, time.monotonic()
            elif time.monotonic() - stalled_since > 30:
                break
            await asyncio.sleep(1.0)
    for _ in range(10_000):  # bounded by time below; the count is only a backstop
        await asyncio.gather(*(look(r) for r in sorted(pending)))
        if not pending or time.monotonic() - started > seconds:
            break
        await asyncio.sleep(1.0)
    return latest, time.monotonic() - started


def database_checks(db: Path | str, details: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Duplicates and attribution, from the app database (read only).

    Args:
        db: the app's SQLite file, or the app database's SQLAlchemy URL.
        details: request id → its last ``GET /v1/requests/{id}`` answer (``drain``).

    Returns:
        Counts: ``care_flows``, ``patients``, ``identifiers`` (distinct system/value pairs);
        ``duplicate_care_flows`` (beyond one per request id, plus beyond one per payload
        ``seq``), ``duplicate_patients`` (beyond one per identifier, plus patients holding
        none), ``missing_care_flows`` (SUCCESS without its care flow, or with another id),
        ``misattributed_care_flows`` (the patient does not hold the payload's MRN).
    """
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT id, request_id, patient_id, data_points FROM care_flows")
            ).fetchall()
            patients = conn.execute(sa.text("SELECT id, anonymous FROM patients")).fetchall()
            identifiers = conn.execute(
                sa.text("SELECT patient_id, system, value FROM patient_identifiers")
            ).fetchall()
    finally:
        engine.dispose()
    care_flows = []
    for care_flow_id, request_id, patient_id, data_points in rows:
        points = json.loads(data_points) if isinstance(data_points, str) else data_points
        care_flows.append(
            (care_flow_id, request_id, patient_id, points.get("seq"), points.get("mrn"))
        )
    per_request = collections.Counter(r[1] for r in care_flows)
    per_seq = collections.Counter(r[3] for r in care_flows)
    duplicate_care_flows = sum(n - 1 for n in per_request.values() if n > 1) + sum(
        n - 1 for n in per_seq.values() if n > 1
    )
    patients_per_identifier: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    held_by: dict[str, set[str]] = collections.defaultdict(set)
    for patient_id, system, value in identifiers:
        patients_per_identifier[(system, value)].add(patient_id)
        held_by[patient_id].add(value)
    # Beyond one patient per identifier, plus patients holding no identifier at all.
    duplicate_patients = sum(len(p) - 1 for p in patients_per_identifier.values()) + sum(
        1 for patient_id, _ in patients if patient_id not in held_by
    )
    misattributed = sum(1 for r in care_flows if r[4] not in held_by.get(r[2], set()))
    by_request = {r[1]: r for r in care_flows}
    missing = sum(
        1
        for request_id, detail in details.items()
        if detail.get("status") == "SUCCESS"
        and (
            request_id not in by_request or by_request[request_id][0] != detail.get("care_flow_id")
        )
    )
    return {
        "care_flows": len(care_flows),
        "patients": len(patients),
        "identifiers": len(patients_per_identifier),
        "duplicate_care_flows": duplicate_care_flows,
        "duplicate_patients": duplicate_patients,
        "missing_care_flows": missing,
        "misattributed_care_flows": misattributed,
    }


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values``: the value at rank ``int(q * n)``, rounded to
    3 decimals (``None`` for no values)."""
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOGFMT = re.compile(r'level=(\w+) msg="((?:[^"\\]|\\.)*)"')
_PYLOG = re.compile(r"\b(WARNING|WARN|ERROR|CRITICAL)\b\s+(.*)")


def log_summary(logs: dict[str, str]) -> dict[str, Any]:
    """The commonest warning/error messages per component log (evidence behind a bad run).

    Args:
        logs: component name → its log text (logfmt lines from the dev server, Python logging
            lines from the worker and the API).

    Returns:
        Component name → ``{"<level>: <message, 90 characters at most>": count}``, the eight
        commonest, most common first.
    """
    summary: dict[str, Any] = {}
    for name, text in logs.items():
        messages: collections.Counter[str] = collections.Counter()
        for line in _ANSI.sub("", text).splitlines():
            found = _LOGFMT.search(line) or _PYLOG.search(line)
            if found and found.group(1).upper() not in ("INFO", "DEBUG"):
                messages[f"{found.group(1).lower()}: {found.group(2)[:90]}"] += 1
        summary[name] = dict(messages.most_common(8))
    return summary


def passed(result: dict[str, Any]) -> bool:
    """Nothing lost, duplicated, missing, misattributed or wrongly identified; no component
    exited on its own."""
    return (
        result["lost"] == 0
        and result["duplicate_care_flows"] == 0
        and result["duplicate_patients"] == 0
        and result["missing_care_flows"] == 0
        and result["misattributed_care_flows"] == 0
        and result["wrong_request_ids"] == 0
        and not result["unexpected_exits"]
    )
