"""Log lines cannot be forged: the text format escapes what a request put in a message and
indents tracebacks; the JSON format keeps one object per line."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest

from checkstack_core.observability import (
    JsonFormatter,
    RequestIdFilter,
    RequestIdMiddleware,
    TextFormatter,
    configure_logging,
    escape_log_text,
)

FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \[")
FORGED = "\n2026-01-01 00:00:00,000 ERROR [-] checkstack.auth: admin logged in"


def capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"checkstack.test.hygiene.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def records_of(text: str) -> list[str]:
    """Lines that look like the start of a record (what a log reader would split on)."""
    return [line for line in text.splitlines() if RECORD_START.match(line)]


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("/api/x\n2026", "/api/x\\n2026"),
        ("a\r\nb", "a\\r\\nb"),
        ("nul\x00 tab\t esc\x1b[31m", "nul\\x00 tab\\t esc\\x1b[31m"),
        ("nel\x85 ls\u2028 ps\u2029 del\x7f", "nel\\x85 ls\\u2028 ps\\u2029 del\\x7f"),
        ("plain text é ✓", "plain text é ✓"),
    ],
)
def test_escape_log_text(text: str, escaped: str) -> None:
    assert escape_log_text(text) == escaped


def test_a_request_field_cannot_forge_a_line() -> None:
    logger, stream = capture(TextFormatter(FORMAT))
    logger.warning("%s %s -> %s", "POST", "/api/x" + FORGED, 500)
    output = stream.getvalue()
    assert output.count("\n") == 1  # the record's own line end only
    assert len(records_of(output)) == 1
    assert "\\n2026-01-01" in output


def test_tracebacks_are_indented_and_cannot_forge_a_line() -> None:
    logger, stream = capture(TextFormatter(FORMAT))
    try:
        raise ValueError("bad input" + FORGED)
    except ValueError:
        logger.exception("Procedure %s failed", "x" + FORGED)
    lines = stream.getvalue().splitlines()
    assert len(records_of(stream.getvalue())) == 1
    assert "Traceback (most recent call last):" in lines[1]
    assert all(line.startswith("  ") for line in lines[1:])
    assert any("ValueError: bad input" in line for line in lines)


def test_a_traceback_cached_by_another_handler_is_indented_too() -> None:
    logger, stream = capture(TextFormatter(FORMAT))
    plain = io.StringIO()
    first = logging.StreamHandler(plain)
    first.setFormatter(logging.Formatter("%(message)s"))  # caches record.exc_text unindented
    logger.handlers.insert(0, first)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    assert "\nTraceback" in plain.getvalue()
    assert all(line.startswith("  ") for line in stream.getvalue().splitlines()[1:])


def test_the_record_is_left_as_logged_for_other_handlers() -> None:
    logger, _stream = capture(TextFormatter(FORMAT))
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logger.addHandler(Keep())
    logger.info("path %s", "/a\nb")
    assert seen == ["path /a\nb"]


def test_json_format_stays_one_object_per_line() -> None:
    logger, stream = capture(JsonFormatter())
    try:
        raise ValueError("x" + FORGED)
    except ValueError:
        logger.exception("path %s", "/api/x" + FORGED + "\u2028")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["message"].endswith(FORGED + "\u2028")
    assert "Traceback" in entry["exception"]


def test_configure_logging_uses_the_safe_text_format() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        configure_logging("INFO", "text")
        ours = [h for h in root.handlers if getattr(h, "_checkstack", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, TextFormatter)
    finally:
        root.handlers[:] = before
        root.setLevel(level)


async def test_the_middleware_logs_a_hostile_path_on_one_line() -> None:
    logger, stream = capture(TextFormatter(FORMAT))
    http_logger = logging.getLogger("checkstack.http")
    saved = (list(http_logger.handlers), http_logger.propagate)
    http_logger.handlers[:] = logger.handlers
    http_logger.propagate = False

    async def crash(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("unexpected")

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": "/api/x" + FORGED, "headers": []}
    try:
        await RequestIdMiddleware(crash)(scope, receive, send)
    finally:
        http_logger.handlers[:], http_logger.propagate = saved
    assert sent[0]["status"] == 500
    output = stream.getvalue()
    assert len(records_of(output)) == 1
    assert "/api/x\\n2026-01-01" in output
