"""Suggested mappings: for a data point without a path, the payload paths likely to hold it.

Pure. A candidate must (1) share a word with the data point's id or title — words are split
on ``_``, ``-``, spaces, dots and camelCase, compared without a plural ``s`` and through a few
synonyms (``email`` ~ ``mail``, ``last`` ~ ``family``) — and (2) map cleanly: the data point's own
rules (type, possible values, range) accept what the path finds, exactly as a request would be
mapped. Candidates are ranked by how much of the data point's name they cover, weighted by how
close to the end of the path each word is and by whether the value is of the type's own JSON
kind (a JSON boolean for a boolean rather than ``1``), then by shorter paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from careflow.mapping.engine import map_payload
from careflow.mapping.paths import InvalidPathError
from careflow.mapping.tree import Node, build, leaves
from careflow.models import (
    CareFlowDefinition,
    DataPointDefinition,
    DataPointMapping,
    ValueType,
    WebhookFields,
)

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\b|[0-9_])|[A-Z]?[a-z]+|[0-9]+|[A-Z]+")
_SYNONYMS = {
    "mail": "email",
    "e": "email",
    "family": "last",
    "surname": "last",
    "given": "first",
    "forename": "first",
    "dob": "birth",
    "birthdate": "birth",
    "born": "birth",
    "tel": "phone",
    "telephone": "phone",
    "mobile": "phone",
    "duration": "length",
    "mrn": "identifier",
}
# Words too common to tell paths apart on their own.
_WEAK = frozenset({"value", "data", "payload", "id", "at", "is", "the", "of"})
_ARRAYS = (ValueType.STRINGS_ARRAY, ValueType.NUMBERS_ARRAY)


@dataclass(frozen=True)
class Suggestion:
    """A path for a data point and the value it gives on the payload (coerced, as stored)."""

    data_point_definition_id: str
    path: str
    value: Any
    score: float


def words(text: str) -> list[str]:
    """Lower-case words of an id, title or path (``startTime`` → ``start``, ``time``)."""
    found = []
    for raw in _WORDS.findall(text):
        word = raw.lower()
        if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        found.append(_SYNONYMS.get(word, word))
    return found


_NATIVE = {
    ValueType.STRING: "string",
    ValueType.DATE: "string",
    ValueType.TELEPHONE: "string",
    ValueType.NUMBER: "number",
    ValueType.BOOLEAN: "boolean",
}


def _candidates(point: DataPointDefinition, nodes: list[Node]) -> dict[str, float]:
    """Paths worth trying for ``point`` → a weight: arrays' ``[*]`` form for array types, scalar
    leaves (and objects/arrays for ``json``) otherwise; a value of the type's own JSON kind
    weighs 1, one that only coerces (``1`` for a boolean, ``"60"`` for a number) 0.8."""
    paths: dict[str, float] = {}
    native = _NATIVE.get(point.value_type)
    for node in nodes:
        if node.path == "$":
            continue
        if point.value_type in _ARRAYS:
            if node.kind == "array" and node.children and not node.children[0].children:
                paths.setdefault(node.path, 1.0)  # an array of scalars: the whole list
            elif node.all_path and node.kind not in ("object", "array"):
                paths.setdefault(node.all_path, 1.0)
        elif point.value_type == ValueType.JSON:
            paths.setdefault(node.path, 1.0)
        elif node.kind not in ("object", "array", "null"):
            paths.setdefault(node.filter_path or node.path, 1.0 if node.kind == native else 0.8)
    return paths


def _score(wanted: list[str], path: str) -> float:
    """Share of the data point's strong words found in the path, weighted toward its end."""
    strong = [w for w in wanted if w not in _WEAK] or wanted
    steps = [words(step) for step in re.split(r"\.|\[|\]", path) if step and step != "$"]
    score = 0.0
    for word in set(strong):
        for distance, step in enumerate(reversed(steps)):
            if word in step:
                score += 1.0 / (1 + 0.25 * distance)
                break
    return score / len(set(strong))


def suggest(
    definition: CareFlowDefinition,
    payload: Any,
    mapped: set[str],
    per_point: int = 3,
) -> dict[str, list[Suggestion]]:
    """Suggested paths for each data point of ``definition`` not in ``mapped``.

    Args:
        definition: the care flow definition (its data points and their rules).
        payload: the parsed test payload.
        mapped: ids of data points that already have a path.
        per_point: at most this many suggestions per data point.

    Returns:
        data point id → suggestions, best first (data points without any are left out).

    Work is bounded whatever the payload and definition: the tree has at most
    :data:`~careflow.mapping.tree.MAX_NODES` nodes, at most :data:`MAX_SCORED` paths are scored
    and :data:`MAX_TRIALS` mapped (data points past the budget get no suggestion).
    """
    nodes = leaves(build(payload))
    found: dict[str, list[Suggestion]] = {}
    scores_left = MAX_SCORED
    trials_left = MAX_TRIALS
    for point in definition.data_point_definitions:
        if point.id in mapped:
            continue
        if scores_left <= 0 or trials_left <= 0:
            break
        wanted = words(point.id) + words(point.title)
        scored = []
        for path, weight in _candidates(point, nodes).items():
            scores_left -= 1
            if scores_left < 0:
                break
            score = _score(wanted, path) * weight
            if score > 0:
                scored.append((score, -len(path), path))
        scored.sort(reverse=True)
        good: list[Suggestion] = []
        for score, _, path in scored[: min(MAX_TRIED, trials_left)]:
            trials_left -= 1
            value = _mapped_value(definition, point, path, payload)
            if value is not _NONE:
                good.append(Suggestion(point.id, path, value, round(score, 3)))
            if len(good) == per_point:
                break
        if good:
            found[point.id] = good
    return found


_NONE: Any = object()
# Paths tried per data point, best named first: each is compiled (and cached with the paths
# requests use), so a large payload must not try thousands.
MAX_TRIED = 30
# Bounds on one whole call, whatever the number of data points: paths scored (each a few regex
# splits) and paths tried (each maps the whole payload once).
MAX_SCORED = 20_000
MAX_TRIALS = 200


def _mapped_value(
    definition: CareFlowDefinition, point: DataPointDefinition, path: str, payload: Any
) -> Any:
    """What the data point would hold with ``path`` (its rules applied), or ``_NONE``."""
    trial = WebhookFields(
        name="suggestion",
        care_flow_definition_id=definition.id,
        data_point_mappings=[DataPointMapping(data_point_definition_id=point.id, path=path)],
    )
    only = definition.model_copy(
        update={"data_point_definitions": [point.model_copy(update={"optional": False})]}
    )
    try:
        result = map_payload(trial, only, payload)
    except InvalidPathError:  # a name jsonpath-ng cannot express: no suggestion
        return _NONE
    if result.errors or point.id not in result.data_points:
        return _NONE
    return result.data_points[point.id]
