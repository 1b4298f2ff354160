"""Value coercers: JSON values → stored values per value type (contract §5).

Each coercer takes ``(value, date_format, region)`` and returns the stored value or
:data:`_INVALID`. Returning a sentinel rather than raising keeps the hot path free of
exception handling.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers

from careflow.mapping.codes import DEFAULT_REGION

_INVALID: Any = object()

# RFC 8259 §6: number = [ minus ] int [ frac ] [ exp ]; int = zero / ( digit1-9 *DIGIT ).
# ASCII digits only (``\d`` would accept other scripts' digits, which int() then converts).
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _number_from_text(text: str) -> int | float | Any:
    """A string in RFC 8259 number grammar (after trimming) → int or finite float, else _INVALID."""
    text = text.strip()
    match = _JSON_NUMBER.fullmatch(text)
    if match is None:
        return _INVALID
    if match.lastindex is None:  # no fraction, no exponent: an integer stays an integer
        try:
            return int(text)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            return _INVALID
    number = float(text)
    return number if math.isfinite(number) else _INVALID


def _coerce_number(value: Any, _fmt: str | None, _region: str) -> Any:
    """JSON number (not boolean, finite) or numeric string (RFC 8259 §6) → int | float."""
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else _INVALID
    if kind is str:
        return _number_from_text(value)
    return _INVALID


_BOOLEAN_WORDS = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "0": False,
}


def _coerce_boolean(value: Any, _fmt: str | None, _region: str) -> Any:
    """``true``/``false``; integers 1/0; strings true/false/t/f/yes/no/y/n/1/0 (any case, trimmed).

    The word list is the contract's (§5); ``1.0`` is not a boolean.
    """
    kind = type(value)
    if kind is bool:
        return value
    if kind is int:
        return True if value == 1 else False if value == 0 else _INVALID
    if kind is str:
        return _BOOLEAN_WORDS.get(value.strip().lower(), _INVALID)
    return _INVALID


def _coerce_string(value: Any, _fmt: str | None, _region: str) -> Any:
    """JSON string as is; a number or boolean becomes its JSON text (RFC 8259); else _INVALID."""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        try:
            return str(value)
        except ValueError:  # beyond sys.get_int_max_str_digits()
            return _INVALID
    if kind is float:
        # repr() is the shortest round-tripping text and is valid JSON for finite floats.
        return repr(value) if math.isfinite(value) else _INVALID
    return _INVALID


def _coerce_json(value: Any, _fmt: str | None, _region: str) -> Any:
    """Any JSON value, as matched (only non-finite floats, which JSON cannot carry, are refused)."""
    if type(value) is float and not math.isfinite(value):
        return _INVALID
    return value


def _coerce_telephone(value: Any, _fmt: str | None, region: str) -> Any:
    """A telephone number that libphonenumber parses and judges valid → E.164 text.

    ITU-T E.164 via ``phonenumbers`` (Google libphonenumber): ``parse`` with ``region`` for
    national forms (an explicit ``+CC`` wins), then ``is_valid_number`` — a number that merely
    parses (e.g. an Australian national number read with region US) is refused.
    """
    kind = type(value)
    if kind is int:
        text = str(value) if value >= 0 else ""
    elif kind is str:
        text = value
    else:
        return _INVALID
    try:
        number = phonenumbers.parse(text, region)
        if not phonenumbers.is_valid_number(number):
            return _INVALID
    except Exception:  # NumberParseException, and nothing else should escape
        return _INVALID
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# ISO 8601 extended formats only (§4.1.2.2 calendar date, §4.3.2 date and time of day, §4.2.5.1
# UTC offset ±hh:mm). ``datetime.fromisoformat`` alone would also take basic forms such as
# ``200808151030-0700`` and read them as a different instant, hence this gate.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_EPOCH_FORMATS = frozenset({"epoch_s", "epoch_ms"})
# strptime directives that carry a time of day (or a zone): their presence makes a date-time.
_TIME_DIRECTIVES = frozenset("HIMSfpzZcX")
_DIRECTIVE = re.compile(r"%(.)", re.DOTALL)


def _utc_text(moment: datetime) -> str:
    """An aware datetime → ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (UTC, RFC 3339 / ISO 8601)."""
    # isoformat() of a UTC datetime ends in "+00:00"; swapping the suffix is cheaper than
    # replace(tzinfo=None) and keeps the 4-digit year padding strftime("%Y") lacks on glibc.
    return moment.astimezone(_UTC).isoformat()[:-6] + "Z"


def _iso_date(text: str) -> str | Any:
    """An ISO 8601 extended date or offset date-time → normalised text, else _INVALID."""
    try:
        if len(text) == 10 and _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text).isoformat()
        if _ISO_DATE_TIME.fullmatch(text):
            return _utc_text(datetime.fromisoformat(text))
    except (ValueError, OverflowError):  # month 13, 24:00, a UTC instant before year 1
        pass
    return _INVALID


@lru_cache(maxsize=256)
def _format_has_time(date_format: str) -> bool:
    """Whether a strptime pattern has time-of-day or zone directives (``%%`` is a literal)."""
    return any(d in _TIME_DIRECTIVES for d in _DIRECTIVE.findall(date_format) if d != "%")


def _formatted_date(value: Any, date_format: str) -> str | Any:
    """Apply a mapping's ``date_format``: ``epoch_s``, ``epoch_ms`` or a strptime pattern."""
    if date_format in _EPOCH_FORMATS:
        number = _coerce_number(value, None, DEFAULT_REGION)
        if number is _INVALID:
            return _INVALID
        try:
            if date_format == "epoch_s":
                return _utc_text(_EPOCH + timedelta(seconds=number))
            return _utc_text(_EPOCH + timedelta(milliseconds=number))
        except (OverflowError, ValueError):
            return _INVALID
    if type(value) is not str:
        return _INVALID
    try:
        parsed = datetime.strptime(value.strip(), date_format)
        if not _format_has_time(date_format):
            return parsed.date().isoformat()
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_UTC)  # documented: a naive result is UTC
        return _utc_text(parsed)
    except (ValueError, OverflowError, TypeError):
        return _INVALID


def _coerce_date(value: Any, date_format: str | None, _region: str) -> Any:
    """ISO 8601 extended date → ``YYYY-MM-DD``; with offset → UTC ``…Z``; else ``date_format``."""
    if type(value) is str:
        result = _iso_date(value.strip())
        if result is not _INVALID or date_format is None:
            return result
    elif date_format is None:
        return _INVALID
    return _formatted_date(value, date_format)


_Coercer = Callable[[Any, str | None, str], Any]
