"""The host: discovers plugins, migrates, starts engines and plugins, and stops them.

Startup phases, in order (each plugin's failure is isolated unless strict mode is on):

1. **discover** — load entry points, validate, order topologically over ``depends_on``;
2. **hooks** — register each plugin's hookimpls and extension hookspecs with pluggy;
3. **migrate** — upgrade every active plugin's tables (``CHECKSTACK_MIGRATE_ON_STARTUP``);
4. **engines** — choose the auth backend, event bus and job scheduler;
5. **start plugins** — provide services, subscribe events, register jobs, run ``on_startup``;
6. **ready** — start the event bus and scheduler, call ``checkstack_ready``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pluggy

from . import hookspecs
from .auth import AuthBackend, Principal
from .context import Context, UnitOfWork
from .contract import EventType
from .db import Database, redact_url
from .dispatch import Dispatcher
from .events import Event, EventBus, Subscription
from .jobs import JobRun, JobScheduler
from .loader import LoadedPlugin, PluginLoadError, discover
from .plugin import DECLARED_EVENTS, EventSubscription, JobDefinition, Plugin
from .settings import Settings

logger = logging.getLogger("checkstack.host")


def make_plugin_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with the core's hookspecs and built-in implementations."""
    from . import builtin

    pm = pluggy.PluginManager("checkstack")
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="checkstack_core.builtin")
    return pm


