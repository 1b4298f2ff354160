"""Offset paging for the configuration lists (small tables read whole), with opaque tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import TypeVar

from careflow.errors import DomainError
from careflow.models import RequestError

T = TypeVar("T")

MAX_LIMIT = 200


def _sign(offset: int) -> str:
    return hashlib.sha256(f"careflow-offset:{offset}".encode()).hexdigest()[:12]


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{offset}.{_sign(offset)}".encode()).decode()


def decode_offset(token: str | None) -> int:
    """The offset in a page token (0 without one).

    Raises:
        DomainError: ``invalid_page_token`` for a token this service did not issue.
    """
    if not token:
        return 0
    try:
        offset_text, _, signature = base64.urlsafe_b64decode(token.encode()).decode().partition(".")
        offset = int(offset_text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        offset = -1
    if offset < 0 or signature != _sign(offset):
        raise DomainError(
            RequestError(code="invalid_page_token", message="page_token is not valid")
        )
    return offset


def page(items: Sequence[T], limit: int, token: str | None) -> tuple[list[T], str | None]:
    """One page of ``items`` and the token of the next page (None on the last one)."""
    start = decode_offset(token)
    end = start + limit
    return list(items[start:end]), encode_offset(end) if end < len(items) else None
