"""The read-only rule of every PUT/PATCH: equal stored values accepted, different ones named."""

from __future__ import annotations

from datetime import UTC, datetime

from careflow.read_only import read_only_problems

AT = datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)


def test_equal_values_pass_in_any_rfc3339_spelling() -> None:
    stored = {"id": "intake", "created_at": AT}
    for given in (
        {},
        {"id": "intake"},
        {"created_at": "2026-01-02T03:04:05.600000Z"},
        {"created_at": "2026-01-02T04:04:05.6+01:00"},
        {"created_at": AT},
    ):
        assert read_only_problems(given, stored) == [], given


def test_each_different_field_is_named() -> None:
    stored = {"id": "intake", "created_at": AT, "enabled": False}
    problems = read_only_problems({"id": "other", "created_at": "yesterday", "enabled": 0}, stored)
    assert [(p.code, p.path) for p in problems] == [
        ("read_only_field", "id"),
        ("read_only_field", "created_at"),
        ("read_only_field", "enabled"),  # 0 is not false
    ]
    assert all("read-only" in p.message for p in problems)
