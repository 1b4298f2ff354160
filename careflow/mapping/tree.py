"""A payload as a tree of clickable values, each with the JSONPaths that select it.

Pure: the webhook page renders this tree, and clicking a value fills a mapping with one of its
paths. Names that are JSONPath identifiers use the dotted form (``$.payload.startTime``); others
the bracketed form (``$['event-data']``, ``$['PID.3']``). Inside arrays, a value offers the path of
this element (``[0]``), of all elements (``[*]``, innermost array) and, in a list of objects with a
discriminating key, the filter form (``[?(@.system=='urn:x')]``, ``[?(@.field.ref=='email')]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# jsonpath-ng's lexer reserves these words; as names they need brackets.
_RESERVED = frozenset({"where", "wherenot", "when", "this", "parent", "and", "or", "not", "in"})
# The only keys a filter may use (a filter's value is saved in the webhook's configuration, so it
# must be a configuration constant, never PHI): FHIR ``system``/``use``/``url``, a kind (``type``)
# and, one level down, a form field's own ``ref``/``id`` (Typeform ``answers[].field.ref``).
# ``id``, ``key``, ``name`` and the like of anything else are never offered.
DISCRIMINATORS = ("system", "url", "use", "type", "field.ref", "field.id")
# A filter is offered only in lists this short (each candidate key scans every item).
MAX_FILTER_ITEMS = 50
# Object/array nesting followed (deeper parts are cut off, as beyond the node budget).
MAX_DEPTH = 64
_TOKEN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_URI = re.compile(
    r"^(https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/%+-]*)?|urn:[A-Za-z0-9.:-]+)$"
)
MAX_NODES = 2000


def name_step(key: str) -> str:
    """The JSONPath step for an object member: ``.key`` or ``['key']`` (quotes escaped)."""
    if _IDENTIFIER.match(key) and key.lower() not in _RESERVED:
        return f".{key}"
    escaped = key.replace("\\", "\\\\").replace("'", "\\'")
    return f"['{escaped}']"


@dataclass
class Node:
    """One member or element of the payload.

    ``label``: the key or ``[i]``; ``path``: this element's path; ``all_path``: the same with the
    innermost array index as ``[*]`` (None outside arrays); ``filter_path``: the filter form (None
    without a discriminating key); ``kind``: ``object``, ``array``, ``string``, ``number``,
    ``boolean`` or ``null``; ``children`` for objects and arrays.
    """

    label: str
    path: str
    kind: str
    value: Any = None
    all_path: str | None = None
    filter_path: str | None = None
    children: list[Node] = field(default_factory=list)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _lookup(item: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def constant_like(key: str, value: Any) -> bool:
    """Whether ``value`` under ``key`` plainly reads as a configuration constant: an http(s) or
    ``urn:`` URI for ``system``/``url``, else a short code token (a letter first, no spaces,
    ``@``, ``:`` or dots, at most half digits) — never an email, a date, a name or a number."""
    if not isinstance(value, str) or len(value) > 200:
        return False
    if key in ("system", "url"):
        return bool(_URI.match(value)) and "@" not in value
    if not _TOKEN.match(value):
        return False
    return sum(c.isdigit() for c in value) * 2 <= len(value)


def discriminator(items: list[Any]) -> str | None:
    """The key of :data:`DISCRIMINATORS` whose text tells the objects of a list apart: present
    in each, distinct, constant-like (:func:`constant_like`); None if there is none, if the list
    holds anything but objects or more than :data:`MAX_FILTER_ITEMS` items.

    Work: at most ``len(DISCRIMINATORS) * MAX_FILTER_ITEMS`` lookups, stopping at the first
    item that rules a key out."""
    if not items or len(items) > MAX_FILTER_ITEMS:
        return None
    if not all(isinstance(i, dict) for i in items):
        return None
    for key in DISCRIMINATORS:
        seen: set[str] = set()
        for item in items:
            value = _lookup(item, key)
            if value in seen or not constant_like(key.rpartition(".")[2], value):
                break
            seen.add(value)
        else:
            return key
    return None


def build(payload: Any, max_nodes: int = MAX_NODES) -> Node:
    """The tree of ``payload`` (at most ``max_nodes`` nodes; deeper parts are cut off).

    Args:
        payload: a parsed JSON value.
        max_nodes: bound on the number of nodes (a 1 MiB payload must not make a huge page).

    Returns:
        The root node (path ``$``).
    """
    budget = [max_nodes]

    def visit(
        value: Any, label: str, path: str, all_path: str | None, filt: str | None, depth: int = 0
    ) -> Node:
        budget[0] -= 1
        node = Node(label, path, _kind(value), None, all_path, filt)
        if depth >= MAX_DEPTH:
            return node
        if isinstance(value, dict):
            for key, child in value.items():
                if budget[0] <= 0:
                    break
                step = name_step(str(key))
                node.children.append(
                    visit(
                        child,
                        str(key),
                        path + step,
                        all_path + step if all_path else None,
                        filt + step if filt else None,
                        depth + 1,
                    )
                )
        elif isinstance(value, list):
            key = discriminator(value)
            for index, child in enumerate(value):
                if budget[0] <= 0:
                    break
                child_filter = None
                if key is not None:
                    wanted = _lookup(child, key)
                    child_filter = f"{path}[?(@.{key}=='{wanted}')]"
                node.children.append(
                    visit(
                        child,
                        f"[{index}]",
                        f"{path}[{index}]",
                        f"{path}[*]",
                        child_filter,
                        depth + 1,
                    )
                )
        else:
            node.value = value
        return node

    return visit(payload, "$", "$", None, None)


def leaves(root: Node) -> list[Node]:
    """Every node in document order (objects and arrays included), root first."""
    found: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(reversed(node.children))
    return found
