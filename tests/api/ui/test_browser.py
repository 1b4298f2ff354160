"""The admin pages in a real headless Chromium (Debian's), driven by Playwright (issue 9).

Screenshots of every page land in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.async_api import Page, async_playwright, expect

from tests.conftest import ADMIN_TOKEN, Api, RunningWorker
from tests.factories import JSON, ROOT, sample_payload

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts" / "ui"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TYPEFORM_SYSTEM = "urn:typeform:hidden:user_id"


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_typeform_set_up_and_first_request(api: Api, worker: RunningWorker) -> None:
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    base = api.base_url
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(10_000)

        # Sign in (a wrong token first).
        await page.goto(f"{base}/ui/webhooks")
        await expect(page).to_have_url(f"{base}/ui/login")
        await page.fill("#token", "wrong")
        await page.click("button[type=submit]")
        await expect(page.get_by_role("alert")).to_contain_text("not the admin token")
        await page.fill("#token", ADMIN_TOKEN)
        await shot(page, "01-sign-in")
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{base}/ui/webhooks")
        cookie = next(c for c in await page.context.cookies() if c["name"] == "careflow_ui")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # Settings: the identifier system and a published care flow definition.
        await page.goto(f"{base}/ui/settings")
        await page.fill("#sys-name", "typeform-user")
        await page.fill("#sys-uri", TYPEFORM_SYSTEM)
        await page.click("text=Add identifier system")
        await page.fill("#def-id", "survey")
        await page.fill("#def-title", "Survey follow-up")
        await page.check("#def-published")
        await page.fill(
            "#def-points",
            '[{"id": "email", "value_type": "string"},'
            ' {"id": "legal_accepted", "value_type": "boolean"},'
            ' {"id": "numeric_answers", "value_type": "numbers_array"}]',
        )
        await page.click("text=Add care flow definition")
        await expect(page.locator("table").nth(1)).to_contain_text("survey")
        await shot(page, "02-settings")

        # Create the webhook from the UI.
        await page.goto(f"{base}/ui/webhooks")
        await page.fill("#wh-name", "Typeform survey")
        await page.select_option("#wh-def", "survey")
        await page.click("text=Create webhook")
        await expect(page.locator("h1")).to_have_text("Typeform survey")
        await expect(page.locator("#problems")).to_contain_text("missing_data_point_mapping")
        test_url = (await page.locator("#hook-test-url").text_content() or "").strip()
        webhook_id = test_url.split("/hooks/")[1].removesuffix("/test")

        # A test payload sent by HTTP appears without a reload (the panel polls every 1 s).
        await expect(page.locator("#no-payloads")).to_be_visible()
        sent = time.monotonic()
        answer = await api.http.post(
            f"/hooks/{webhook_id}/test",
            content=sample_payload("typeform-form-response"),
            headers=JSON,
        )
        assert answer.status_code == 200
        await expect(page.locator("#test-payloads details")).to_have_count(1, timeout=5000)
        # The panel polls every second; the figure is reported, not asserted (noisy machines).
        print(f"test payload appeared after {time.monotonic() - sent:.2f} s")
        await expect(page.locator("#test-payloads pre")).to_contain_text("form_response")

        # Map three fields, watching the live preview.
        await page.fill("#path-email", "$.form_response.answers[?(@.type=='email')].email")
        await expect(page.locator('[data-point="email"]')).to_contain_text(
            "sample.respondent@example.com"
        )
        await page.fill(
            "#path-legal_accepted", "$.form_response.answers[?(@.field.type=='legal')].boolean"
        )
        await page.fill(
            "#path-numeric_answers", "$.form_response.answers[?(@.type=='number')].number"
        )
        await expect(page.locator('[data-point="legal_accepted"]')).to_have_text("true")
        await expect(page.locator('[data-point="numeric_answers"]')).to_contain_text("5,")
        await page.select_option("#id-system", TYPEFORM_SYSTEM)
        await page.fill("#id-value-path", "$.form_response.hidden.user_id")
        await expect(page.locator("#preview")).to_contain_text("tst000042")
        await expect(page.locator("#preview-verdict")).to_have_text("SCHEDULED")
        await shot(page, "03-webhook-mapping-preview")
        await page.click("#save-mapping")
        await expect(page.get_by_role("status")).to_contain_text("Mapping saved")

        # Enable.
        await page.click("#enable")
        await expect(page.locator("#enabled-state")).to_have_text("Enabled")
        await shot(page, "04-webhook-enabled")

        # A real request, then find it in the log by its status and open it.
        real = await api.http.post(
            f"/hooks/{webhook_id}",
            content=sample_payload("typeform-form-response"),
            headers={**JSON, "webhook-id": "typeform-evt-1"},
        )
        assert real.status_code == 202, real.text
        request_id = real.json()["request_id"]
        await api.wait_status(request_id, {"SUCCESS"})
        await page.goto(f"{base}/ui/requests")
        await page.select_option("#f-status", "SUCCESS")
        await page.select_option("#f-webhook", webhook_id)
        await page.click("#apply-filters")
        await expect(page).to_have_url(
            f"{base}/ui/requests?status=SUCCESS&webhook_id={webhook_id}"
            "&care_flow_definition_id=&patient_id="
        )
        await expect(page.locator("#requests tbody tr")).to_have_count(1)
        await shot(page, "05-request-log")
        await page.click(f"text={request_id}")
        await expect(page.locator("#status")).to_have_text("SUCCESS")
        await expect(page.locator("#payload")).to_contain_text("form_response")
        await expect(page.locator("#temporal-link")).to_have_attribute(
            "href",
            f"http://127.0.0.1:8233/namespaces/default/workflows/{request_id}/"
            + (await page.locator("#temporal-link").get_attribute("href") or "").split("/")[-2]
            + "/history",
        )
        await shot(page, "06-request-detail")
        await page.click("#patient-link")
        await expect(page.locator("main")).to_contain_text("tst000042")
        await shot(page, "07-patient")

        # Pages are keyboard reachable: Tab from the top lands on the first nav link.
        await page.goto(f"{base}/ui/webhooks")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        assert focused == "Incoming webhooks"
        await shot(page, "08-webhooks")
        await browser.close()
