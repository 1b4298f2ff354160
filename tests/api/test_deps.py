"""``api/deps.py``'s ``require_admin``: every ``/v1`` route needs the exact admin bearer token."""

from __future__ import annotations

from tests.conftest import ADMIN_TOKEN, Api


def api_routes(api: Api) -> list[tuple[str, str]]:
    """Every (method, path) of the app, from its own OpenAPI schema."""
    from api.main import create_app

    schema = create_app(api.settings).openapi()
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


async def test_every_admin_route_requires_the_token(api: Api) -> None:
    routes = [r for r in api_routes(api) if r[1].startswith("/v1")]
    assert len(routes) >= 20
    for method, path in routes:
        concrete = path.replace("{", "").replace("}", "")
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": ADMIN_TOKEN}):
            answer = await api.http.request(method, concrete, headers=headers)
            assert answer.status_code == 401, (method, path, answer.status_code)
            assert answer.json()["errors"][0]["code"] == "unauthorized"


async def test_only_the_exact_token_opens_admin_routes(api: Api) -> None:
    near_misses = [
        "Bearer",
        f"Bearer {ADMIN_TOKEN[:-1]}",
        f"Bearer {ADMIN_TOKEN}x",
        f"Bearer {ADMIN_TOKEN.upper()}",
        f"Basic {ADMIN_TOKEN}",
    ]
    for value in near_misses:
        answer = await api.http.get("/v1/webhooks", headers={"Authorization": value})
        assert answer.status_code == 401, value
    for scheme in ("Bearer", "bearer"):  # the scheme is case-insensitive (RFC 7235)
        value = f"{scheme} {ADMIN_TOKEN}"
        answer = await api.http.get("/v1/webhooks", headers={"Authorization": value})
        assert answer.status_code == 200, value
