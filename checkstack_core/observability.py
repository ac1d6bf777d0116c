"""Request ids and structured logs (SPEC §9).

Every request gets an id (a client's sane ``X-Request-ID`` is kept, otherwise a new one), which is
returned in the ``X-Request-ID`` response header and attached to every log record written while
the request is served. An exception that escapes everything is logged with that id and answered
with a bare 500 body: no stack trace ever reaches a client.

Log lines cannot be forged: the text format escapes control and line-break characters in the
message (paths, user agents and procedure names come from requests; ``%0A`` in a path is a line
feed by the time it is logged) and indents every line of a traceback; the JSON format escapes
them by construction.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "checkstack_request_id", default=None
)
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_INTERNAL_ERROR = b'{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}'
logger = logging.getLogger("checkstack.http")


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = _request_id.get() or "-"
        return True


# Everything a log viewer could take for a line break or a terminal escape: C0 controls (tab
# included, so fields stay one token), DEL, C1 controls and the Unicode line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escape_log_text(text: str) -> str:
    """``text`` with control and line-break characters escaped (``\\n``, ``\\x00``, ``\\u2028``)."""
    return _UNSAFE.sub(_escape_char, text) if _UNSAFE.search(text) else text


class TextFormatter(logging.Formatter):
    """The text format: one line per record whatever its fields hold; a traceback follows on
    lines indented by two spaces, so no line of it can pass for a record of its own."""

    def format(self, record: logging.LogRecord) -> str:
        # logging.Formatter.format, except that the traceback is not cached on the record
        # (another handler may have cached it unindented) and every part is made safe.
        record.message = record.getMessage()
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        if record.exc_info:
            text += "\n" + _indent(self.formatException(record.exc_info))
        elif record.exc_text:
            text += "\n" + _indent(record.exc_text)
        if record.stack_info:
            text += "\n" + _indent(self.formatStack(record.stack_info))
        return text

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        escaped = escape_log_text(message)
        if escaped is message:
            return super().formatMessage(record)
        # A copy: other handlers (a test's capture) see the record as it was logged.
        safe = logging.makeLogRecord(record.__dict__)
        safe.message = escaped
        return super().formatMessage(safe)


def _indent(text: str) -> str:
    return "\n".join("  " + escape_log_text(line) for line in text.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, request id, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Route the ``checkstack`` loggers (and uvicorn's) through one handler with request ids."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_checkstack", False):
            root.removeHandler(existing)
    handler._checkstack = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Alembic narrates every migration context at INFO; our own log line says what was applied.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    # aiosqlite logs every statement with its parameters at DEBUG: digests and password hashes
    # would reach the logs. Secrets never appear in logs (SPEC §9), whatever the level.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))


#: Request ids: a random prefix per process and a counter, 32 hex digits like a uuid4's. Unique
#: across processes and restarts without ``uuid4``, whose ``os.urandom`` system call cost about
#: 5 % of a small call's time on the event loop (py-spy under wrk). Ids are not secrets.
_id_prefix = uuid.uuid4().hex[:20]
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix
    _id_prefix = uuid.uuid4().hex[:20]


# A forked worker must not repeat its parent's ids.
os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """A fresh request id (32 hex digits)."""
    return f"{_id_prefix}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"


class RequestIdMiddleware:
    """Pure ASGI middleware: request id in context, response header and state; last-resort 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if incoming and _SANE_ID.match(incoming) else new_request_id()
        token = _request_id.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = False
        began = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
                status = message.get("status", 0)
                if status >= 500:
                    logger.warning(
                        "%s %s -> %s (%.1f ms)",
                        scope.get("method"),
                        scope.get("path"),
                        status,
                        (time.perf_counter() - began) * 1000,
                    )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "Unhandled error serving %s %s", scope.get("method"), scope.get("path")
            )
            if not started:
                start: Any = {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), header],
                }
                body: Any = {"type": "http.response.body", "body": _INTERNAL_ERROR}
                await send(start)
                await send(body)
        finally:
            _request_id.reset(token)
