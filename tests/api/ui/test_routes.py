"""``api/ui/routes.py``: sign in and out, and the settings forms (identifier systems, care flow
definitions). The sign-in happy path and adding both from the settings page run in a real
browser in ``test_browser.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from careflow.settings import Settings
from tests.conftest import ADMIN_TOKEN, Api, free_port, serve_api
from tests.factories import FHIR_POINTS, configure_fhir_webhook, ui_sign_in


async def test_sign_out_ends_the_session(api: Api) -> None:
    csrf = await ui_sign_in(api)
    home = await api.http.get("/ui/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/ui/webhooks")
    out = await api.http.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/ui/login")
    assert out.headers["set-cookie"].startswith("careflow_ui=")
    assert "Max-Age=0" in out.headers["set-cookie"]
    after = await api.http.get("/ui/webhooks", follow_redirects=False)
    assert (after.status_code, after.headers["location"]) == (303, "/ui/login")


async def test_a_cookie_saved_before_sign_out_opens_nothing(api: Api) -> None:
    """Issue 15 finding 3: the cookie of a signed-out session no longer opens any page."""
    csrf = await ui_sign_in(api)
    saved = api.http.cookies["careflow_ui"]
    out = await api.http.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    async with httpx.AsyncClient(base_url=api.base_url, cookies={"careflow_ui": saved}) as replay:
        page = await replay.get("/ui/settings", follow_redirects=False)
        assert (page.status_code, page.headers["location"]) == (303, "/ui/login")
        form = await replay.post(
            "/ui/identifier-systems",
            data={"csrf": csrf, "name": "mrn", "system": "urn:mrn"},
            follow_redirects=False,
        )
        assert form.status_code == 303 and form.headers["location"] == "/ui/login"
    assert (await api.admin("GET", "/v1/identifier-systems")).json()["items"] == []


async def test_failed_sign_ins_are_throttled(api: Api) -> None:
    for _ in range(5):
        wrong = await api.http.post("/ui/login", data={"token": "guess"})
        assert wrong.status_code == 401
    blocked = await api.http.post("/ui/login", data={"token": ADMIN_TOKEN})
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert 1 <= int(blocked.headers["retry-after"]) <= 60


async def test_a_new_admin_token_ends_every_session(settings: Settings, api: Api) -> None:
    """The same database served with another admin token (a rotation and restart): the old
    session's cookie opens nothing."""
    await ui_sign_in(api)
    saved = api.http.cookies["careflow_ui"]
    rotated = settings.model_copy(
        update={"careflow_admin_token": "rotated-token", "careflow_api_port": free_port()}
    )
    async with (
        serve_api(rotated) as replica,
        httpx.AsyncClient(base_url=replica.base_url, cookies={"careflow_ui": saved}) as browser,
    ):
        page = await browser.get("/ui/settings", follow_redirects=False)
        assert page.headers["location"] == "/ui/login"


async def test_restoring_the_old_admin_token_does_not_bring_its_sessions_back(
    settings: Settings, api: Api
) -> None:
    """Issue 15c: token A → an API start with token B (no page opened) → A again: the cookie
    signed in with A opens nothing."""
    await ui_sign_in(api)
    saved = api.http.cookies["careflow_ui"]
    rotated = settings.model_copy(
        update={"careflow_admin_token": "rotated-token", "careflow_api_port": free_port()}
    )
    async with serve_api(rotated):
        pass
    restored = settings.model_copy(update={"careflow_api_port": free_port()})
    async with (
        serve_api(restored) as replica,
        httpx.AsyncClient(base_url=replica.base_url, cookies={"careflow_ui": saved}) as browser,
    ):
        page = await browser.get("/ui/settings", follow_redirects=False)
        assert page.headers["location"] == "/ui/login"


