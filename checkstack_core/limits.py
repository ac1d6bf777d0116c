"""Limits on hostile input that every decoder and the dispatcher's validation share.

- JSON nesting: a body nested deeper than :data:`MAX_JSON_DEPTH` is refused before it is decoded
  (msgspec and every recursive walk after it would otherwise hit Python's recursion limit and
  answer 500, and a deep document stored once breaks every later read of it).
- Datetimes: an input time must convert to UTC and stay a day away from the ends of Python's
  range (``0001-01-01T00:00:00+05:00`` overflows when converted; ``9999-12-31`` overflows as soon
  as a handler adds a day), so handlers never see a time they cannot compute with.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec

#: Deepest nesting of arrays and objects a request body (or a query's ``data``) may have.
MAX_JSON_DEPTH = 64
#: The earliest and latest instants an input datetime may name (UTC).
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)

# Keeps only brackets, objects' as arrays': the depth is the same and a mismatched pair is
# malformed JSON, which the decoder refuses anyway.
_BRACKETS_TABLE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Only a time in year 1 or 9999 can be out of range: the walk below runs only when one is there.
_EDGE_YEAR = re.compile(rb'"(?:0001|9999)-')


def json_too_deep(data: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``data`` nests arrays and objects more than ``limit`` levels deep.

    Runs in C-speed passes over the bytes, without decoding: a text with at most ``limit``
    brackets cannot be too deep; otherwise the strings are cut out, only the brackets kept, and
    each pass removes the innermost level (at most ``limit`` passes). Malformed text is not
    judged here (``False``) unless it is too deep anyway: the decoder refuses it next.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    # Escapes first (an escaped backslash, then an escaped quote), so that every remaining quote
    # opens or closes a string: the odd pieces between quotes are the strings' contents.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    brackets = outside.translate(_BRACKETS_TABLE, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        # Non-overlapping and left to right: one pass removes exactly one level.
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            return False  # unbalanced: malformed, not deep
        brackets = shorter
    return bool(brackets)


def datetime_issues(encoded: bytes, value: Any) -> list[dict[str, Any]]:
    """Validation issues for the datetimes of a converted input ``value`` out of range.

    ``encoded`` is the raw input as JSON: the walk over ``value`` only runs when it holds a time
    in year 1 or 9999, so ordinary inputs cost one regex scan.
    """
    if _EDGE_YEAR.search(encoded) is None:
        return []
    issues: list[dict[str, Any]] = []
    _walk(value, [], issues)
    return issues


def _in_range(value: dt.datetime) -> bool:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        return EARLIEST <= value.astimezone(dt.UTC) <= LATEST
    except OverflowError:
        return False


def _walk(value: Any, path: list[str | int], issues: list[dict[str, Any]]) -> None:
    if isinstance(value, dt.datetime):
        if not _in_range(value):
            issues.append(
                {
                    "message": "Time out of range: use a time between "
                    f"{EARLIEST.date().isoformat()} and {LATEST.date().isoformat()} (UTC)",
                    "path": list(path),
                }
            )
    elif isinstance(value, msgspec.Struct):
        for field in msgspec.structs.fields(value):
            _walk(getattr(value, field.name), [*path, field.encode_name], issues)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, [*path, key], issues)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, [*path, index], issues)