class Host:
    """One Checkstack server's worth of plugins, database, engines and dispatcher."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        plugins: Iterable[Plugin] | None = None,
        discover_installed: bool = True,
    ) -> None:
        """``plugins`` adds plugin objects directly (tests); ``discover_installed=False`` skips
        entry-point discovery so only those (and the core's own) load."""
        from .core_plugin import plugin as core_plugin

        self.settings = settings or Settings.load()
        self.db = Database(
            self.settings.database_url,
            pool_size=self.settings.db_pool_size,
            pool_timeout=self.settings.db_pool_timeout,
        )
        self.pm = make_plugin_manager()
        extra = [core_plugin, *(plugins or ())]
        self.plugins: dict[str, LoadedPlugin] = {
            record.id: record
            for record in discover(
                self.settings,
                extra=extra,
                entry_points=None if discover_installed else (),
            )
        }
        self._register_hooks()
        self.dispatcher = Dispatcher(self)
        self.services: dict[str, Any] = {}
        self.auth: AuthBackend = _NotStarted()
        self.events: EventBus = _NotStarted()
        self.jobs: JobScheduler = _NotStarted()
        self._started: list[LoadedPlugin] = []
        self.running = False
        #: ``True`` in a ``checkstack worker`` process (set before :meth:`start`): with a
        #: distributed engine, only such processes run background work (see
        #: :func:`checkstack_core.workers.runs_background_work`).
        self.worker = False
        self._raise_if_strict()

    # -- queries ------------------------------------------------------------------------------

    def active(self) -> list[LoadedPlugin]:
        """Active plugins in startup order."""
        return [r for r in self.plugins.values() if r.status == "active"]

    def public_rules(self) -> set[str]:
        """Qualified ids of every rule declared ``public`` by an active plugin."""
        return {
            record.contract.qualified(rule)
            for record in self.active()
            if record.contract is not None
            for rule in record.contract.rules
            if rule.public
        }

    def all_rules(self) -> list[tuple[str, Any]]:
        """(plugin id, AccessRule) of every active plugin."""
        return [
            (record.id, rule)
            for record in self.active()
            if record.contract is not None
            for rule in record.contract.rules
        ]

    def declared_events(self) -> list[tuple[str, EventType]]:
        """(plugin id, EventType) of every event declared in an active plugin's contract."""
        return [
            (record.id, event)
            for record in self.active()
            if record.contract is not None
            for event in record.contract.events
        ]

    # -- hooks --------------------------------------------------------------------------------

    def call_hook(self, name: str, *, firstresult: bool = False, **kwargs: Any) -> list[Any]:
        """Call hook ``name`` in pluggy's order, isolating each plugin's implementation.

        A plugin whose implementation raises is marked failed (and, in strict mode, startup
        stops); the others still run. The core's own implementations are trusted and re-raise.
        Returns the non-``None`` results (only the first with ``firstresult``).
        """
        results: list[Any] = []
        for impl in reversed(getattr(self.pm.hook, name).get_hookimpls()):
            if impl.plugin_name.startswith("plugin:"):
                record = self.plugins[impl.plugin_name.removeprefix("plugin:")]
                if record.status != "active":
                    continue
            else:
                record = None
            try:
                result = impl.function(*(kwargs[arg] for arg in impl.argnames))
            except Exception as exc:
                if record is None:
                    raise
                logger.exception("Hook %s of plugin %s failed", name, record.id)
                record.fail(f"Hook {name} failed: {type(exc).__name__}: {exc}")
                continue
            if result is not None:
                results.append(result)
                if firstresult:
                    break
        return results

    # -- lifecycle ----------------------------------------------------------------------------

    def _register_hooks(self) -> None:
        for record in self.active():
            plugin = record.plugin
            assert plugin is not None
            try:
                if plugin.hookspecs is not None:
                    self.pm.add_hookspecs(plugin.hookspecs)  # type: ignore[arg-type]
                if plugin.hooks is not None:
                    self.pm.register(plugin.hooks, name=f"plugin:{plugin.id}")
                    # Dependencies start first, so every hook this plugin may implement has its
                    # spec by now: an impl without one is a misspelling that would never run.
                    unknown = sorted(
                        caller.name
                        for caller in self.pm.get_hookcallers(plugin.hooks) or ()
                        if caller.spec is None
                        and not all(i.optionalhook for i in caller.get_hookimpls())
                    )
                    if unknown:
                        raise ValueError(f"Unknown hook {', '.join(unknown)}")
            except Exception as exc:
                if plugin.hooks is not None and self.pm.has_plugin(f"plugin:{plugin.id}"):
                    self.pm.unregister(name=f"plugin:{plugin.id}")
                record.fail(f"Hook registration failed: {exc}")
        self._fail_dependents()

    def _fail_dependents(self) -> None:
        changed = True
        while changed:
            changed = False
            for record in self.active():
                assert record.plugin is not None
                for dep in record.plugin.depends_on:
                    if self.plugins[dep].status != "active":
                        record.fail(f"Depends on failed plugin {dep}")
                        changed = True
                        break

    def _raise_if_strict(self) -> None:
        if self.settings.strict_plugins:
            failed = [r for r in self.plugins.values() if r.status == "failed"]
            if failed:
                raise PluginLoadError(failed)

    async def start(self) -> None:
        """Run the startup phases. Raises :class:`PluginLoadError` in strict mode on any failure."""
        from . import migrations

        logger.info("Starting Checkstack on %s", redact_url(self.db.url))
        if self.settings.migrate_on_startup:
            try:
                await migrations.upgrade(self.db, [r.plugin for r in self.active() if r.plugin])
            except Exception:
                # A migration failure poisons the shared transaction; retry plugin by plugin so
                # only the broken plugin (and its dependents) is disabled.
                await self._migrate_isolated()
        self._choose_engines()
        for record in self.active():
            await self._start_plugin(record)
        self._fail_dependents()
        self._raise_if_strict()
        await self.events.start()
        await self.jobs.start()
        self.call_hook("checkstack_ready", host=self)
        self._fail_dependents()
        self._raise_if_strict()
        self.running = True

    async def _migrate_isolated(self) -> None:
        from . import migrations

        for record in self.active():
            if record.plugin is None:
                continue
            try:
                await migrations.upgrade(self.db, [record.plugin])
            except Exception as exc:
                logger.exception("Migrating plugin %s failed", record.id)
                record.fail(f"Migration failed: {migrations.describe_error(exc)}")
        self._fail_dependents()

    def _choose_engines(self) -> None:
        registrar = hookspecs.EngineRegistrar()
        self.call_hook("checkstack_register_engines", register=registrar)
        events_factory = registrar.event_engines.get(self.settings.events_engine)
        jobs_factory = registrar.job_engines.get(self.settings.jobs_engine)
        if events_factory is None:
            raise RuntimeError(f"Unknown events engine {self.settings.events_engine!r}")
        if jobs_factory is None:
            raise RuntimeError(f"Unknown jobs engine {self.settings.jobs_engine!r}")
        self.events = events_factory(self)
        self.jobs = jobs_factory(self)
        [self.auth] = self.call_hook("checkstack_auth_backend", firstresult=True, host=self)

    async def _start_plugin(self, record: LoadedPlugin) -> None:
        plugin = record.plugin
        assert plugin is not None
        if any(self.plugins[dep].status != "active" for dep in plugin.depends_on):
            record.fail("Depends on failed plugin " + ", ".join(plugin.depends_on))
            return
        try:
            for ref_id, factory in plugin.services.items():
                async with self.service_context(plugin.id) as ctx:
                    self.services[ref_id] = factory(ctx)
            for sub in plugin.subscriptions:
                if sub.event == DECLARED_EVENTS:
                    # Known now (contracts load before any plugin starts), so the engines only
                    # ever see ordinary per-name subscriptions.
                    names = [event.name for _id, event in self.declared_events()]
                else:
                    names = [sub.event]
                for name in names:
                    self.events.subscribe(self._subscription(plugin, sub, name))
            for job in plugin.jobs:
                self.jobs.register(
                    job.name,
                    self._job_handler(plugin, job),
                    plugin_id=plugin.id,
                    timeout=job.timeout,
                    max_retries=job.max_retries,
                )
            for callback in plugin.startup:
                async with self.service_context(plugin.id) as ctx:
                    await callback(ctx)
        except Exception as exc:
            logger.exception("Plugin %s failed to start", plugin.id)
            record.fail(f"Startup failed: {type(exc).__name__}: {exc}")
            for ref_id in plugin.services:
                self.services.pop(ref_id, None)
            return
        self._started.append(record)

    def _subscription(self, plugin: Plugin, sub: EventSubscription, name: str) -> Subscription:
        async def deliver(event: Event) -> None:
            # A plugin that failed after subscribing (e.g. in a later startup callback) must not
            # go on reacting to events; the engines have no unsubscribe to undo it.
            if self.plugins[plugin.id].status != "active":
                return
            async with self.service_context(plugin.id) as ctx:
                await sub.callback(ctx, event)

        return Subscription(
            event=name,
            handler=deliver,
            plugin_id=plugin.id,
            mode=sub.mode,
            group=sub.group,
            max_retries=sub.max_retries,
        )

    def _job_handler(self, plugin: Plugin, job: JobDefinition) -> Any:
        async def run(job_run: JobRun) -> None:
            if self.plugins[plugin.id].status != "active":
                return
            async with self.service_context(plugin.id) as ctx:
                await job.callback(ctx, job_run)

        return run

    async def stop(self) -> None:
        """Stop engines, run shutdown callbacks in reverse order and close the database."""
        if self.running:
            self.call_hook("checkstack_shutdown", host=self)
        self.running = False
        for stoppable in (self.jobs, self.events):
            if not isinstance(stoppable, _NotStarted):
                await stoppable.stop()
        for record in reversed(self._started):
            assert record.plugin is not None
            for callback in reversed(record.plugin.shutdown):
                try:
                    async with self.service_context(record.id) as ctx:
                        await callback(ctx)
                except Exception:
                    logger.exception("Shutdown callback of plugin %s failed", record.id)
        self._started.clear()
        await self.db.dispose()

    @asynccontextmanager
    async def service_context(
        self, plugin_id: str, principal: Principal | None = None
    ) -> AsyncIterator[Context]:
        """A context acting as plugin ``plugin_id`` (or ``principal``) with its own transaction,
        committed when the block succeeds."""
        uow = UnitOfWork(self)
        async with uow.scope():
            yield Context(self, plugin_id, principal or Principal.service(plugin_id), uow)


class _NotStarted:
    """Stands in for engines until :meth:`Host.start` chose them; any use is a clear error."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("The host has not been started (await host.start())")
