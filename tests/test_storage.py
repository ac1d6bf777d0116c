"""Storage: database URLs, SQLite pragmas, per-plugin migrations and the ``db`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fake_distributions import make_distribution
from sqlalchemy import inspect, text

from checkstack_core import migrations
from checkstack_core.db import Database, normalize_url, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p@h/d", "postgresql+asyncpg://u:p@h/d"),
        ("postgresql+asyncpg://h/d", "postgresql+asyncpg://h/d"),
    ],
)
def test_urls_get_an_async_driver(url, expected):
    assert normalize_url(url) == expected


def test_unsupported_databases_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="Unsupported database URL scheme 'mysql'"):
        normalize_url("mysql://localhost/x")


def test_passwords_never_reach_logs_or_reprs():
    url = "postgresql+asyncpg://checkstack:s3cr3t@db/checkstack"
    assert "s3cr3t" not in redact_url(url)
    assert "s3cr3t" not in repr(Database(url))


async def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        async with db.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await db.dispose()


async def test_each_plugin_has_its_own_version_table(checkstack_host):
    def tables(connection):
        return set(inspect(connection).get_table_names())

    async with checkstack_host.db.engine.connect() as conn:
        names = await conn.run_sync(tables)
    assert {
        "hello_greeting",
        "hello_alembic_version",
        "notes_note",
        "notes_alembic_version",
    } <= names
    hello = checkstack_host.plugins["hello"].plugin
    assert await migrations.current(checkstack_host.db, hello) == "hello_0002"


async def test_upgrading_again_changes_nothing_and_keeps_data(
    checkstack_host, checkstack_client, checkstack_auth
):
    admin = checkstack_client(checkstack_auth.admin())
    await admin.call("hello", "setGreeting", {"template": "Kept {name}"})
    plugins = [r.plugin for r in checkstack_host.active() if r.plugin]
    applied = await migrations.upgrade(checkstack_host.db, plugins)
    assert applied == {"hello": [], "notes": []}
    assert await admin.call("hello", "getGreeting", {}) == {"message": "Kept world"}


async def test_a_database_behind_by_one_revision_is_upgraded(checkstack_host):
    """The start-up shortcut (version rows read without Alembic) sees a pending revision."""
    hello = checkstack_host.plugins["hello"].plugin
    plugins = [r.plugin for r in checkstack_host.active() if r.plugin]
    async with checkstack_host.db.write_engine.begin() as conn:
        await conn.execute(text("UPDATE hello_alembic_version SET version_num = 'hello_0001'"))
    applied = await migrations.upgrade(checkstack_host.db, plugins)
    assert applied == {"hello": ["hello_0002"], "notes": []}
    assert await migrations.current(checkstack_host.db, hello) == "hello_0002"


def _revision(folder: Path, name: str, revision: str, down: str) -> None:
    (folder / f"{name}.py").write_text(
        f'"""{name}"""\nfrom alembic import op\n\n'
        f"revision: str = {revision}\ndown_revision: str | None = {down}\n"
        "branch_labels = None\n\n\ndef upgrade() -> None:\n    pass\n"
    )


def test_heads_are_read_from_revision_files(tmp_path):
    _revision(tmp_path, "0001", "'a'", "None")
    _revision(tmp_path, "0002", '"b"', "'a'")
    _revision(tmp_path, "0003", "'c'", "'a'")  # a second branch from a
    (tmp_path / "__init__.py").write_text("revision = 'not a revision file'\n")
    assert migrations._heads_from_files(tmp_path) == {"b", "c"}
    _revision(tmp_path, "0004", "'d'", "('b', 'c')")  # the merge
    assert migrations._heads_from_files(tmp_path) == {"d"}


@pytest.mark.parametrize(
    ("revision", "down"),
    [
        ("make_id()", "None"),  # computed: only Alembic can tell
        ("'x'", "PARENT"),
        ("'x'", "'x'"),  # its own parent: no head at all
    ],
)
def test_revision_files_the_shortcut_cannot_read_leave_it_to_alembic(tmp_path, revision, down):
    _revision(tmp_path, "0001", revision, down)
    assert migrations._heads_from_files(tmp_path) is None


def test_a_folder_without_revisions_has_no_heads(tmp_path):
    assert migrations._heads_from_files(tmp_path) == set()


def _run(
    args: list[str], database_url: str, cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "CHECKSTACK_DATABASE_URL": database_url,
        "CHECKSTACK_PLUGINS": "hello",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "checkstack_core", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.e2e
def test_db_upgrade_command(tmp_path, checkstack_database_url):
    first = _run(["db", "upgrade"], checkstack_database_url, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "hello: hello_0001, hello_0002" in first.stdout
    second = _run(["db", "upgrade"], checkstack_database_url, tmp_path)
    assert "hello: up to date" in second.stdout


@pytest.mark.e2e
def test_db_revision_autogenerates_only_the_plugins_own_tables(tmp_path, checkstack_database_url):
    package = tmp_path / "site" / "fake_widgets"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from datetime import datetime\n"
        "from pathlib import Path\n"
        "from sqlmodel import Field, SQLModel\n"
        "from checkstack_core import Plugin\n"
        "from checkstack_core.db import UtcDateTime, utcnow\n"
        "class Widget(SQLModel, table=True):\n"
        "    __tablename__ = 'widgets_widget'\n"
        "    id: int = Field(primary_key=True)\n"
        "    name: str = Field(max_length=80)\n"
        "    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)\n"
        "plugin = Plugin(id='widgets', name='Widgets', models=[Widget],\n"
        "                migrations=Path(__file__).parent / 'migrations')\n"
    )
    info = tmp_path / "site" / "checkstack_widgets-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: checkstack-widgets\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text("[checkstack.plugins]\nwidgets = fake_widgets:plugin\n")
    env = {"PYTHONPATH": str(tmp_path / "site"), "CHECKSTACK_PLUGINS": "hello,widgets"}
    # The hello plugin's tables exist in the database too; they must not leak into the revision.
    assert _run(["db", "upgrade"], checkstack_database_url, tmp_path, **env).returncode == 0
    made = _run(
        ["db", "revision", "widgets", "-m", "create widgets"],
        checkstack_database_url,
        tmp_path,
        **env,
    )
    assert made.returncode == 0, made.stderr
    [revision] = list((package / "migrations").glob("*.py"))
    source = revision.read_text()
    assert "widgets_widget" in source and "hello_greeting" not in source
    assert "branch_labels" in source and "'widgets'" in source
    # The core's column type is rendered with its import, so the revision runs as written.
    assert "import checkstack_core.db" in source
    assert "checkstack_core.db.UtcDateTime(" in source
    applied = _run(["db", "upgrade"], checkstack_database_url, tmp_path, **env)
    assert applied.returncode == 0, applied.stderr
    assert (
        "widgets: " in applied.stdout and "up to date" not in applied.stdout.split("widgets: ")[1]
    )
    assert (
        "widgets: up to date"
        in _run(["db", "upgrade"], checkstack_database_url, tmp_path, **env).stdout
    )


@pytest.mark.e2e
def test_a_failing_revision_is_reported_with_its_file_and_line(tmp_path, checkstack_database_url):
    make_distribution(
        tmp_path / "site",
        "broken",
        "from pathlib import Path\n"
        "from checkstack_core import Plugin\n"
        "plugin = Plugin(id='broken', name='Broken',\n"
        "                migrations=Path(__file__).parent / 'migrations')\n",
    )
    revision = tmp_path / "site" / "fake_broken" / "migrations" / "0001_first.py"
    revision.parent.mkdir()
    revision.write_text(
        "revision = 'broken_0001'\n"
        "down_revision = None\n"
        "branch_labels = ('broken',)\n"
        "depends_on = None\n"
        "\n"
        "def upgrade():\n"
        "    checkstack_core.db.UtcDateTime()\n"
        "\n"
        "def downgrade():\n"
        "    pass\n"
    )
    env = {"PYTHONPATH": str(tmp_path / "site"), "CHECKSTACK_PLUGINS": "broken"}
    failed = _run(["db", "upgrade"], checkstack_database_url, tmp_path, **env)
    assert failed.returncode != 0
    assert "NameError: name 'checkstack_core' is not defined" in failed.stderr, failed.stderr
    assert f"({revision}:7)" in failed.stderr, failed.stderr


async def test_utc_datetimes_round_trip_aware_on_every_database(checkstack_host):
    from datetime import UTC, datetime, timedelta, timezone

    from checkstack_hello.models import GreetingTemplate

    from checkstack_core.db import UtcDateTime

    paris = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    async with checkstack_host.db.session() as session:
        row = await session.get(GreetingTemplate, 1)
        assert row is not None  # seeded by the hello plugin's second migration
        row.updated_at = paris
        session.add(row)
        await session.commit()
    async with checkstack_host.db.session() as session:
        row = await session.get(GreetingTemplate, 1)
        assert row is not None
        assert row.updated_at == datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
        assert row.updated_at.tzinfo is UTC
    with pytest.raises(ValueError, match="Naive datetime"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), None)


async def test_utc_datetimes_read_through_core_selects_whoever_wrote_them(checkstack_host):
    """Core selects (the list procedures' path) parse what the ORM, a migration's raw SQL
    (with or without an offset, with or without fractions) and NULL left behind."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from checkstack_core.db import UtcDateTime

    table = sa.Table(
        "t_when",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UtcDateTime),
    )
    stored = {
        1: datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        2: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        3: None,
    }
    async with checkstack_host.db.write_engine.begin() as conn:
        await conn.run_sync(table.metadata.create_all)
        for id, at in stored.items():
            await conn.execute(table.insert().values(id=id, at=at))
        await conn.execute(sa.text("INSERT INTO t_when VALUES (4, '2026-01-02 03:04:05')"))
        await conn.execute(sa.text("INSERT INTO t_when VALUES (5, '2026-01-02 05:04:05.25+02:00')"))
    try:
        async with checkstack_host.db.engine.connect() as conn:
            rows = dict((await conn.execute(sa.select(table).order_by(table.c.id))).all())
    finally:
        async with checkstack_host.db.write_engine.begin() as conn:
            await conn.run_sync(table.metadata.drop_all)
    assert rows == {
        **stored,
        4: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        5: datetime(2026, 1, 2, 3, 4, 5, 250000, tzinfo=UTC),
    }
    assert all(at.tzinfo is UTC for at in rows.values() if at is not None)


@pytest.mark.e2e
def test_concurrent_first_starts_on_one_sqlite_file_migrate_once(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "checkstack_core", "db", "upgrade"],
            env={**os.environ, "CHECKSTACK_DATABASE_URL": url, "CHECKSTACK_PLUGINS": "hello"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    applied = [out for out, _ in outputs if "hello: hello_0001, hello_0002" in out]
    assert len(applied) == 1, outputs
