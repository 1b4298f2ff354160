"""``/v1/care-flow-definitions``: created once, replaced by id, data point ranges checked."""

from __future__ import annotations

from tests.conftest import Api
from tests.factories import JSON

POINTS = [{"id": "age", "value_type": "number"}]


async def test_create_once_then_replace_by_id(api: Api) -> None:
    body = {"id": "intake", "title": "Intake", "data_point_definitions": POINTS}
    assert (await api.admin("POST", "/v1/care-flow-definitions", json=body)).status_code == 201
    again = await api.admin("POST", "/v1/care-flow-definitions", json=body)
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "care_flow_definition_exists"
    replaced = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/intake",
        json={"title": "Intake v2", "published": True, "data_point_definitions": []},
    )
    assert replaced.status_code == 200
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    assert (shown["title"], shown["published"], shown["data_point_definitions"]) == (
        "Intake v2",
        True,
        [],
    )
    unknown = await api.admin(
        "PUT",
        "/v1/care-flow-definitions/nope",
        json={"title": "t", "published": False, "data_point_definitions": []},
    )
    assert unknown.status_code == 404


async def test_non_finite_ranges_are_422(api: Api) -> None:
    nan = await api.admin(
        "POST",
        "/v1/care-flow-definitions",
        content=b'{"id": "n", "title": "t", "data_point_definitions": '
        b'[{"id": "x", "value_type": "number", "range": {"min": NaN, "max": Infinity}}]}',
        headers=JSON,
    )
    assert nan.status_code == 422
