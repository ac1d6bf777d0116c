"""A small JSONPath: ``$``, ``.name``, ``['name']``, ``["name"]``, ``[0]``, ``[-1]``, ``[*]``,
``.*`` and ``..name`` (recursive descent). Enough for health check assertions, no dependency."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(
    r"""
    \.\.(?P<deep>[A-Za-z_$][\w$-]*|\*)       # ..name  ..*
  | \.(?P<name>[A-Za-z_$][\w$-]*)            # .name
  | \.\*                                     # .*   (group-less: wildcard)
  | \[\s*(?P<index>-?\d+)\s*\]               # [0]
  | \[\s*\*\s*\]                             # [*]
  | \[\s*'(?P<sq>(?:[^'\\]|\\.)*)'\s*\]      # ['name']
  | \[\s*"(?P<dq>(?:[^"\\]|\\.)*)"\s*\]      # ["name"]
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # "key", "index", "wild", "deep"
    value: Any = None


@dataclass(frozen=True, slots=True)
class Path:
    steps: tuple[Step, ...]

    def find(self, document: Any) -> list[Any]:
        """Every value the path selects in ``document``."""
        current = [document]
        for step in self.steps:
            following: list[Any] = []
            for node in current:
                following.extend(_apply(step, node))
            current = following
        return current


def _apply(step: Step, node: Any) -> list[Any]:
    if step.kind == "key":
        return [node[step.value]] if isinstance(node, dict) and step.value in node else []
    if step.kind == "index":
        if isinstance(node, list) and -len(node) <= step.value < len(node):
            return [node[step.value]]
        return []
    if step.kind == "wild":
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    # deep: every descendant (node included) then the key or wildcard
    out: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop(0)
        if step.value == "*":
            children = (
                list(item.values())
                if isinstance(item, dict)
                else list(item)
                if isinstance(item, list)
                else []
            )
            out.extend(children)
        elif isinstance(item, dict) and step.value in item:
            out.append(item[step.value])
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


@lru_cache(maxsize=1024)
def compile_path(text: str) -> Path:
    """Parse ``text`` (``JsonPathError`` naming the position when it is not a path)."""
    source = text.strip()
    if not source.startswith("$"):
        raise JsonPathError("JSONPath must start with $")
    position = 1
    steps: list[Step] = []
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            raise JsonPathError(
                f"Invalid JSONPath at position {position}: {source[position:][:20]}"
            )
        if match["deep"] is not None:
            steps.append(Step("deep", match["deep"]))
        elif match["name"] is not None:
            steps.append(Step("key", match["name"]))
        elif match["index"] is not None:
            steps.append(Step("index", int(match["index"])))
        elif match["sq"] is not None:
            steps.append(Step("key", re.sub(r"\\(.)", r"\1", match["sq"])))
        elif match["dq"] is not None:
            steps.append(Step("key", re.sub(r"\\(.)", r"\1", match["dq"])))
        else:
            steps.append(Step("wild"))
        position = match.end()
    return Path(tuple(steps))
