"""``multipart/form-data`` text fields as a flat object (RFC 7578; issue 15, finding 9)."""

from __future__ import annotations

import pytest

from careflow.payload import PayloadError, media_type_of, parse_body

MEDIA = media_type_of("multipart/form-data; boundary=XyZ")


def part(name: str, value: str, extra: str = "") -> bytes:
    return (
        f'--XyZ\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n{value}\r\n'.encode()
    )


END = b"--XyZ--\r\n"


def test_fields_repeated_names_and_utf_8() -> None:
    body = (
        part("a", "1") + part("a", "2") + part("né", "Zoë") + part("a", "3") + part("e", "") + END
    )
    assert MEDIA is not None
    assert parse_body(body, MEDIA) == {"a": ["1", "2", "3"], "né": "Zoë", "e": ""}


def test_a_part_content_type_does_not_make_a_file() -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="j"\r\nContent-Type: application/json'
        b'\r\n\r\n{"x": 1}\r\n' + END
    )
    assert MEDIA is not None
    assert parse_body(body, MEDIA) == {"j": '{"x": 1}'}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (part("f", "data", '; filename="a.pdf"') + END, "unsupported_media_type"),
        (part("f", "data", "; filename*=UTF-8''a.pdf") + END, "unsupported_media_type"),
        (b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n" + END, "invalid_json"),
        (b"--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n" + END, "invalid_json"),
        (part("a", "\udcff".encode("utf-8", "surrogateescape").decode("latin-1")), "invalid_json"),
        (part("a", "1"), "invalid_json"),  # no closing boundary
        (END, "invalid_json"),  # no part
        (b"a=1&b=2", "invalid_json"),
        (b"   ", "empty_body"),
    ],
    ids=[
        "file part",
        "file part (filename*)",
        "no name",
        "not form-data",
        "not UTF-8",
        "truncated",
        "no part",
        "not multipart",
        "empty",
    ],
)
def test_refusals(body: bytes, code: str) -> None:
    assert MEDIA is not None
    with pytest.raises(PayloadError) as caught:
        parse_body(body, MEDIA)
    assert caught.value.error.code == code
