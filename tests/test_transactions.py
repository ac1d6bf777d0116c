"""Transactions are what the code assumes, on SQLite too: writers are isolated from each other,
migrations are atomic, and a first start killed at any moment completes on the next start."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from checkstack_core.db import Database
from checkstack_core.testing.server import RunningServer


def _sqlite_only(url: str) -> None:
    if not url.startswith("sqlite"):
        pytest.skip("this is about SQLite's transactions")


async def test_read_then_write_mutations_do_not_lose_updates_on_sqlite(checkstack_database_url):
    _sqlite_only(checkstack_database_url)
    db = Database(checkstack_database_url)
    try:
        async with db.session() as session:
            await (await session.connection()).execute(
                text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
            )
            await (await session.connection()).execute(text("INSERT INTO counter VALUES (1, 0)"))
            await session.commit()

        async def increment() -> None:
            async with db.session() as session:
                n = (
                    await (await session.connection()).execute(
                        text("SELECT n FROM counter WHERE id = 1")
                    )
                ).scalar()
                await asyncio.sleep(0.005)  # let the others read too, were they able to
                await (await session.connection()).execute(
                    text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1}
                )
                await session.commit()

        await asyncio.gather(*(increment() for _ in range(20)))
        async with db.session(read_only=True) as session:
            assert (
                await (await session.connection()).execute(text("SELECT n FROM counter"))
            ).scalar() == 20
    finally:
        await db.dispose()


async def test_read_only_sessions_see_each_commit_and_hold_no_lock(checkstack_database_url):
    db = Database(checkstack_database_url)
    try:
        async with db.session() as session:
            await (await session.connection()).execute(
                text("CREATE TABLE seen (id INTEGER PRIMARY KEY)")
            )
            await session.commit()
        async with db.session(read_only=True) as reader:
            assert (
                await (await reader.connection()).execute(text("SELECT count(*) FROM seen"))
            ).scalar() == 0
            # A writer commits while the reader's session is open: no lock stands in its way...
            async with db.session() as writer:
                await (await writer.connection()).execute(text("INSERT INTO seen VALUES (1)"))
                await asyncio.wait_for(writer.commit(), timeout=5)
            # ...and the reader's next statement sees it (no snapshot held across statements).
            assert (
                await (await reader.connection()).execute(text("SELECT count(*) FROM seen"))
            ).scalar() == 1
    finally:
        await db.dispose()


async def test_a_failing_migration_leaves_nothing_behind(checkstack_database_url, tmp_path):
    from checkstack_core import migrations
    from checkstack_core.plugin import Plugin

    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_half.py").write_text(
        '"""Creates a table, then fails."""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        'revision = "half_0001"\n'
        "down_revision = None\n"
        'branch_labels = ("half",)\n'
        "depends_on = None\n\n"
        "def upgrade():\n"
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    raise RuntimeError("interrupted")\n\n'
        "def downgrade():\n"
        "    pass\n"
    )
    plugin = Plugin(id="half", name="Half", migrations=folder)
    db = Database(checkstack_database_url)
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            await migrations.upgrade(db, [plugin])
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(
                lambda sync: set(__import__("sqlalchemy").inspect(sync).get_table_names())
            )
        assert "half_done" not in tables
        assert migrations.version_table("half") not in tables
    finally:
        await db.dispose()


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            return True
        time.sleep(0.005)
    return False


@pytest.mark.e2e
def test_a_first_start_killed_at_any_moment_completes_on_the_next(
    checkstack_database_url, tmp_path
):
    _sqlite_only(checkstack_database_url)
    rounds = int(os.environ.get("CHECKSTACK_KILL_ROUNDS", "3"))
    rng = random.Random(1234)
    env = {"CHECKSTACK_STRICT_PLUGINS": "1", "CHECKSTACK_LOG_LEVEL": "WARNING"}
    for round_number in range(rounds):
        workdir = tmp_path / f"round{round_number}"
        workdir.mkdir()
        database = workdir / "first-start.db"
        url = f"sqlite+aiosqlite:///{database}"
        server = RunningServer(url, workdir, env, startup_timeout=90)
        process = subprocess.Popen(
            server.command(),
            cwd=workdir,
            env={**os.environ, "CHECKSTACK_DATABASE_URL": url, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            # The file appears when the first connection opens, just before the migrations run;
            # kill somewhere in the next moments (spread over the rounds, from 0 ms on).
            assert _wait_for_file(database, process, 60), "the server never opened its database"
            time.sleep(rng.uniform(0, 0.6) * (round_number + 1) / rounds)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait()
        restarted = server.start()
        try:
            ready = httpx.get(f"{restarted.url}/readyz", timeout=5).json()
            assert ready["plugins"]["failed"] == []
            assert {"auth", "catalog", "incident", "maintenance", "hello"} <= set(
                ready["plugins"]["active"]
            )
            answer = httpx.post(
                f"{restarted.url}/api/catalog/", json={"getSystems": {}}, timeout=10
            )
            assert answer.status_code == 200, answer.text
        finally:
            restarted.stop()


async def test_a_connection_killed_under_the_pool_answers_503_then_recovers(
    checkstack_database_url,
):
    if not checkstack_database_url.startswith("postgresql"):
        pytest.skip("killing a server-side session needs PostgreSQL")
    from checkstack_hello import plugin as hello

    from checkstack_core.app import create_app
    from checkstack_core.host import Host
    from checkstack_core.settings import Settings

    host = Host(
        Settings(database_url=checkstack_database_url, db_pool_size=1),
        plugins=[hello],
        discover_installed=False,
    )
    await host.start()
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        body = {"getGreeting": {"name": "x"}}
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.post("/api/hello/", json=body)).status_code == 200
            # Another session ends every other connection to this database (a restart, as the
            # pooled connection sees it).
            outside = create_async_engine(checkstack_database_url, poolclass=NullPool)
            try:
                async with outside.connect() as killer:
                    ended = await killer.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                    assert any(ended.scalars()), "no pooled connection to end"
            finally:
                await outside.dispose()
            await asyncio.sleep(0.5)  # let the server finish ending them
            lost = await client.post("/api/hello/", json=body)
            assert lost.status_code == 503, lost.text
            assert lost.headers["retry-after"] == "1"
            assert (await client.post("/api/hello/", json=body)).status_code == 200
    finally:
        await host.stop()
