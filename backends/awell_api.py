"""Awell's Orchestration API over GraphQL (httpx): the few operations the awell backend uses.

Every document here is checked against an SDL subset of Awell's published schema in the tests
(``tests/backends/awell/schema.graphql``). Faults are sorted for Temporal's retries:

========================================  =====================================================
HTTP 5xx, timeouts, connection errors     ``BackendUnavailableError`` ``awell_unavailable``
HTTP 429                                  ``BackendUnavailableError`` ``awell_rate_limited``,
                                          ``retry_after`` from ``Retry-After`` (seconds)
GraphQL errors, other 4xx,                ``BackendRefusedError`` ``backend_refused``, the
``success: false``                        message naming the operation and Awell's error codes
========================================  =====================================================

Messages carry the operation name, HTTP status and Awell's error codes only — never Awell's
error text (it may quote the values sent) and never the API key (sent as the ``apikey`` header).
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from dataclasses import dataclass, field
from typing import Any

import httpx

from backends.base import BackendRefusedError, BackendUnavailableError
from careflow.models import Identifier

log = logging.getLogger(__name__)

PATIENT_BY_IDENTIFIER = """
query PatientByIdentifier($system: String!, $value: String!) {
  patientByIdentifier(system: $system, value: $value) { code success patient { id } }
}
"""

CREATE_PATIENT = """
mutation CreatePatient($input: CreatePatientInput) {
  createPatient(input: $input) { code success patient { id } }
}
"""

START_PATHWAY = """
mutation StartPathway($input: StartPathwayInput!) {
  startPathway(input: $input) { code success pathway_id }
}
"""

PATIENT_PATHWAYS = """
query PatientPathways($patient_id: String, $filters: FilterPatientPathways) {
  patientPathways(patient_id: $patient_id, filters: $filters) {
    code success
    patientPathways { id pathway_definition_id status start_date }
  }
}
"""

PUBLISHED_PATHWAY_DEFINITIONS = """
query PublishedPathwayDefinitions {
  publishedPathwayDefinitions {
    code success
    publishedPathwayDefinitions {
      id title release_id
      data_point_definitions {
        id key title valueType optional
        possibleValues { value }
        range { min max }
      }
    }
  }
}
"""

ACTIVE_PATHWAY_STATUSES = ("starting", "active", "missing_baseline_info")

_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class PatientPathway:
    id: str
    pathway_definition_id: str
    status: str
    start_date: str


@dataclass(frozen=True)
class PublishedDefinition:
    """A published pathway definition and its baseline data point definitions (Awell's shape:
    ``{id, key, title, valueType, optional, possibleValues, range}``)."""

    id: str
    title: str
    release_id: str | None
    data_point_definitions: list[dict[str, Any]] = field(default_factory=list)


class AwellApi:
    """A small GraphQL client for Awell's Orchestration API.

    Args:
        url: the GraphQL endpoint (``AWELL_API_URL``).
        api_key: the API key (``AWELL_API_KEY``), sent as the ``apikey`` header.
        timeout: seconds per call.
        transport: an httpx transport (tests); the default opens real connections.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            timeout=timeout,
            headers={"apikey": api_key, "content-type": "application/json"},
            transport=transport,
        )
        self._url = url
        # Close the connection pool with this object (workers and the API build one each).
        weakref.finalize(self, self._http.close)

    def __repr__(self) -> str:  # never the key
        return f"AwellApi({self._url!r})"

    def close(self) -> None:
        self._http.close()

    # --- operations -----------------------------------------------------------------------------

    def patient_by_identifier(self, identifier: Identifier) -> str | None:
        """Awell's patient id holding ``identifier``, or None."""
        data = self.execute(
            "patientByIdentifier",
            PATIENT_BY_IDENTIFIER,
            {"system": identifier.system, "value": identifier.value},
            check_success=False,
        )
        patient = data.get("patient")
        return str(patient["id"]) if patient else None

    def create_patient(self, identifier: Identifier | None, profile: dict[str, Any]) -> str:
        """Create a patient with ``identifier`` (none: anonymous) and the mapped profile.

        Returns:
            Awell's patient id.
        """
        data = self.execute(
            "createPatient",
            CREATE_PATIENT,
            {"input": create_patient_input(identifier, profile)},
        )
        patient = data.get("patient")
        if not patient:
            raise BackendRefusedError("backend_refused", "Awell createPatient returned no patient")
        return str(patient["id"])

    def start_pathway(
        self,
        patient_id: str,
        pathway_definition_id: str,
        data_points: list[dict[str, str]],
        release_id: str | None,
    ) -> str:
        """Start a pathway; Awell's pathway id. ``data_points``: ``{data_point_definition_id,
        value}`` with every value a string."""
        start: dict[str, Any] = {
            "patient_id": patient_id,
            "pathway_definition_id": pathway_definition_id,
            "data_points": data_points,
        }
        if release_id:
            start["release_id"] = release_id
        data = self.execute("startPathway", START_PATHWAY, {"input": start})
        return str(data["pathway_id"])

    def patient_pathways(
        self, patient_id: str, statuses: tuple[str, ...] | None = None
    ) -> list[PatientPathway]:
        """The patient's pathways, optionally only those with one of ``statuses``."""
        variables: dict[str, Any] = {"patient_id": patient_id}
        if statuses:
            variables["filters"] = {"status": {"in": list(statuses)}}
        data = self.execute("patientPathways", PATIENT_PATHWAYS, variables)
        return [
            PatientPathway(
                id=str(p["id"]),
                pathway_definition_id=str(p["pathway_definition_id"]),
                status=str(p["status"]),
                start_date=str(p["start_date"]),
            )
            for p in data.get("patientPathways") or []
        ]

    def published_pathway_definitions(self) -> list[PublishedDefinition]:
        data = self.execute("publishedPathwayDefinitions", PUBLISHED_PATHWAY_DEFINITIONS, {})
        return [
            PublishedDefinition(
                id=str(d["id"]),
                title=str(d["title"]),
                release_id=d.get("release_id"),
                data_point_definitions=list(d.get("data_point_definitions") or []),
            )
            for d in data.get("publishedPathwayDefinitions") or []
        ]

    # --- transport ------------------------------------------------------------------------------

    def execute(
        self,
        field_name: str,
        document: str,
        variables: dict[str, Any],
        *,
        check_success: bool = True,
    ) -> dict[str, Any]:
        """POST one GraphQL operation; the payload of its top-level field ``field_name``.

        Raises:
            BackendUnavailableError: 5xx, 429 (with ``retry_after``), timeout, connection error.
            BackendRefusedError: other 4xx, GraphQL errors, or ``success: false``.
        """
        try:
            answer = self._http.post(self._url, json={"query": document, "variables": variables})
        except httpx.TimeoutException:
            raise _unavailable(field_name, "timed out") from None
        except httpx.HTTPError as exc:
            raise _unavailable(field_name, f"failed ({type(exc).__name__})") from None
        status = answer.status_code
        if status == 429:
            raise BackendUnavailableError(
                f"Awell {field_name} rate limited",
                code="awell_rate_limited",
                public_message=f"Awell rate-limited {field_name} (HTTP 429)",
                retry_after=_retry_after(answer.headers.get("retry-after")),
            )
        if status >= 500:
            raise _unavailable(field_name, f"answered HTTP {status}")
        body = _json(answer)
        errors = body.get("errors") if isinstance(body, dict) else None
        if status >= 400 or errors:
            codes = _error_codes(errors) or [f"HTTP_{status}"]
            raise BackendRefusedError(
                "backend_refused", f"Awell refused {field_name}: {', '.join(codes)}"
            )
        data = (body.get("data") or {}).get(field_name) if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise BackendRefusedError(
                "backend_refused", f"Awell answered {field_name} without data"
            )
        if check_success and data.get("success") is False:
            code = str(data.get("code") or "UNSUCCESSFUL")
            code = code if _CODE.match(code) else "UNSUCCESSFUL"
            raise BackendRefusedError("backend_refused", f"Awell refused {field_name}: {code}")
        return data


