"""``/healthz`` (the process is up) and ``/readyz`` (Temporal and the database reachable)."""

from __future__ import annotations

from careflow.settings import Settings
from persistence.store import Store
from tests.conftest import Api, free_port, serve_api


async def test_healthz_and_readyz_when_all_is_up(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "temporal": "ok"}}


async def test_readyz_is_503_while_temporal_is_unreachable(
    settings: Settings, store: Store
) -> None:
    nowhere = settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with serve_api(nowhere) as api:
        assert (await api.http.get("/healthz")).status_code == 200
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "temporal": "unreachable"},
        }
