"""Healthcheck tests: a host with the catalog, healthcheck, http and tcp plugins on the core's
fixtures, and local targets the tests start (loopback only).

- ``target``: an HTTP server whose answer each test sets (``target.answer(status=500)``,
  ``delay=``, ``body=``, ``headers=``); ``target.url``, ``target.requests`` (headers seen);
- ``tcp_target``: a TCP server sending ``banner`` on connect; ``closed_port``: a port nothing
  listens on;
- ``admin`` / ``manager`` / ``reader`` clients, ``make_system``, ``make_check``;
- the scheduler is off by default (``scheduler = false``): tests run checks with ``runNow``;
  ``scheduler_on`` turns it on with a short poll interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from checkstack_core import Plugin
from checkstack_core.settings import Settings

MANAGE = "healthcheck.healthcheck.manage"
READ = "healthcheck.healthcheck.read"
STATUS = "healthcheck.status.read"
DETAILS = "healthcheck.details.read"
SECRET_KEY = "test-secret-key-for-healthcheck-tests"


def healthcheck_plugins() -> list[Plugin]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_http import plugin as http
    from checkstack_healthcheck_tcp import plugin as tcp

    return [catalog, healthcheck, http, tcp]


@pytest.fixture
def healthcheck_settings() -> dict[str, Any]:
    """``[plugins.healthcheck]`` for the test host (override or extend per test module)."""
    return {"scheduler": False}


@pytest.fixture
def checkstack_settings(
    checkstack_database_url: str, healthcheck_settings: dict[str, Any]
) -> Settings:
    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        secret_key=SECRET_KEY,
        plugin_settings={"healthcheck": healthcheck_settings},
    )


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    return {
        "CHECKSTACK_PLUGINS": "auth,catalog,healthcheck,healthcheck-http,healthcheck-tcp",
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
    }


# -- callers ---------------------------------------------------------------------------------------


@pytest.fixture
def admin_caller(checkstack_auth: Any) -> Any:
    return checkstack_auth.admin(name="Ada Admin")


@pytest.fixture
def admin(checkstack_client: Any, admin_caller: Any) -> Any:
    return checkstack_client(admin_caller)


@pytest.fixture
def manager(checkstack_client: Any, checkstack_auth: Any) -> Any:
    return checkstack_client(checkstack_auth.user(MANAGE, READ, name="Max Manager"))


@pytest.fixture
def anonymous(checkstack_client: Any) -> Any:
    return checkstack_client()


@pytest.fixture
def make_system(admin: Any) -> Callable[[str], Awaitable[str]]:
    async def make(name: str) -> str:
        return str((await admin.call("catalog", "createSystem", {"name": name}))["id"])

    return make


@pytest.fixture
def make_check(admin: Any) -> Callable[..., Awaitable[dict[str, Any]]]:
    """``await make_check(config, strategy="http", **fields)`` → a new check (as the admin)."""

    async def make(config: dict[str, Any], strategy: str = "http", **fields: Any) -> dict[str, Any]:
        body = {"name": "check", "strategyId": strategy, "config": config, **fields}
        return dict(await admin.call("healthcheck", "createHealthCheck", body))

    return make


# -- local targets ---------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/plain"})
    delay: float = 0.0


class HttpTarget:
    """A tiny HTTP/1.1 server on 127.0.0.1 whose answer the test sets."""

    def __init__(self) -> None:
        self.current = Answer()
        self.requests: list[dict[str, str]] = []
        self.hits = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    def answer(self, **fields: Any) -> None:
        self.current = Answer(**fields)

    async def start(self) -> HttpTarget:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(length)
                self.hits += 1
                self.requests.append({"request-line": lines[0], **headers})
                answer = self.current
                if answer.delay:
                    await asyncio.sleep(answer.delay)
                body = answer.body.encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
                head = f"HTTP/1.1 {answer.status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
                writer.write(head.encode() + body)
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,  # the server is closing: nothing to report
        ):
            pass
        finally:
            writer.close()


@pytest.fixture
async def target() -> AsyncIterator[HttpTarget]:
    server = await HttpTarget().start()
    try:
        yield server
    finally:
        await server.stop()


class TcpTarget:
    def __init__(self, banner: bytes = b"") -> None:
        self.banner = banner
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> TcpTarget:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.banner:
                writer.write(self.banner)
                await writer.drain()
            await reader.read(100)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def tcp_target() -> AsyncIterator[TcpTarget]:
    server = await TcpTarget(b"SSH-2.0-OpenSSH_9.6\r\n").start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[bool]], *, within: float = 30.0) -> None:
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


class Recorder:
    """A test plugin recording every ``healthcheck.system.*`` event, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self.plugin = Plugin(id="recorder", name="Event recorder")
        for status in ("healthy", "degraded", "unhealthy"):
            self.plugin.on_event(f"healthcheck.system.{status}")(self._record)

    async def _record(self, ctx: Any, event: Any) -> None:
        self.seen.append((event.name, dict(event.payload)))

    def names(self) -> list[str]:
        return [name.rsplit(".", 1)[-1] for name, _ in self.seen]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def checkstack_plugins(recorder: Recorder) -> list[Plugin]:
    return [*healthcheck_plugins(), recorder.plugin]
