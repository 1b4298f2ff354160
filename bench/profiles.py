"""Where the CPU time goes: summaries of ``py-spy record --format raw`` profiles (``--profile``).

A raw profile has one line per distinct stack: frames from the outermost to the leaf, joined by
``;``, each ``function (file:line)``, then a space and the number of samples. ``bench/run.py
--profile DIR`` records one file per process (API, workers) and prints, for each, the inclusive
share by package, the top self-time frames, the self time charged to the code that asked for it
(see ``charged_to``) and the inclusive share of this repository's functions.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = 14  # rows per list

# Charged to their caller: the standard library and the libraries the OTLP exporter sends with.
_CARRIERS = ("stdlib:", "<frozen", "urllib3", "requests", "google", "certifi", "idna", "wrapt")
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:()]*)(?::(?P<line>\d+))?\)$")


@dataclass
class Profile:
    """Samples of one profile: ``total``, and per key the samples it appears in.

    ``inclusive`` is keyed by package, ``self_time`` by leaf frame (``func (package)``),
    ``ours`` by function of this repository (``func (path relative to the root)``),
    ``charged`` by ``charged_to`` of the leaf.
    """

    total: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    self_time: Counter[str] = field(default_factory=Counter)
    ours: Counter[str] = field(default_factory=Counter)
    charged: Counter[str] = field(default_factory=Counter)


def package_of(path: str, root: Path = ROOT) -> str:
    """The package a source file belongs to.

    Returns:
        The distribution directory under ``site-packages/``, the top-level directory (or module)
        of the repository at ``root``, ``stdlib:<module file>`` for the standard library, else
        the path itself (``?`` when empty).
    """
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    if str(root) in path:
        return path.split(str(root) + "/", 1)[1].split("/", 1)[0]
    if "/lib/python3" in path:
        return "stdlib:" + path.rsplit("/", 1)[-1]
    return path or "?"


def charged_to(files: list[str], root: Path = ROOT) -> str:
    """Who a sample's self time is charged to: the innermost frame that is not the standard
    library or a transport library (``_CARRIERS``). That frame's file, relative to ``root``,
    for this repository's code; ``temporalio.contrib.opentelemetry`` apart from the rest of
    ``temporalio``; else its package (``package_of``).

    Args:
        files: the sample's frames' files, outermost first.
    """
    for path in reversed(files):
        package = package_of(path, root)
        if package.startswith(_CARRIERS):
            continue
        if "temporalio/contrib/opentelemetry" in path:
            return "temporalio.contrib.opentelemetry"
        if str(root) in path and ".venv" not in path:
            return path.split(str(root) + "/", 1)[1]
        return package
    return package_of(files[-1], root) if files else "?"


def parse_profile(text: str, root: Path = ROOT) -> Profile:
    """Add up a raw profile's lines (lines without a sample count are skipped).

    Args:
        text: the profile file's contents.
        root: the repository, for ``package_of`` and ``Profile.ours``.
    """
    profile = Profile()
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        profile.total += count
        frames = stack.split(";")
        matches = [_FRAME.match(frame) for frame in frames]
        profile.charged[charged_to([m["file"] for m in matches if m], root)] += count
        leaf = _FRAME.match(frames[-1])
        key = f"{leaf['func']} ({package_of(leaf['file'], root)})" if leaf else frames[-1]
        profile.self_time[key] += count
        packages = set()
        functions = set()
        for frame in frames:
            match = _FRAME.match(frame)
            if match:
                packages.add(package_of(match["file"], root))
                if str(root) in match["file"] and ".venv" not in match["file"]:
                    where = match["file"].split(str(root) + "/", 1)[-1]
                    functions.add(f"{match['func']} ({where})")
        for package in packages:
            profile.inclusive[package] += count
        for function in functions:
            profile.ours[function] += count
    return profile


def profile_lines(name: str, profile: Profile) -> list[str]:
    """The printed summary of one profile: ``TOP`` rows per list, shares in percent."""
    lines = [f"\nprofile {name}: {profile.total} samples holding the GIL"]
    for title, counts in (
        ("inclusive by package", profile.inclusive),
        ("self time", profile.self_time),
        ("self time charged to the caller (stdlib, transport libraries)", profile.charged),
        ("inclusive, functions of this repository", profile.ours),
    ):
        lines.append(f"  {title}:")
        for key, count in counts.most_common(TOP):
            lines.append(f"    {100 * count / profile.total:5.1f}%  {key}")
    return lines


def summarize_profiles(profile_dir: Path, root: Path = ROOT) -> None:
    """Print the summary of every ``*.txt`` profile in ``profile_dir`` that has samples."""
    for path in sorted(profile_dir.glob("*.txt")):
        profile = parse_profile(path.read_text(errors="replace"), root)
        if profile.total:
            print("\n".join(profile_lines(path.name, profile)))
