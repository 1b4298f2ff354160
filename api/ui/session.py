"""UI sessions: sign in with the admin token → an HttpOnly, SameSite=Strict signed cookie.

The cookie is signed with a key derived from the admin token (itsdangerous), so every API
replica accepts it and rotating the token signs everyone out. POST forms carry a CSRF token
derived from the session id; ``/v1`` stays bearer-only and never reads this cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "careflow_ui"
MAX_AGE_SECONDS = 12 * 3600


def _serializer(admin_token: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(admin_token, salt="careflow-ui-session")


def new_session(admin_token: str) -> str:
    """A signed cookie value holding a fresh random session id."""
    return _serializer(admin_token).dumps({"sid": secrets.token_urlsafe(16)})


def session_id(request: Request, admin_token: str) -> str | None:
    """The session id of a valid, unexpired cookie, else None."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = _serializer(admin_token).loads(value, max_age=MAX_AGE_SECONDS)
    except BadSignature:
        return None
    sid = data.get("sid") if isinstance(data, dict) else None
    return sid if isinstance(sid, str) else None


def csrf_token(admin_token: str, sid: str) -> str:
    return hmac.new(admin_token.encode(), f"csrf:{sid}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(admin_token: str, sid: str, given: str | None) -> bool:
    """Constant-time check of a form's or header's CSRF token."""
    return bool(given) and hmac.compare_digest(csrf_token(admin_token, sid), given or "")
