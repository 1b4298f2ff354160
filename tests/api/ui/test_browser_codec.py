"""The Temporal UI decodes through the API's codec server, in Debian's Chromium (Playwright).

As ``make run`` serves it: a dev server of its own with the Web UI on an internal port and
``--ui-codec-endpoint <API>/codec``, and the Temporal UI proxy (``api.temporal_ui_proxy``) in
front of it on the UI port, relaying ``/codec`` to the API. Nothing is set in the browser:
without credentials the codec server answers 401 and the UI shows the ciphertext, not an error
page; signed in at ``/ui`` as the README says, the UI shows the decoded result (the patient's
identifier value), its decode requests going to the UI's own origin. Screenshots land in
``test-artifacts/ui/``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, Response, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from api.temporal_ui_proxy import ProxyConfig
from careflow.settings import Settings
from infra import codec, temporal
from persistence.store import Store
from tests.api.test_temporal_ui_proxy import serve_proxy
from tests.api.ui.test_browser import CHROMIUM, CHROMIUM_ARGS, shot
from tests.conftest import ADMIN_TOKEN, TEMPORAL_BIN, TEST_RING, free_port, serve_api
from tests.factories import JSON, MRN_SYSTEM, add_identifier_system, add_webhook, save_definition
from worker import build_worker

MRN = "MRN-55120987"


@pytest.fixture
async def ui_env(settings: Settings) -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    """The dev server with its UI on an internal port, and the UI proxy on the UI port."""
    ui_port, internal_port = free_port(), free_port()
    api_codec = f"http://127.0.0.1:{settings.careflow_api_port}/codec"
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        data_converter=codec.data_converter(TEST_RING),
        search_attributes=temporal.SEARCH_ATTRIBUTES,
        ui=True,
        ui_port=internal_port,
        dev_server_extra_args=["--ui-codec-endpoint", api_codec, "--ui-disable-news-fetch"],
    )
    try:
        config = ProxyConfig(upstream=f"http://127.0.0.1:{internal_port}", codec_upstream=api_codec)
        async with serve_proxy(config, ui_port):
            yield env, ui_port
    finally:
        await env.shutdown()


async def _open_request(page: Page, ui: str, request_id: str) -> list[Response]:
    """Open the request's workflow in the Temporal UI; the codec server's answers seen."""
    answers: list[Response] = []
    page.on("response", lambda r: answers.append(r) if "/codec/decode" in r.url else None)
    await page.goto(f"{ui}/namespaces/default/workflows/{request_id}")
    await expect(page.get_by_text("WebhookRequestWorkflow").first).to_be_visible(timeout=30_000)
    await page.wait_for_timeout(2500)  # the UI decodes input and result after the page renders
    return answers


async def test_the_temporal_ui_decodes_for_signed_in_operators_only(
    settings: Settings, ui_env: tuple[WorkflowEnvironment, int], tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    env, ui_port = ui_env
    local = settings.model_copy(
        update={
            "temporal_address": env.client.service_client.config.target_host,
            "temporal_ui_port": ui_port,
        }
    )
    store = Store(local.sqlalchemy_url, key_ring=TEST_RING)
    store.migrate()
    ui = f"http://127.0.0.1:{ui_port}"
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with (
            serve_api(local) as api,
            build_worker(env.client, store, local, executor),
        ):
            await add_identifier_system(api, "mrn", MRN_SYSTEM)
            await save_definition(api, "v", [{"id": "r", "value_type": "string"}], title="V")
            hook = await add_webhook(
                api,
                name="PHI",
                care_flow_definition_id="v",
                data_point_mappings=[{"data_point_definition_id": "r", "path": "$.r"}],
                patient_identifier={"system": MRN_SYSTEM, "value_path": "$.mrn"},
            )
            body = json.dumps({"mrn": MRN, "r": "check-up"})
            answer = await api.http.post(f"/hooks/{hook['id']}", content=body, headers=JSON)
            request_id = answer.json()["request_id"]
            await api.wait_status(request_id, {"SUCCESS"})

            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                # 1. No credentials: 401 from the codec server, ciphertext in the UI.
                stranger: BrowserContext = await browser.new_context(
                    viewport={"width": 1400, "height": 1000}
                )
                page = await stranger.new_page()
                page.set_default_timeout(15_000)
                seen = await _open_request(page, ui, request_id)
                await shot(page, "codec-01-no-credentials")
                assert seen and {r.status for r in seen} == {401}
                content = await page.content()
                assert MRN not in content
                assert await _ciphertext_of_result(env, request_id) in content  # shown as stored
                await expect(
                    page.locator("#content").get_by_text("Codec Server could not connect")
                ).to_be_visible()

                # 2. Signed in at /ui as the README says: decoded.
                operator = await browser.new_context(viewport={"width": 1400, "height": 1000})
                page = await operator.new_page()
                page.set_default_timeout(15_000)
                await page.goto(f"{api.base_url}/ui/login")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("button[type=submit]")
                await expect(page).to_have_url(f"{api.base_url}/ui/webhooks")
                # Straight to the Temporal UI: no codec setting touched in this browser.
                seen = await _open_request(page, ui, request_id)
                assert seen and {r.status for r in seen} == {200}
                assert all(r.url.startswith(f"{ui}/codec/decode") for r in seen)  # same-origin
                await expect(page.get_by_text('"webhook_name": "PHI"')).to_be_visible()
                await shot(page, "codec-02-signed-in")
                # The result is long: its end is rendered once scrolled to. It is the settled
                # state, which leaves the identifier to the validation marker (issue 19).
                await page.get_by_text('"verdict"').first.click()
                await page.keyboard.press("Control+End")
                await expect(page.get_by_text('"patient_identifier": null').first).to_be_visible()
                await shot(page, "codec-03-decoded-result")
                # The identifier value is in the validation marker (local activity): decoded too.
                await page.get_by_text("validate_request", exact=True).first.click()
                await page.get_by_text('"activity_type"').first.click()  # into the details box
                await page.keyboard.press("Control+End")  # the marker's result: scrolled to
                await expect(page.get_by_text(MRN).first).to_be_visible()
                await shot(page, "codec-04-decoded-identifier")
                await browser.close()


async def _ciphertext_of_result(env: WorkflowEnvironment, request_id: str) -> str:
    """The start of the stored (encrypted) workflow result, base64 as the UI prints it."""
    handle = env.client.get_workflow_handle(request_id)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_completed_event_attributes"):
            [result] = event.workflow_execution_completed_event_attributes.result.payloads
            assert result.metadata["encoding"] == b"binary/encrypted"
            return base64.b64encode(result.data).decode()[:40]
    raise AssertionError("the request has no result")
