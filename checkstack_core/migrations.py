"""Per-plugin Alembic migrations (SPEC §7).

Each plugin owns a ``migrations/`` folder of Alembic revisions and its own version table
``<pluginId>_alembic_version``, so plugins are independent: installing one adds its history,
uninstalling one leaves the others' untouched (a shared version table would then name a revision
nobody can locate). Upgrades run in dependency order under a PostgreSQL advisory lock, so several
processes starting at once upgrade exactly once.
"""

from __future__ import annotations

import ast
import asyncio
import fcntl
import logging
import re
import zlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import inspect, literal, select, text, union_all
from sqlalchemy.engine import Connection, make_url
from sqlmodel import SQLModel

from .db import Database

if TYPE_CHECKING:
    from alembic.config import Config

    from .plugin import Plugin

logger = logging.getLogger("checkstack.migrations")
TEMPLATE_DIR = Path(__file__).parent / "alembic"
_LOCK_KEY = zlib.crc32(b"checkstack.migrations")


def version_table(plugin_id: str) -> str:
    return f"{plugin_id.replace('-', '_')}_alembic_version"


def _config(plugin: Plugin) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(TEMPLATE_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(plugin.migrations_path))
    return config


def _plugin_tables(plugin: Plugin) -> set[str]:
    return {model.__table__.name for model in plugin.models if hasattr(model, "__table__")}


class MigrationError(RuntimeError):
    """A plugin's revision raised: the message names the revision file and line."""


def describe_error(exc: BaseException) -> str:
    """``Type: message`` of a failed upgrade, with the revision file and line when known."""
    return str(exc) if isinstance(exc, MigrationError) else f"{type(exc).__name__}: {exc}"


def _where(exc: BaseException, folder: Path) -> str:
    """`` (file:line)`` of the innermost frame under ``folder``, or ``""``."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    root = str(folder.resolve())
    inside = [f for f in frames if str(Path(f.filename).resolve()).startswith(root)]
    return f" ({inside[-1].filename}:{inside[-1].lineno})" if inside else ""


def _upgrade_plugin(connection: Connection, plugin: Plugin, target: str = "heads") -> list[str]:
    try:
        return _run_upgrade(connection, plugin, target)
    except Exception as exc:
        assert plugin.migrations_path is not None
        where = _where(exc, plugin.migrations_path)
        if not where:
            raise
        raise MigrationError(f"{type(exc).__name__}: {exc}{where}") from exc


def _run_upgrade(connection: Connection, plugin: Plugin, target: str) -> list[str]:
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    config = _config(plugin)
    script = ScriptDirectory.from_config(config)
    applied: list[str] = []

    def upgrade(revision: Any, context: Any) -> Any:
        steps = script._upgrade_revs(target, revision)
        applied.extend(step.revision.revision for step in steps)
        return steps

    with EnvironmentContext(
        config, script, fn=upgrade, destination_rev=target, as_sql=False
    ) as env:
        env.configure(
            connection=connection,
            target_metadata=SQLModel.metadata,
            version_table=version_table(plugin.id),
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with env.begin_transaction():
            env.run_migrations()
    return applied


def _upgrade_all(connection: Connection, plugins: Iterable[Plugin]) -> dict[str, list[str]]:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    done: dict[str, list[str]] = {}
    for plugin in plugins:
        if plugin.migrations_path is None:
            continue
        applied = _upgrade_plugin(connection, plugin)
        if applied:
            logger.info("Migrated plugin %s: %s", plugin.id, ", ".join(applied))
        done[plugin.id] = applied
    return done


@asynccontextmanager
async def _sqlite_file_lock(db: Database) -> AsyncIterator[None]:
    """Serialise upgrades of one SQLite file across processes (``--workers`` on a fresh file).

    PostgreSQL gets an advisory lock inside the migration transaction instead.
    """
    database = make_url(db.url).database
    if db.dialect != "sqlite" or not database or database == ":memory:":
        yield
        return
    lock_path = Path(f"{database}.migrate-lock")
    with open(lock_path, "a+b") as handle:  # noqa: ASYNC230  (a tiny local file, opened once)
        await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# Module-level ``revision = "..."`` and ``down_revision = None | "..." | ("...", ...)``, with an
# optional annotation: what every revision Alembic writes (and ours) declares.
_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _declared(pattern: re.Pattern[str], source: str) -> set[str] | None:
    """The revision ids one assignment names, or ``None`` when it is not a plain literal."""
    found = pattern.findall(source)
    if len(found) != 1:
        return None
    try:
        value = ast.literal_eval(found[0])
    except (ValueError, SyntaxError):
        return None
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
        return set(value)
    return None


def _heads_from_files(folder: Path) -> set[str] | None:
    """The newest revisions of one plugin, read from its revision files without Alembic.

    ``None`` when any file says something this reading cannot be sure of (a computed revision
    id, no id at all, a cycle): the caller then asks Alembic, which knows every case.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in folder.glob("*.py"):
        if path.name.startswith("_"):
            continue
        source = path.read_text(encoding="utf-8")
        revision = _declared(_REVISION, source)
        down = _declared(_DOWN_REVISION, source)
        if revision is None or down is None or len(revision) != 1:
            return None
        revisions |= revision
        parents |= down
    heads = revisions - parents
    return heads if heads or not revisions else None  # no head at all: a cycle


