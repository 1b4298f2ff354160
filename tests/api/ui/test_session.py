"""``api/ui/session.py``: signed session cookies (keyed by the admin token, 12 h) and CSRF
tokens derived from the session id."""

from __future__ import annotations

import time

import pytest
from itsdangerous import TimestampSigner
from starlette.requests import Request

from api.ui import session

TOKEN = "admin-token"


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{session.COOKIE}={cookie}".encode())] if cookie is not None else []
    return Request({"type": "http", "method": "GET", "path": "/ui/", "headers": headers})


def test_a_session_cookie_opens_only_with_its_admin_token() -> None:
    cookie = session.new_session(TOKEN)
    sid = session.session_id(_request(cookie), TOKEN)
    assert isinstance(sid, str) and len(sid) >= 16
    assert session.session_id(_request(session.new_session(TOKEN)), TOKEN) != sid  # fresh ids
    assert session.session_id(_request(cookie), "rotated-token") is None  # signs everyone out
    tampered = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    assert session.session_id(_request(tampered), TOKEN) is None
    assert session.session_id(_request(None), TOKEN) is None
    assert session.session_id(_request(""), TOKEN) is None


def test_a_session_expires_after_twelve_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie = session.new_session(TOKEN)
    signed_at = int(time.time())
    later = signed_at + session.MAX_AGE_SECONDS - 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert session.session_id(_request(cookie), TOKEN) is not None
    expired = signed_at + session.MAX_AGE_SECONDS + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: expired)
    assert session.session_id(_request(cookie), TOKEN) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    token = session.csrf_token(TOKEN, "sid-1")
    assert token == session.csrf_token(TOKEN, "sid-1")
    assert session.csrf_ok(TOKEN, "sid-1", token)
    assert not session.csrf_ok(TOKEN, "sid-2", token)
    assert not session.csrf_ok("rotated-token", "sid-1", token)
    for given in (None, "", token[:-1], token.upper()):
        assert not session.csrf_ok(TOKEN, "sid-1", given), given
