"""When the server received each HTTP request, stamped before any other middleware runs.

Retries of one request that arrive together must count as concurrent even when the event loop
reaches some handlers only after another retry has already reset the request and its new run
has ended (a busy API, a slow replica). A handler's own clock says when it started, not when
the request arrived; this stamp is taken in the request's first step on the event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

_KEY = "received_at"


class ReceivedAt:
    """ASGI middleware storing the arrival time (UTC) in ``scope["state"]``; install it last,
    so that it runs first."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})[_KEY] = datetime.now(UTC)
        await self._app(scope, receive, send)


def received_at(request: Request) -> datetime:
    """When ``request`` arrived (UTC); now when the middleware did not stamp it."""
    stamp = request.scope.get("state", {}).get(_KEY)
    return stamp if isinstance(stamp, datetime) else datetime.now(UTC)
