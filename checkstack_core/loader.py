"""Plugin discovery with per-plugin isolation (SPEC §3.1).

Entry points of group ``checkstack.plugins`` are loaded one by one: a plugin that fails to import,
fails validation, misses a dependency or sits in a dependency cycle is recorded with its error and
skipped together with its dependents; the others load. In strict mode any failure is fatal.
"""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .contract import PLUGIN_ID_PATTERN, Contract
from .plugin import Handler, Plugin
from .settings import Settings

logger = logging.getLogger("checkstack.plugins")

ENTRY_POINT_GROUP = "checkstack.plugins"
#: Ids the host itself uses under /api/.
RESERVED_IDS = frozenset({"plugins", "docs", "openapi", "schema"})
CORE_PLUGIN_ID = "core"
Status = Literal["active", "failed", "disabled"]


@dataclass
class LoadedPlugin:
    """One discovered plugin and what became of it."""

    id: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    status: Status = "active"
    error: str | None = None
    plugin: Plugin | None = None
    handlers: dict[str, Handler] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.plugin.name if self.plugin else self.id

    @property
    def contract(self) -> Contract | None:
        return self.plugin.contract if self.plugin else None

    def fail(self, error: str) -> None:
        self.status = "failed"
        self.error = error
        logger.error("Plugin %s failed: %s", self.id, error)

    def describe(self) -> dict[str, Any]:
        """The JSON shape of ``checkstack plugins --json`` and ``GET /api/plugins``."""
        contract = self.contract
        procedures = []
        if contract is not None:
            for proc in contract.procedures:
                procedures.append(
                    {
                        "name": proc.name,
                        "kind": str(proc.kind),
                        "caller": str(proc.caller),
                        "rules": [contract.qualified(rule) for rule in proc.rules],
                    }
                )
        return {
            "id": self.id,
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "dependsOn": list(self.plugin.depends_on) if self.plugin else [],
            "rules": [
                {
                    "id": contract.qualified(rule),
                    "level": str(rule.level),
                    "description": rule.description,
                    "default": rule.default,
                    "public": rule.public,
                }
                for rule in (contract.rules if contract is not None else ())
                if contract is not None
            ],
            "procedures": procedures,
            "events": [
                {"name": event.name, "description": event.description, "payload": event.payload}
                for event in (contract.events if contract is not None else ())
            ],
        }


class PluginLoadError(RuntimeError):
    """Raised in strict mode: the report lists every plugin that failed."""

    def __init__(self, failed: list[LoadedPlugin]) -> None:
        self.failed = failed
        lines = [f"  {p.id} ({p.distribution or '?'} {p.version or ''}): {p.error}" for p in failed]
        super().__init__("Plugins failed to load:\n" + "\n".join(lines))


def validate_plugin(plugin: Plugin) -> list[str]:
    """Problems with a plugin's declaration, as messages."""
    problems: list[str] = []
    if not PLUGIN_ID_PATTERN.match(plugin.id):
        problems.append(f"Plugin id {plugin.id!r} does not match {PLUGIN_ID_PATTERN.pattern}")
    if plugin.id in RESERVED_IDS:
        problems.append(f"Plugin id {plugin.id!r} is reserved")
    contract = plugin.contract
    if contract is not None:
        if contract.plugin_id != plugin.id:
            problems.append(f"Contract is for plugin {contract.plugin_id!r}, not {plugin.id!r}")
        problems.extend(contract.validate())
        if contract.procedures:
            if plugin.handlers is None:
                problems.append("Plugin declares procedures but no handlers")
            else:
                missing = plugin.handlers.missing()
                if missing:
                    problems.append(f"Procedures without a handler: {', '.join(missing)}")
    prefix = plugin.id.replace("-", "_") + "_"
    for model in plugin.models:
        table = getattr(model, "__table__", None)
        if table is None:
            problems.append(f"Model {model.__name__} is not a table (table=True)")
        elif not table.name.startswith(prefix):
            problems.append(f"Table {table.name} must be prefixed with {prefix!r}")
    if plugin.models and plugin.migrations_path is None:
        problems.append("Plugin declares tables but no migrations folder")
    if plugin.migrations_path is not None and not plugin.migrations_path.is_dir():
        problems.append(f"Migrations folder {plugin.migrations_path} does not exist")
    for job in plugin.jobs:
        if not job.name.startswith(f"{plugin.id}."):
            problems.append(f"Job {job.name} must be named '{plugin.id}.<name>'")
    return problems


def _core_version() -> str | None:
    try:
        return importlib.metadata.version("checkstack-core")
    except importlib.metadata.PackageNotFoundError:
        return None


