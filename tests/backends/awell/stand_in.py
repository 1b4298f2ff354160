"""A local stand-in of Awell's Orchestration API (GraphQL over HTTP) for the awell backend's tests.

Every query is parsed and validated with graphql-core against ``schema.graphql`` — an unchanged
SDL subset of Awell's published schema — so a field, argument or type the backend gets wrong is
a validation error (recorded in ``invalid`` and answered 400, as a GraphQL server does).
Resolvers keep patients and pathways in memory and check what Awell documents about inputs
(data point values are strings of the right shape for the data point's value type, phones E.164).
Like Awell, ``createPatient`` never deduplicates identifiers: a second call makes a second
patient, so a missing serialisation shows as two ``createPatient`` calls.

Faults are armed per operation (``fail(operation, kind, times)``):
``5xx`` answer 503 without running; ``5xx_after`` run, then answer 502 (the answer is lost);
``429`` answer 429 with ``Retry-After``; ``graphql_error`` answer 200 with an error coded
``BAD_USER_INPUT``; ``slow`` sleep ``slow_seconds`` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphql import GraphQLError, build_schema, graphql, parse, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.serving import serve_asgi

SCHEMA = build_schema((Path(__file__).parent / "schema.graphql").read_text())
API_KEY = "awell-test-key-do-not-log"

_NUMBER = re.compile(r"^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2}))?$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def _bad_input(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})


def value_ok(value_type: str, value: str) -> bool:
    """Whether ``value`` is how Awell expects a data point of ``value_type`` as a string."""
    if value_type == "NUMBER":
        return bool(_NUMBER.match(value))
    if value_type == "BOOLEAN":
        return value in ("true", "false")
    if value_type == "DATE":
        return bool(_DATE.match(value))
    if value_type == "TELEPHONE":
        return bool(_E164.match(value))
    if value_type in ("STRINGS_ARRAY", "NUMBERS_ARRAY", "JSON"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return False
        if value_type == "STRINGS_ARRAY":
            return isinstance(parsed, list) and all(isinstance(v, str) for v in parsed)
        if value_type == "NUMBERS_ARRAY":
            return isinstance(parsed, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in parsed
            )
        return True
    return True


@dataclass
class Fault:
    kind: str
    times: int


@dataclass
class AwellStandIn:
    """The in-memory tenant and its fault switches."""

    definitions: list[dict[str, Any]] = field(default_factory=list)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)
    pathways: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    invalid: list[str] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    create_delay: float = 0.2
    slow_seconds: float = 3.0
    seen_headers: list[dict[str, str]] = field(default_factory=list)

    def fail(self, operation: str, kind: str, times: int = 1) -> None:
        self.faults.setdefault(operation, []).append(Fault(kind, times))

    def _fault(self, operation: str) -> str | None:
        queue = self.faults.get(operation) or []
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault.kind

    def add_definition(
        self, definition_id: str, title: str, points: list[dict[str, Any]], release_id: str = "r1"
    ) -> None:
        """A published pathway definition; points ``{id, key, title, valueType, optional}``."""
        self.definitions.append(
            {
                "id": definition_id,
                "title": title,
                "release_id": release_id,
                "data_point_definitions": [
                    {
                        "category": "PATHWAY",
                        "source_definition_id": definition_id,
                        "possibleValues": None,
                        "range": None,
                        **point,
                    }
                    for point in points
                ],
            }
        )

    # --- resolvers (graphql-core calls root callables with (info, **args)) ---------------------

    def patientByIdentifier(self, _info: Any, system: str, value: str) -> dict[str, Any]:
        for patient in self.patients.values():
            if {"system": system, "value": value} in patient["profile"]["identifier"]:
                return {"code": "200", "success": True, "patient": patient}
        return {"code": "200", "success": True, "patient": None}

    async def createPatient(self, _info: Any, input: dict[str, Any] | None = None) -> dict:
        data = dict(input or {})
        for name in ("phone", "mobile_phone"):
            if data.get(name) is not None and not _E164.match(data[name]):
                raise _bad_input(f"{name} must be E.164")
        language = data.get("preferred_language")
        if language is not None and not re.match(r"^[a-z]{2}$", language):
            raise _bad_input("preferred_language must be ISO 639-1")
        await asyncio.sleep(self.create_delay)  # the window in which racing creates overlap
        patient_id = "pat-" + uuid.uuid4().hex[:12]
        profile = {**data, "identifier": list(data.get("identifier") or [])}
        patient = {"id": patient_id, "tenant_id": "t1", "profile": profile}
        self.patients[patient_id] = patient
        return {"code": "200", "success": True, "patient": patient}

    def startPathway(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        if input["patient_id"] not in self.patients:
            raise GraphQLError("patient not found", extensions={"code": "NOT_FOUND"})
        definition = next(
            (d for d in self.definitions if d["id"] == input["pathway_definition_id"]), None
        )
        if definition is None:
            raise GraphQLError("pathway definition not found", extensions={"code": "NOT_FOUND"})
        types = {p["id"]: p["valueType"] for p in definition["data_point_definitions"]}
        for point in input.get("data_points") or []:
            value_type = types.get(point["data_point_definition_id"])
            if value_type is None:
                raise _bad_input("unknown data point definition")
            if not value_ok(value_type, point["value"]):
                raise _bad_input(f"value is not a valid {value_type}")
        pathway_id = "pw-" + uuid.uuid4().hex[:12]
        self.pathways[pathway_id] = {
            "id": pathway_id,
            "title": definition["title"],
            "status": "active",
            "pathway_definition_id": definition["id"],
            "release_id": input.get("release_id") or definition["release_id"],
            "start_date": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "patient_id": input["patient_id"],
            "data_points": list(input.get("data_points") or []),
        }
        return {"code": "200", "success": True, "pathway_id": pathway_id, "stakeholders": []}

    def patientPathways(
        self,
        _info: Any,
        patient_id: str | None = None,
        patient_identifier: Any = None,
        filters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        wanted = ((filters or {}).get("status") or {}).get("in")
        found = [
            p
            for p in self.pathways.values()
            if p["patient_id"] == patient_id and (wanted is None or p["status"] in wanted)
        ]
        return {"code": "200", "success": True, "patientPathways": found}

    def publishedPathwayDefinitions(self, _info: Any) -> dict[str, Any]:
        return {"code": "200", "success": True, "publishedPathwayDefinitions": self.definitions}

    # --- HTTP -----------------------------------------------------------------------------------

    async def endpoint(self, request: Request) -> JSONResponse:
        self.seen_headers.append(dict(request.headers))
        if request.headers.get("apikey") != API_KEY:
            error = {"message": "unauthorized", "extensions": {"code": "UNAUTHENTICATED"}}
            return JSONResponse({"errors": [error]}, status_code=401)
        body = await request.json()
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            self.invalid.append(exc.message)
            return JSONResponse({"errors": [exc.formatted]}, status_code=400)
        problems = validate(SCHEMA, document)
        if problems:
            self.invalid.extend(p.message for p in problems)
            return JSONResponse({"errors": [p.formatted for p in problems]}, status_code=400)
        operation = _field_name(document)
        self.calls[operation] += 1
        fault = self._fault(operation)
        if fault == "5xx":
            return JSONResponse({"message": "unavailable"}, status_code=503)
        if fault == "429":
            return JSONResponse({"message": "slow down"}, 429, headers={"Retry-After": "1"})
        if fault == "graphql_error":
            error = {"message": "value rejected", "extensions": {"code": "BAD_USER_INPUT"}}
            return JSONResponse({"data": None, "errors": [error]})
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        result = await graphql(
            SCHEMA, body["query"], root_value=self, variable_values=body.get("variables")
        )
        if fault == "5xx_after":
            return JSONResponse({"message": "bad gateway"}, status_code=502)
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(answer)


def _field_name(document: Any) -> str:
    operation = document.definitions[0]
    return str(operation.selection_set.selections[0].name.value)


@contextlib.asynccontextmanager
async def serve_stand_in(stand_in: AwellStandIn) -> AsyncIterator[str]:
    """Serve ``stand_in`` on a free port; yields its GraphQL URL."""
    app = Starlette(routes=[Route("/graphql", stand_in.endpoint, methods=["POST"])])
    async with serve_asgi(app) as base_url:
        yield f"{base_url}/graphql"
