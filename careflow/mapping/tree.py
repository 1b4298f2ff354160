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
# Keys that name a kind, a system or a field, never a person: the only ones a filter may use
# (a filter's value is saved in the webhook's configuration, so it must not be PHI).
DISCRIMINATORS = ("system", "ref", "type", "code", "key", "kind", "use", "category")
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


def discriminator(items: list[Any]) -> str | None:
    """The key (``system`` or one level down, ``field.ref``) whose text tells the objects of a
    list apart: present in each, distinct, from :data:`DISCRIMINATORS` (one level down also
    ``id``, as in ``field.id``); None if there is none."""
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    candidates = list(DISCRIMINATORS)
    nested = {k for i in items for k, v in i.items() if isinstance(v, dict)}
    # One level down, a field's own id is configuration too (Typeform ``answers[].field.id``).
    candidates += [f"{n}.{d}" for d in (*DISCRIMINATORS, "id") for n in sorted(nested)]
    for key in candidates:
        values = [_lookup(i, key) for i in items]
        if all(isinstance(v, str) and v and "'" not in v and "\\" not in v for v in values) and (
            len(set(values)) == len(values)
        ):
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

    def visit(value: Any, label: str, path: str, all_path: str | None, filt: str | None) -> Node:
        budget[0] -= 1
        node = Node(label, path, _kind(value), None, all_path, filt)
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
                    visit(child, f"[{index}]", f"{path}[{index}]", f"{path}[*]", child_filter)
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
