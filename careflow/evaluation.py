"""One request's CPU work as a self-contained job: parse the body, find its delivery id, validate.

The job carries only what it needs (the body, its webhook's slice of the configuration), so it can
run in another process (``infra.evaluation_pool``) as well as in place. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from careflow import mapping
from careflow.debounce import key_text
from careflow.messages import ValidationResult
from careflow.models import Debounce, RequestError
from careflow.payload import PayloadError, parse_body
from careflow.snapshot import ConfigSnapshot
from careflow.validation import validate


@dataclass(frozen=True)
class EvaluationJob:
    """What one evaluation needs.

    Attributes:
        body: the raw body.
        media_type: as ``careflow.payload.media_type_of`` gave it.
        snapshot: the configuration (:func:`slice_for` keeps only what the webhook needs).
        webhook_id: the webhook the request was sent to.
        delivery_id_path: the webhook's ``delivery_id_path`` when no header gave a delivery id.
        keep_parsed: return the parsed body too (test requests keep it as a test payload).
        debounce: the webhook's debounce, whose key the evaluation reads from the body.
    """

    body: bytes
    media_type: str
    snapshot: ConfigSnapshot
    webhook_id: str
    delivery_id_path: str | None = None
    keep_parsed: bool = False
    debounce: Debounce | None = None


@dataclass
class Evaluation:
    """What an evaluation found; filled in step by step, so a budget that runs out leaves what
    was done.

    Attributes:
        error: the body could not be parsed (a door rejection); nothing else is set.
        delivery_id: from ``delivery_id_path``, when the job asked and the body has one.
        result: the validation verdict; None when the evaluation did not finish.
        parsed: the parsed body, when the job asked to keep it.
        debounce_key: the debounce key's text (``careflow.debounce.key_text``), when the job
            has a debounce and the body a key.
        queued_too_long: the budget ran out before the evaluation started (busy processes).
    """

    error: RequestError | None = None
    delivery_id: str | None = None
    result: ValidationResult | None = None
    parsed: Any = None
    debounce_key: str | None = None
    queued_too_long: bool = False

    @property
    def finished(self) -> bool:
        """Whether a verdict was reached (a door rejection or a validation result)."""
        return self.error is not None or self.result is not None


def slice_for(snapshot: ConfigSnapshot, webhook_id: str) -> ConfigSnapshot:
    """The part of ``snapshot`` that validating a request to ``webhook_id`` reads: the webhook,
    its care flow definition and the identifier systems (cheap to send to another process)."""
    webhook = snapshot.webhooks.get(webhook_id)
    definition = snapshot.definitions.get(webhook.care_flow_definition_id) if webhook else None
    return ConfigSnapshot(
        revision=snapshot.revision,
        webhooks={webhook_id: webhook} if webhook else {},
        definitions={definition.id: definition} if definition else {},
        identifier_systems=snapshot.identifier_systems,
    )


def body_delivery_id(path: str, body: Any) -> str | None:
    """The delivery id at ``path`` in a parsed body: a non-empty trimmed string or number text;
    None for no match, null, a boolean, an object or an array."""
    value = mapping.find_first(path, body)
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def evaluate(job: EvaluationJob, into: Evaluation | None = None) -> Evaluation:
    """Parse, find the delivery id, validate.

    Args:
        job: the job.
        into: the evaluation to fill in (lets a caller that interrupts the work keep the steps
            already done); a new one when omitted.

    Returns:
        The filled evaluation: ``error`` for a body that cannot be parsed, else ``result``.
    """
    evaluation = into if into is not None else Evaluation()
    try:
        parsed = parse_body(job.body, job.media_type)
    except PayloadError as exc:
        evaluation.error = exc.error
        return evaluation
    if job.keep_parsed:
        evaluation.parsed = parsed
    if job.delivery_id_path:
        evaluation.delivery_id = body_delivery_id(job.delivery_id_path, parsed)
    if job.debounce is not None:
        evaluation.debounce_key = key_text(job.debounce, parsed)
    evaluation.result = validate(job.snapshot, job.webhook_id, parsed)
    return evaluation