def _unavailable(field_name: str, what: str) -> BackendUnavailableError:
    text = f"Awell {field_name} {what}"
    return BackendUnavailableError(text, code="awell_unavailable", public_message=text)


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _error_codes(errors: Any) -> list[str]:
    """Awell's error codes (``extensions.code``) — never the messages, which may quote values."""
    codes: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        code = (
            ((error or {}).get("extensions") or {}).get("code") if isinstance(error, dict) else None
        )
        text = str(code) if code is not None else "GRAPHQL_ERROR"
        text = text if _CODE.match(text) else "GRAPHQL_ERROR"
        if text not in codes:
            codes.append(text)
    return codes


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form; an HTTP date is ignored),
    capped at 60 s."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), 60.0) if seconds == seconds else None


_SEX = {"male": "MALE", "female": "FEMALE", "other": "NOT_KNOWN", "unknown": "NOT_KNOWN"}


def create_patient_input(identifier: Identifier | None, profile: dict[str, Any]) -> dict[str, Any]:
    """Awell's ``CreatePatientInput`` from an identifier and a mapped profile (contract §2
    profile fields; sex as Awell's ``NOT_KNOWN``/``MALE``/``FEMALE``, phone E.164)."""
    payload: dict[str, Any] = {
        "identifier": [identifier.model_dump()] if identifier is not None else [],
    }
    for name in ("first_name", "last_name", "birth_date", "email", "preferred_language", "phone"):
        value = profile.get(name)
        if value is not None:
            payload[name] = str(value)
    sex = profile.get("sex")
    if sex is not None:
        payload["sex"] = _SEX.get(str(sex), "NOT_KNOWN")
    return payload
