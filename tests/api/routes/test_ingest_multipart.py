"""Finding 9 of issue 15: ``multipart/form-data`` (Jotform and other form tools), through HTTP:
text fields become a flat object like an urlencoded form, file parts are refused with 415, the
signature is checked on the raw bytes and the size limit holds."""

from __future__ import annotations

import pytest

from careflow.settings import Settings
from persistence.store import Store
from tests.careflow.test_signatures import SECRET, standard_headers
from tests.conftest import Api, RunningWorker, serve_api
from tests.factories import TERMINAL, add_webhook, save_definition

BOUNDARY = "----JotformBoundary7MA4YWxkTrZu0gW"
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def multipart(
    fields: list[tuple[str, str]], *, file: tuple[str, str, bytes] | None = None
) -> bytes:
    """A multipart/form-data body with these text fields (and, optionally, one file part
    ``(name, filename, content)``), CRLF line ends as RFC 7578 has them."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields
    ]
    if file is not None:
        name, filename, content = file
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


JOTFORM = [
    ("formID", "241234567890"),
    ("q3_reason", "Knee pain"),
    ("q5_symptoms[]", "swelling"),
    ("q5_symptoms[]", "stiffness"),
    ("q7_firstName", "Zoë"),
]


async def _form_webhook(api: Api, **fields: object) -> str:
    await save_definition(
        api,
        "intake-form",
        [
            {"id": "reason", "value_type": "string"},
            {"id": "symptoms", "value_type": "strings_array"},
            {"id": "first_name", "value_type": "string"},
        ],
        title="Intake form",
    )
    hook = await add_webhook(
        api,
        name="Jotform intake",
        care_flow_definition_id="intake-form",
        data_point_mappings=[
            {"data_point_definition_id": "reason", "path": "$.q3_reason"},
            {"data_point_definition_id": "symptoms", "path": "$['q5_symptoms[]']"},
            {"data_point_definition_id": "first_name", "path": "$.q7_firstName"},
        ],
        **fields,
    )
    return str(hook["id"])


async def test_text_fields_become_a_flat_object(api: Api, worker: RunningWorker) -> None:
    hook_id = await _form_webhook(api)
    answer = await api.http.post(f"/hooks/{hook_id}", content=multipart(JOTFORM), headers=MULTIPART)
    assert answer.status_code == 202, answer.text
    detail = await api.wait_status(answer.json()["request_id"], TERMINAL, timeout=30)
    assert detail["status"] == "SUCCESS", detail
    assert detail["data_points"] == {
        "reason": "Knee pain",
        "symptoms": ["swelling", "stiffness"],
        "first_name": "Zoë",
    }


async def test_a_file_part_is_415_naming_the_reason(api: Api, worker: RunningWorker) -> None:
    hook_id = await _form_webhook(api)
    body = multipart(JOTFORM, file=("q9_referral", "referral.pdf", b"%PDF-1.7 ..."))
    answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers=MULTIPART)
    assert answer.status_code == 415, answer.text
    error = answer.json()["errors"][0]
    assert error["code"] == "unsupported_media_type"
    assert "file part" in error["message"]
    detail = await api.wait_status(answer.json()["request_id"], TERMINAL)
    assert detail["status"] == "REJECTED"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", multipart(JOTFORM)),  # no boundary
        (MULTIPART["Content-Type"], b"q3_reason=Knee+pain"),  # not multipart at all
        (MULTIPART["Content-Type"], multipart(JOTFORM)[:-12]),  # no closing boundary
    ],
    ids=["no boundary", "not multipart", "truncated"],
)
async def test_malformed_multipart_is_refused_at_the_door(
    api: Api, worker: RunningWorker, content_type: str, body: bytes
) -> None:
    hook_id = await _form_webhook(api)
    answer = await api.http.post(
        f"/hooks/{hook_id}", content=body, headers={"Content-Type": content_type}
    )
    assert answer.status_code in (400, 415), answer.text
    assert answer.json()["errors"][0]["code"] in ("invalid_json", "unsupported_media_type")


async def test_signature_is_checked_on_the_raw_multipart_bytes(
    api: Api, worker: RunningWorker
) -> None:
    hook_id = await _form_webhook(api, signature={"scheme": "standard-webhooks", "secret": SECRET})
    body = multipart(JOTFORM)
    signed = standard_headers(body, msg_id="jotform-1")
    answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers={**MULTIPART, **signed})
    assert answer.status_code == 202, answer.text
    # The same fields with another boundary parse to the same object, but the bytes differ.
    other = body.replace(BOUNDARY.encode(), b"----OtherBoundary")
    headers = {"Content-Type": "multipart/form-data; boundary=----OtherBoundary", **signed}
    forged = await api.http.post(f"/hooks/{hook_id}", content=other, headers=headers)
    assert forged.status_code == 401, forged.text


async def test_size_limit_holds_for_multipart(settings: Settings, store: Store) -> None:
    small = settings.model_copy(update={"max_payload_bytes": 200})
    async with serve_api(small) as api:
        hook_id = await _form_webhook(api)
        body = multipart([*JOTFORM, ("notes", "x" * 300)])
        answer = await api.http.post(f"/hooks/{hook_id}", content=body, headers=MULTIPART)
        assert answer.status_code == 413, answer.text
        assert answer.json()["errors"][0]["code"] == "payload_too_large"
