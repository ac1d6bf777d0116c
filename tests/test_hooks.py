"""Every core hook is documented, and each has a test named ``test_hook_<name>`` here."""

from __future__ import annotations

import inspect
import sys
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner
from litestar import get

from checkstack_core import Plugin, hookimpl, hookspecs
from checkstack_core.app import create_app
from checkstack_core.auth import Principal, PrincipalKind, PublicOnlyAuthBackend, RequestInfo
from checkstack_core.events import EmbeddedEventBus
from checkstack_core.host import Host, make_plugin_manager
from checkstack_core.loader import PluginLoadError

HOOK_NAMES = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("checkstack_")
)


def test_every_hook_has_a_docstring_with_an_example_and_a_version():
    assert HOOK_NAMES, "no hookspecs found"
    for name in HOOK_NAMES:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Example" in doc, f"{name} has no example"
        assert "versionadded" in doc, f"{name} does not say when it was added"


def test_every_hook_has_a_test():
    tests = {name for name in dir(sys.modules[__name__]) if name.startswith("test_hook_")}
    missing = [name for name in HOOK_NAMES if f"test_hook_{name}" not in tests]
    assert not missing, f"hooks without a test: {missing}"


def test_every_hook_is_registered_with_the_plugin_manager():
    pm = make_plugin_manager()
    for name in HOOK_NAMES:
        assert hasattr(pm.hook, name)


def plugin_with(hooks: object, plugin_id: str = "hooked") -> Plugin:
    return Plugin(id=plugin_id, name="Hooked", hooks=hooks)


async def start(settings: Any, *plugins: Plugin) -> Host:
    host = Host(settings, plugins=list(plugins), discover_installed=False)
    await host.start()
    return host


