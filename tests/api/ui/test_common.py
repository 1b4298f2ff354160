"""``api/ui/common.py``: every page needs a session, every form its CSRF token (as a field or
the ``X-CSRF-Token`` header htmx sends) and each field once, as text; errors are HTML pages."""

from __future__ import annotations

from tests.conftest import Api
from tests.factories import ui_sign_in


async def test_forms_need_a_session_and_csrf(api: Api) -> None:
    answer = await api.http.get("/ui/webhooks", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    await ui_sign_in(api)
    forged = await api.http.post(
        "/ui/identifier-systems", data={"name": "x", "system": "urn:x", "csrf": "nope"}
    )
    assert forged.status_code == 403
    assert "csrf_failed" in forged.text
    missing = await api.http.post("/ui/identifier-systems", data={"name": "x", "system": "urn:x"})
    assert missing.status_code == 403
    # The session cookie opens no /v1 route, and /ui is not in the OpenAPI schema.
    v1 = await api.http.get("/v1/webhooks")
    assert v1.status_code == 401
    schema = (await api.http.get("/openapi.json")).json()
    assert not [p for p in schema["paths"] if p.startswith("/ui")]
    assert (await api.admin("GET", "/v1/identifier-systems")).json()["items"] == []


async def test_the_csrf_token_may_come_as_a_header(api: Api) -> None:
    csrf = await ui_sign_in(api)
    answer = await api.http.post(
        "/ui/identifier-systems",
        data={"name": "mrn", "system": "urn:mrn"},
        headers={"X-CSRF-Token": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert (await api.admin("GET", "/v1/identifier-systems/mrn")).status_code == 200


async def test_ui_forms_with_repeated_or_file_fields_are_422(api: Api) -> None:
    csrf = await ui_sign_in(api)
    repeated = await api.http.post(
        "/ui/care-flow-definitions",
        content=f"csrf={csrf}&id=u1&title=t&dp-1-id=a&dp-1-id=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 422
    assert "invalid_form" in repeated.text
    as_file = await api.http.post(
        "/ui/care-flow-definitions",
        data={"csrf": csrf, "id": "u2", "title": "t"},
        files={"dp-1-id": ("f.json", b"[]")},
    )
    assert as_file.status_code == 422
    huge = await api.http.post(
        "/ui/care-flow-definitions",
        data={"csrf": csrf, "id": "u3", "title": "t", "dp-1-id": "x", "dp-1-min": "[" * 100_000},
    )
    assert huge.status_code == 422 and "min must be a number" in huge.text
    assert (await api.admin("GET", "/v1/care-flow-definitions")).json()["items"] == []


async def test_a_domain_error_under_ui_is_an_html_page(api: Api) -> None:
    await ui_sign_in(api)
    missing = await api.http.get("/ui/webhooks/wh_nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "webhook_not_found" in missing.text and "Something is not right" in missing.text
