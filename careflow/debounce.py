"""Debounce keys: which window a request falls in, as a PHI-free id (contract §2 ``debounce``).

The key value (an appointment id, a patient's MRN…) may be PHI, so it is never stored: the window
id is a keyed hash (HMAC-SHA-256 with the server's id hash key, :mod:`careflow.keyed_ids`) of
(webhook id, key value), so it cannot be reversed by trying every small key value.
"""

from __future__ import annotations

import json
from typing import Any

from careflow.conditions.models import Debounce
from careflow.keyed_ids import keyed_hash
from careflow.mapping.paths import find_first


def key_text(debounce: Debounce, body: Any) -> str | None:
    """The debounce key value of a parsed body as text, or None when absent (no debounce).

    The first non-null match of ``key_path``; a string is trimmed (an empty one is absent, and
    so are ``{}`` and ``[]``), any other JSON value is its compact, key-sorted JSON text — so
    the number ``12345`` and the string ``"12345"`` are the same key (one window).
    """
    value = find_first(debounce.key_path, body)
    if value is None or value == {} or value == []:
        return None  # like "": an empty object or array is no key
    if isinstance(value, str):
        return value.strip() or None
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def window_id(webhook_id: str, key: str, hash_key: bytes) -> str:
    """The debounce window's id (a Temporal workflow id): ``debounce_`` + 32 hex digits.

    Args:
        webhook_id: the webhook.
        key: the debounce key's text (:func:`key_text`).
        hash_key: the id hash key (``careflow.keyed_ids.id_hash_key``).
    """
    return "debounce_" + keyed_hash(hash_key, "debounce", webhook_id, key)[:32]
