"""The test kit's own promises: the running-server fixture holds its port from the start (no race
with other processes), its readiness timeout is a setting, and required tools cannot be skipped."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from checkstack_core.testing.server import (
    DEFAULT_STARTUP_TIMEOUT,
    TIMEOUT_ENV,
    RunningServer,
    ServerNotReady,
    startup_timeout_from_env,
)


def port_is_taken(port: int) -> bool:
    """Whether binding ``port`` on loopback fails because someone holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR as uvicorn sets it: the most permissive competitor there is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            assert exc.errno == errno.EADDRINUSE, exc
            return True
        return False


# -- the port --------------------------------------------------------------------------------------


def test_the_port_is_held_from_construction_until_close(tmp_path):
    server = RunningServer("sqlite+aiosqlite:///unused.db", tmp_path)
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert port_is_taken(server.port)
    finally:
        server.close()
    assert not port_is_taken(server.port)


@pytest.mark.e2e
def test_a_real_server_serves_on_the_held_port_and_keeps_it_across_a_restart(
    checkstack_database_url, tmp_path
):
    server = RunningServer(checkstack_database_url, tmp_path)
    try:
        server.start()
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
        assert port_is_taken(server.port)
        server.stop()
        assert port_is_taken(server.port)  # nobody can take it while the server is down
        url = server.url
        server.start()
        assert server.url == url
        greeting = httpx.post(f"{url}/api/hello/", json={"getGreeting": {}}, timeout=10)
        assert greeting.json() == {"getGreeting": {"message": "Hello, world!"}}
    finally:
        server.close()
    assert server.process is None
    assert not port_is_taken(server.port)


class _Exits(RunningServer):
    def command(self) -> list[str]:
        return [sys.executable, "-c", "print('cannot start: bad settings'); raise SystemExit(3)"]