async def test_hook_checkstack_register_commands(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_register_commands(self, cli: click.Group) -> None:
            @cli.command()
            @click.argument("name")
            def greet(name: str) -> None:
                click.echo(f"hi {name}")

    host = Host(checkstack_settings, plugins=[plugin_with(Hooks())], discover_installed=False)
    group = click.Group("checkstack")
    host.pm.hook.checkstack_register_commands(cli=group)
    result = CliRunner().invoke(group, ["greet", "Ann"])
    assert result.exit_code == 0
    assert result.output == "hi Ann\n"


async def test_hook_checkstack_register_routes(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_register_routes(self, register: Any) -> None:
            @get("/hooked/status", sync_to_thread=False)
            def status() -> dict[str, str]:
                return {"status": "operational"}

            register(status)

    host = await start(checkstack_settings, plugin_with(Hooks()))
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/hooked/status")
        assert response.json() == {"status": "operational"}
        assert response.headers["x-request-id"]
    finally:
        await host.stop()


async def test_hook_checkstack_register_ui(checkstack_settings, tmp_path):
    (tmp_path / "page.html").write_text(
        '{% extends "core/base.html" %}{% block content %}<p id="says">{{ says }}</p>{% endblock %}'
    )

    async def page(view: Any) -> Any:
        return await view.render("hooked/page.html", says="hello from a plugin")

    async def plugins_page(view: Any) -> Any:
        # Called as the visitor: the procedure's rule (core.plugins.read) applies to the page.
        plugins = await view.call("core", "getPlugins")
        return await view.render("hooked/page.html", says=len(plugins["plugins"]))

    class Hooks:
        @hookimpl
        def checkstack_register_ui(self, ui: Any) -> None:
            ui.templates("hooked", tmp_path)
            ui.page("/hooked", page, methods=["GET"])
            ui.page("/hooked/plugins", plugins_page, methods=["GET"])
            ui.nav("Hooked", "/hooked", section="main")

    host = await start(checkstack_settings, plugin_with(Hooks()))
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/hooked")
            refused = await http.get("/hooked/plugins")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert '<p id="says">hello from a plugin</p>' in response.text
        assert '<a href="/hooked" aria-current="page">Hooked</a>' in response.text
        assert response.headers["x-request-id"]
        assert refused.status_code == 401
        assert "Authentication required" in refused.text
    finally:
        await host.stop()


async def test_hook_checkstack_register_engines(checkstack_settings):
    created: list[EmbeddedEventBus] = []

    def make_bus(host: Host) -> EmbeddedEventBus:
        created.append(EmbeddedEventBus())
        return created[-1]

    class Hooks:
        @hookimpl
        def checkstack_register_engines(self, register: hookspecs.EngineRegistrar) -> None:
            register.events("recording", make_bus)

    checkstack_settings.events_engine = "recording"
    host = await start(checkstack_settings, plugin_with(Hooks()))
    try:
        assert created and host.events is created[0]
    finally:
        await host.stop()


async def test_hook_checkstack_register_engines_rejects_duplicates(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_register_engines(self, register: hookspecs.EngineRegistrar) -> None:
            register.events("embedded", lambda host: EmbeddedEventBus())

    checkstack_settings.strict_plugins = False
    host = await start(checkstack_settings, plugin_with(Hooks()))
    await host.stop()
    assert host.plugins["hooked"].status == "failed"
    assert "registered twice" in (host.plugins["hooked"].error or "")


async def test_hook_checkstack_auth_backend(checkstack_settings):
    admin = Principal(PrincipalKind.USER, id="u1", is_admin=True)

    class HeaderBackend(PublicOnlyAuthBackend):
        async def authenticate(self, request: RequestInfo, *, uow: Any) -> Principal | None:
            return admin if request.headers.get("x-admin") == "yes" else None

    class Hooks:
        @hookimpl
        def checkstack_auth_backend(self, host: Host) -> HeaderBackend:
            return HeaderBackend(host.public_rules())

    host = await start(checkstack_settings, plugin_with(Hooks()))
    try:
        assert isinstance(host.auth, HeaderBackend)
        async with host.service_context("core") as ctx:
            request = RequestInfo(headers={"x-admin": "yes"})
            assert await host.auth.authenticate(request, uow=ctx.uow) is admin
    finally:
        await host.stop()


async def test_without_an_auth_plugin_the_builtin_backend_serves_public_rules(checkstack_settings):
    from checkstack_hello import plugin as hello

    host = await start(checkstack_settings, hello)
    try:
        assert isinstance(host.auth, PublicOnlyAuthBackend)
        async with host.service_context("core") as ctx:
            anonymous = await host.auth.anonymous(uow=ctx.uow)
        assert anonymous.rules == {"hello.hello.read"}
    finally:
        await host.stop()


async def test_hook_checkstack_ready(checkstack_settings):
    seen: list[list[str]] = []

    class Hooks:
        @hookimpl
        def checkstack_ready(self, host: Host) -> None:
            seen.append([r.id for r in host.active()])

    host = await start(checkstack_settings, plugin_with(Hooks()))
    await host.stop()
    assert seen == [["core", "hooked"]]


async def test_hook_checkstack_shutdown(checkstack_settings):
    calls: list[str] = []

    class Hooks:
        @hookimpl
        def checkstack_shutdown(self, host: Host) -> None:
            calls.append("shutdown")

    host = await start(checkstack_settings, plugin_with(Hooks()))
    assert calls == []
    await host.stop()
    assert calls == ["shutdown"]


async def test_hooks_of_a_failed_plugin_are_not_registered(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_ready(self, host: Host) -> None:
            raise AssertionError("a failed plugin's hook ran")

    broken = Plugin(id="broken", name="Broken", hooks=Hooks(), depends_on=["missing"])
    checkstack_settings.strict_plugins = False
    host = await start(checkstack_settings, broken)
    await host.stop()
    assert host.plugins["broken"].status == "failed"


async def test_an_invalid_hookimpl_fails_only_its_plugin(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_ready(self, host: Host, nonsense: int) -> None: ...

    checkstack_settings.strict_plugins = False
    host = await start(checkstack_settings, plugin_with(Hooks()))
    await host.stop()
    assert host.plugins["hooked"].status == "failed"
    assert "Hook registration failed" in (host.plugins["hooked"].error or "")


async def test_a_misspelled_hook_fails_its_plugin(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_redy(self, host: Host) -> None: ...

    checkstack_settings.strict_plugins = False
    host = await start(checkstack_settings, plugin_with(Hooks()))
    await host.stop()
    assert host.plugins["hooked"].error == "Hook registration failed: Unknown hook checkstack_redy"


async def test_a_raising_hook_fails_only_its_plugin(checkstack_settings):
    from checkstack_hello import plugin as hello

    class Hooks:
        @hookimpl
        def checkstack_ready(self, host: Host) -> None:
            raise RuntimeError("not today")

        @hookimpl
        def checkstack_register_routes(self, register: Any) -> None:
            raise RuntimeError("no routes either")

    checkstack_settings.strict_plugins = False
    host = await start(checkstack_settings, hello, plugin_with(Hooks()))
    try:
        assert host.plugins["hooked"].status == "failed"
        assert (
            host.plugins["hooked"].error == "Hook checkstack_ready failed: RuntimeError: not today"
        )
        assert host.plugins["hello"].status == "active"
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.post("/api/hello/", json={"getGreeting": {}})
        assert response.status_code == 200
    finally:
        await host.stop()


async def test_a_raising_hook_is_fatal_in_strict_mode(checkstack_settings):
    class Hooks:
        @hookimpl
        def checkstack_ready(self, host: Host) -> None:
            raise RuntimeError("not today")

    host = Host(checkstack_settings, plugins=[plugin_with(Hooks())], discover_installed=False)
    with pytest.raises(PluginLoadError, match="not today"):
        await host.start()
    await host.stop()
