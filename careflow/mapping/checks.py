"""Save-time checks of a webhook's JSONPaths and date formats (:func:`check_paths`)."""

from __future__ import annotations

from datetime import datetime

from careflow.mapping.codes import INVALID_DATE_FORMAT, _error, _path_error
from careflow.mapping.coerce import _DIRECTIVE, _EPOCH_FORMATS, _UTC
from careflow.mapping.paths import InvalidPathError, _compile_cached
from careflow.mapping.profile import _PROFILE_FIELDS
from careflow.models import RequestError, WebhookFields


def _date_format_problem(date_format: str) -> str | None:
    """Why a mapping's ``date_format`` is unusable, or None.

    Accepted: ``epoch_s``, ``epoch_ms``, or a :func:`datetime.strptime` pattern with at least one
    ``%`` directive that round-trips a sample date-time (this refuses unknown directives such as
    glibc's ``%s``/``%-d`` and incomplete ISO week patterns such as ``%G`` without ``%V``).
    """
    if date_format in _EPOCH_FORMATS:
        return None
    directives = [d for d in _DIRECTIVE.findall(date_format) if d != "%"]
    if not directives:
        return "expected epoch_s, epoch_ms or a strptime pattern with % directives"
    sample = datetime(2001, 2, 3, 4, 5, 6, 7000, tzinfo=_UTC)
    try:
        datetime.strptime(sample.strftime(date_format), date_format)
    except (ValueError, TypeError, OverflowError) as exc:
        return f"the strptime pattern does not work ({exc})"
    return None


def check_paths(webhook: WebhookFields) -> list[RequestError]:
    """Check a webhook's JSONPaths and date formats when it is saved (never at request time).

    Compiles (and so caches) every path: data point mappings, ``patient_identifier.system_path``
    and ``value_path``, every ``patient_profile`` field and ``delivery_id_path``.

    Args:
        webhook: The webhook fields about to be stored.

    Returns:
        One ``invalid_path`` error per path that does not parse (``data_point_definition_id`` set
        for data point mappings) and one ``invalid_date_format`` per unusable ``date_format``;
        empty when everything is usable. Unknown data point ids are not checked here.
    """
    errors: list[RequestError] = []

    def check(path: str | None, what: str, data_point_id: str | None = None) -> None:
        if path is None:
            return
        compiled = _compile_cached(path)
        if isinstance(compiled, InvalidPathError):
            errors.append(_path_error(compiled, path, data_point_id, what))

    for mapping in webhook.data_point_mappings:
        dp_id = mapping.data_point_definition_id
        check(mapping.path, f"data point '{dp_id}'", dp_id)
        if mapping.date_format is not None:
            problem = _date_format_problem(mapping.date_format)
            if problem is not None:
                errors.append(
                    _error(
                        INVALID_DATE_FORMAT,
                        f"data point '{dp_id}': date_format: {problem}",
                        dp_id,
                        mapping.path,
                    )
                )
    if webhook.patient_identifier is not None:
        check(webhook.patient_identifier.system_path, "patient identifier system_path")
        check(webhook.patient_identifier.value_path, "patient identifier value_path")
    if webhook.patient_profile is not None:
        for field in _PROFILE_FIELDS:
            check(getattr(webhook.patient_profile, field), f"profile field {field}")
    check(webhook.delivery_id_path, "delivery_id_path")
    return errors