class _NeverReady(RunningServer):
    def command(self) -> list[str]:
        return [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"]


def test_a_server_that_exits_is_reported_with_its_logs(tmp_path):
    server = _Exits("sqlite+aiosqlite:///unused.db", tmp_path)
    with pytest.raises(ServerNotReady, match=r"(?s)exited with 3.*cannot start: bad settings"):
        server.start()
    assert server.process is None


def test_a_server_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    server = _NeverReady("sqlite+aiosqlite:///unused.db", tmp_path, startup_timeout=0.5)
    with pytest.raises(ServerNotReady, match=rf"(?s)not ready after 0.5 s \(set {TIMEOUT_ENV}"):
        server.start()
    assert server.process is None  # stopped, not left running


class _LosesTheRaceOnce(RunningServer):
    """Binds ``self.port`` itself, failing like uvicorn on its first port."""

    attempts: list[int]

    def command(self) -> list[str]:
        self.attempts = [*getattr(self, "attempts", []), self.port]
        if len(self.attempts) == 1:
            return [sys.executable, "-c", "print('[Errno 98] address already in use')"]
        return [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(self.port)]


def test_a_command_binding_its_own_port_is_retried_on_a_lost_race(tmp_path):
    (tmp_path / "readyz").write_text("ok")  # what http.server answers for /readyz
    server = _LosesTheRaceOnce("sqlite+aiosqlite:///unused.db", tmp_path, startup_timeout=30)
    try:
        server.start()
        assert len(server.attempts) == 2 and server.attempts[0] != server.attempts[1]
        assert server.port == server.attempts[1]
    finally:
        server.close()


# -- the timeout -----------------------------------------------------------------------------------


def test_the_timeout_defaults_to_a_generous_minute(monkeypatch, tmp_path):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert DEFAULT_STARTUP_TIMEOUT == 60.0
    server = RunningServer("sqlite+aiosqlite:///unused.db", tmp_path)
    server.close()
    assert server.startup_timeout == 60.0


def test_the_timeout_comes_from_the_environment_unless_given(monkeypatch, tmp_path):
    monkeypatch.setenv(TIMEOUT_ENV, "120")
    assert startup_timeout_from_env() == 120.0
    from_env = RunningServer("sqlite+aiosqlite:///unused.db", tmp_path)
    given = RunningServer("sqlite+aiosqlite:///unused.db", tmp_path, startup_timeout=5)
    from_env.close()
    given.close()
    assert (from_env.startup_timeout, given.startup_timeout) == (120.0, 5)


@pytest.mark.parametrize("raw", ["soon", "0", "-3", "nan"])
def test_a_bad_timeout_setting_is_a_clear_error(monkeypatch, raw):
    monkeypatch.setenv(TIMEOUT_ENV, raw)
    with pytest.raises(ValueError, match=TIMEOUT_ENV):
        startup_timeout_from_env()


def test_the_fixture_takes_the_command_line_option(pytester_run):
    result = pytester_run(
        """
        def test_timeout(checkstack_server_timeout):
            assert checkstack_server_timeout == 7.5
        """,
        "--checkstack-server-timeout",
        "7.5",
    )
    assert result.returncode == 0, result.stdout


# -- required tools --------------------------------------------------------------------------------


@pytest.fixture
def pytester_run(tmp_path):
    """Run pytest in a subprocess on one test file (the kit loads through its entry point)."""

    def run(source: str, *args: str, env: dict[str, str] | None = None):
        test = tmp_path / "test_sample.py"
        test.write_text(textwrap.dedent(source))
        clean = {
            k: v
            for k, v in os.environ.items()
            if k not in ("CHECKSTACK_REQUIRED_TOOLS", TIMEOUT_ENV, "PYTEST_ADDOPTS")
        }
        return subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test), *args],
            cwd=tmp_path,
            env={**clean, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


SKIPPING = """
import pytest

@pytest.mark.skipif(True, reason="nodejs-9000 is not installed")
def test_needs_the_tool():
    pass

def test_skips_for_another_reason():
    pytest.skip("only on PostgreSQL")
"""


def test_without_requirements_a_skip_stays_a_skip(pytester_run):
    result = pytester_run(SKIPPING)
    assert result.returncode == 0, result.stdout
    assert "2 skipped" in result.stdout


def test_a_required_tool_that_is_missing_fails_the_run(pytester_run):
    result = pytester_run(SKIPPING, env={"CHECKSTACK_REQUIRED_TOOLS": "nodejs-9000"})
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout
    assert "Required tools are not on PATH: nodejs-9000" in result.stderr


def test_a_skip_for_want_of_a_required_tool_fails(pytester_run, tmp_path):
    tool = Path(tmp_path / "bin" / "nodejs-9000")
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    path = f"{tool.parent}:{os.environ['PATH']}"
    env = {"CHECKSTACK_REQUIRED_TOOLS": "nodejs-9000", "PATH": path}
    result = pytester_run(SKIPPING, env=env)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout
    # skipif decides at setup, so pytest counts the failure as an error of the test
    assert "1 skipped, 1 error" in result.stdout
    assert "Skipped for want of a required tool (nodejs-9000)" in result.stdout


# -- a new plugin's suite --------------------------------------------------------------------------


def test_a_suite_without_settings_of_its_own_runs_without_warnings(pytester_run):
    """No ini file (as a new plugin starts): the kit's marker is known, the loop scope set."""
    result = pytester_run(
        """
        import pytest

        @pytest.mark.e2e
        def test_marked():
            pass

        @pytest.mark.asyncio
        async def test_async_with_the_kit(checkstack_database_url, request):
            assert checkstack_database_url
            assert request.config.getini("asyncio_default_fixture_loop_scope") == "function"
        """,
        "--strict-markers",
        "-W",
        "error",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    assert "warning" not in (result.stdout + result.stderr).lower()


def test_the_projects_own_loop_scope_wins(pytester_run, tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = module\n")
    result = pytester_run(
        """
        def test_scope(request):
            assert request.config.getini("asyncio_default_fixture_loop_scope") == "module"
        """
    )
    assert result.returncode == 0, result.stdout


def test_the_database_prefix_is_a_setting(pytester_run, checkstack_database_base_url):
    if checkstack_database_base_url is None:
        pytest.skip("database names are chosen on PostgreSQL only")
    source = """
        from sqlalchemy.engine import make_url

        def test_name(checkstack_database_url):
            assert make_url(checkstack_database_url).database.startswith("{prefix}")
        """
    by_env = pytester_run(
        source.format(prefix="myplugin_ci_"),
        env={"CHECKSTACK_TEST_DATABASE_PREFIX": "myplugin_ci_"},
    )
    assert by_env.returncode == 0, by_env.stdout
    by_option = pytester_run(source.format(prefix="other_"), "--checkstack-db-prefix", "other_")
    assert by_option.returncode == 0, by_option.stdout


@pytest.mark.parametrize("prefix", ["", "1abc", "a-b", 'x"; DROP DATABASE test; --', "a" * 52])
async def test_a_bad_database_prefix_is_refused(prefix, tmp_path):
    from checkstack_core.testing.database import temporary_database

    with pytest.raises(ValueError, match="Test database prefix"):
        async with temporary_database(None, tmp_path, prefix=prefix):
            pass
