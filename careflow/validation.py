"""Request validation and the enable gate. Pure: configuration snapshot in, verdict out.

``validate`` is the one function both the ingest handler (in-process, on the cached
configuration) and the ``validate_request`` activity run, so they cannot disagree (contract §7).
"""

from __future__ import annotations

import json
from typing import Any

from careflow import mapping
from careflow.conditions.checks import check_conditions, check_debounce
from careflow.conditions.evaluate import evaluate
from careflow.conditions.models import CONDITIONS_NOT_MET, ConditionsOutcome, IgnoredReason
from careflow.messages import ValidationResult
from careflow.models import RequestError, RequestStatus, WebhookFields
from careflow.snapshot import ConfigSnapshot


def validate(snapshot: ConfigSnapshot, webhook_id: str, body: Any) -> ValidationResult:
    """Validate one parsed request body against its webhook's current configuration.

    Args:
        snapshot: the configuration to validate against.
        webhook_id: the webhook the request was sent to.
        body: the parsed JSON body (any JSON value).

    The webhook's conditions are evaluated first (contract §5b): when they are not met the
    verdict is IGNORED (``conditions_not_met``, each rule's outcome in ``reasons``) and nothing is
    mapped, so a non-matching event with missing data points is IGNORED, not REJECTED.

    Returns:
        IGNORED (conditions not met; REJECTED instead while the webhook is disabled), SCHEDULED
        with the mapped data points and patient identifier, or REJECTED with every
        problem found (mapping errors, ``unknown_identifier_system``, ``webhook_disabled``,
        ``webhook_not_found``, ``care_flow_definition_not_found``). ``webhook_enabled`` reports
        the webhook's state (a deleted webhook is disabled); callers that ignore it (test
        requests, accepted requests in flight) drop ``webhook_disabled``.
    """
    webhook = snapshot.webhooks.get(webhook_id)
    if webhook is None:
        return _rejected(RequestError(code="webhook_not_found", message="webhook not found"))
    disabled = [] if webhook.enabled else [_DISABLED]
    outcome = evaluate(webhook.conditions, body) if webhook.conditions is not None else None
    if outcome is not None and not outcome.met:
        return ValidationResult(
            verdict=RequestStatus.REJECTED if disabled else RequestStatus.IGNORED,
            errors=disabled,
            care_flow_definition_id=webhook.care_flow_definition_id,
            webhook_enabled=webhook.enabled,
            conditions=outcome,
            reasons=[conditions_not_met(outcome)],
        )
    definition = snapshot.definitions.get(webhook.care_flow_definition_id)
    if definition is None:
        missing = RequestError(
            code="care_flow_definition_not_found",
            message="the webhook's care flow definition does not exist",
        )
        return ValidationResult(
            verdict=RequestStatus.REJECTED,
            errors=[*disabled, missing],
            care_flow_definition_id=webhook.care_flow_definition_id,
            webhook_enabled=webhook.enabled,
        )
    result = mapping.map_payload(webhook, definition, body)
    errors = list(result.errors)
    data_points = result.data_points
    if data_points and _json_size(data_points) > MAX_DATA_POINTS_BYTES:
        # Workflow inputs and results must stay under Temporal's 2 MiB payload limit.
        errors.append(
            RequestError(
                code="data_points_too_large",
                message=f"the mapped data points exceed {MAX_DATA_POINTS_BYTES} bytes",
            )
        )
        data_points = {}
    identifier = result.patient_identifier
    if identifier is not None and identifier.system not in snapshot.system_uris:
        errors.append(
            RequestError(
                code="unknown_identifier_system",
                message=f"identifier system {_named(identifier.system, webhook)} is not configured "
                "(add it under /v1/identifier-systems)",
                path=webhook.patient_identifier.system_path if webhook.patient_identifier else None,
            )
        )
    errors = disabled + errors
    return ValidationResult(
        verdict=RequestStatus.REJECTED if errors else RequestStatus.SCHEDULED,
        errors=errors,
        care_flow_definition_id=definition.id,
        data_points=data_points,
        patient_identifier=identifier,
        profile=result.profile,
        webhook_enabled=webhook.enabled,
        conditions=outcome,
        skip_if_enrolled=webhook.skip_if_enrolled,
    )


def conditions_not_met(outcome: ConditionsOutcome) -> IgnoredReason:
    """The IGNORED reason for conditions that are not met: each rule's path, op and outcome."""
    return IgnoredReason(
        code=CONDITIONS_NOT_MET,
        message="the webhook's conditions are not met",
        rules=outcome.rules,
    )


