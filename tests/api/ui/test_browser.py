"""The admin pages in a real headless Chromium (Debian's), driven by Playwright (issue 9).

Screenshots of every page land in ``test-artifacts/ui/``.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.async_api import Locator, Page, async_playwright, expect

from tests.conftest import ADMIN_TOKEN, Api, RunningWorker
from tests.factories import (
    JSON,
    ROOT,
    add_identifier_system,
    post_sample,
    sample_payload,
    save_definition,
)

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
        # Data points as form rows, checked as they are typed.
        await page.fill('[name="dp-1-id"]', "email")
        await page.click("#add-point")
        await page.fill('[name="dp-2-id"]', "legal_accepted")
        await page.select_option('[name="dp-2-type"]', "boolean")
        await page.fill('[name="dp-2-values"]', "maybe")
        await expect(page.locator(".point-row").nth(1).locator(".row-problem")).to_have_text(
            "possible values must be true or false"
        )
        await page.fill('[name="dp-2-values"]', "")
        await expect(page.locator(".point-row").nth(1).locator(".row-problem")).to_have_text("")
        await page.click("#add-point")
        await page.fill('[name="dp-3-id"]', "numeric_answers")
        await page.select_option('[name="dp-3-type"]', "numbers_array")
        await page.fill('[name="dp-3-min"]', "9")
        await page.fill('[name="dp-3-max"]', "1")
        await expect(page.locator(".point-row").nth(2).locator(".row-problem")).to_have_text(
            "min is greater than max"
        )
        await shot(page, "02a-data-point-form-checked-as-typed")
        await page.fill('[name="dp-3-min"]', "")
        await page.fill('[name="dp-3-max"]', "")
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


CALCOM_SYSTEM = "urn:calcom:attendee-email"
CALCOM_POINTS = [
    {"id": "created_at", "title": "Booked at", "value_type": "date"},
    {"id": "start_time", "title": "Start time", "value_type": "date"},
    {"id": "attendee_emails", "title": "Attendee emails", "value_type": "strings_array"},
    {"id": "calendar_synced", "title": "Calendar synced", "value_type": "boolean"},
    {"id": "calendar_failed", "title": "Calendar failures", "value_type": "boolean"},
    {"id": "length_minutes", "title": "Length (minutes)", "value_type": "number"},
    {"id": "location_response", "title": "Location answer", "value_type": "json"},
    {"id": "booking_id", "title": "Booking id", "value_type": "number"},
]


async def _no_sideways_scroll(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} overflows by {overflow} px"


async def test_calcom_mapped_by_pointing_with_the_mouse_only(
    api: Api, worker: RunningWorker
) -> None:
    """A new sender (Cal.com) from creation to SUCCESS with the mouse only: every data point
    and the identifier mapped by accepting suggestions or clicking values in the payload tree.
    Configuration (the identifier system and the care flow definition) is made beforehand over
    the API, and the sender's requests come over HTTP; signing in is the only typing."""
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium"
    await add_identifier_system(api, "calcom-attendee", CALCOM_SYSTEM)
    await save_definition(api, "booking", CALCOM_POINTS, title="Booking follow-up")
    base = api.base_url
    clicks = 0

    async def click(target: Locator) -> None:
        nonlocal clicks
        clicks += 1
        await target.click()

    async def choose(select: Locator, value: str) -> None:
        nonlocal clicks
        clicks += 2  # open the list, pick the option
        await select.select_option(value)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        await page.goto(f"{base}/ui/login")
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{base}/ui/webhooks")

        # 1. Create: pick the care flow, press Create (the name defaults to the care flow's).
        await choose(page.locator("#wh-def"), "booking")
        await click(page.get_by_role("button", name="Create webhook"))
        await expect(page.locator("h1")).to_have_text("Booking follow-up webhook")
        await expect(page.locator("#no-tree")).to_be_visible()
        await expect(page.locator("#no-preview")).to_be_visible()  # a hint, not a red error
        await expect(page.locator("#preview .problems")).to_have_count(0)
        await _no_sideways_scroll(page)
        await shot(page, "11-calcom-created")
        test_url = (await page.locator("#hook-test-url").text_content() or "").strip()
        webhook_id = test_url.split("/hooks/")[1].removesuffix("/test")

        # 2. The sender posts a test payload; the tree shows it without a reload.
        answer = await post_sample(api, webhook_id, "calcom-booking-created", test=True)
        assert answer.status_code == 200, answer.text
        await expect(page.locator("#payload-tree .tree")).to_be_visible(timeout=10_000)
        await expect(page.locator("#suggestions")).to_be_visible()
        await shot(page, "12-calcom-tree-and-suggestions")
        started, clicks_before = time.monotonic(), clicks

        # 3. Accept suggestions: each fills its path and the preview shows the value.
        for point, path in (
            ("created_at", "$.createdAt"),
            ("start_time", "$.payload.startTime"),
            ("attendee_emails", "$.payload.attendees[*].email"),
            ("length_minutes", "$.payload.length"),
            ("booking_id", "$.payload.bookingId"),
            ("location_response", "$.payload.responses.location.value"),
        ):
            suggestion = page.locator(
                f'button.use-suggestion[data-target="path-{point}"][data-path="{path}"]'
            )
            await click(suggestion)
            await expect(page.locator(f"#path-{point}")).to_have_value(path)
            await expect(page.locator(f'#suggestions [data-point="{point}"]')).to_have_count(0)
        await expect(page.locator('[data-point="booking_id"]')).to_have_text("91")
        await shot(page, "13-calcom-suggestions-accepted")

        # 4. Point at values in the tree; the next data point without a path is filled next.
        async def point_at(point: str, path: str) -> None:
            if (await page.locator("#target-name").text_content()) != point_title[point]:
                await click(page.locator(f"#path-{point}"))
            await click(page.locator(f'#payload-tree button.pick[data-path="{path}"]'))
            await expect(page.locator(f"#path-{point}")).to_have_value(path)

        point_title = {p["id"]: p["title"] for p in CALCOM_POINTS}
        apps = "$.payload.appsStatus[?(@.type=='apple_calendar')]"
        await point_at("calendar_synced", apps + ".success")
        await point_at("calendar_failed", apps + ".failures")
        await expect(page.locator('[data-point="calendar_synced"]')).to_have_text("true")
        await expect(page.locator('[data-point="calendar_failed"]')).to_have_text("false")

        # 5. The identifier: its system from the list, its value by pointing.
        await choose(page.locator("#id-system"), CALCOM_SYSTEM)
        await click(page.locator("#id-value-path"))
        await expect(page.locator("#target-name")).to_have_text("identifier value path")
        await click(
            page.locator('#payload-tree button.pick[data-path="$.payload.responses.email.value"]')
        )
        await expect(page.locator("#id-value-path")).to_have_value(
            "$.payload.responses.email.value"
        )
        await expect(page.locator("#preview")).to_contain_text(
            f"{CALCOM_SYSTEM} | jane.testpatient@example.com"
        )
        await expect(page.locator("#preview-verdict")).to_have_text("SCHEDULED")
        await expect(page.locator("#suggestions")).to_have_count(0)  # every point has a path
        mapping_seconds, mapping_clicks = time.monotonic() - started, clicks - clicks_before
        await shot(page, "14-calcom-mapped")

        # 6. Save and enable.
        await click(page.locator("#save-mapping"))
        await expect(page.get_by_role("status")).to_contain_text("Mapping saved")
        await click(page.locator("#enable"))
        await expect(page.locator("#enabled-state")).to_have_text("Enabled")
        await _no_sideways_scroll(page)
        await shot(page, "15-calcom-enabled")

        # 7. The sender posts for real; the request reaches SUCCESS.
        real = await post_sample(
            api, webhook_id, "calcom-booking-created", headers={"webhook-id": "calcom-1"}
        )
        assert real.status_code == 202, real.text
        request_id = real.json()["request_id"]
        done = await api.wait_status(request_id, {"SUCCESS", "FAILED", "REJECTED"})
        assert done["status"] == "SUCCESS", done
        assert done["data_points"]["attendee_emails"] == ["jane.testpatient@example.com"]
        assert done["data_points"]["calendar_synced"] is True
        assert done["patient_identifier"] == {
            "system": CALCOM_SYSTEM,
            "value": "jane.testpatient@example.com",
        }
        await click(page.get_by_role("link", name="View logs"))
        await click(page.get_by_role("link", name=request_id))
        await expect(page.locator("#status")).to_have_text("SUCCESS")
        await expect(page.locator("#webhook-link")).to_have_text("Booking follow-up webhook")
        await shot(page, "16-calcom-success")

        # The lists fit at 1280 and 1400 px.
        for width in (1280, 1400):
            await page.set_viewport_size({"width": width, "height": 900})
            await click(page.get_by_role("link", name="Incoming webhooks"))
            await _no_sideways_scroll(page)
            await shot(page, f"17-webhooks-{width}")
            await click(page.get_by_role("link", name="Logs"))
            await _no_sideways_scroll(page)
        await browser.close()
    print(
        f"Cal.com mapped by pointing: {mapping_clicks} clicks in {mapping_seconds:.1f} s "
        f"(8 data points and the identifier); {clicks} clicks from create to SUCCESS"
    )
