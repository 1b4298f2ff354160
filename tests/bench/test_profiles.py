"""py-spy raw profiles: packages, self time, this repository's functions, the printed summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.profiles import package_of, parse_profile, profile_lines, summarize_profiles

ROOT = Path("/srv/app")
SITE = "/srv/app/.venv/lib/python3.11/site-packages"
STDLIB = "/usr/lib/python3.11"

# Three stacks, 10 samples in all: asyncio → worker → validation (6), asyncio → httpx (3), and a
# leaf whose frame has no line number (1). A header line and a blank line carry no count.
PROFILE = "\n".join(
    [
        "py-spy raw output",
        f"run ({STDLIB}/asyncio/runners.py:118);main ({ROOT}/worker.py:70);"
        f"validate ({ROOT}/careflow/validation.py:12) 6",
        f"run ({STDLIB}/asyncio/runners.py:118);send ({SITE}/httpx/_client.py:1600) 3",
        f"run ({STDLIB}/asyncio/runners.py:118);<lambda> ({ROOT}/api/main.py) 1",
        "",
    ]
)


@pytest.mark.parametrize(
    ("path", "package"),
    [
        (f"{SITE}/temporalio/worker/_workflow.py", "temporalio"),
        (f"{ROOT}/careflow/mapping/engine.py", "careflow"),
        (f"{ROOT}/worker.py", "worker.py"),
        (f"{STDLIB}/asyncio/base_events.py", "stdlib:base_events.py"),
        ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap>"),
        ("", "?"),
    ],
)
def test_package_of(path: str, package: str) -> None:
    assert package_of(path, ROOT) == package


def test_parse_profile_counts_each_package_and_function_once_per_stack() -> None:
    profile = parse_profile(PROFILE, ROOT)
    assert profile.total == 10
    assert profile.inclusive == {
        "stdlib:runners.py": 10,
        "worker.py": 6,
        "careflow": 6,
        "httpx": 3,
        "api": 1,
    }
    assert profile.self_time == {
        "validate (careflow)": 6,
        "send (httpx)": 3,
        "<lambda> (api)": 1,
    }
    assert profile.ours == {
        "main (worker.py)": 6,
        "validate (careflow/validation.py)": 6,
        "<lambda> (api/main.py)": 1,
    }


def test_a_recursive_stack_counts_once_and_venv_code_is_not_ours() -> None:
    frame = f"walk ({ROOT}/careflow/mapping/engine.py:5)"
    venv = f"call ({ROOT}/.venv/lib/python3.11/site-packages/pydantic/main.py:3)"
    profile = parse_profile(f"{frame};{frame};{venv} 4", ROOT)
    assert profile.inclusive == {"careflow": 4, "pydantic": 4}
    assert profile.ours == {"walk (careflow/mapping/engine.py)": 4}
    assert profile.self_time == {"call (pydantic)": 4}


def test_profile_lines_give_percentages_most_common_first() -> None:
    lines = profile_lines("api-1.txt", parse_profile(PROFILE, ROOT))
    assert lines[0] == "\nprofile api-1.txt: 10 samples holding the GIL"
    assert lines[1] == "  inclusive by package:"
    assert lines[2] == "    100.0%  stdlib:runners.py"
    assert lines[-1] == "     10.0%  <lambda> (api/main.py)"
    assert "  self time:" in lines and "  inclusive, functions of this repository:" in lines
    assert lines[lines.index("  self time:") + 1] == "     60.0%  validate (careflow)"


def test_summarize_profiles_prints_each_profile_with_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "worker-2.txt").write_text(PROFILE)
    (tmp_path / "api-1.txt").write_text("py-spy raw output\n")  # no samples: left out
    (tmp_path / "notes.log").write_text(PROFILE)  # not a profile
    summarize_profiles(tmp_path, ROOT)
    out = capsys.readouterr().out
    assert out.count("\nprofile ") == 1
    assert "profile worker-2.txt: 10 samples holding the GIL" in out
    assert "api-1.txt" not in out
