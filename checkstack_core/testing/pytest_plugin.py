"""The Checkstack test kit, loaded by pytest through the ``pytest11`` entry point.

Fixtures a plugin author needs (``pytest --fixtures`` shows their docs):

- ``checkstack_plugins`` — override it to choose the plugins under test (default: only the core);
- ``checkstack_host`` — a started host with those plugins on a temporary database;
- ``checkstack_auth`` — in-memory principals, teams and grants (when no auth plugin is loaded);
- ``checkstack_client`` — ``checkstack_client(caller=None)`` → an ``AsyncCheckstackClient``
  over HTTP (in process, ASGI) as that caller; ``checkstack_http`` — a raw ``httpx.AsyncClient``;
- ``checkstack_server`` — a real ``checkstack serve`` process (installed plugins), end to end.

Databases: SQLite by default; PostgreSQL with ``--checkstack-db-url`` or
``CHECKSTACK_TEST_DATABASE_URL`` (a fresh database per test).

Imports are deferred into the fixtures so that loading this plugin costs nothing.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

try:
    from pytest_asyncio import fixture as async_fixture
except ImportError:  # pragma: no cover - install checkstack-core[testing]
    async_fixture = pytest.fixture  # type: ignore[assignment]

if TYPE_CHECKING:
    import httpx

    from ..client import AsyncCheckstackClient
    from ..host import Host
    from ..settings import Settings
    from .memory_auth import Caller, MemoryAuth
    from .server import RunningServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("checkstack")
    group.addoption(
        "--checkstack-db-url",
        default=None,
        help="Run Checkstack tests on this database server (e.g. postgresql+asyncpg://"
        "postgres@127.0.0.1/test); default SQLite. Env: CHECKSTACK_TEST_DATABASE_URL.",
    )


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    """The ``Plugin`` objects the host loads besides the core. Override it in your conftest::

    @pytest.fixture
    def checkstack_plugins():
        from checkstack_hello import plugin
        return [plugin]
    """
    return []


@pytest.fixture
def checkstack_database_base_url(request: pytest.FixtureRequest) -> str | None:
    """The database server tests run against (``None`` = SQLite)."""
    return request.config.getoption("--checkstack-db-url") or os.environ.get(
        "CHECKSTACK_TEST_DATABASE_URL"
    )


@async_fixture
async def checkstack_database_url(
    checkstack_database_base_url: str | None, tmp_path: Path
) -> AsyncIterator[str]:
    """URL of an empty database for this test, removed afterwards."""
    from .database import temporary_database

    async with temporary_database(checkstack_database_base_url, tmp_path) as url:
        yield url


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    """Host settings for the test: the temporary database, strict plugin loading."""
    from ..settings import Settings

    return Settings(database_url=checkstack_database_url, strict_plugins=True)


@pytest.fixture
def checkstack_auth() -> MemoryAuth:
    """In-memory principals and grants: ``checkstack_auth.user("hello.hello.manage")``,
    ``.application(...)``, ``.admin()``, ``.grant(team, type, id, level)``, ``.set_team_only(...)``.

    Used as the auth backend unless a loaded plugin (the auth plugin) provides one. Its
    ``anonymous_rules`` start as the public rules of the loaded plugins.
    """
    from .memory_auth import MemoryAuth

    return MemoryAuth()


@async_fixture
async def checkstack_host(
    checkstack_settings: Settings, checkstack_plugins: list[Any], checkstack_auth: MemoryAuth
) -> AsyncIterator[Host]:
    """A started host with ``checkstack_plugins`` on the test database (migrated)."""
    from ..hookspecs import hookimpl
    from ..host import Host

    host = Host(checkstack_settings, plugins=checkstack_plugins, discover_installed=False)

    class _MemoryAuthHooks:
        @hookimpl
        def checkstack_auth_backend(self, host: Host) -> MemoryAuth | None:
            impls = host.pm.hook.checkstack_auth_backend.get_hookimpls()
            if any(impl.plugin_name.startswith("plugin:") for impl in impls):
                return None  # a loaded auth plugin decides
            checkstack_auth.anonymous_rules |= host.public_rules()
            return checkstack_auth

    host.pm.register(_MemoryAuthHooks(), name="checkstack_core.testing.memory_auth")
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


@pytest.fixture
def checkstack_app(checkstack_host: Host) -> Any:
    """The Litestar app serving ``checkstack_host``."""
    from ..app import create_app

    return create_app(checkstack_host)


@async_fixture
async def checkstack_http(checkstack_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A raw ``httpx.AsyncClient`` talking to the app in process (base URL http://testserver)."""
    import httpx

    transport = httpx.ASGITransport(app=checkstack_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@async_fixture
async def checkstack_client(
    checkstack_app: Any,
) -> AsyncIterator[Callable[..., AsyncCheckstackClient]]:
    """``checkstack_client(caller=None)``: the Python client over HTTP as ``caller``
    (a ``checkstack_auth`` caller, or a raw token string, or anonymous)."""
    import httpx

    from ..client import AsyncCheckstackClient

    opened: list[AsyncCheckstackClient] = []

    def connect(caller: Caller | str | None = None) -> AsyncCheckstackClient:
        token = caller if isinstance(caller, str) or caller is None else caller.token
        client = AsyncCheckstackClient(
            "http://testserver", token, transport=httpx.ASGITransport(app=checkstack_app)
        )
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.aclose()


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    """Extra environment for ``checkstack_server`` (override to set CHECKSTACK_PLUGINS...)."""
    return {"CHECKSTACK_STRICT_PLUGINS": "1"}


@pytest.fixture
def checkstack_server(
    checkstack_database_url: str, checkstack_server_env: dict[str, str], tmp_path: Path
) -> Iterator[RunningServer]:
    """A real ``checkstack serve`` process on a free loopback port, serving every installed
    plugin on the test database; ``.url``, ``.logs()``, ``.stop()``, ``.start()``."""
    from .server import RunningServer

    server = RunningServer(checkstack_database_url, tmp_path, checkstack_server_env).start()
    try:
        yield server
    finally:
        server.stop()
