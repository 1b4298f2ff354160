"""The test payload panel in a real headless Chromium: the 1 s poll adds only new payloads on
top of the list (issue 15 finding 4), and a long payload is cut with a link to open it whole."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import async_playwright, expect

from tests.api.ui.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import ADMIN_TOKEN, Api
from tests.factories import configure_fhir_webhook


async def test_the_panel_adds_new_payloads_on_top_and_cuts_long_ones(api: Api) -> None:
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    hook = await configure_fhir_webhook(api, enable=False)
    await api.http.post(f"/hooks/{hook['id']}/test", json={"first": 1})
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page()
        page.set_default_timeout(10_000)
        polls: list[int] = []
        page.on(
            "response",
            lambda r: polls.append(r.status) if "test-payloads?after=" in r.url else None,
        )
        await page.goto(f"{api.base_url}/ui/login")
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await page.goto(f"{api.base_url}/ui/webhooks/{hook['id']}")
        panel = page.locator("#test-payloads details")
        await expect(panel).to_have_count(1)
        await expect(page.locator("#test-payloads pre").first).to_contain_text('"first"')

        await api.http.post(f"/hooks/{hook['id']}/test", json={"second": "y" * 20_000})
        await expect(panel).to_have_count(2, timeout=5000)
        newest = panel.first
        await expect(newest.locator("pre")).to_contain_text('"second"')
        await expect(newest.locator(".truncated")).to_contain_text("Cut at 8 KiB of 20 KiB")
        await expect(panel.nth(1).locator("pre")).to_contain_text('"first"')
        await page.wait_for_timeout(1500)  # a poll with nothing new changes nothing
        await expect(panel).to_have_count(2)
        assert 204 in polls and 200 in polls

        async with page.context.expect_page() as opened:
            await newest.get_by_text("Open the whole payload").click()
        whole = await opened.value
        await whole.wait_for_load_state()
        assert '"second"' in await whole.content() and "y" * 19_000 in await whole.content()
        await browser.close()
