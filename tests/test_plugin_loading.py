"""Discovery through entry points with per-plugin isolation (SPEC §3.1)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fake_distributions import make_broken_set, make_plugin

from checkstack_core.host import Host
from checkstack_core.loader import PluginLoadError, discover
from checkstack_core.settings import Settings
from checkstack_core.testing.server import RunningServer

EXPECTED_ERRORS = {
    "broken-import": "Import failed: RuntimeError: boom at import",
    "needs-missing": "Missing dependency: nowhere",
    "cycle-a": "Dependency cycle: cycle-a -> cycle-b -> cycle-a",
    "cycle-b": "Dependency cycle: cycle-a -> cycle-b -> cycle-a",
    "bad-rule": (
        "Procedure ping names access rule bad-rule.ghost.read, which the plugin does not declare"
    ),
    "after-failed": "Depends on failed plugin broken-import",
}


def entry_points_in(*roots: Path) -> list[importlib.metadata.EntryPoint]:
    """The checkstack entry points of the distributions installed under ``roots``."""
    return [
        ep
        for dist in importlib.metadata.distributions(path=[str(r) for r in roots])
        for ep in dist.entry_points
        if ep.group == "checkstack.plugins"
    ]


@pytest.fixture
def broken_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[importlib.metadata.EntryPoint]:
    root = tmp_path / "site"
    make_broken_set(root)
    monkeypatch.syspath_prepend(str(root))
    return entry_points_in(root)


def records(settings: Settings, entry_points) -> dict:
    return {r.id: r for r in discover(settings, entry_points=entry_points)}


def test_each_failure_is_reported_and_the_rest_loads(broken_set):
    found = records(Settings(), broken_set)
    assert found["healthy"].status == "active"
    assert found["healthy"].distribution == "checkstack-healthy"
    assert found["healthy"].version == "0.1.0"
    for plugin_id, error in EXPECTED_ERRORS.items():
        assert found[plugin_id].status == "failed", plugin_id
        assert error in (found[plugin_id].error or ""), (plugin_id, found[plugin_id].error)


def test_import_errors_say_where(broken_set):
    error = records(Settings(), broken_set)["broken-import"].error or ""
    assert "__init__.py:1" in error


def test_allowlist_and_denylist(broken_set):
    only = records(Settings(plugins=["healthy"]), broken_set)
    assert only["healthy"].status == "active"
    assert only["broken-import"].status == "disabled"
    denied = records(Settings(disabled_plugins=["healthy"]), broken_set)
    assert denied["healthy"].status == "disabled"


def test_a_dependency_on_a_disabled_plugin_fails(tmp_path, monkeypatch):
    make_plugin(tmp_path, "base")
    make_plugin(tmp_path, "child", depends_on=("base",))
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = entry_points_in(tmp_path)
    found = records(Settings(disabled_plugins=["base"]), eps)
    assert found["child"].error == "Depends on disabled plugin base"


def test_startup_order_is_topological(tmp_path, monkeypatch):
    make_plugin(tmp_path, "a-last", depends_on=("m-middle",))
    make_plugin(tmp_path, "m-middle", depends_on=("z-first",))
    make_plugin(tmp_path, "z-first")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = entry_points_in(tmp_path)
    order = [r.id for r in discover(Settings(), entry_points=eps)]
    assert order == ["z-first", "m-middle", "a-last"]


def test_duplicate_plugin_ids_fail_both_and_name_the_distributions(tmp_path, monkeypatch):
    make_plugin(tmp_path / "one", "twin")
    make_plugin(tmp_path / "two", "twin")
    eps = entry_points_in(tmp_path / "one", tmp_path / "two")
    monkeypatch.syspath_prepend(str(tmp_path / "one"))
    found = discover(Settings(), entry_points=eps)
    twin = [r for r in found if r.id == "twin"]
    assert twin and twin[0].status == "failed"
    assert "provided by both" in (twin[0].error or "")


def test_strict_mode_fails_startup_with_the_same_report(broken_set, monkeypatch):
    monkeypatch.setattr(
        "checkstack_core.loader.importlib.metadata.entry_points", lambda group: broken_set
    )
    with pytest.raises(PluginLoadError) as raised:
        Host(Settings(strict_plugins=True, database_url="sqlite:///:memory:"))
    message = str(raised.value)
    for plugin_id, error in EXPECTED_ERRORS.items():
        assert f"{plugin_id} (" in message and error in message


# -- through the real command line and server ----------------------------------------------------


def _env(site: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # CI exports strict mode; these tests are about the lenient default.
    env["CHECKSTACK_STRICT_PLUGINS"] = "0"
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["CHECKSTACK_DATABASE_URL"] = database_url
    env["CHECKSTACK_PLUGINS"] = "hello,healthy," + ",".join(EXPECTED_ERRORS)
    return {**env, **extra}


@pytest.mark.e2e
def test_cli_and_server_report_failures_and_serve_the_rest(tmp_path, checkstack_database_url):
    site = tmp_path / "site"
    make_broken_set(site)
    env = _env(site, checkstack_database_url)
    listing = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "plugins", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    reported = {p["id"]: p for p in json.loads(listing.stdout)["plugins"]}
    assert reported["healthy"]["status"] == "active"
    assert reported["healthy"]["procedures"] == [
        {"name": "ping", "kind": "query", "caller": "public", "rules": ["healthy.healthy.read"]}
    ]
    for plugin_id, error in EXPECTED_ERRORS.items():
        assert reported[plugin_id]["status"] == "failed"
        assert error in reported[plugin_id]["error"]

    text = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "plugins"],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    ).stdout
    assert "broken-import (checkstack-broken-import 0.1.0) [failed]" in text
    assert "error: Missing dependency: nowhere" in text

    server = RunningServer(checkstack_database_url, tmp_path, env).start()
    try:
        for plugin_id in EXPECTED_ERRORS:
            response = httpx.post(f"{server.url}/api/{plugin_id}/", json={"ping": {}})
            assert response.status_code == 503, plugin_id
            assert response.json() == {
                "code": "SERVICE_UNAVAILABLE",
                "message": f"Plugin {plugin_id} is unavailable",
            }
        ok = httpx.post(f"{server.url}/api/healthy/", json={"ping": {}})
        assert ok.json() == {"ping": {"pong": "healthy"}}
        assert httpx.post(f"{server.url}/api/hello/", json={"getGreeting": {}}).status_code == 200
        ready = httpx.get(f"{server.url}/readyz").json()
        assert set(ready["plugins"]["failed"]) == set(EXPECTED_ERRORS)
        assert httpx.get(f"{server.url}/api/plugins").status_code == 401
    finally:
        server.stop()

    strict = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "serve", "--port", "1"],
        env={**env, "CHECKSTACK_STRICT_PLUGINS": "1"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert strict.returncode != 0
    for plugin_id, error in EXPECTED_ERRORS.items():
        assert error in strict.stderr + strict.stdout, plugin_id


@pytest.mark.e2e
def test_a_distribution_installed_later_is_discovered_and_uninstalling_removes_it(
    tmp_path, checkstack_database_url
):
    site = tmp_path / "site"
    site.mkdir()
    env = _env(site, checkstack_database_url, CHECKSTACK_PLUGINS="hello,late")

    def ids() -> set[str]:
        out = subprocess.run(
            [sys.executable, "-m", "checkstack_core", "plugins", "--json"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            check=True,
        ).stdout
        return {p["id"] for p in json.loads(out)["plugins"]}

    assert "late" not in ids()
    info = make_plugin(site, "late")
    assert "late" in ids()
    server = RunningServer(checkstack_database_url, tmp_path, env).start()
    try:
        assert httpx.post(f"{server.url}/api/late/", json={"ping": {}}).json() == {
            "ping": {"pong": "late"}
        }
    finally:
        server.stop()
    import shutil

    shutil.rmtree(info)
    assert "late" not in ids()


async def test_plugins_endpoint_reports_status_for_holders_of_the_rule(
    checkstack_http, checkstack_auth
):
    response = await checkstack_http.get("/api/plugins", headers=checkstack_auth.admin().headers)
    assert response.status_code == 200
    by_id = {p["id"]: p for p in response.json()["plugins"]}
    assert by_id["hello"]["status"] == "active"
    assert by_id["hello"]["rules"][0] == {
        "id": "hello.hello.read",
        "level": "read",
        "description": "Read the greeting",
        "default": True,
        "public": True,
    }
    assert {
        "name": "setGreeting",
        "kind": "mutation",
        "caller": "authenticated",
        "rules": ["hello.hello.manage"],
    } in by_id["hello"]["procedures"]
    denied = await checkstack_http.get("/api/plugins", headers=checkstack_auth.user().headers)
    assert denied.status_code == 403
    assert denied.json()["message"] == "Missing access: core.plugins.read"


def test_a_plugin_handed_to_the_host_is_labelled_with_its_own_distribution(monkeypatch):
    """As in a plugin's own tests: the conftest hands the host the object the entry point names."""
    from checkstack_hello import plugin as hello
    from notes_plugin import plugin as notes

    monkeypatch.setattr(hello, "depends_on", ("nowhere",))
    with pytest.raises(PluginLoadError) as failure:
        Host(Settings(strict_plugins=True), plugins=[hello, notes], discover_installed=False)
    version = importlib.metadata.version("checkstack-hello")
    assert f"hello (checkstack-hello {version}): Missing dependency: nowhere" in str(failure.value)
    host = Host(Settings(), plugins=[notes], discover_installed=False)
    assert host.plugins["core"].distribution == "checkstack-core"
    assert host.plugins["notes"].distribution is None  # a test-only module: no distribution
