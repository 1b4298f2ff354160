"""``/codec/encode`` and ``/codec/decode``: Temporal's codec-server protocol for the Temporal UI,
operators only (admin token or /ui session), CORS with credentials for the UI's origin only."""

from __future__ import annotations

import base64
import json
import logging
import zlib
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from api.routes.codec import MAX_PAYLOADS
from infra.codec import COMPRESSED, ENCODING, KEY_ID, EncryptionCodec
from infra.keyring import KeyRing
from tests.conftest import ADMIN_TOKEN, TEST_KEY_ID, TEST_RING, Api
from tests.factories import ui_sign_in

BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _plain(value: Any) -> dict[str, Any]:
    """A json/plain payload in the protocol's JSON form."""
    return {
        "metadata": {"encoding": _b64(b"json/plain")},
        "data": _b64(json.dumps(value).encode()),
    }


async def test_encode_then_decode_round_trip(api: Api) -> None:
    sent = {"payloads": [_plain({"mrn": "MRN-1"}), _plain("Jane Roe")]}
    encoded = await api.http.post("/codec/encode", json=sent, headers=BEARER)
    assert encoded.status_code == 200, encoded.text
    payloads = encoded.json()["payloads"]
    assert len(payloads) == 2
    for payload in payloads:
        assert base64.b64decode(payload["metadata"]["encoding"]) == ENCODING
        assert base64.b64decode(payload["metadata"][KEY_ID]) == TEST_KEY_ID.encode()
        assert b"Jane" not in base64.b64decode(payload["data"])
    decoded = await api.http.post(
        "/codec/decode", json={"payloads": payloads}, headers={**BEARER, "X-Namespace": "default"}
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == sent


async def test_decode_reads_what_workers_wrote(api: Api) -> None:
    codec = EncryptionCodec(TEST_RING)
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    body = {
        "payloads": [
            {
                "metadata": {k: _b64(v) for k, v in sealed.metadata.items()},
                "data": _b64(sealed.data),
            }
        ]
    }
    decoded = await api.http.post("/codec/decode", json=body, headers=BEARER)
    assert decoded.json() == {"payloads": [_plain("x")]}


async def test_unknown_key_comes_back_encrypted_not_an_error(api: Api) -> None:
    other = EncryptionCodec(KeyRing.parse("gone:" + _b64(b"g" * 32)))
    [sealed] = await other.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    body = {
        "payloads": [
            {
                "metadata": {k: _b64(v) for k, v in sealed.metadata.items()},
                "data": _b64(sealed.data),
            },
            _plain(2),
        ]
    }
    decoded = await api.http.post("/codec/decode", json=body, headers=BEARER)
    assert decoded.status_code == 200
    assert decoded.json()["payloads"] == [body["payloads"][0], _plain(2)]


async def test_the_ui_session_cookie_is_accepted(api: Api) -> None:
    await ui_sign_in(api)  # the cookie stays on api.http
    encoded = await api.http.post("/codec/encode", json={"payloads": [_plain(1)]})
    assert encoded.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Cookie": "careflow_ui=forged.value.sig"},
    ],
    ids=["none", "wrong token", "basic", "forged cookie"],
)
async def test_missing_or_bad_credentials_are_401_json(api: Api, headers: dict[str, str]) -> None:
    for path in ("/codec/decode", "/codec/encode"):
        answer = await api.http.post(path, json={"payloads": [_plain(1)]}, headers=headers)
        assert answer.status_code == 401, answer.text
        assert answer.json()["errors"][0]["code"] == "unauthorized"


