"""Page tokens: signed, opaque, refused when forged, mangled or of the wrong kind."""

from __future__ import annotations

import pytest

from api.paging import PageTokens
from careflow.errors import DomainError


def _code(exc: pytest.ExceptionInfo[DomainError]) -> str:
    return exc.value.errors[0].code


def test_offset_round_trip_and_pages() -> None:
    tokens = PageTokens("secret")
    items = list(range(5))
    first, token = tokens.page(items, 2, None)
    assert first == [0, 1] and token is not None
    second, token = tokens.page(items, 2, token)
    assert second == [2, 3]
    last, token = tokens.page(items, 2, token)
    assert last == [4] and token is None


def test_visibility_round_trip() -> None:
    tokens = PageTokens("secret")
    raw = b"\x00temporal\xffpage"
    assert tokens.decode_visibility(tokens.encode_visibility(raw)) == raw
    assert tokens.encode_visibility(None) is None and tokens.encode_visibility(b"") is None
    assert tokens.decode_visibility(None) is None


@pytest.mark.parametrize("token", ["garbage", "NS4xMjM0NTY3ODkwMTI=", "a.b", "%%%"])
def test_foreign_tokens_are_refused(token: str) -> None:
    tokens = PageTokens("secret")
    with pytest.raises(DomainError) as exc:
        tokens.decode_offset(token)
    assert _code(exc) == "invalid_page_token"
    with pytest.raises(DomainError):
        tokens.decode_visibility(token)


def test_token_signed_with_another_secret_is_refused() -> None:
    token = PageTokens("other").encode_offset(10)
    with pytest.raises(DomainError) as exc:
        PageTokens("secret").decode_offset(token)
    assert _code(exc) == "invalid_page_token"


def test_a_token_of_one_kind_is_not_read_as_the_other() -> None:
    tokens = PageTokens("secret")
    with pytest.raises(DomainError):
        tokens.decode_visibility(tokens.encode_offset(3))
    with pytest.raises(DomainError):
        tokens.decode_offset(tokens.encode_visibility(b"abc"))
