"""Webhook configuration: create, merge-patch (RFC 7396), enable / disable, soft delete.

Every save is checked: unparsable paths → ``invalid_path``, unknown signature schemes →
``invalid_signature_scheme`` (422); an edit that would leave an enabled webhook incomplete is
refused with the enable gate's problems (409).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import json_merge_patch
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from careflow import mapping, signatures
from careflow.answers import PreviewAnswer, SignaturePublic, WebhookPublic
from careflow.conditions.checks import check_conditions, check_debounce
from careflow.errors import ConflictError, InvalidConfigError, NotFoundError, from_validation
from careflow.models import (
    PreviewRequest,
    RequestError,
    RequestStatus,
    Webhook,
    WebhookCreate,
    WebhookFields,
)
from careflow.read_only import read_only_problems
from careflow.snapshot import ConfigSnapshot
from careflow.validation import enable_problems, validate, without_enabled_check
from persistence.config_cache import ConfigCache
from persistence.store import Store, new_webhook_id


def _check_save(fields: WebhookFields) -> None:
    problems = mapping.check_paths(fields)
    problems += check_conditions(fields.conditions) + check_debounce(fields.debounce)
    if fields.signature is not None:
        problems.extend(signatures.config_problems(fields.signature))
    if problems:
        raise InvalidConfigError(problems)


def to_public(hook: Webhook, base_url: str) -> WebhookPublic:
    """The API view of a webhook: URLs added, secrets left out."""
    signature = None
    if hook.signature is not None:
        signature = SignaturePublic(
            **hook.signature.model_dump(exclude={"secret"}), has_secret=bool(hook.signature.secret)
        )
    data = hook.model_dump(exclude={"signature", "deleted"})
    return WebhookPublic(
        **data,
        signature=signature,
        url=f"{base_url}/hooks/{hook.id}",
        test_url=f"{base_url}/hooks/{hook.id}/test",
    )


class WebhookService:
    """Args: store: the store; config: the process's configuration cache (refreshed on writes);
    unconfigured_backends: backend kinds without settings (their definitions cannot be enabled).
    """

    def __init__(
        self,
        store: Store,
        config: ConfigCache,
        unconfigured_backends: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._config = config
        self._unconfigured_backends = unconfigured_backends

    def _check_definition(self, definition_id: str, snapshot: ConfigSnapshot | None = None) -> None:
        if definition_id not in (snapshot or self._config.refresh()).definitions:
            raise InvalidConfigError(
                RequestError(
                    code="care_flow_definition_not_found",
                    message=f"care flow definition {definition_id!r} does not exist",
                )
            )

    def _without_read_only(self, current: Webhook, patch: dict[str, Any]) -> dict[str, Any]:
        """The patch without the read-only fields a GET returned (equal ones are accepted).

        Raises:
            InvalidConfigError: ``read_only_field`` for each one that differs (422).
        """
        public = to_public(current, "")
        stored: dict[str, Any] = {
            "id": current.id,
            "enabled": current.enabled,
            "created_at": current.created_at,
            "updated_at": current.updated_at,
        }
        # URLs depend on the public base URL: only their webhook-specific tail is compared.
        urls = {"url": public.url, "test_url": public.test_url}
        given_urls = {
            k: v.rsplit("/hooks/", 1)[-1] if isinstance(v, str) else v
            for k, v in patch.items()
            if k in urls
        }
        problems = read_only_problems(patch, stored) + read_only_problems(
            given_urls, {k: v.rsplit("/hooks/", 1)[-1] for k, v in urls.items()}
        )
        signature = patch.get("signature")
        if isinstance(signature, dict) and "has_secret" in signature:
            has_secret = bool(current.signature and current.signature.secret)
            problems += read_only_problems(
                {"signature.has_secret": signature["has_secret"]},
                {"signature.has_secret": has_secret},
            )
            patch = {
                **patch,
                "signature": {k: v for k, v in signature.items() if k != "has_secret"},
            }
        if problems:
            raise InvalidConfigError(problems)
        return {k: v for k, v in patch.items() if k not in stored and k not in urls}

    def create(self, fields: WebhookCreate) -> Webhook:
        """Create a webhook, disabled.

        Raises:
            InvalidConfigError: ``care_flow_definition_not_found``, ``invalid_path``, … (422).
        """
        _check_save(fields)
        self._check_definition(fields.care_flow_definition_id)
        now = datetime.now(UTC)
        hook = Webhook(
            **fields.model_dump(),
            id=new_webhook_id(),
            enabled=False,
            created_at=now,
            updated_at=now,
        )
        self._store.configuration.insert_webhook(hook)
        self._config.refresh()
        return hook

    def patch(self, webhook_id: str, patch: dict[str, Any]) -> Webhook:
        """Apply a JSON merge patch; arrays replace, an omitted secret is kept.

        Raises:
            NotFoundError: unknown webhook (404).
            InvalidConfigError: the result does not validate or a path does not parse (422).
            ConflictError: the webhook is enabled and the result would be incomplete (409).
        """
        # Read, gate and write under the configuration lock: ``enabled`` is rewritten as read
        # here, so a concurrent definition edit that disables the webhook waits or is seen.
        with self._store.configuration.locked() as conn:
            current = self._store.configuration.get_webhook(webhook_id, conn=conn)
            saved = self._patched(current, self._without_read_only(current, patch), conn)
        self._config.refresh()
        return saved

    def _patched(self, current: Webhook, patch: dict[str, Any], conn: Connection) -> Webhook:
        document = current.model_dump(
            mode="json", exclude={"id", "enabled", "deleted", "created_at", "updated_at"}
        )
        # RFC 7396 §2 on a fresh dump (the library merges into it in place): an omitted secret
        # is kept because the dump holds it; ``"secret": null`` removes it.
        merged = json_merge_patch.merge(document, patch)
        try:
            fields = WebhookFields.model_validate(merged)
        except ValidationError as exc:
            # The code POST answers with (api.errors' validation handler): one code per route kind.
            raise InvalidConfigError(from_validation(exc.errors())) from exc
        snapshot = self._store.configuration.snapshot(conn)
        if fields.care_flow_definition_id != current.care_flow_definition_id:
            self._check_definition(fields.care_flow_definition_id, snapshot)
        _check_save(fields)
        if current.enabled:
            problems = enable_problems(fields, snapshot, self._unconfigured_backends)
            if problems:
                raise ConflictError(problems)
        updated = Webhook(
            **fields.model_dump(),
            id=current.id,
            enabled=current.enabled,
            deleted=current.deleted,
            created_at=current.created_at,
            updated_at=current.updated_at,
        )
        if updated == current:  # a no-op patch (``{}``, or the same values): nothing to save
            return current
        return self._store.configuration.save_webhook(updated, conn=conn)

    def enable(self, webhook_id: str) -> Webhook:
        """Enable a webhook: the gate runs on the state the write changes (configuration lock).

        Raises:
            NotFoundError: unknown webhook (404).
            ConflictError: one error per enable-gate problem (409).
        """
        repository = self._store.configuration
        with repository.locked() as conn:
            current = repository.get_webhook(webhook_id, conn=conn)
            problems = enable_problems(
                current, repository.snapshot(conn), self._unconfigured_backends
            )
            if problems:
                raise ConflictError(problems)
            saved = repository.save_webhook(current.model_copy(update={"enabled": True}), conn)
        self._config.refresh()
        return saved

    def disable(self, webhook_id: str) -> Webhook:
        return self._update(webhook_id, enabled=False)

    def delete(self, webhook_id: str) -> None:
        """Soft delete: disabled and hidden; requests in flight finish."""
        self._update(webhook_id, enabled=False, deleted=True)

    def preview(self, webhook_id: str, proposal: PreviewRequest) -> PreviewAnswer:
        """Evaluate a proposed mapping and conditions on a kept test payload (newest when
        ``request_id`` is omitted), saving nothing. Unparsable proposed paths come back as
        ``invalid_path`` errors, unusable condition rules as ``invalid_condition``; the answer
        carries the conditions' verdict with each rule's outcome (IGNORED when not met).

        Raises:
            NotFoundError: unknown webhook, or no such kept test payload.
        """
        current = self._store.configuration.get_webhook(webhook_id)
        kept = self._store.test_payloads.list_test_payloads(webhook_id)
        if proposal.request_id is not None:
            kept = [k for k in kept if k.request_id == proposal.request_id]
        if not kept:
            raise NotFoundError(
                RequestError(code="test_payload_not_found", message="no kept test payload")
            )
        update: dict[str, Any] = {}
        if proposal.data_point_mappings is not None:
            update["data_point_mappings"] = proposal.data_point_mappings
        if "patient_identifier" in proposal.model_fields_set:
            update["patient_identifier"] = proposal.patient_identifier
        if "conditions" in proposal.model_fields_set:
            update["conditions"] = proposal.conditions
        candidate = current.model_copy(update=update)
        problems = mapping.check_paths(candidate) + check_conditions(candidate.conditions)
        if problems:
            return PreviewAnswer(
                verdict=RequestStatus.REJECTED,
                errors=problems,
                data_points={},
                patient_identifier=None,
            )
        snapshot = self._config.get()
        trial = ConfigSnapshot(
            revision=snapshot.revision,
            webhooks={**snapshot.webhooks, webhook_id: candidate},
            definitions=snapshot.definitions,
            identifier_systems=snapshot.identifier_systems,
        )
        result = without_enabled_check(validate(trial, webhook_id, kept[0].payload))
        return PreviewAnswer(
            verdict=result.verdict,
            errors=result.errors,
            data_points=result.data_points,
            patient_identifier=result.patient_identifier,
            conditions=result.conditions,
            reasons=result.reasons,
        )

    def _update(self, webhook_id: str, **update: bool) -> Webhook:
        """Read and rewrite one webhook under the configuration lock (no lost updates)."""
        repository = self._store.configuration
        with repository.locked() as conn:
            current = repository.get_webhook(webhook_id, conn=conn)
            saved = repository.save_webhook(current.model_copy(update=update), conn)
        self._config.refresh()
        return saved