async def test_expired_session_is_401(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from api.ui import session

    await ui_sign_in(api)
    monkeypatch.setattr(session, "MAX_AGE_SECONDS", -1)
    answer = await api.http.post("/codec/decode", json={"payloads": []})
    assert answer.status_code == 401 and answer.json()["errors"][0]["code"] == "unauthorized"


async def test_a_signed_out_session_is_401(api: Api) -> None:
    csrf = await ui_sign_in(api)
    saved = dict(api.http.cookies)
    out = await api.http.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    cookie = {"Cookie": f"careflow_ui={saved['careflow_ui']}"}  # saved before signing out
    answer = await api.http.post("/codec/decode", json={"payloads": []}, headers=cookie)
    assert answer.status_code == 401 and answer.json()["errors"][0]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"payloads": [{"metadata": {"encoding": 5}}]}',
        b'{"payloads": 3}',
        b"\xff\xfe",
    ],
)
async def test_bad_bodies_are_400_never_500(api: Api, body: bytes) -> None:
    answer = await api.http.post(
        "/codec/decode", content=body, headers={**BEARER, "Content-Type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["errors"][0]["code"] == "invalid_codec_request"


async def test_empty_body_is_no_payloads(api: Api) -> None:
    answer = await api.http.post("/codec/decode", headers=BEARER)
    assert answer.status_code == 200 and answer.json() == {"payloads": []}


async def test_cors_for_the_temporal_ui_origin_with_credentials(api: Api) -> None:
    origin = api.settings.ui_base_url  # http://127.0.0.1:<TEMPORAL_UI_PORT>
    preflight = await api.http.options(
        "/codec/decode",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
    assert "x-namespace" in preflight.headers["access-control-allow-headers"].lower()
    twin = origin.replace("127.0.0.1", "localhost")
    denied = await api.http.post("/codec/decode", json={"payloads": []}, headers={"Origin": twin})
    assert denied.status_code == 401  # the 401 itself carries CORS, so the UI can read it
    assert denied.headers["access-control-allow-origin"] == twin

    stranger = await api.http.options(
        "/codec/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers
    # Nothing else on the API answers cross-origin requests.
    other = await api.http.get("/v1/requests", headers={"Origin": origin, **BEARER})
    assert "access-control-allow-origin" not in other.headers


async def test_codec_routes_are_in_the_openapi_schema(api: Api) -> None:
    paths = (await api.http.get("/openapi.json")).json()["paths"]
    assert "/codec/decode" in paths and "/codec/encode" in paths


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:9"},  # same site (another port), not the Temporal UI
        {"Origin": "http://127.0.0.1:9", "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://evil.example", "Content-Type": "text/plain"},  # no preflight
        {"Sec-Fetch-Site": "cross-site"},
    ],
    ids=[
        "other origin",
        "opaque origin",
        "other port",
        "same site",
        "simple request",
        "cross-site",
    ],
)
async def test_a_session_cookie_sent_from_another_origin_decrypts_nothing(
    api: Api, headers: dict[str, str]
) -> None:
    """A page of another origin can make a signed-in operator's browser POST to the codec
    server with the cookie (no preflight for a text/plain body; SameSite does not separate
    ports of one host). CORS only hides the answer: the server must not decrypt at all."""
    codec = EncryptionCodec(TEST_RING)
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"MRN-1"')])
    wire = {k: _b64(v) for k, v in sealed.metadata.items()}
    body = json.dumps({"payloads": [{"metadata": wire, "data": _b64(sealed.data)}]})
    await ui_sign_in(api)  # the cookie stays on api.http
    for path in ("/codec/decode", "/codec/encode"):
        answer = await api.http.post(
            path, content=body, headers={"Content-Type": "application/json", **headers}
        )
        assert answer.status_code == 401, (path, answer.text)
        assert answer.json()["errors"][0]["code"] == "unauthorized"
        assert "MRN-1" not in answer.text
    # The Temporal UI's own origin, a same-origin page (a proxy serving the UI and /codec under
    # whatever host name the operator typed) and a request without Origin (curl) still decode.
    for allowed in (
        {"Origin": api.settings.ui_base_url, "Sec-Fetch-Site": "same-site"},
        {"Origin": "http://ops-host.example:8233", "Sec-Fetch-Site": "same-origin"},
        {},
    ):
        answer = await api.http.post(
            "/codec/decode", content=body, headers={"Content-Type": "application/json", **allowed}
        )
        assert answer.status_code == 200, (allowed, answer.text)
        assert answer.json()["payloads"][0]["data"] == _b64(b'"MRN-1"')


async def test_payloads_under_a_missing_key_log_one_line_per_request_not_per_payload(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The Temporal UI decodes a whole history page at once: after a key is dropped from the
    ring, each page view must not write one warning per payload (500 payloads, 500 lines)."""
    other = EncryptionCodec(KeyRing.parse("gone:" + _b64(b"g" * 32)))
    [sealed] = await other.encode([Payload(metadata={"encoding": b"json/plain"}, data=b"1")])
    wire = {"metadata": {k: _b64(v) for k, v in sealed.metadata.items()}, "data": _b64(sealed.data)}
    caplog.set_level(logging.INFO)
    caplog.clear()
    answer = await api.http.post("/codec/decode", json={"payloads": [wire] * 500}, headers=BEARER)
    assert answer.status_code == 200
    assert answer.json()["payloads"] == [wire] * 500
    lines = [r for r in caplog.records if "gone" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines[:5]]
    assert "500" in lines[0].getMessage()


def _inflating_payload(size: int) -> dict[str, Any]:
    """A payload sealed under the test key whose compressed body inflates to ``size`` bytes
    (each about 8 kB on the wire): what a key holder, or a defect, could send."""
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b" " * size).SerializeToString()
    packed = Payload(metadata={"encoding": COMPRESSED}, data=zlib.compress(inner, 9))
    key_id, sealed = TEST_RING.encrypt(packed.SerializeToString())
    return {
        "metadata": {"encoding": _b64(ENCODING), KEY_ID: _b64(key_id.encode())},
        "data": _b64(sealed),
    }


async def test_payloads_inflating_past_the_answer_budget_are_413_not_gigabytes(api: Api) -> None:
    # Each payload stays under the per-payload cap (8 MiB), but a request of many would hold
    # gigabytes (an 8 MiB body carries ~700 of them): the answer's total is bounded instead.
    one = _inflating_payload(7 * 1024 * 1024)
    answer = await api.http.post("/codec/decode", json={"payloads": [one] * 6}, headers=BEARER)
    assert answer.status_code == 413, answer.status_code
    assert answer.json()["errors"][0]["code"] == "codec_answer_too_large"
    small = await api.http.post("/codec/decode", json={"payloads": [one]}, headers=BEARER)
    assert small.status_code == 200
    assert len(base64.b64decode(small.json()["payloads"][0]["data"])) == 7 * 1024 * 1024


async def test_a_compressed_payload_that_does_not_inflate_comes_back_encrypted(api: Api) -> None:
    for data in (b"not zlib", zlib.compress(b"x" * 1000)[:-6], zlib.compress(b"\xff" * 300)):
        packed = Payload(metadata={"encoding": COMPRESSED}, data=data)
        key_id, sealed = TEST_RING.encrypt(packed.SerializeToString())
        sent = {
            "metadata": {"encoding": _b64(ENCODING), KEY_ID: _b64(key_id.encode())},
            "data": _b64(sealed),
        }
        answer = await api.http.post("/codec/decode", json={"payloads": [sent]}, headers=BEARER)
        assert answer.status_code == 200 and answer.json() == {"payloads": [sent]}


@pytest.mark.parametrize("path", ["/codec/decode", "/codec/encode"])
async def test_more_payloads_than_a_history_page_holds_is_413(api: Api, path: str) -> None:
    # An 8 MiB body holds 2.8 million "{}": parsed and answered, that held the API's event loop
    # for 30 s on the running stack (every webhook delivery waited).
    payloads = b",".join([b"{}"] * (MAX_PAYLOADS + 1))
    answer = await api.http.post(
        path,
        content=b'{"payloads": [' + payloads + b"]}",
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413, answer.text
    assert answer.json()["errors"][0]["code"] == "codec_request_too_large"
    at_most = b",".join([b"{}"] * MAX_PAYLOADS)
    answer = await api.http.post(
        path,
        content=b'{"payloads": [' + at_most + b"]}",
        headers={**BEARER, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200 and len(answer.json()["payloads"]) == MAX_PAYLOADS
