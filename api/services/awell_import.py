"""``POST /v1/care-flow-definitions/import``: local definitions from Awell's published pathway
definitions, so nobody types data point definitions by hand.

A pathway definition already imported (a local definition with ``backend.kind == "awell"`` and
its ``pathway_definition_id``) is updated in place: title, data point definitions and the id map
change; the local id, ``published`` and a pinned ``release_id`` stay. A new one is created,
published, with an id made from its title. Local data point ids are Awell's data point keys
(what a person reads); ``backend.data_point_definition_ids`` maps them to Awell's ids.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from api.services.configuration import ConfigurationService
from backends.awell_api import AwellApi, PublishedDefinition
from careflow.errors import ConflictError
from careflow.models import (
    AwellBackendConfig,
    CareFlowDefinition,
    DataPointDefinition,
    RequestError,
    ValueRange,
    ValueType,
)
from persistence.store import Store

_VALUE_TYPES = {
    "BOOLEAN": ValueType.BOOLEAN,
    "DATE": ValueType.DATE,
    "NUMBER": ValueType.NUMBER,
    "STRING": ValueType.STRING,
    "NUMBERS_ARRAY": ValueType.NUMBERS_ARRAY,
    "STRINGS_ARRAY": ValueType.STRINGS_ARRAY,
    "TELEPHONE": ValueType.TELEPHONE,
    "JSON": ValueType.JSON,
    # Attachments are JSON objects in Awell's data points.
    "ATTACHMENT": ValueType.JSON,
    "ATTACHMENTS_ARRAY": ValueType.JSON,
}


class ImportAnswer(BaseModel):
    """Local definition ids created and updated, Awell pathway definitions skipped (with the
    reason's code), and webhooks ``?force=true`` disabled."""

    created: list[str]
    updated: list[str]
    skipped: list[RequestError]
    disabled_webhooks: list[str] = []


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:56].strip("-")
    return slug


def data_points(published: PublishedDefinition) -> tuple[list[DataPointDefinition], dict[str, str]]:
    """Local data point definitions (ids = Awell keys) and the key → Awell id map."""
    points: list[DataPointDefinition] = []
    ids: dict[str, str] = {}
    for item in published.data_point_definitions:
        key = str(item.get("key") or item["id"])
        if key in ids:  # keys are unique per pathway; fall back to the id if not
            key = str(item["id"])
        ids[key] = str(item["id"])
        possible = [v.get("value") for v in item.get("possibleValues") or []] or None
        span = item.get("range") or None
        points.append(
            DataPointDefinition(
                id=key,
                title=str(item.get("title") or key),
                value_type=_VALUE_TYPES.get(str(item.get("valueType")), ValueType.JSON),
                optional=bool(item.get("optional")),
                possible_values=possible,
                range=ValueRange(min=span.get("min"), max=span.get("max")) if span else None,
            )
        )
    return points, {k: v for k, v in ids.items() if k != v}


class AwellImportService:
    """Args: store: the store; configuration: the definition writes (enable gate, cache
    refresh); api: Awell's API (None: not configured)."""

    def __init__(
        self, store: Store, configuration: ConfigurationService, api: AwellApi | None
    ) -> None:
        self._store = store
        self._configuration = configuration
        self._api = api

    def import_definitions(self, *, force: bool = False) -> ImportAnswer:
        """Create or update local definitions from Awell's published pathway definitions.

        An update that would leave enabled webhooks incomplete (the edit gate of
        ``PUT /v1/care-flow-definitions/{id}``) is skipped (``webhooks_left_incomplete``)
        unless ``force``: then those webhooks are disabled and listed.

        Raises:
            ConflictError: ``awell_not_configured`` (409).
            BackendRefusedError / BackendUnavailableError: Awell refused or is unavailable.
        """
        if self._api is None:
            raise ConflictError(
                RequestError(
                    code="awell_not_configured",
                    message="set AWELL_API_URL and AWELL_API_KEY to import from Awell",
                )
            )
        return import_awell_definitions(self._store, self._api, self._configuration, force)