def _all_at_head(connection: Connection, plugins: list[Plugin]) -> bool:
    """True when every plugin's version table already names exactly its newest revisions."""
    wanted: dict[str, set[str]] = {}
    for plugin in plugins:
        if plugin.migrations_path is None:
            continue
        heads = _heads_from_files(plugin.migrations_path)
        if heads is None:
            return False
        if not heads:
            continue  # no revision yet: nothing to apply
        wanted[version_table(plugin.id)] = heads
    if not wanted:
        return True
    if not set(wanted) <= set(inspect(connection).get_table_names()):
        return False
    rows = connection.execute(
        union_all(
            *(
                select(literal(table).label("version_table"), text("version_num")).select_from(
                    text(table)
                )
                for table in wanted
            )
        )
    ).all()
    found: dict[str, set[str]] = {table: set() for table in wanted}
    for table, version in rows:
        found[table].add(version)
    return found == wanted


async def upgrade(db: Database, plugins: Iterable[Plugin]) -> dict[str, list[str]]:
    """Bring every plugin's tables to its newest revision; returns the revisions applied.

    A start on an up-to-date database (the usual restart) only reads the version tables: Alembic
    is imported and run, under the lock, only when some plugin has a revision to apply.
    """
    plugins = list(plugins)
    async with db.engine.connect() as conn:
        if await conn.run_sync(_all_at_head, plugins):
            return {plugin.id: [] for plugin in plugins if plugin.migrations_path is not None}
    async with _sqlite_file_lock(db), db.write_engine.begin() as conn:
        return await conn.run_sync(_upgrade_all, plugins)


async def current(db: Database, plugin: Plugin) -> str | None:
    """The revision ``plugin``'s tables are at (``None`` before its first migration)."""
    table = version_table(plugin.id)

    def read(connection: Connection) -> str | None:
        if not inspect(connection).has_table(table):
            return None
        row = connection.execute(text(f"SELECT version_num FROM {table}")).first()
        return row[0] if row else None

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


async def autogenerate(db: Database, plugin: Plugin, message: str) -> Path:
    """Write a new revision for ``plugin`` from the difference between its models and the database.

    Only the plugin's own tables are compared, so other plugins' tables never leak into it. The
    database should be at the plugin's newest revision (run ``checkstack db upgrade`` first).
    """
    import uuid

    from alembic.autogenerate import produce_migrations, render_python_code
    from alembic.runtime.migration import MigrationContext

    if plugin.migrations_path is None:
        raise ValueError(f"Plugin {plugin.id} declares no migrations folder")
    from alembic.script import ScriptDirectory

    plugin.migrations_path.mkdir(parents=True, exist_ok=True)
    script = ScriptDirectory.from_config(_config(plugin))
    heads = script.get_heads()
    owned = _plugin_tables(plugin)

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            return name in owned
        table = getattr(obj, "table", None)
        return getattr(table, "name", None) in owned

    imports: set[str] = set()

    def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
        # Alembic renders a type from outside SQLAlchemy (checkstack_core.db.UtcDateTime,
        # sqlmodel's AutoString) by its module path without importing the module: the revision
        # would fail with a NameError. Name the module in full and import it.
        module = type(obj).__module__
        if type_ != "type" or module.startswith("sqlalchemy.") or module == "builtins":
            return False
        imports.add(f"import {module}")
        return f"{module}.{obj!r}"

    def diff(connection: Connection) -> tuple[str, str]:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_object": include,
                "render_as_batch": True,
                "version_table": version_table(plugin.id),
                "target_metadata": SQLModel.metadata,
            },
        )
        ops = produce_migrations(context, SQLModel.metadata)
        options: dict[str, Any] = {"render_as_batch": True, "render_item": render_item}
        return (
            render_python_code(ops.upgrade_ops, **options),  # type: ignore[arg-type]
            render_python_code(ops.downgrade_ops, **options),  # type: ignore[arg-type]
        )

    async with db.engine.connect() as conn:
        upgrades, downgrades = await conn.run_sync(diff)
    revision = script.generate_revision(
        uuid.uuid4().hex[:12],
        message,
        head=heads[0] if heads else "base",
        branch_labels=None if heads else [plugin.id],
        upgrades=upgrades,
        downgrades=downgrades,
        imports="\n".join(sorted(imports)),
    )
    assert revision is not None
    return Path(revision.path)
