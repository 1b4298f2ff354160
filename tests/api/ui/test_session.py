"""``api/ui/session.py``: cookies naming server-side session records (sign-out, idle expiry,
12 h at most, a new admin token ends every session), the sign-in throttle and CSRF tokens."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from starlette.requests import Request

from api.ui import session
from persistence.repositories import ui_sessions as ui_sessions_module
from persistence.store import Store

TOKEN = "admin-token"


def _request(cookie: str | None) -> Request:
    headers = [(b"cookie", f"{session.COOKIE}={cookie}".encode())] if cookie is not None else []
    return Request({"type": "http", "method": "GET", "path": "/ui/", "headers": headers})


def test_a_session_cookie_opens_only_with_its_admin_token(store: Store) -> None:
    sessions = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=600)
    cookie = sessions.start()
    sid = sessions.current(_request(cookie))
    assert isinstance(sid, str) and len(sid) >= 16
    assert sessions.current(_request(sessions.start())) != sid  # fresh ids
    rotated = session.UiSessions(store.ui_sessions, "rotated-token", idle_seconds=600)
    assert rotated.current(_request(cookie)) is None  # a new admin token signs everyone out
    tampered = ("A" if cookie[0] != "A" else "B") + cookie[1:]
    assert sessions.current(_request(tampered)) is None
    assert sessions.current(_request(None)) is None
    assert sessions.current(_request("")) is None


def test_a_record_from_another_admin_token_is_refused_and_deleted(store: Store) -> None:
    """Even a cookie signed with the new token opens nothing when its record is from the old one
    (the record keeps the token's fingerprint, not the token)."""
    old = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=600)
    cookie = old.start()
    sid = old.current(_request(cookie))
    assert sid is not None
    resigned = session._serializer("rotated-token").dumps({"sid": sid})
    rotated = session.UiSessions(store.ui_sessions, "rotated-token", idle_seconds=600)
    assert rotated.current(_request(resigned)) is None
    assert old.current(_request(cookie)) is None  # the stale record is gone
    assert store.ui_sessions.count() == 0


def test_sign_out_ends_the_session_for_good(store: Store) -> None:
    sessions = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=600)
    cookie = sessions.start()
    other = sessions.start()
    sessions.end(_request(cookie))
    assert sessions.current(_request(cookie)) is None
    assert sessions.current(_request(other)) is not None  # only that session ended


def test_an_idle_session_expires_and_use_keeps_one_alive(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=600)
    cookie = sessions.start()
    busy = sessions.start()
    start = ui_sessions_module.now()
    for minutes in (8, 16):  # busy is used every 8 minutes; cookie is not
        monkeypatch.setattr(
            ui_sessions_module, "now", lambda m=minutes: start + timedelta(minutes=m)
        )
        assert sessions.current(_request(busy)) is not None
    assert sessions.current(_request(cookie)) is None  # idle 16 min > 10 min
    assert sessions.current(_request(busy)) is not None


def test_a_session_ends_after_twelve_hours(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=24 * 3600)
    cookie = sessions.start()
    signed_at = int(time.time())
    later = signed_at + session.MAX_AGE_SECONDS - 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: later)
    assert sessions.current(_request(cookie)) is not None
    expired = signed_at + session.MAX_AGE_SECONDS + 60
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: expired)
    assert sessions.current(_request(cookie)) is None


def test_failed_sign_ins_are_throttled_per_client() -> None:
    throttle = session.SignInThrottle("3/minute")
    for _ in range(3):
        assert throttle.attempt("10.0.0.1") is None
    wait = throttle.attempt("10.0.0.1")
    assert wait is not None and 1 <= wait <= 60
    assert throttle.attempt("10.0.0.2") is None
    throttle.succeeded("10.0.0.1")
    assert throttle.attempt("10.0.0.1") is None


def test_concurrent_attempts_are_counted_before_the_token_is_read() -> None:
    """Issue 15c: N attempts that all start before any finishes get only the limit through."""
    throttle = session.SignInThrottle("3/minute")
    verdicts = [throttle.attempt("10.0.0.1") for _ in range(10)]  # none has read its body yet
    assert verdicts.count(None) == 3


def test_csrf_tokens_belong_to_one_session() -> None:
    token = session.csrf_token(TOKEN, "sid-1")
    assert token == session.csrf_token(TOKEN, "sid-1")
    assert session.csrf_ok(TOKEN, "sid-1", token)
    assert not session.csrf_ok(TOKEN, "sid-2", token)
    assert not session.csrf_ok("rotated-token", "sid-1", token)
    for given in (None, "", token[:-1], token.upper()):
        assert not session.csrf_ok(TOKEN, "sid-1", given), given


def test_a_short_idle_expiry_does_not_end_an_active_session(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15c: with idle 9 s, a page every 4 s keeps the session (``last_seen_at`` is
    written at most every min(30 s, idle / 3) = 3 s, not every 30 s)."""
    sessions = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=9)
    cookie = sessions.start()
    start = ui_sessions_module.now()
    for seconds in (4, 8, 12, 16, 20):
        monkeypatch.setattr(
            ui_sessions_module, "now", lambda s=seconds: start + timedelta(seconds=s)
        )
        assert sessions.current(_request(cookie)) is not None, f"logged out at {seconds} s"
    monkeypatch.setattr(ui_sessions_module, "now", lambda: start + timedelta(seconds=30))
    assert sessions.current(_request(cookie)) is None  # 10 s unused > 9 s


def test_sessions_of_an_old_token_stay_ended_when_it_comes_back(store: Store) -> None:
    """Issue 15c: token A → B (a sign-in with B, or an API start with B, deletes A's rows) → A
    again: A's old cookie still opens nothing."""
    old = session.UiSessions(store.ui_sessions, TOKEN, idle_seconds=600)
    cookie = old.start()
    assert old.current(_request(cookie)) is not None
    session.UiSessions(store.ui_sessions, "rotated-token", idle_seconds=600).start()
    assert old.current(_request(cookie)) is None
    assert store.ui_sessions.count() == 1

    cookie = old.start()  # A again; only started with B, no sign-in
    assert store.ui_sessions.delete_other_tokens(session.token_fingerprint("rotated-token")) == 1
    assert old.current(_request(cookie)) is None