def import_awell_definitions(
    store: Store, api: AwellApi, configuration: ConfigurationService, force: bool
) -> ImportAnswer:
    """Create or update local definitions from Awell's published pathway definitions.

    Raises:
        BackendRefusedError / BackendUnavailableError: Awell refused or is unavailable.
    """
    existing = store.configuration.list_care_flow_definitions()
    by_pathway = {
        d.backend.pathway_definition_id: d
        for d in existing
        if isinstance(d.backend, AwellBackendConfig)
    }
    taken = {d.id for d in existing}
    answer = ImportAnswer(created=[], updated=[], skipped=[])
    for published in api.published_pathway_definitions():
        try:
            points, ids = data_points(published)
        except (ValidationError, KeyError, TypeError, AttributeError):
            answer.skipped.append(_skip(published, "unsupported_data_point_definition"))
            continue
        current = by_pathway.get(published.id)
        if current is not None:
            assert isinstance(current.backend, AwellBackendConfig)
            backend = current.backend.model_copy(update={"data_point_definition_ids": ids})
            updated = _definition(current.id, published, points, backend, current.published)
            if updated is None:
                answer.skipped.append(_skip(published, "invalid_definition"))
                continue
            try:
                saved = configuration.save_care_flow_definition_gated(
                    updated, replace=True, force=force
                )
            except ConflictError as exc:
                hooks = sorted({str(getattr(e, "webhook_id", "")) for e in exc.errors})
                answer.skipped.append(
                    RequestError(
                        code="webhooks_left_incomplete",
                        message=f"pathway definition {_shown(published.id)} was not imported: "
                        "it would "
                        f"leave enabled webhooks incomplete ({', '.join(hooks)}); "
                        "use ?force=true to disable them",
                    )
                )
                continue
            answer.updated.append(current.id)
            answer.disabled_webhooks.extend(w.webhook_id for w in saved.disabled_webhooks)
            continue
        local_id = _free_id(_slug(published.title) or "awell", published.id, taken)
        try:
            backend = AwellBackendConfig(
                kind="awell", pathway_definition_id=published.id, data_point_definition_ids=ids
            )
        except ValidationError:  # Awell's values do not fit a local definition (e.g. length)
            answer.skipped.append(_skip(published, "invalid_definition"))
            continue
        created = _definition(local_id, published, points, backend, True)
        if created is None:
            answer.skipped.append(_skip(published, "invalid_definition"))
            continue
        try:
            configuration.save_care_flow_definition_gated(created, replace=False)
        except ConflictError:
            # Another import (a double click, a second replica) created it meanwhile.
            answer.skipped.append(_skip(published, "care_flow_definition_exists"))
            continue
        taken.add(local_id)
        answer.created.append(local_id)
    return answer


def _definition(
    local_id: str,
    published: PublishedDefinition,
    points: list[DataPointDefinition],
    backend: AwellBackendConfig,
    is_published: bool,
) -> CareFlowDefinition | None:
    data: dict[str, Any] = {
        "id": local_id,
        "title": published.title,
        "published": is_published,
        "backend": backend,
        "data_point_definitions": points,
    }
    try:
        return CareFlowDefinition.model_validate(data)
    except ValidationError:
        return None


def _free_id(base: str, awell_id: str, taken: set[str]) -> str:
    candidate = base
    suffix = _slug(awell_id)[:6] or "x"
    n = 1
    while candidate in taken:
        candidate = f"{base[:50]}-{suffix}" if n == 1 else f"{base[:50]}-{suffix}-{n}"
        n += 1
    return candidate


def _skip(published: PublishedDefinition, code: str) -> RequestError:
    return RequestError(
        code=code, message=f"pathway definition {_shown(published.id)} was not imported"
    )


def _shown(awell_id: str) -> str:
    """An Awell id for a message: ids are not PHI, but a remote value of any size is cut."""
    return awell_id if len(awell_id) <= 64 else awell_id[:64] + "…"
