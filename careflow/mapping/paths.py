"""JSONPath compilation (jsonpath-ng extended syntax, cached by text) and evaluation.

Parsing costs about a millisecond, so every path is compiled once and cached by its text
(:func:`compile_path`). Paths using syntax that jsonpath-ng deprecates (``|``, ``&``, unquoted
words in filters) or regular-expression filters are refused as invalid.
"""

from __future__ import annotations

import logging
import threading
import warnings
from functools import lru_cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as _jsonpath_parse

logger = logging.getLogger(__name__)


class InvalidPathError(ValueError):
    """A JSONPath that jsonpath-ng's extended parser refuses.

    Attributes:
        path: The offending path text (configuration, never payload data).
        reason: The parser's explanation.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"invalid JSONPath {path!r}: {reason}")
        self.path = path
        self.reason = reason


# ply's parser is built per call, but ``warnings.catch_warnings`` swaps process-wide state:
# serialise the (rare, cached) parses so two threads do not restore each other's filters.
_PARSE_LOCK = threading.Lock()


@lru_cache(maxsize=4096)
def _compile_cached(path: str) -> JSONPath | InvalidPathError:
    """Parse ``path`` once; failures are cached too, so a bad path never costs a parse twice."""
    if not isinstance(path, str) or not path.strip():
        return InvalidPathError(str(path), "a JSONPath must be a non-empty string")
    try:
        with _PARSE_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            parsed = _jsonpath_parse(path)
        if _uses_regex(parsed):
            return InvalidPathError(
                path,
                "regular-expression filters (=~) are not supported: a pattern can backtrack "
                "for minutes on a crafted payload",
            )
        return parsed
    except DeprecationWarning as exc:
        return InvalidPathError(path, f"deprecated syntax, removed in jsonpath-ng 2.0 ({exc})")
    except Exception as exc:  # lexer/parser errors, and anything else ply may raise
        return InvalidPathError(path, str(exc) or type(exc).__name__)


def _uses_regex(node: object) -> bool:
    """Whether a parsed path contains a ``=~`` filter (Python's ``re`` has no time limit)."""
    stack = [node]
    seen = 0
    while stack and seen < 10_000:
        current = stack.pop()
        seen += 1
        if getattr(current, "op", None) == "=~":
            return True
        if isinstance(current, list | tuple):
            stack.extend(current)
        elif type(current).__module__.startswith("jsonpath_ng"):
            stack.extend(vars(current).values())
    return False


def compile_path(path: str) -> JSONPath:
    """Compile a JSONPath with jsonpath-ng's extended parser, cached by its text.

    Filter comparisons follow RFC 9535 §2.3.5 (as jsonpath-ng 1.16 implements them); the
    extended grammar adds filters (``[?(@.system=='urn:x')]``), sorting, arithmetic and
    string functions.

    Args:
        path: The JSONPath text, e.g. ``"$.identifier[?(@.system=='urn:x')].value"``.

    Returns:
        The compiled expression (shared: do not mutate it). ``.find(body)`` evaluates it.

    Raises:
        InvalidPathError: The path does not parse, or uses syntax jsonpath-ng deprecates.
    """
    compiled = _compile_cached(path)
    if isinstance(compiled, InvalidPathError):
        # A fresh instance each time: re-raising the cached one would grow its traceback.
        raise InvalidPathError(compiled.path, compiled.reason)
    return compiled


class _EvaluationFailed(Exception):
    """jsonpath-ng raised while evaluating a valid path on this body.

    E.g. ``$.a[/x]`` sorting values of mixed types, or a string function applied to a number.
    """


def _matches(path: str, body: Any) -> list[Any]:
    """All match values of ``path`` in ``body``, in document order.

    Raises:
        InvalidPathError: The path does not parse.
        _EvaluationFailed: Evaluation raised.
    """
    compiled = _compile_cached(path)
    if isinstance(compiled, InvalidPathError):
        # A fresh instance each time: re-raising the cached one would grow its traceback.
        raise InvalidPathError(compiled.path, compiled.reason)
    try:
        return [datum.value for datum in compiled.find(body)]
    except Exception as exc:  # TypeError from sorts/string functions, RecursionError, …
        raise _EvaluationFailed(type(exc).__name__) from None


def find_first(path: str, body: Any) -> Any | None:
    """The first non-null match of ``path`` in ``body`` (used for ``delivery_id_path``).

    Never raises: a path that does not parse (refused at save time, so it should not happen)
    or fails to evaluate gives None, and the path — never the body — is logged.

    Args:
        path: A JSONPath (jsonpath-ng extended syntax).
        body: Any parsed JSON value.

    Returns:
        The first match that is not JSON null, as found in ``body``; None when there is none.
    """
    try:
        values = _matches(path, body)
    except InvalidPathError:
        logger.warning("find_first: path does not parse: %s", path)
        return None
    except _EvaluationFailed as exc:
        logger.warning("find_first: path %s failed to evaluate (%s)", path, exc)
        return None
    for value in values:
        if value is not None:
            return value
    return None


def _first_present(path: str, body: Any) -> Any:
    """First non-null match; raises InvalidPathError / _EvaluationFailed."""
    for value in _matches(path, body):
        if value is not None:
            return value
    return None