def _distribution_of(
    plugin: Plugin, entry_points: Iterable[importlib.metadata.EntryPoint]
) -> tuple[str | None, str | None]:
    """The distribution (name, version) ``plugin`` comes from, for a plugin handed to the host
    directly (tests, embedding): the installed one whose entry point names this very object (its
    module already imported), else the core for the core's own plugin, else unknown. A failure
    is then labelled with the plugin's own distribution, not the core's."""
    for ep in entry_points:
        module = sys.modules.get(ep.module)
        if ep.name == plugin.id and module is not None and getattr(module, ep.attr, None) is plugin:
            return (ep.dist.name, ep.dist.version) if ep.dist else (None, None)
    handlers = plugin.handlers.by_name.values() if plugin.handlers is not None else ()
    if any(getattr(fn, "__module__", "").startswith("checkstack_core.") for fn in handlers):
        return "checkstack-core", _core_version()
    return None, None


def _format_exception(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" ({last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def discover(
    settings: Settings,
    *,
    extra: Iterable[Plugin] = (),
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> list[LoadedPlugin]:
    """Load every installed plugin (plus ``extra`` ones) and order them for startup.

    Returns every plugin, failed and disabled ones included, active ones in dependency order first.
    """
    found: dict[str, LoadedPlugin] = {}
    allow = set(settings.plugins) if settings.plugins is not None else None
    deny = set(settings.disabled_plugins)

    def admit(record: LoadedPlugin) -> bool:
        # The core's own plugin is not subject to the allowlist: listing the plugins one wants
        # should not silently switch off /api/plugins. It can still be denied by name.
        allowed = allow is None or record.id in allow or record.id == CORE_PLUGIN_ID
        if not allowed or record.id in deny:
            record.status = "disabled"
        if record.id in found:
            other = found[record.id]
            record.fail(
                f"Plugin id {record.id!r} is provided by both {other.distribution} and "
                f"{record.distribution}"
            )
            other.fail(record.error or "")
            return False
        found[record.id] = record
        return record.status == "active"

    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(entry_points, key=lambda e: e.name):
        dist = ep.dist
        record = LoadedPlugin(
            id=ep.name,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            entry_point=ep.value,
        )
        if not admit(record):
            continue
        try:
            obj = ep.load()
        except BaseException as exc:  # an import may raise anything, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            record.fail(f"Import failed: {_format_exception(exc)}")
            continue
        if not isinstance(obj, Plugin):
            record.fail(f"Entry point {ep.value} names {type(obj).__name__}, not a Plugin")
            continue
        if obj.id != ep.name:
            record.fail(f"Entry point name {ep.name!r} differs from the plugin id {obj.id!r}")
            continue
        record.plugin = obj
    extra = list(extra)
    installed = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if extra else ()
    for plugin in extra:
        distribution, version = _distribution_of(plugin, installed)
        record = LoadedPlugin(
            id=plugin.id, distribution=distribution, version=version, plugin=plugin
        )
        admit(record)

    for record in found.values():
        if record.status == "active" and record.plugin is not None:
            problems = validate_plugin(record.plugin)
            if problems:
                record.fail("; ".join(problems))
            elif record.plugin.handlers is not None:
                record.handlers = dict(record.plugin.handlers.by_name)

    ordered = _order(found)
    rest = [r for r in found.values() if r not in ordered]
    return ordered + sorted(rest, key=lambda r: r.id)


def _order(found: dict[str, LoadedPlugin]) -> list[LoadedPlugin]:
    """Topological order of the active plugins; failures propagate to dependents."""
    active = {pid: r for pid, r in found.items() if r.status == "active"}
    state: dict[str, str] = {}
    ordered: list[LoadedPlugin] = []

    def visit(pid: str, path: list[str]) -> bool:
        record = active.get(pid)
        if record is None or record.status != "active":
            return False
        if state.get(pid) == "done":
            return True
        if state.get(pid) == "visiting":
            cycle = [*path[path.index(pid) :], pid]
            message = f"Dependency cycle: {' -> '.join(cycle)}"
            for member in set(cycle):
                active[member].fail(message)
            return False
        state[pid] = "visiting"
        assert record.plugin is not None
        for dep in record.plugin.depends_on:
            if dep not in found:
                record.fail(f"Missing dependency: {dep}")
            elif found[dep].status == "disabled":
                record.fail(f"Depends on disabled plugin {dep}")
            elif not visit(dep, [*path, pid]) and record.status == "active":
                record.fail(f"Depends on failed plugin {dep}")
            if record.status != "active":
                break
        state[pid] = "done"
        if record.status == "active":
            ordered.append(record)
            return True
        return False

    for pid in sorted(active):
        visit(pid, [])
    return [r for r in ordered if r.status == "active"]
