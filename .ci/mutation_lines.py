"""A pytest plugin for ``.ci/mutation.py``: which test runs which line of the mutated files.

Loaded with ``-p mutation_lines`` (``.ci`` on ``PYTHONPATH``) and two environment variables:
``MUTATION_LINES_FILES`` (the absolute paths to watch, ``os.pathsep``-separated) and
``MUTATION_LINES_OUT`` (where to write ``{"lines": {path: {line: [test ids in run order]}},
"durations": {test id: seconds}}`` as JSON).

Why: a mutant can only be killed by a test that executes the mutated line, so running just those
tests (in the selection's order) gives the same verdict as the whole selection, in a fraction of
the time; a mutant no test reaches survives without running anything. ``sys.settrace`` (Python
3.11 has no ``sys.monitoring``) only traces frames of the watched files, so the one traced run
stays affordable.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Generator
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest

_WATCHED = frozenset(p for p in os.environ.get("MUTATION_LINES_FILES", "").split(os.pathsep) if p)
_current: set[tuple[str, int]] = set()
_hits: dict[str, dict[int, list[str]]] = {}
#: Seconds each test took (setup, call and teardown), so a mutant's tests can run fastest first.
_durations: dict[str, float] = {}
_known: dict[CodeType, bool] = {}


def _local(frame: FrameType, event: str, arg: Any) -> Any:
    if event == "line":
        _current.add((frame.f_code.co_filename, frame.f_lineno))
    return _local


def _global(frame: FrameType, event: str, arg: Any) -> Any:
    code = frame.f_code
    watched = _known.get(code)
    if watched is None:
        watched = _known[code] = code.co_filename in _WATCHED
    if not watched:
        return None
    _current.add((code.co_filename, frame.f_lineno))
    return _local


#: Recorded for lines run outside any test (imports, module-level statements built at import
#: time): every test depends on them.
EVERY_TEST = "*"


def pytest_collection_finish(session: pytest.Session) -> None:
    _flush(EVERY_TEST)


def _flush(test_id: str) -> None:
    global _current
    # Swapped, not iterated in place: another thread may be adding lines meanwhile.
    lines, _current = _current, set()
    for path, line in lines:
        tests = _hits.setdefault(path, {}).setdefault(line, [])
        if EVERY_TEST not in tests:
            tests.append(test_id)


# From the moment ``-p`` loads this plugin, before conftest files import the code under test.
sys.settrace(_global)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: object) -> Generator[None, None, None]:
    # Setup and teardown count: a fixture that starts the app runs authentication code too.
    _flush(EVERY_TEST)
    sys.settrace(_global)
    threading.settrace(_global)
    try:
        yield
    finally:
        threading.settrace(None)
        _flush(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    sys.settrace(None)
    out = os.environ.get("MUTATION_LINES_OUT")
    if out:
        Path(out).write_text(json.dumps({"lines": _hits, "durations": _durations}))
