"""Opaque page tokens, signed with a server secret (itsdangerous), for every list the API pages.

Two kinds of position travel in a token: an offset into a configuration list (small tables read
whole) and Temporal's own visibility page token for the request log. A token this service did not
issue — or one mangled in transit — is refused with 400 ``invalid_page_token`` before it reaches
the database or Temporal (which answers garbage tokens with an internal error).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, TypeVar

from itsdangerous import BadSignature, URLSafeSerializer

from careflow.errors import DomainError
from careflow.models import RequestError

T = TypeVar("T")

MAX_LIMIT = 200


def _invalid() -> DomainError:
    return DomainError(RequestError(code="invalid_page_token", message="page_token is not valid"))


class PageTokens:
    """Signs and reads page tokens.

    Args:
        secret: the signing key (the admin token: every API replica shares it, and rotating it
            invalidates outstanding tokens, which only costs a client a fresh first page).
    """

    def __init__(self, secret: str) -> None:
        self._serializer = URLSafeSerializer(secret, salt="careflow-page-token")

    def _loads(self, token: str, kind: str) -> Any:
        try:
            data = self._serializer.loads(token)
        except (BadSignature, UnicodeError, ValueError):
            raise _invalid() from None
        if not isinstance(data, list) or len(data) != 2 or data[0] != kind:
            raise _invalid()
        return data[1]

    def encode_offset(self, offset: int) -> str:
        """A token for ``offset`` (≥ 0) into a list."""
        return self._serializer.dumps(["offset", offset])

    def decode_offset(self, token: str | None) -> int:
        """The offset in a token (0 without one).

        Raises:
            DomainError: ``invalid_page_token`` for a token this service did not issue.
        """
        if not token:
            return 0
        offset = self._loads(token, "offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise _invalid()
        return offset

    def encode_visibility(self, token: bytes | None) -> str | None:
        """A token wrapping Temporal's visibility page token (None when there is no next page)."""
        if not token:
            return None
        return self._serializer.dumps(["visibility", base64.urlsafe_b64encode(token).decode()])

    def decode_visibility(self, token: str | None) -> bytes | None:
        """Temporal's visibility page token inside ``token`` (None without one).

        Raises:
            DomainError: ``invalid_page_token`` for a token this service did not issue.
        """
        if not token:
            return None
        value = self._loads(token, "visibility")
        try:
            raw = base64.urlsafe_b64decode(str(value).encode())
        except (binascii.Error, ValueError):
            raise _invalid() from None
        if not raw:
            raise _invalid()
        return raw

    def page(self, items: Sequence[T], limit: int, token: str | None) -> tuple[list[T], str | None]:
        """One page of ``items`` and the token of the next page (None on the last one)."""
        start = self.decode_offset(token)
        end = start + limit
        return list(items[start:end]), self.encode_offset(end) if end < len(items) else None
