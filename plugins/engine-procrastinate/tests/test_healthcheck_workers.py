"""The healthcheck scheduler under the procrastinate engine: ``checkstack worker`` processes share
the due checks (each claims its own), ``checkstack serve`` processes run none, and no slot runs
twice. Three hosts in this process stand for three processes on one database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec
import pytest
import sqlalchemy as sa
from checkstack_catalog import plugin as catalog
from checkstack_healthcheck import plugin as healthcheck
from checkstack_healthcheck.models import AssignmentRow, CheckRow, RunRow
from checkstack_healthcheck.strategy import CheckResult, Strategy
from checkstack_procrastinate import plugin as engine

from checkstack_core import Plugin, hookimpl
from checkstack_core.host import Host
from checkstack_core.settings import Settings
from checkstack_core.workers import runs_background_work

CHECKS = 60
#: Runs in flight per worker: a worker holds at most this many slots, so while it is busy the
#: other one's polls find the rest due (the share does not depend on which polls first).
SLOTS = 5


class SleepConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    ms: int


class Sleep(Strategy[SleepConfig]):
    id: ClassVar[str] = "sleep"
    display_name: ClassVar[str] = "Sleep (tests)"
    description: ClassVar[str] = "Healthy after sleeping ms milliseconds."
    config_type: ClassVar[type[msgspec.Struct]] = SleepConfig

    async def run(self, config: SleepConfig, deadline: float) -> CheckResult:
        await asyncio.sleep(config.ms / 1000)
        return CheckResult("healthy", latency_ms=config.ms, message="slept")


class hooks:
    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[Sleep]:
        return [Sleep()]


sleeper = Plugin(id="healthcheck-sleep", name="sleep", depends_on=["healthcheck"], hooks=hooks)


def host(url: str, engines: str, *, worker: bool) -> Host:
    settings = Settings(
        database_url=url,
        strict_plugins=True,
        secret_key="test-secret-key-for-the-engine-tests",
        events_engine=engines,
        jobs_engine=engines,
        plugin_settings={"healthcheck": {"poll_interval_seconds": 0.05, "max_concurrency": SLOTS}},
    )
    made = Host(settings, plugins=[engine, catalog, healthcheck, sleeper], discover_installed=False)
    made.worker = worker
    return made


def executor(made: Host) -> Any:
    return made.services["healthcheck.runtime"].executor


@pytest.fixture
async def hosts(engine_database_url: str) -> AsyncIterator[list[Host]]:
    """A serving host (migrates, seeds nothing), then two worker hosts."""
    started: list[Host] = []
    try:
        for worker in (False, True, True):
            made = host(engine_database_url, "procrastinate", worker=worker)
            await made.start()
            started.append(made)
        yield started
    finally:
        for made in reversed(started):
            await made.stop()


async def seed(made: Host, due_ms: int) -> None:
    """``CHECKS`` checks of 300 ms each, all due at ``due_ms``, every hour after that."""
    now = datetime.now(UTC)
    checks, assignments = [], []
    for i in range(CHECKS):
        check_id = str(uuid.uuid4())
        checks.append(
            {
                "id": check_id,
                "name": f"c{i}",
                "strategy_id": "sleep",
                "config": '{"ms": 300}',
                "interval_seconds": 3600,
                "timeout_seconds": 10.0,
                "paused": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        assignments.append(
            {
                "id": str(uuid.uuid4()),
                "check_id": check_id,
                "system_id": "s1",
                "enabled": True,
                "interval_ms": 3_600_000,
                "next_run_ms": due_ms,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with made.db.session() as session:
        conn = await session.connection()
        await conn.execute(sa.insert(CheckRow), checks)
        await conn.execute(sa.insert(AssignmentRow), assignments)
        await session.commit()


async def test_workers_share_the_checks_and_serving_processes_run_none(hosts: list[Host]) -> None:
    serving, *workers = hosts
    assert not runs_background_work(serving)
    assert executor(serving) is None  # the scheduler does not even start there
    assert all(runs_background_work(w) for w in workers)

    await seed(serving, int(time.time() * 1000))
    async with asyncio.timeout(30):
        while sum(executor(w).recorded for w in workers) < CHECKS:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    for w in workers:
        await executor(w).drain()

    started = [executor(w).started for w in workers]
    assert sum(started) == CHECKS, started
    # Each worker claimed at least one batch while the other was full.
    assert min(started) >= SLOTS, started
    async with serving.db.session() as session:
        conn = await session.connection()
        runs = RunRow.__table__  # type: ignore[attr-defined]
        counted = sa.select(runs.c.check_id, sa.func.count()).group_by(runs.c.check_id)
        per_check = (await conn.execute(counted)).all()
    assert len(per_check) == CHECKS
    assert {n for _, n in per_check} == {1}  # no slot ran twice


async def test_every_process_runs_checks_with_the_embedded_engine(
    engine_database_url: str,
) -> None:
    made = host(engine_database_url, "embedded", worker=False)
    await made.start()
    try:
        assert runs_background_work(made)
        assert executor(made) is not None
    finally:
        await made.stop()
