"""What a plugin declares besides procedures: events, jobs, services, startup and shutdown."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checkstack_core import Context, Event, JobRun, Plugin, PrincipalKind, ServiceRef
from checkstack_core.host import Host
from checkstack_core.loader import PluginLoadError


async def started(settings: Any, *plugins: Plugin) -> Host:
    host = Host(settings, plugins=list(plugins), discover_installed=False)
    await host.start()
    return host


async def test_events_reach_subscribers_after_commit_as_the_subscribing_plugin(
    checkstack_host, checkstack_client, checkstack_auth
):
    # The hello plugin emits hello.greeting.changed; a second host-level subscriber is not
    # possible after start, so observe through the event bus directly.
    received: list[Event] = []
    original = checkstack_host.events.emit

    async def spy(name: str, payload: Any) -> Any:
        event = await original(name, payload)
        received.append(event)
        return event

    checkstack_host.events.emit = spy
    admin = checkstack_client(checkstack_auth.admin())
    await admin.call("hello", "setGreeting", {"template": "Yo {name}"})
    assert [(e.name, e.payload) for e in received] == [
        ("hello.greeting.changed", {"template": "Yo {name}"})
    ]


async def test_on_event_handlers_run_with_a_service_principal_and_a_transaction(
    checkstack_settings,
):
    from checkstack_hello import plugin as hello

    seen: list[tuple[str, Any, bool]] = []
    listener = Plugin(id="listener", name="Listener", depends_on=["hello"])

    @listener.on_event("hello.greeting.changed")
    async def on_change(ctx: Context, event: Event) -> None:
        from checkstack_hello.service import current_template

        # The emitting transaction has committed: the new template is visible here.
        template = await current_template(ctx.session)
        seen.append((str(ctx.principal.kind), event.payload, template == event.payload["template"]))

    host = await started(checkstack_settings, hello, listener)
    try:
        async with host.service_context("hello") as ctx:
            await ctx.call("hello", "setGreeting", {"template": "Hey {name}"})
        await host.events.drain()
        assert seen == [("service", {"template": "Hey {name}"}, True)]
    finally:
        await host.stop()


async def test_jobs_run_with_the_plugins_context(checkstack_settings):
    runs: list[tuple[str, dict, str]] = []
    timer = Plugin(id="timer", name="Timer")

    @timer.job("tick")
    async def tick(ctx: Context, run: JobRun) -> None:
        runs.append((run.key, run.payload, str(ctx.principal.kind)))

    host = await started(checkstack_settings, timer)
    try:
        await host.jobs.schedule_once(
            "timer.tick", key="timer:1", run_at=datetime.now(UTC), payload={"n": 1}
        )
        await host.jobs.schedule_once(
            "timer.tick", key="timer:2", run_at=datetime.now(UTC) + timedelta(hours=1)
        )
        await host.jobs.drain()
        assert runs == [("timer:1", {"n": 1}, "service")]
        assert await host.jobs.cancel("timer:2") is True
    finally:
        await host.stop()


def test_job_names_must_be_qualified_by_the_plugin_id(checkstack_settings):
    plugin = Plugin(id="timer", name="Timer")

    @plugin.job("tick")
    async def tick(ctx: Context, run: JobRun) -> None: ...

    assert plugin.jobs[0].name == "timer.tick"


async def test_startup_runs_in_dependency_order_and_shutdown_in_reverse(checkstack_settings):
    order: list[str] = []
    base = Plugin(id="base", name="Base")
    child = Plugin(id="child", name="Child", depends_on=["base"])

    def record(event: str) -> Any:
        async def callback(ctx: Context) -> None:
            order.append(event)

        return callback

    for plugin in (child, base):  # declared in the wrong order on purpose
        plugin.on_startup(record(f"start {plugin.id}"))
        plugin.on_shutdown(record(f"stop {plugin.id}"))
    host = await started(checkstack_settings, child, base)
    await host.stop()
    assert order == ["start base", "start child", "stop child", "stop base"]


CLOCK = ServiceRef[Any]("clock.now")


async def test_services_are_provided_to_other_plugins(checkstack_settings):
    clock = Plugin(id="clock", name="Clock")

    @clock.provide(CLOCK)
    def make_clock(ctx: Context) -> Any:
        return lambda: "12:00"

    reader = Plugin(id="reader", name="Reader", depends_on=["clock"])
    seen: list[str] = []

    @reader.on_startup
    async def read_clock(ctx: Context) -> None:
        seen.append(ctx.service(CLOCK)())

    host = await started(checkstack_settings, clock, reader)
    await host.stop()
    assert seen == ["12:00"]


async def test_a_missing_service_is_a_clear_error(checkstack_host):
    async with checkstack_host.service_context("hello") as ctx:
        with pytest.raises(LookupError, match=r"No loaded plugin provides service 'clock\.now'"):
            ctx.service(CLOCK)


async def test_a_startup_failure_disables_the_plugin_and_its_dependents(checkstack_settings):
    flaky = Plugin(id="flaky", name="Flaky")
    child = Plugin(id="child", name="Child", depends_on=["flaky"])

    @flaky.on_startup
    async def fail(ctx: Context) -> None:
        raise RuntimeError("cannot reach the thing")

    checkstack_settings.strict_plugins = False
    host = await started(checkstack_settings, flaky, child)
    try:
        assert host.plugins["flaky"].status == "failed"
        assert host.plugins["flaky"].error == "Startup failed: RuntimeError: cannot reach the thing"
        assert host.plugins["child"].status == "failed"
        assert host.plugins["core"].status == "active"
    finally:
        await host.stop()


async def test_a_startup_failure_is_fatal_in_strict_mode(checkstack_settings):
    flaky = Plugin(id="flaky", name="Flaky")

    @flaky.on_startup
    async def fail(ctx: Context) -> None:
        raise RuntimeError("cannot reach the thing")

    host = Host(checkstack_settings, plugins=[flaky], discover_installed=False)
    with pytest.raises(PluginLoadError, match="cannot reach the thing"):
        await host.start()
    await host.stop()


async def test_a_failed_plugins_subscriptions_stay_silent(checkstack_settings):
    calls: list[str] = []
    flaky = Plugin(id="flaky", name="Flaky")

    @flaky.on_event("core.test.ping")
    async def on_ping(ctx: Context, event: Event) -> None:
        calls.append(event.name)

    @flaky.on_startup
    async def fail(ctx: Context) -> None:
        raise RuntimeError("late failure")

    checkstack_settings.strict_plugins = False
    host = await started(checkstack_settings, flaky)
    try:
        await host.events.emit("core.test.ping", {})
        await host.events.drain()
        assert calls == []
    finally:
        await host.stop()


async def test_service_context_commits_on_success_and_rolls_back_on_error(checkstack_host):
    from checkstack_hello.service import current_template, replace_template

    with pytest.raises(RuntimeError):
        async with checkstack_host.service_context("hello") as ctx:
            await replace_template(ctx.session, "Lost {name}")
            raise RuntimeError("abort")
    async with checkstack_host.service_context("hello") as ctx:
        assert await current_template(ctx.session) == "Hello, {name}!"
        await replace_template(ctx.session, "Kept {name}")
    async with checkstack_host.service_context("hello") as ctx:
        assert await current_template(ctx.session) == "Kept {name}"
        assert ctx.principal.kind is PrincipalKind.SERVICE


async def test_stop_is_safe_to_call_twice(checkstack_settings):
    host = await started(checkstack_settings)
    await host.stop()
    await asyncio.wait_for(host.stop(), 5)


async def test_emit_checks_namespace_and_payload_before_anything_commits(checkstack_host):
    async with checkstack_host.service_context("hello") as ctx:
        with pytest.raises(ValueError, match=r"cannot emit 'catalog\.system\.deleted'"):
            await ctx.emit("catalog.system.deleted", {"systemId": "x"})
        with pytest.raises(TypeError, match=r"not JSON-serializable"):
            await ctx.emit("hello.thing.happened", {"when": object()})
        payload = {"n": 1}
        await ctx.emit("hello.thing.happened", payload)
        payload["n"] = 2  # the event keeps what was emitted
        assert ctx._uow._pending_events == [("hello.thing.happened", {"n": 1})]


def test_declared_events_are_validated_like_rules_and_procedures():
    from checkstack_core import Contract, EventType

    good = EventType("shop.order.placed", "An order was placed", payload="{orderId}")
    assert Contract("shop", events=[good]).validate() == []
    problems = Contract(
        "shop",
        events=[
            good,
            good,
            EventType("billing.invoice.sent", "Not ours"),
            EventType("shop.placed", "No resource"),
            EventType("shop.Order.placed", "Upper case"),
        ],
    ).validate()
    assert problems == [
        "Event shop.order.placed is declared twice",
        "Event billing.invoice.sent does not start with the plugin id 'shop'",
        "Event name 'shop.placed' does not look like '<pluginId>.<resource>.<verb>'",
        "Event name 'shop.Order.placed' does not look like '<pluginId>.<resource>.<verb>'",
    ]


async def test_on_declared_events_subscribes_to_every_active_plugins_declared_events(
    checkstack_settings,
):
    from checkstack_core import Contract, EventType

    got: list[tuple[str, str]] = []
    shop = Plugin(
        id="shop",
        name="Shop",
        contract=Contract("shop", events=[EventType("shop.order.placed", "Placed")]),
    )
    broken = Plugin(
        id="broken",
        name="Broken",
        contract=Contract("broken", events=[EventType("broken.thing.done", "Done")]),
    )

    @broken.on_startup
    async def fail(ctx: Context) -> None:
        raise RuntimeError("no")

    audit = Plugin(id="audit", name="Audit", depends_on=["shop"])

    @audit.on_declared_events(mode="work_queue", group="log")
    async def log(ctx: Context, event: Event) -> None:
        assert ctx.plugin_id == "audit"
        got.append((event.name, event.payload["id"]))

    checkstack_settings.strict_plugins = False
    host = await started(checkstack_settings, broken, shop, audit)
    try:
        assert [(p, e.name) for p, e in host.declared_events()] == [("shop", "shop.order.placed")]
        async with host.service_context("shop") as ctx:
            await ctx.emit("shop.order.placed", {"id": "o1"})
            await ctx.emit("shop.order.cancelled", {"id": "o1"})  # emitted, not declared
        await host.events.drain()
        assert got == [("shop.order.placed", "o1")]
        described = host.plugins["shop"].describe()["events"]
        assert described == [{"name": "shop.order.placed", "description": "Placed", "payload": ""}]
    finally:
        await host.stop()
