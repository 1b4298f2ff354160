"""UI sessions: sign in with the admin token → an HttpOnly, SameSite=Strict cookie naming a
server-side session record.

The cookie holds a random session id signed with a key derived from the admin token
(itsdangerous, at most ``MAX_AGE_SECONDS`` old); the session itself is a row of the app
database (``store.ui_sessions``), so every API replica sees a sign-out at once. A session ends
when it is signed out, when it has been idle for ``careflow_ui_session_idle_seconds``, after
``MAX_AGE_SECONDS`` in any case, and when the admin token changes (the row keeps the token's
fingerprint and the cookie's signature no longer matches; the API deletes other tokens' rows at
startup and at each sign-in, so restoring an old token does not bring its sessions back). Sign-in
attempts are throttled per client address (``careflow_ui_sign_in_limit``, ``limits`` notation).
POST forms carry a CSRF token derived from the session id; ``/v1`` stays bearer-only and never
reads this cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from datetime import timedelta
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from persistence.repositories.ui_sessions import UiSessionRepository

COOKIE = "careflow_ui"
MAX_AGE_SECONDS = 12 * 3600


def _serializer(admin_token: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(admin_token, salt="careflow-ui-session")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def token_fingerprint(admin_token: str) -> str:
    """What a session row keeps of the admin token it was signed in with (SHA-256 hex)."""
    return _sha256(f"careflow-ui-token:{admin_token}")


class UiSessions:
    """The sessions of the admin pages.

    Args:
        repository: the session records (``store.ui_sessions``).
        admin_token: the current admin token (signs cookies; its fingerprint marks sessions).
        idle_seconds: a session not used for this long is over.
    """

    def __init__(
        self, repository: UiSessionRepository, admin_token: str, idle_seconds: float
    ) -> None:
        self._repository = repository
        self._admin_token = admin_token
        self._fingerprint = token_fingerprint(admin_token)
        self._idle = timedelta(seconds=idle_seconds)

    def start(self) -> str:
        """Record a new session; returns the cookie value (a signed random id, 128 bits)."""
        sid = secrets.token_urlsafe(16)
        self._repository.create(_sha256(sid), self._fingerprint, self._idle)
        return _serializer(self._admin_token).dumps({"sid": sid})

    def _signed_id(self, request: Request) -> str | None:
        value = request.cookies.get(COOKIE)
        if not value:
            return None
        try:
            data = _serializer(self._admin_token).loads(value, max_age=MAX_AGE_SECONDS)
        except BadSignature:
            return None
        sid = data.get("sid") if isinstance(data, dict) else None
        return sid if isinstance(sid, str) else None

    def current(self, request: Request) -> str | None:
        """The session id of the request's cookie while its session is live, else None.

        Raises:
            TransientStoreError: the database cannot be read.
        """
        sid = self._signed_id(request)
        if sid is None or not self._repository.touch(_sha256(sid), self._fingerprint, self._idle):
            return None
        return sid

    def end(self, request: Request) -> None:
        """End the request's session for good (its cookie opens nothing afterwards)."""
        sid = self._signed_id(request)
        if sid is not None:
            self._repository.delete(_sha256(sid))


class SignInThrottle:
    """Sign-in attempts per client address, in one API process (``limits``, moving window).

    An attempt is counted before its token is read (``attempt``), so parallel attempts cannot
    all pass one check; a successful sign-in clears the client's count, so the limit is in
    effect one on failed sign-ins.

    Args:
        limit: e.g. ``"5/minute;20/hour"``; a client over any of them is refused until the
            window moves, whatever token it sends.
    """

    def __init__(self, limit: str) -> None:
        self._limits = parse_many(limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait before its next sign-in attempt, or None."""
        waits = [
            self._limiter.get_window_stats(limit, client).reset_time - time.time()
            for limit in self._limits
            if not self._limiter.test(limit, client)
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def attempt(self, client: str) -> int | None:
        """Count one sign-in attempt now; None when allowed, else the seconds to wait.

        Each limit is consumed atomically (``hit`` is false once it is used up), so of N
        concurrent attempts only as many as the limit allows get through.
        """
        allowed = [self._limiter.hit(limit, client) for limit in self._limits]
        if all(allowed):
            return None
        return self.retry_after(client) or 1

    def succeeded(self, client: str) -> None:
        """Forget the client's attempts: it signed in with the admin token."""
        for limit in self._limits:
            self._limiter.clear(limit, client)


def sign_in_throttle(state: Any, limit: str) -> SignInThrottle:
    """The process's throttle, kept on the app's ``state`` (created on first use)."""
    throttle = getattr(state, "ui_sign_in_throttle", None)
    if not isinstance(throttle, SignInThrottle):
        throttle = SignInThrottle(limit)
        state.ui_sign_in_throttle = throttle
    return throttle


def csrf_token(admin_token: str, sid: str) -> str:
    return hmac.new(admin_token.encode(), f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(admin_token: str, sid: str, given: str | None) -> bool:
    """Constant-time check of a form's or header's CSRF token."""
    return bool(given) and hmac.compare_digest(csrf_token(admin_token, sid), given or "")
