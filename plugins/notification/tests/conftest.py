"""Notification tests: a host with auth, catalog, healthcheck (+ tcp), maintenance, incident and
notification on the core's fixtures, callers from ``checkstack_access`` (the real auth plugin),
and real receivers on loopback:

- ``receiver``: an HTTP server recording every request (headers, raw body) and answering the
  statuses a test queues (``receiver.script(500, 500)``; then 200);
- ``smtp``: an ``aiosmtpd`` SMTP server recording every message;
- retries are fast: ``[plugins.notification]`` sets a 0.05 s backoff base.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest

from checkstack_core import Plugin
from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-notification-tests"
MANAGE = "notification.channel.manage"
INTEGRATIONS = "notification.integration.manage"
TEAMS = "notification.subscription.manage"
FAST = {
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "max_attempts": 4,
    "request_timeout_seconds": 5.0,
    "sweep_seconds": 2.0,
}


def notification_plugins() -> list[Plugin]:
    from checkstack_auth import plugin as auth
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_tcp import plugin as tcp
    from checkstack_incident import plugin as incident
    from checkstack_maintenance import plugin as maintenance
    from checkstack_notification import plugin as notification

    return [auth, catalog, healthcheck, tcp, maintenance, incident, notification]


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    return notification_plugins()


@pytest.fixture
def notification_settings() -> dict[str, Any]:
    return dict(FAST)


@pytest.fixture
def checkstack_settings(
    checkstack_database_url: str, notification_settings: dict[str, Any]
) -> Settings:
    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        secret_key=SECRET_KEY,
        plugin_settings={
            "healthcheck": {"scheduler": False},
            "notification": notification_settings,
        },
    )


# -- callers --------------------------------------------------------------------------------------


@pytest.fixture
async def admin(checkstack_client: Any, checkstack_access: Any) -> Any:
    return checkstack_client(await checkstack_access.admin(name="Ada Admin"))


@pytest.fixture
def make_user(checkstack_client: Any, checkstack_access: Any) -> Callable[..., Awaitable[Any]]:
    """``await make_user(*rules, teams=[...])`` → ``(client, caller)`` for a new person."""

    async def make(*rules: str, teams: tuple[str, ...] = (), name: str | None = None) -> Any:
        caller = await checkstack_access.user(*rules, teams=teams, name=name)
        return checkstack_client(caller), caller

    return make


# -- receivers ------------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP/1.1 server on 127.0.0.1 that records requests and answers scripted statuses."""

    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None

    def script(self, *statuses: int) -> None:
        """Answer these statuses first (then 200)."""
        self.statuses = list(statuses)

    async def start(self, port: int = 0) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        bound = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{bound}/hook"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                method, path, _ = lines[0].split(" ", 2)
                self.requests.append(Received(method, path, headers, body))
                status = self.statuses.pop(0) if self.statuses else 200
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\nok".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    try:
        yield server
    finally:
        await server.stop()


class SmtpSink:
    """``aiosmtpd`` handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture(scope="module")
def smtp() -> Any:
    """A real SMTP server on loopback (no TLS): ``.port``, ``.sink.messages``."""
    from aiosmtpd.controller import Controller

    from checkstack_core.testing.server import free_port

    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    controller.sink = sink  # type: ignore[attr-defined]
    try:
        yield controller
    finally:
        controller.stop()


async def wait_until(check: Callable[[], Awaitable[bool]], *, within: float = 20.0) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds (a deadline, not a timing
    assertion)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {within} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def until() -> Callable[..., Awaitable[None]]:
    return wait_until


# -- arranging ------------------------------------------------------------------------------------


async def webhook_channel(admin: Any, url: str, secret: str = "s" * 32, **fields: Any) -> Any:
    body = {"name": "Hook", "kind": "webhook", "config": {"url": url, "secret": secret}}
    return await admin.call("notification", "createChannel", {**body, **fields})


async def failing_check(admin: Any, system_id: str, port: int) -> str:
    """A TCP check against a closed port, assigned to ``system_id`` so that one failed run
    makes the system unhealthy; its id."""
    check = await admin.call(
        "healthcheck",
        "createHealthCheck",
        {"name": "tcp", "strategyId": "tcp", "config": {"host": "127.0.0.1", "port": port}},
    )
    await admin.call(
        "healthcheck",
        "assignHealthCheck",
        {
            "id": check["id"],
            "systemId": system_id,
            "thresholds": {"mode": "consecutive", "degradedAfter": 1, "unhealthyAfter": 1},
        },
    )
    return str(check["id"])
