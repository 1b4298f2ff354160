"""The webhook page's trigger conditions: rows (path, operator, value, type), the enrollment
rule, the debounce, and the conditions' verdict live on the newest test payload.

The rows edit the top-level rules; nested groups (API only) are shown and kept as they are.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.ui.common import FormDep, ServicesDep, SessionDep, _errors, render
from api.ui.webhooks import _webhook_page
from careflow.conditions.models import ConditionGroup, ConditionRule
from careflow.errors import DomainError, InvalidConfigError, NotFoundError
from careflow.models import PreviewRequest, RequestError

router = APIRouter()

ROW_LIMIT = 50
_NO_VALUE = frozenset({"exists", "not_exists", "is_empty"})


_FIELD = re.compile(r"cond_(path|op|value|type)__(0|[1-9][0-9]{0,3})")
_LIST_HINT = 'takes a JSON list of values, e.g. ["BOOKING_CREATED", "BOOKING_RESCHEDULED"]'


def _form_error(message: str) -> InvalidConfigError:
    return InvalidConfigError(RequestError(code="invalid_condition_form", message=message))


def _value(op: str, text: str, row: int) -> Any:
    """A row's value: none for presence operators; for in/not_in the JSON list typed (edited
    as JSON so every value round-trips exactly, commas and spaces included); else the text
    (coerced to the rule's type by the checks).

    Raises:
        InvalidConfigError: an in/not_in value that is not a JSON list.
    """
    if op in _NO_VALUE:
        return None
    if op in ("in", "not_in"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, list):
            raise _form_error(f"rule {row + 1} ({op}) {_LIST_HINT}")
        return parsed
    return text


def _check_fields(form: dict[str, Any]) -> None:
    """Refuse condition fields the page never sends (a crafted form), rather than ignore them.

    Raises:
        InvalidConfigError: ``invalid_condition_form`` naming the field (never its value).
    """
    match = form.get("cond_match")
    if match is not None and match not in ("all", "any"):
        raise _form_error("cond_match must be all or any")
    for name in form:
        if not name.startswith("cond_") or name == "cond_match":
            continue
        field = _FIELD.fullmatch(name)
        if field is None or int(field.group(2)) >= ROW_LIMIT:
            raise _form_error(
                f"unknown condition field {name[:64]!r}: rows are cond_path__N, cond_op__N, "
                f"cond_value__N, cond_type__N with N from 0 to {ROW_LIMIT - 1}"
            )


def conditions_from_form(
    form: dict[str, Any], kept: ConditionGroup | None
) -> ConditionGroup | None:
    """The conditions the rows describe, with ``kept``'s nested groups after them; None when no
    row has a path and nothing is kept.

    Raises:
        InvalidConfigError: ``invalid_condition_form`` for a field the page never sends or an
            in/not_in value that is not a JSON list.
    """
    _check_fields(form)
    rules: list[ConditionRule | ConditionGroup] = []
    for index in range(ROW_LIMIT):
        path = str(form.get(f"cond_path__{index}") or "").strip()
        if not path:
            continue
        op = str(form.get(f"cond_op__{index}") or "equals")
        rules.append(
            ConditionRule(
                path=path,
                op=op,
                value=_value(op, str(form.get(f"cond_value__{index}") or ""), index),
                value_type=str(form.get(f"cond_type__{index}") or "string"),
            )
        )
    if kept is not None:
        rules.extend(r for r in kept.rules if isinstance(r, ConditionGroup))
    if not rules:
        return None
    return ConditionGroup(match="any" if form.get("cond_match") == "any" else "all", rules=rules)


@router.post("/webhooks/{webhook_id}/conditions")
def save_conditions(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> Response:
    key_path = str(form.get("debounce_key_path") or "").strip()
    seconds = str(form.get("debounce_seconds") or "30").strip()
    if key_path and not seconds.isdigit():
        error = RequestError(code="invalid_debounce", message="seconds must be a whole number")
        return _webhook_page(request, services, sid, webhook_id, 422, errors=[error])
    try:
        current = services.store.configuration.get_webhook(webhook_id)
        conditions = conditions_from_form(form, current.conditions)
        services.webhooks.patch(
            webhook_id,
            {
                "conditions": conditions.model_dump(exclude_none=True) if conditions else None,
                "skip_if_enrolled": form.get("skip_if_enrolled") == "on",
                "debounce": {"key_path": key_path, "seconds": int(seconds)} if key_path else None,
            },
        )
    except (DomainError, ValidationError) as exc:
        return _webhook_page(request, services, sid, webhook_id, 422, errors=_errors(exc))
    return RedirectResponse(f"/ui/webhooks/{webhook_id}?saved=1", status_code=303)


@router.post("/webhooks/{webhook_id}/conditions/preview", response_class=HTMLResponse)
def preview_conditions(
    webhook_id: str, request: Request, services: ServicesDep, sid: SessionDep, form: FormDep
) -> HTMLResponse:
    """The live verdict fragment: the proposed conditions on the newest test payload."""
    try:
        current = services.store.configuration.get_webhook(webhook_id)
        conditions = conditions_from_form(form, current.conditions)
        answer = services.webhooks.preview(webhook_id, PreviewRequest(conditions=conditions))
    except NotFoundError as exc:
        return render(
            request,
            services,
            sid,
            "_conditions_verdict.html",
            answer=None,
            errors=exc.errors,
            no_payload=True,
        )
    except (DomainError, ValidationError) as exc:
        return render(
            request, services, sid, "_conditions_verdict.html", answer=None, errors=_errors(exc)
        )
    return render(
        request, services, sid, "_conditions_verdict.html", answer=answer, errors=answer.errors
    )
