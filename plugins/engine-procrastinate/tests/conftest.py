"""Fixtures of the engine's tests.

``engines`` builds "processes" (an event bus and a job scheduler sharing what a real process
shares) of the engine the test is parametrised with: ``embedded`` (the core's, in memory; its
buses are peers on one broker, like processes) or ``procrastinate`` (on a fresh PostgreSQL
database, each process with its own pool, LISTEN connection and worker). The procrastinate
runs need ``CHECKSTACK_TEST_DATABASE_URL`` (PostgreSQL) and are skipped without it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from checkstack_core.events import EmbeddedEventBus, EventBus
from checkstack_core.jobs import EmbeddedJobScheduler, JobScheduler

#: Fast settings for tests: a dead worker's jobs move on within about 3 s.
FAST = {
    "heartbeat_interval": 0.5,
    "stalled_after": 2.0,
    "recovery_interval": 0.5,
    "poll_interval": 1.0,
    "shutdown_timeout": 1.0,
    "retry_base_delay": 0.05,
    "retry_max_delay": 1.0,
}


def postgresql_url(base_url: str | None) -> str:
    if not base_url or make_url(base_url).get_backend_name() != "postgresql":
        pytest.skip(
            "the procrastinate engine runs on PostgreSQL only (set CHECKSTACK_TEST_DATABASE_URL)"
        )
    return base_url


@dataclass
class Process:
    """One process's engines."""

    jobs: JobScheduler
    events: EventBus
    runtime: Any = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None

    async def start(self, *, work: bool = True, concurrency: int = 8) -> Process:
        await self.events.start()
        await self.jobs.start()
        if self.runtime is not None and work:
            self.worker = asyncio.create_task(
                self.runtime.run_worker(concurrency=concurrency, stop=self.stop)
            )
        return self

    async def close(self) -> None:
        self.stop.set()
        if self.worker is not None:
            await asyncio.gather(self.worker, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.jobs.stop()
        with contextlib.suppress(Exception):
            await self.events.stop()


class Engines:
    def __init__(self, kind: str, database_url: str | None) -> None:
        self.kind = kind
        self.database_url = database_url
        self.processes: list[Process] = []
        self._first_bus: EmbeddedEventBus | None = None

    def process(self, **settings: Any) -> Process:
        if self.kind == "embedded":
            if self._first_bus is None:
                bus = self._first_bus = EmbeddedEventBus(retry_base_delay=0.05, shutdown_timeout=1)
            else:
                bus = self._first_bus.peer()
            jobs = EmbeddedJobScheduler(retry_base_delay=0.05, shutdown_timeout=1)
            process = Process(jobs, bus)
        else:
            from checkstack_procrastinate.config import EngineSettings
            from checkstack_procrastinate.events import ProcrastinateEventBus
            from checkstack_procrastinate.runtime import Runtime
            from checkstack_procrastinate.scheduler import ProcrastinateJobScheduler

            assert self.database_url is not None
            runtime = Runtime(self.database_url, EngineSettings.load({**FAST, **settings}, env={}))
            process = Process(
                ProcrastinateJobScheduler(runtime), ProcrastinateEventBus(runtime), runtime
            )
        self.processes.append(process)
        return process

    async def close(self) -> None:
        for process in reversed(self.processes):
            await process.close()


@contextlib.asynccontextmanager
async def engine_database(base_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the engine's schema."""
    from checkstack_procrastinate import plugin

    from checkstack_core import migrations
    from checkstack_core.db import Database
    from checkstack_core.testing.database import temporary_database

    async with temporary_database(base_url, tmp_path) as url:
        db = Database(url)
        try:
            await migrations.upgrade(db, [plugin])
        finally:
            await db.dispose()
        yield url


@pytest.fixture(params=["embedded", "procrastinate"])
async def engines(
    request: pytest.FixtureRequest, checkstack_database_base_url: str | None, tmp_path: Path
) -> AsyncIterator[Engines]:
    if request.param == "embedded":
        kit = Engines("embedded", None)
        try:
            yield kit
        finally:
            await kit.close()
        return
    base = postgresql_url(checkstack_database_base_url)
    async with engine_database(base, tmp_path) as url:
        kit = Engines("procrastinate", url)
        try:
            yield kit
        finally:
            await kit.close()


@pytest.fixture
async def pg_engines(
    checkstack_database_base_url: str | None, tmp_path: Path
) -> AsyncIterator[Engines]:
    """Only the procrastinate engine (what the embedded one does not promise)."""
    base = postgresql_url(checkstack_database_base_url)
    async with engine_database(base, tmp_path) as url:
        kit = Engines("procrastinate", url)
        try:
            yield kit
        finally:
            await kit.close()


@pytest.fixture
async def engine_database_url(
    checkstack_database_base_url: str | None, tmp_path: Path
) -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the engine's schema (skips without PostgreSQL)."""
    base = postgresql_url(checkstack_database_base_url)
    async with engine_database(base, tmp_path) as url:
        yield url
