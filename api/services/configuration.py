"""Identifier systems and care flow definitions: every write refreshes the configuration cache.

The API's services are the one layer that writes configuration, so they are the one place that
refreshes this process's ``ConfigCache`` after a write (other processes see the new revision
within ``config_refresh_seconds``). Routes and web pages call these, never the repository.

Replacing a care flow definition runs the enable gate of every enabled webhook that uses it
(contract §2): a change that would leave one incomplete (a new required data point it does not
map, a mapped data point removed, a mapped data point's ``value_type`` changed, unpublishing) is
refused with 409 naming each webhook and data point, unless ``force`` — then those webhooks are
disabled in the same transaction. The gate reads the configuration inside that transaction under
the configuration lock (``ConfigurationRepository.locked``), like webhook enable / edit / disable,
so the two cannot interleave across threads or API replicas.
"""

from __future__ import annotations

import dataclasses
import re

from pydantic import BaseModel

from careflow.errors import ConflictError, InvalidConfigError, not_found
from careflow.models import (
    CareFlowDefinition,
    IdentifierSystem,
    RequestError,
    TemporalBackendConfig,
    Webhook,
)
from careflow.snapshot import ConfigSnapshot
from careflow.validation import enable_problems
from persistence.config_cache import ConfigCache
from persistence.store import Store


class WebhookProblem(RequestError):
    """An enable-gate problem of one webhook that a definition change would cause."""

    webhook_id: str
    webhook_name: str


class DisabledWebhook(BaseModel):
    """A webhook a forced definition change disabled, and why."""

    webhook_id: str
    name: str
    errors: list[RequestError]


@dataclasses.dataclass
class DefinitionSaved:
    """What a save did: the definition as stored and the webhooks it disabled (``force``)."""

    definition: CareFlowDefinition
    disabled_webhooks: list[DisabledWebhook]


def _key(problem: RequestError) -> tuple[str, str | None, str | None]:
    return problem.code, problem.data_point_definition_id, problem.path


class ConfigurationService:
    """Args: store: the store; config: the process's configuration cache (refreshed on writes);
    unconfigured_backends: backend kinds without settings (a definition moved to one leaves its
    enabled webhooks incomplete); reserved_task_queues: this service's own task queues, which a
    temporal-backend definition may not name."""

    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        unconfigured_backends: frozenset[str] = frozenset(),
        reserved_task_queues: frozenset[str] = frozenset(),
    ) -> None:
        self._repository = store.configuration
        self._config = config
        self._unconfigured_backends = unconfigured_backends
        self._reserved_task_queues = reserved_task_queues

    def create_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        """Raises: ConflictError (409) when the name or system URI is taken."""
        created = self._repository.create_identifier_system(item)
        self._config.refresh()
        return created

    def update_identifier_system(self, item: IdentifierSystem) -> IdentifierSystem:
        """Raises: NotFoundError (404); ConflictError (409) when the system URI is taken."""
        updated = self._repository.update_identifier_system(item)
        self._config.refresh()
        return updated

    def delete_identifier_system(self, name: str) -> None:
        """Raises: NotFoundError (404); ConflictError (409) while a webhook uses it."""
        self._repository.delete_identifier_system(name)
        self._config.refresh()

    def save_care_flow_definition(
        self, item: CareFlowDefinition, *, replace: bool, force: bool = False
    ) -> CareFlowDefinition:
        """Create (``replace=False``) or replace a care flow definition.

        Raises:
            ConflictError: creating an id that exists (409); replacing one in a way that leaves
                an enabled webhook incomplete, without ``force`` (409, one ``WebhookProblem``
                per webhook and problem).
            NotFoundError: replacing an id that does not exist (404).
        """
        return self.save_care_flow_definition_gated(item, replace=replace, force=force).definition

    def save_care_flow_definition_gated(
        self, item: CareFlowDefinition, *, replace: bool, force: bool = False
    ) -> DefinitionSaved:
        """As ``save_care_flow_definition``, also saying which webhooks ``force`` disabled.

        Requests already accepted for a disabled webhook run to their end against the new
        definition (an unpublished one fails them at ``start_care_flow``; both are retryable).
        """
        problems = temporal_backend_problems(item, self._reserved_task_queues)
        if problems:
            raise InvalidConfigError(problems)
        if not replace:
            saved = self._repository.create_care_flow_definition(item)
            self._config.refresh()
            return DefinitionSaved(definition=saved, disabled_webhooks=[])
        # The gate reads and the write happen in one transaction under the configuration
        # lock, so a concurrent enable / webhook edit either ran before (and is seen here) or
        # waits and then sees this definition.
        with self._repository.locked() as conn:
            snapshot = self._repository.snapshot(conn)
            if item.id not in snapshot.definitions:
                raise not_found("care flow definition", "care_flow_definition_not_found")
            affected = left_incomplete(snapshot, item, self._unconfigured_backends)
            if affected and not force:
                raise ConflictError(
                    [
                        WebhookProblem(
                            **problem.model_dump(exclude={"message"}),
                            message=f"webhook {hook.name!r} ({hook.id}): {problem.message}",
                            webhook_id=hook.id,
                            webhook_name=hook.name,
                        )
                        for hook, problems in affected
                        for problem in problems
                    ]
                )
            saved = self._repository.update_care_flow_definition(
                item, disable_webhook_ids=[hook.id for hook, _ in affected], conn=conn
            )
        self._config.refresh()
        disabled = [
            DisabledWebhook(webhook_id=hook.id, name=hook.name, errors=problems)
            for hook, problems in affected
        ]
        return DefinitionSaved(definition=saved, disabled_webhooks=disabled)


