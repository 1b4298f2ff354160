"""Rules for text kept in stored configuration: valid Unicode scalar values, no NUL.

Stored text goes to PostgreSQL (``text`` and ``jsonb`` cannot hold U+0000 nor a lone surrogate)
and back out as UTF-8 JSON (a lone surrogate U+D800..U+DFFF cannot be encoded). Both are refused
when configuration is saved (422); :func:`scrub` repairs rows saved before the rule existed so
reading them never fails. Imports nothing from ``careflow`` (the model modules import it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

REPLACEMENT = "\ufffd"


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_text(value: Any) -> Any:
    """Refuse NUL or a lone surrogate in any text of ``value`` (nested lists, dicts — keys
    included — and pydantic models).

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: naming the rule, never the text.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL (U+0000)")
            if _has_surrogate(item):
                raise ValueError("text must be valid Unicode: no lone surrogate (U+D800..U+DFFF)")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, BaseModel):
            stack.extend(item.__dict__.values())
    return value


def scrub(value: Any) -> Any:
    """``value`` (parsed JSON) with each lone surrogate and NUL replaced by U+FFFD.

    For rows stored before :func:`check_text` refused them: reading must not fail.
    """
    if isinstance(value, str):
        if "\x00" not in value and not _has_surrogate(value):
            return value
        return "".join(
            REPLACEMENT if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in value
        )
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value
