"""The Checkstack test kit, loaded by pytest through the ``pytest11`` entry point.

Fixtures a plugin author needs (``pytest --fixtures`` shows their docs):

- ``checkstack_plugins`` — override it to choose the plugins under test (default: only the core);
- ``checkstack_host`` — a started host with those plugins on a temporary database;
- ``checkstack_auth`` — in-memory principals, teams and grants (when no auth plugin is loaded);
- ``checkstack_access`` — users, applications, teams and grants on whichever backend is in force
  (``MemoryAuth`` or the real auth plugin), so one access test can run over both;
- ``checkstack_client`` — ``checkstack_client(caller=None)`` → an ``AsyncCheckstackClient``
  over HTTP (in process, ASGI) as that caller; ``checkstack_http`` — a raw ``httpx.AsyncClient``;
- ``checkstack_server`` — a real ``checkstack serve`` process (installed plugins), end to end.

Databases: SQLite by default; PostgreSQL with ``--checkstack-db-url`` or
``CHECKSTACK_TEST_DATABASE_URL`` (a fresh database per test, named ``checkstack_test_<hex>``;
``--checkstack-db-prefix`` or ``CHECKSTACK_TEST_DATABASE_PREFIX`` changes the prefix, for an
account allowed to create only some names).

The kit registers the markers it uses (``e2e``: starts a real server process) and, unless your
configuration says otherwise, sets ``asyncio_default_fixture_loop_scope = "function"``, so a new
plugin's suite runs without warnings.

``checkstack_server`` waits up to 60 s for the server to be ready; ``--checkstack-server-timeout``
or ``CHECKSTACK_TEST_SERVER_TIMEOUT`` changes that.

``--checkstack-require-tool node`` (repeatable) or ``CHECKSTACK_REQUIRED_TOOLS=node,npm,curl``
makes the run fail at once when a tool is not on ``PATH``, and turns a test skipped for want of
one into a failure: CI sets it so tests needing the tools cannot silently skip.

Imports are deferred into the fixtures so that loading this plugin costs nothing.
"""

from __future__ import annotations

import os
import re
import shutil
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
    from .access import AccessCaller, AccessKit
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
    group.addoption(
        "--checkstack-db-prefix",
        default=None,
        help="Prefix of the PostgreSQL databases created for tests (default checkstack_test_). "
        "Env: CHECKSTACK_TEST_DATABASE_PREFIX.",
    )
    group.addoption(
        "--checkstack-server-timeout",
        type=float,
        default=None,
        help="Seconds checkstack_server waits for a started server to be ready (default 60). "
        "Env: CHECKSTACK_TEST_SERVER_TIMEOUT.",
    )
    group.addoption(
        "--checkstack-require-tool",
        action="append",
        default=[],
        metavar="TOOL",
        help="Fail when TOOL (e.g. node, npm, curl) is not on PATH, and fail tests skipped for "
        "want of it instead of skipping them. Repeatable. Env: CHECKSTACK_REQUIRED_TOOLS "
        "(comma-separated).",
    )


def required_tools(config: pytest.Config) -> list[str]:
    """The tools this run must have (``--checkstack-require-tool``, CHECKSTACK_REQUIRED_TOOLS)."""
    named = [*config.getoption("--checkstack-require-tool")]
    named += os.environ.get("CHECKSTACK_REQUIRED_TOOLS", "").split(",")
    return list(dict.fromkeys(tool.strip() for tool in named if tool.strip()))


#: Markers the kit and its users' suites use; registered so ``--strict-markers`` accepts them.
MARKERS = ("e2e: starts a real server process (checkstack_server)",)
#: pytest-asyncio settings the kit's async fixtures assume, applied where the project sets none.
ASYNCIO_DEFAULTS = {"asyncio_default_fixture_loop_scope": "function"}