def _type_changes(
    hook: Webhook, before: CareFlowDefinition | None, after: CareFlowDefinition
) -> list[RequestError]:
    """A mapped data point whose ``value_type`` changes: the webhook's payloads were shaped for
    the old type, so every delivery may now be REJECTED — treated as breaking."""
    if before is None:
        return []
    old = {p.id: p.value_type for p in before.data_point_definitions}
    new = {p.id: p.value_type for p in after.data_point_definitions}
    return [
        RequestError(
            code="data_point_value_type_changed",
            message=f"the mapped data point's value_type changes from {old[m].value} "
            f"to {new[m].value}",
            data_point_definition_id=m,
        )
        for m in dict.fromkeys(x.data_point_definition_id for x in hook.data_point_mappings)
        if m in old and m in new and old[m] != new[m]
    ]


def left_incomplete(
    snapshot: ConfigSnapshot,
    item: CareFlowDefinition,
    unconfigured_backends: frozenset[str] = frozenset(),
) -> list[tuple[Webhook, list[RequestError]]]:
    """The enabled webhooks of ``item.id`` that replacing the definition by ``item`` would
    leave incomplete (new enable-gate problems) or whose mapped data points change
    ``value_type``, each with those problems; problems they have already are left out."""
    trial = dataclasses.replace(snapshot, definitions={**snapshot.definitions, item.id: item})
    affected = []
    for hook in snapshot.webhooks.values():
        if not hook.enabled or hook.deleted or hook.care_flow_definition_id != item.id:
            continue
        before = {_key(p) for p in enable_problems(hook, snapshot, unconfigured_backends)}
        added = [
            p for p in enable_problems(hook, trial, unconfigured_backends) if _key(p) not in before
        ]
        added += _type_changes(hook, snapshot.definitions.get(item.id), item)
        if added:
            affected.append((hook, added))
    return affected


# This service's own workflow types: a care flow started as one of them would run our code.
RESERVED_WORKFLOW_TYPES = frozenset(
    {
        "WebhookRequestWorkflow",
        "PatientResolutionWorkflow",
        "DebounceWindowWorkflow",
        "AlertWorkflow",
    }
)
# Workflow type and task queue names: letters, digits and ``_ - . : / @ $ +`` — no quote,
# backslash or space, which visibility queries (``WorkflowType = '…'``) would have to escape.
_TEMPORAL_NAME = re.compile(r"[A-Za-z0-9_.:/@$+-]+")


def temporal_backend_problems(
    item: CareFlowDefinition, reserved_task_queues: frozenset[str]
) -> list[RequestError]:
    """Why a temporal-backend definition cannot be saved (``invalid_backend``); [] when it can
    or when it names another backend."""
    backend = item.backend
    if not isinstance(backend, TemporalBackendConfig):
        return []
    problems = [
        RequestError(
            code="invalid_backend",
            message=f"backend.{field} may hold only letters, digits and _ - . : / @ $ +",
        )
        for field, value in (
            ("workflow_type", backend.workflow_type),
            ("task_queue", backend.task_queue),
        )
        if not _TEMPORAL_NAME.fullmatch(value)
    ]
    if backend.workflow_type in RESERVED_WORKFLOW_TYPES:
        problems.append(
            RequestError(
                code="invalid_backend",
                message=f"backend.workflow_type {backend.workflow_type!r} is this service's own",
            )
        )
    if backend.task_queue in reserved_task_queues:
        problems.append(
            RequestError(
                code="invalid_backend",
                message=f"backend.task_queue {backend.task_queue!r} is this service's own",
            )
        )
    return problems
