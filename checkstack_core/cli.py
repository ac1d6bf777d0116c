"""The ``checkstack`` command line: serve, plugins, db — plus commands plugins add.

Plugins add commands through the ``checkstack_register_commands`` hook; the root group is built
lazily so a broken plugin never breaks ``checkstack plugins`` (it is reported instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from .settings import SETTINGS_HELP, Settings

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a command."""
    return asyncio.run(coro)


@asynccontextmanager
async def open_host(*, start: bool = True) -> AsyncIterator[Any]:
    """A host on the configured database, started (migrated) and stopped around the block."""
    from .host import Host

    host = Host(Settings.load())
    try:
        if start:
            await host.start()
        yield host
    finally:
        await host.stop()


def _settings_epilog() -> str:
    # "\b" keeps click from rewrapping the list into one paragraph.
    lines = [
        "\b",
        "Settings: environment variables, or keys of the [checkstack] table of",
        "checkstack.toml (CHECKSTACK_CONFIG names another file).",
    ]
    lines.extend(f"  {text}" for text in SETTINGS_HELP.values())
    return "\n".join(lines)


class _RootGroup(click.Group):
    """Adds plugin commands on first use, so ``--help`` lists them too."""

    _loaded = False

    def _load_plugin_commands(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        try:
            from .host import Host

            host = Host(Settings.load())
        except Exception as exc:  # strict mode failures must not hide the core commands
            click.echo(f"warning: plugin commands unavailable: {exc}", err=True)
            return
        host.call_hook("checkstack_register_commands", cli=self)
        for record in host.plugins.values():
            if record.status == "failed" and (record.error or "").startswith("Hook "):
                click.echo(f"warning: {record.id}: {record.error}", err=True)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(cls=_RootGroup)
@click.version_option(package_name="checkstack-core")
def cli() -> None:
    """Checkstack: a self-hosted status page and monitoring platform made of plugins."""


@cli.command(epilog=_settings_epilog())
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--reload", is_flag=True, help="Restart on code changes (development).")
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
def serve(host: str, port: int, reload: bool, workers: int) -> None:
    """Serve every installed plugin over HTTP (uvicorn)."""
    import uvicorn

    from .observability import configure_logging

    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(
        "checkstack_core.app:_factory",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@cli.command(epilog=_settings_epilog())
@click.option(
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Jobs and events run at once.",
)
@click.option(
    "--health-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Touch this file every 5 s while working (for container health checks).",
)
def worker(concurrency: int, health_file: Path | None) -> None:
    """Run jobs and work-queue events of a distributed engine (e.g. procrastinate) until
    SIGTERM; serving processes then only serve requests."""
    from .host import Host
    from .observability import configure_logging
    from .workers import NoWorkerEngine, run_worker

    settings = Settings.load()
    configure_logging(settings.log_level, settings.log_format)
    try:
        run(run_worker(Host(settings), concurrency=concurrency, health_file=health_file))
    except NoWorkerEngine as exc:
        raise click.ClickException(str(exc)) from None


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/plugins).")
def plugins_command(as_json: bool) -> None:
    """List discovered plugins: version, status, error, procedures and their access rules."""
    from .host import Host
    from .loader import PluginLoadError

    settings = Settings.load()
    # The report below says what failed and why; the loader's log lines would repeat it.
    logging.getLogger("checkstack.plugins").setLevel(logging.CRITICAL)
    strict_failure: PluginLoadError | None = None
    try:
        host = Host(settings)
        records = list(host.plugins.values())
    except PluginLoadError as exc:
        strict_failure = exc
        settings.strict_plugins = False
        records = list(Host(settings).plugins.values())
    if as_json:
        click.echo(json.dumps({"plugins": [r.describe() for r in records]}, indent=2))
    else:
        for record in records:
            info = record.describe()
            version = f" {info['version']}" if info["version"] else ""
            click.echo(f"{record.id} ({info['distribution']}{version}) [{record.status}]")
            if record.error:
                click.echo(f"  error: {record.error}")
            for proc in info["procedures"]:
                rules = ", ".join(proc["rules"]) or "no rule"
                click.echo(f"  {proc['name']} ({proc['kind']}, {proc['caller']}): {rules}")
    if strict_failure is not None:
        click.echo(str(strict_failure), err=True)
        sys.exit(1)


@cli.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Upgrade every plugin's tables to its newest revision."""
    from . import migrations
    from .host import Host

    async def upgrade() -> dict[str, list[str]]:
        host = Host(Settings.load())
        try:
            return await migrations.upgrade(host.db, [r.plugin for r in host.active() if r.plugin])
        finally:
            await host.db.dispose()

    try:
        applied = run(upgrade())
    except Exception as exc:
        raise click.ClickException(f"Upgrade failed: {migrations.describe_error(exc)}") from exc
    for plugin_id, revisions in applied.items():
        state = ", ".join(revisions) if revisions else "up to date"
        click.echo(f"{plugin_id}: {state}")


@db.command("revision")
@click.argument("plugin_id")
@click.option("-m", "--message", required=True, help="What the revision changes.")
def db_revision(plugin_id: str, message: str) -> None:
    """Write a new migration for PLUGIN_ID from its models (autogenerate)."""
    from . import migrations
    from .host import Host

    async def generate() -> Any:
        host = Host(Settings.load())
        try:
            record = host.plugins.get(plugin_id)
            if record is None or record.plugin is None:
                raise click.ClickException(f"Plugin not found: {plugin_id}")
            await migrations.upgrade(host.db, [record.plugin])
            return await migrations.autogenerate(host.db, record.plugin, message)
        finally:
            await host.db.dispose()

    click.echo(f"Wrote {run(generate())}")


@cli.group()
def new() -> None:
    """Start something new from a template."""


@new.command("plugin")
@click.argument("plugin_id", metavar="NAME")
@click.option(
    "--directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write it (new or empty; default ./checkstack-NAME).",
)
@click.option("--description", default=None, help="One line saying what the plugin does.")
def new_plugin(plugin_id: str, directory: Path | None, description: str | None) -> None:
    """Write a complete plugin distribution NAME: pyproject.toml with the entry point, contract,
    models, service, handlers, a first migration, tests on the core's fixtures and a README."""
    from .scaffold import ScaffoldError, names_for, scaffold

    try:
        target = directory or Path(names_for(plugin_id).dist)
        files = scaffold(plugin_id, target, description=description)
    except ScaffoldError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote plugin {plugin_id} to {target}:")
    for path in files:
        click.echo(f"  {path}")
    click.echo(
        "\nNext:\n"
        f"  cd {target}\n"
        '  pip install -e ".[test]"   # or: uv sync --extra test (uv run pytest, ...)\n'
        "  pytest\n"
        "  checkstack serve"
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="checkstack")


CommandFactory = Callable[[click.Group], None]
