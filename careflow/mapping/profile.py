"""Patient profile: optional fields (names, e-mail, birth date, phone, sex, preferred language)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pycountry

from careflow.mapping.codes import INVALID_PROFILE_FIELD, _error, _json_type, _path_error
from careflow.mapping.coerce import _INVALID, _ISO_DATE, _coerce_string, _coerce_telephone, _Coercer
from careflow.mapping.paths import InvalidPathError, _EvaluationFailed, _first_present
from careflow.models import RequestError, WebhookFields


def _iso_639_1_codes() -> frozenset[str]:
    """The ISO 639-1 two-letter language codes: ``alpha_2`` of pycountry's ISO 639-3 languages.

    184 codes. Unlike the ISO 639-2 table this list once came from, it has ``sh``
    (Serbo-Croatian) and not ``bh`` (Bihari languages, a collective code).
    """
    return frozenset(
        code for language in pycountry.languages if (code := getattr(language, "alpha_2", None))
    )


ISO_639_1_CODES: frozenset[str] = _iso_639_1_codes()
"""Two-letter ISO 639-1 language codes (lower case) accepted as ``preferred_language``."""

SEX_VALUES: frozenset[str] = frozenset({"male", "female", "other", "unknown"})


def _profile_text(value: Any, _fmt: str | None, _region: str) -> Any:
    text = _coerce_string(value, None, _region)
    if text is _INVALID:
        return _INVALID
    return text.strip() or None


def _profile_birth_date(value: Any, _fmt: str | None, _region: str) -> Any:
    if type(value) is not str:
        return _INVALID
    text = value.strip()
    if not text:
        return None
    if len(text) != 10 or not _ISO_DATE.fullmatch(text):
        return _INVALID
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        return _INVALID


def _profile_phone(value: Any, _fmt: str | None, region: str) -> Any:
    if type(value) is str and not value.strip():
        return None
    return _coerce_telephone(value, None, region)


def _profile_code(allowed: frozenset[str]) -> _Coercer:
    """A coercer for a lowercase code from ``allowed`` (sex, ISO 639-1 language)."""

    def coerce(value: Any, _fmt: str | None, _region: str) -> Any:
        if type(value) is not str:
            return _INVALID
        text = value.strip().lower()
        if not text:
            return None
        return text if text in allowed else _INVALID

    return coerce


_PROFILE_FIELDS: dict[str, tuple[_Coercer, str]] = {
    "first_name": (_profile_text, "a JSON string, number or boolean"),
    "last_name": (_profile_text, "a JSON string, number or boolean"),
    "email": (_profile_text, "a JSON string, number or boolean"),
    "birth_date": (_profile_birth_date, "an ISO 8601 date YYYY-MM-DD"),
    "phone": (_profile_phone, "a valid telephone number (libphonenumber, E.164)"),
    "sex": (_profile_code(SEX_VALUES), "one of male/female/other/unknown"),
    "preferred_language": (_profile_code(ISO_639_1_CODES), "a two-letter ISO 639-1 language code"),
}


def _profile(
    webhook: WebhookFields, body: Any, region: str, errors: list[RequestError]
) -> dict[str, Any]:
    mapping = webhook.patient_profile
    profile: dict[str, Any] = {}
    if mapping is None:
        return profile
    for field, (coerce, expected) in _PROFILE_FIELDS.items():
        path = getattr(mapping, field)
        if path is None:
            continue
        try:
            value = _first_present(path, body)
        except (InvalidPathError, _EvaluationFailed) as exc:
            errors.append(_path_error(exc, path, None, f"profile field {field}"))
            continue
        if value is None:
            continue
        coerced = coerce(value, None, region)
        if coerced is _INVALID:
            errors.append(
                _error(
                    INVALID_PROFILE_FIELD,
                    f"profile field {field}: got a JSON {_json_type(value)} that is not {expected}",
                    path=path,
                )
            )
        elif coerced is not None:
            profile[field] = coerced
    return profile
