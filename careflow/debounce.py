"""Debounce keys: which window a request falls in, as a PHI-free id (contract §2 ``debounce``).

The key value (an appointment id, a patient's MRN…) may be PHI, so it is never stored: the window
id is a SHA-256 hash of (webhook id, key value), and the webhook id (≥ 128 random bits) salts it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from careflow.conditions.models import Debounce
from careflow.mapping.paths import find_first


def key_text(debounce: Debounce, body: Any) -> str | None:
    """The debounce key value of a parsed body as text, or None when absent (no debounce).

    The first non-null match of ``key_path``; a string is trimmed (an empty one is absent),
    any other JSON value is its compact, key-sorted JSON text.
    """
    value = find_first(debounce.key_path, body)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def window_id(webhook_id: str, key: str) -> str:
    """The debounce window's id (a Temporal workflow id): ``debounce_`` + 32 hex digits."""
    digest = hashlib.sha256("\x1f".join(("debounce", webhook_id, key)).encode()).hexdigest()
    return "debounce_" + digest[:32]
