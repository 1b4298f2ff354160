"""``api/ui/requests.py``: the request log page (filters), a request's page with its Retry, and
the built-in backend's patient and care-flow pages."""

from __future__ import annotations

import re

from tests.conftest import Api, RunningWorker
from tests.factories import (
    configure_fhir_webhook,
    failed_request,
    post_sample,
    republish,
    ui_sign_in,
)


async def test_the_log_filters_and_shows_bad_filters_as_errors(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api)
    accepted = (await post_sample(api, hook["id"])).json()["request_id"]
    await api.wait_status(accepted, {"SUCCESS"})
    await ui_sign_in(api)
    matching = await api.http.get(f"/ui/requests?status=SUCCESS&webhook_id={hook['id']}")
    assert f'href="/ui/requests/{accepted}"' in matching.text
    assert "FHIR patient feed" in matching.text  # the webhook's name, not its id
    other = await api.http.get(f"/ui/requests?status=FAILED&webhook_id={hook['id']}")
    assert accepted not in other.text and "No requests match." in other.text
    # An unknown status is no filter; a value that could escape the query is an error shown.
    unknown = await api.http.get(f"/ui/requests?status=NOPE&webhook_id={hook['id']}")
    assert f'href="/ui/requests/{accepted}"' in unknown.text
    odd = await api.http.get("/ui/requests?webhook_id=x'y")
    assert odd.status_code == 200 and "invalid_filter" in odd.text


async def test_retry_from_the_request_page(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    request_id = await failed_request(api, worker, hook["id"])
    csrf = await ui_sign_in(api)
    page = await api.http.get(f"/ui/requests/{request_id}")
    assert 'id="retry"' in page.text and "care_flow_definition_unpublished" in page.text

    await republish(api, hook["id"])
    retried = await api.http.post(
        f"/ui/requests/{request_id}/retry", data={"csrf": csrf}, follow_redirects=False
    )
    assert retried.status_code == 303
    assert retried.headers["location"] == f"/ui/requests/{request_id}?retried=1"
    await api.wait_status(request_id, {"SUCCESS"})
    page = await api.http.get(f"/ui/requests/{request_id}?retried=1")
    assert "Retry started" in page.text and 'id="retry"' not in page.text
    # Names, not ids; times with their zone; both runs, each linking its Temporal UI page.
    assert 'id="webhook-link">FHIR patient feed</a>' in page.text
    assert 'href="/ui/care-flow-definitions/intake">Patient intake</a>' in page.text  # title
    assert re.search(r'id="received-at">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<', page.text)
    assert 'id="runs"' in page.text and page.text.count('/history" target=') == 2
    assert "retried through the API: run 2 started" in page.text
    again = await api.http.post(f"/ui/requests/{request_id}/retry", data={"csrf": csrf})
    assert again.status_code == 409 and "not_retryable" in again.text


async def test_patient_and_care_flow_pages(api: Api, worker: RunningWorker) -> None:
    hook = await configure_fhir_webhook(api)
    request_id = (await post_sample(api, hook["id"])).json()["request_id"]
    detail = await api.wait_status(request_id, {"SUCCESS"})
    await ui_sign_in(api)
    patient = await api.http.get(f"/ui/patients/{detail['patient_id']}")
    assert f'href="/ui/care-flows/{detail["care_flow_id"]}"' in patient.text
    flow = await api.http.get(f"/ui/care-flows/{detail['care_flow_id']}")
    assert f'href="/ui/requests/{request_id}"' in flow.text
    assert "du Exemplé" in flow.text  # its baseline data points
    assert (await api.http.get("/ui/patients/pat_nope")).status_code == 404
    assert (await api.http.get("/ui/care-flows/cf_nope")).status_code == 404


async def test_the_log_pages_back_and_forth_and_filters_test(
    api: Api, worker: RunningWorker
) -> None:
    hook = await configure_fhir_webhook(api)
    ids = []
    for n in range(27):  # 25 a page
        answer = await post_sample(api, hook["id"], test=True, headers={"webhook-id": f"t{n}"})
        ids.append(answer.json()["request_id"])
    for request_id in ids:
        await api.wait_status(request_id, {"TEST"})
    await ui_sign_in(api)
    first = await api.http.get(f"/ui/requests?status=TEST&webhook_id={hook['id']}")
    assert '<option value="TEST" selected>' in first.text
    assert first.text.count('href="/ui/requests/') == 25
    assert 'id="prev-page"' not in first.text
    next_url = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_url is not None
    second = await api.http.get(next_url.group(1).replace("&amp;", "&"))
    assert second.text.count('href="/ui/requests/') == 2
    prev_url = re.search(r'href="([^"]+)" rel="prev"', second.text)
    assert prev_url is not None
    back = await api.http.get(prev_url.group(1).replace("&amp;", "&"))
    assert back.text.count('href="/ui/requests/') == 25
    assert 'id="prev-page"' not in back.text and 'id="next-page"' in back.text
    # Times say their zone; the Temporal UI link names the runs listed.
    assert re.search(r"<time [^>]+>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>", first.text)
    assert 'id="temporal-list"' in first.text and "RunId%20IN%20%28" in first.text


async def test_favicon(api: Api) -> None:
    icon = await api.http.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert "favicon.ico" not in (await api.http.get("/openapi.json")).text