async def test_slow_parallel_sign_ins_get_only_the_limit_through(api: Api) -> None:
    """Issue 15c: 12 sign-ins whose bodies all arrive after every one has been received (a
    slow body each): at most 5 are judged, the rest are 429 before the body is read."""
    release = asyncio.Event()

    async def slow_body(token: str) -> AsyncIterator[bytes]:
        body = f"token={token}".encode()
        yield body[:-1]
        await release.wait()
        yield body[-1:]

    async def sign_in(n: int) -> int:
        answer = await api.http.post(
            "/ui/login",
            content=slow_body(f"guess{n}"),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        return answer.status_code

    attempts = [asyncio.create_task(sign_in(n)) for n in range(12)]
    await asyncio.sleep(2)  # every request's headers are in; no body is complete
    release.set()
    codes = sorted(await asyncio.gather(*attempts))
    assert codes == [401] * 5 + [429] * 7


async def test_settings_forms_answer_bad_input_with_a_422_page(api: Api) -> None:
    csrf = await ui_sign_in(api)
    system = {"csrf": csrf, "name": "mrn", "system": "urn:mrn"}
    assert (await api.http.post("/ui/identifier-systems", data=system)).status_code == 303
    taken = await api.http.post("/ui/identifier-systems", data=system)
    assert taken.status_code == 422 and "identifier_system_exists" in taken.text
    odd = await api.http.post("/ui/identifier-systems", data={**system, "name": "Not A Slug"})
    assert odd.status_code == 422 and "invalid_request" in odd.text

    definition = {"csrf": csrf, "id": "intake", "title": "Intake"}
    for row, problem in (
        (
            {"dp-1-id": "x", "dp-1-type": "number", "dp-1-values": "1, two"},
            "possible values must be numbers",
        ),
        (
            {"dp-1-id": "x", "dp-1-type": "boolean", "dp-1-values": "yes"},
            "possible values must be true or false",
        ),
        ({"dp-1-id": "x", "dp-1-min": "5", "dp-1-max": "1"}, "min is greater than max"),
        ({"dp-1-id": "x", "dp-1-max": "lots"}, "max must be a number"),
    ):
        answer = await api.http.post("/ui/care-flow-definitions", data={**definition, **row})
        assert answer.status_code == 422, row
        assert "invalid_data_point" in answer.text and "data point row 1: " + problem in answer.text
    bad_type = await api.http.post(
        "/ui/care-flow-definitions", data={**definition, "dp-1-id": "x", "dp-1-type": "colour"}
    )
    assert bad_type.status_code == 422 and "unknown type" in bad_type.text
    twice = await api.http.post(
        "/ui/care-flow-definitions", data={**definition, "dp-1-id": "x", "dp-2-id": "x"}
    )
    assert twice.status_code == 422 and "unique" in twice.text
    assert 'id="sys-name"' in bad_type.text  # the settings page, with its forms
    listed = (await api.admin("GET", "/v1/care-flow-definitions")).json()["items"]
    assert listed == []


async def test_a_definition_is_replaced_from_its_page(api: Api) -> None:
    csrf = await ui_sign_in(api)

    async def save(**fields: str) -> None:
        answer = await api.http.post(
            "/ui/care-flow-definitions", data={"csrf": csrf, **fields}, follow_redirects=False
        )
        assert (answer.status_code, answer.headers["location"]) == (303, "/ui/settings")

    await save(
        id="intake",
        title="Intake",
        published="on",
        **{
            "dp-1-id": "age",
            "dp-1-title": "Age",
            "dp-1-type": "number",
            "dp-1-values": "18, 21.5",
            "dp-1-min": "0",
            "dp-1-max": "120",
            "dp-2-id": "",  # an empty row is skipped
            "dp-3-id": "consent",
            "dp-3-type": "boolean",
            "dp-3-optional": "on",
        },
    )
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    assert shown["data_point_definitions"] == [
        {
            "id": "age",
            "title": "Age",
            "value_type": "number",
            "optional": False,
            "possible_values": [18, 21.5],
            "range": {"min": 0.0, "max": 120.0},
        },
        {
            "id": "consent",
            "title": "",
            "value_type": "boolean",
            "optional": True,
            "possible_values": None,
            "range": None,
        },
    ]
    page = await api.http.get("/ui/care-flow-definitions/intake")
    assert '<input type="hidden" name="existing" value="1">' in page.text
    # One row per data point, filled in, and an empty row to type a new one into.
    assert 'name="dp-1-id" value="age"' in page.text
    assert 'name="dp-1-values" value="18, 21.5"' in page.text
    assert 'name="dp-1-max" value="120"' in page.text
    assert 'name="dp-2-id" value="consent"' in page.text
    assert 'name="dp-3-id" value=""' in page.text
    await save(existing="1", id="intake", title="Intake v2")
    shown = (await api.admin("GET", "/v1/care-flow-definitions/intake")).json()
    assert (shown["title"], shown["published"], shown["data_point_definitions"]) == (
        "Intake v2",
        False,
        [],
    )


async def test_a_definition_edit_that_breaks_an_enabled_webhook_needs_force(api: Api) -> None:
    """Issue 15 finding 6 on the web page: 409 naming the webhook, then the force box."""
    hook = await configure_fhir_webhook(api)
    csrf = await ui_sign_in(api)
    points = [*FHIR_POINTS, {"id": "insurance", "value_type": "string"}]
    rows = {}
    for n, point in enumerate(points, start=1):
        rows[f"dp-{n}-id"] = point["id"]
        rows[f"dp-{n}-type"] = point["value_type"]
    form = {
        "csrf": csrf,
        "existing": "1",
        "id": "intake",
        "title": "Patient intake",
        "published": "on",
        **rows,
    }
    page = await api.http.get("/ui/care-flow-definitions/intake")
    assert 'name="force"' in page.text
    refused = await api.http.post("/ui/care-flow-definitions", data=form)
    assert refused.status_code == 409
    assert "missing_data_point_mapping" in refused.text and "FHIR patient feed" in refused.text
    assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()["enabled"] is True
    forced = await api.http.post("/ui/care-flow-definitions", data={**form, "force": "on"})
    assert forced.status_code == 200 and 'id="disabled-webhooks"' in forced.text
    assert f'href="/ui/webhooks/{hook["id"]}"' in forced.text
    assert (await api.admin("GET", f"/v1/webhooks/{hook['id']}")).json()["enabled"] is False