@pytest.hookimpl(tryfirst=True)  # before pytest-asyncio warns about an unset loop scope
def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    for name, value in ASYNCIO_DEFAULTS.items():
        try:
            configured = config.getini(name)
        except ValueError:  # pytest-asyncio is not installed
            continue
        if not configured:
            # pytest has no public way for a plugin to default another plugin's ini option;
            # getini() reads this cache first, so the project's own value still wins above.
            config._inicache[name] = value
    missing = [tool for tool in required_tools(config) if shutil.which(tool) is None]
    if missing:
        raise pytest.UsageError(
            "Required tools are not on PATH: " + ", ".join(missing) + " (they were required by "
            "--checkstack-require-tool or CHECKSTACK_REQUIRED_TOOLS; install them)"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    tools = required_tools(item.config)
    if not tools or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
    named = [t for t in tools if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", reason, re.I)]
    if named:
        report.outcome = "failed"
        report.longrepr = (
            f"Skipped for want of a required tool ({', '.join(named)}): {reason}\n"
            "The run requires it (--checkstack-require-tool / CHECKSTACK_REQUIRED_TOOLS)."
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


@pytest.fixture
def checkstack_database_prefix(request: pytest.FixtureRequest) -> str:
    """Prefix of the PostgreSQL databases created for tests: ``--checkstack-db-prefix``, else
    ``CHECKSTACK_TEST_DATABASE_PREFIX``, else ``checkstack_test_``."""
    from .database import DEFAULT_PREFIX, PREFIX_ENV

    return (
        request.config.getoption("--checkstack-db-prefix")
        or os.environ.get(PREFIX_ENV)
        or DEFAULT_PREFIX
    )


@async_fixture
async def checkstack_database_url(
    checkstack_database_base_url: str | None, checkstack_database_prefix: str, tmp_path: Path
) -> AsyncIterator[str]:
    """URL of an empty database for this test, removed afterwards."""
    from .database import temporary_database

    async with temporary_database(
        checkstack_database_base_url, tmp_path, prefix=checkstack_database_prefix
    ) as url:
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
def checkstack_access(checkstack_host: Host, checkstack_auth: MemoryAuth) -> AccessKit:
    """Arrange access on the backend in force: ``await checkstack_access.user(rule, teams=[...])``,
    ``.application(...)``, ``.admin()``, ``.grant(team, type, id, level)``, ``.set_team_only(...)``,
    ``.allow_anonymous(rule)``; ``.backend`` says which (``"memory"`` or ``"auth"``).

    With the auth plugin among ``checkstack_plugins`` it creates real users, keys, teams and grants
    through that plugin; otherwise it drives ``checkstack_auth``. Parametrise
    ``checkstack_plugins`` with and without the auth plugin to run a test over both.
    """
    from .access import access_kit

    return access_kit(checkstack_host, checkstack_auth)


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
    (a ``checkstack_auth`` or ``checkstack_access`` caller, a raw token string, or anonymous)."""
    import httpx

    from ..client import AsyncCheckstackClient

    opened: list[AsyncCheckstackClient] = []

    def connect(caller: Caller | AccessCaller | str | None = None) -> AsyncCheckstackClient:
        # A caller's headers carry its credential, whether an API key or a session cookie.
        token = caller if isinstance(caller, str) else None
        headers = None if caller is None or isinstance(caller, str) else caller.headers
        client = AsyncCheckstackClient(
            "http://testserver",
            token,
            headers=headers,
            transport=httpx.ASGITransport(app=checkstack_app),
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
def checkstack_server_timeout(request: pytest.FixtureRequest) -> float:
    """Seconds ``checkstack_server`` waits for ``/readyz``: ``--checkstack-server-timeout``,
    else ``CHECKSTACK_TEST_SERVER_TIMEOUT``, else 60."""
    from .server import startup_timeout_from_env

    option = request.config.getoption("--checkstack-server-timeout")
    if option is not None:
        if not option > 0:
            raise pytest.UsageError("--checkstack-server-timeout must be positive")
        return float(option)
    return startup_timeout_from_env()


@pytest.fixture
def checkstack_server(
    checkstack_database_url: str,
    checkstack_server_env: dict[str, str],
    checkstack_server_timeout: float,
    tmp_path: Path,
) -> Iterator[RunningServer]:
    """A real ``checkstack serve`` process on a loopback port it holds from the start (no race),
    serving every installed plugin on the test database; ``.url``, ``.logs()``, ``.stop()``,
    ``.start()`` (a restart keeps the port). Waits ``checkstack_server_timeout`` to be ready."""
    from .server import RunningServer

    server = RunningServer(
        checkstack_database_url,
        tmp_path,
        checkstack_server_env,
        startup_timeout=checkstack_server_timeout,
    )
    try:
        yield server.start()
    finally:
        server.close()