# A system read from the payload is a payload value: never quoted (contract §4). A URL or a
# ``urn:`` may hold the patient itself (``urn:acme:mrn:77001134``, ``…/patients/Jane-Doe``), and
# ``mailto:``, ``tel:``, ``ssn:…`` are absolute URIs too. The request detail shows the mapped
# ``patient_identifier`` to operators; the error's ``path`` says where it was read.
_NOT_SHOWN = "(a system from the payload, not shown)"


def _named(system: str, webhook: WebhookFields) -> str:
    """A system URI for a message: the webhook's own configured system (configuration) is
    named; one read from the payload never is (:data:`_NOT_SHOWN`)."""
    ident = webhook.patient_identifier
    if ident is None or ident.system is None or ident.system != system:
        return _NOT_SHOWN
    return repr(system) if len(system) <= 200 else repr(system[:200] + "…")


_DISABLED = RequestError(code="webhook_disabled", message="the webhook is disabled")

# Mapped data points travel in activity inputs and results (Temporal refuses payloads over 2 MiB).
MAX_DATA_POINTS_BYTES = 512 * 1024


def _json_size(value: Any) -> int:
    """Size of ``value`` as compact JSON text, in bytes (UTF-8)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def without_enabled_check(result: ValidationResult) -> ValidationResult:
    """The verdict a request would get if its webhook were enabled (test requests, contract §4)."""
    errors = [e for e in result.errors if e.code != "webhook_disabled"]
    if len(errors) == len(result.errors):
        return result
    if errors:
        verdict = RequestStatus.REJECTED
    else:
        verdict = RequestStatus.IGNORED if result.reasons else RequestStatus.SCHEDULED
    return result.model_copy(update={"errors": errors, "verdict": verdict})


def _rejected(error: RequestError, **fields: Any) -> ValidationResult:
    return ValidationResult(verdict=RequestStatus.REJECTED, errors=[error], **fields)


def enable_problems(
    webhook: WebhookFields,
    snapshot: ConfigSnapshot,
    unconfigured_backends: frozenset[str] = frozenset(),
) -> list[RequestError]:
    """Why a webhook cannot be enabled; empty when it can (contract §4).

    Checks that every path parses, every required data point has a mapping, every mapping names
    a data point of the definition, the identifier system (when given literally) is configured,
    the care flow definition exists and is published, and its backend's kind is not in
    ``unconfigured_backends`` (``care_flow_backend_not_configured``, naming the kind).
    """
    problems = list(mapping.check_paths(webhook))
    problems += check_conditions(webhook.conditions) + check_debounce(webhook.debounce)
    definition = snapshot.definitions.get(webhook.care_flow_definition_id)
    if definition is None:
        problems.append(
            RequestError(
                code="care_flow_definition_not_found",
                message="the care flow definition does not exist",
            )
        )
    else:
        if not definition.published:
            problems.append(
                RequestError(
                    code="care_flow_definition_unpublished",
                    message="the care flow definition is not published",
                )
            )
        if definition.backend.kind in unconfigured_backends:
            problems.append(
                RequestError(
                    code="care_flow_backend_not_configured",
                    message=f"the care flow definition's backend {definition.backend.kind} is "
                    "not configured (settings AWELL_API_URL and AWELL_API_KEY)",
                )
            )
        mapped = {m.data_point_definition_id for m in webhook.data_point_mappings}
        known = {d.id for d in definition.data_point_definitions}
        for point in definition.data_point_definitions:
            if not point.optional and point.id not in mapped:
                problems.append(
                    RequestError(
                        code="missing_data_point_mapping",
                        message="a required baseline data point has no mapping",
                        data_point_definition_id=point.id,
                    )
                )
        for m in webhook.data_point_mappings:
            if m.data_point_definition_id not in known:
                problems.append(
                    RequestError(
                        code="unknown_data_point_definition",
                        message="the mapping names a data point the definition does not have",
                        data_point_definition_id=m.data_point_definition_id,
                        path=m.path,
                    )
                )
    ident = webhook.patient_identifier
    if ident is not None and ident.system is not None and ident.system not in snapshot.system_uris:
        problems.append(
            RequestError(
                code="unknown_identifier_system",
                message=f"identifier system {ident.system!r} is not configured",
            )
        )
    return problems
