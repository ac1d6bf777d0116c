"""``checkstack worker`` and the engines in ``/readyz`` (the distributed engine's own tests are in
``plugins/engine-procrastinate/tests``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from checkstack_core.cli import cli
from checkstack_core.host import Host
from checkstack_core.settings import Settings
from checkstack_core.workers import (
    NoWorkerEngine,
    run_worker,
    runs_background_work,
    worker_engines,
)


def test_worker_refuses_the_embedded_engines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHECKSTACK_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.setenv("CHECKSTACK_PLUGINS", "hello")
    result = CliRunner().invoke(cli, ["worker", "--concurrency", "2"])
    assert result.exit_code == 1
    assert "CHECKSTACK_JOBS_ENGINE=embedded" in result.output
    assert "run inside every checkstack serve process" in result.output
    assert "--concurrency" in CliRunner().invoke(cli, ["worker", "--help"]).output


async def test_run_worker_runs_the_worker_engines_until_stopped(tmp_path: Path) -> None:
    calls: list[tuple[int, bool]] = []

    class Engine:
        """A stand-in distributed engine (as both event bus and job scheduler)."""

        async def start(self) -> None: ...

        async def stop(self) -> None: ...

        async def run_worker(self, *, concurrency: int, stop: asyncio.Event) -> None:
            await stop.wait()
            calls.append((concurrency, stop.is_set()))

    host = Host(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"), discover_installed=False
    )
    engine = Engine()
    original = host._choose_engines

    def choose() -> None:
        original()
        host.jobs = host.events = engine  # type: ignore[assignment]

    host._choose_engines = choose  # type: ignore[method-assign]
    stop = asyncio.Event()
    health = tmp_path / "alive"
    task = asyncio.create_task(run_worker(host, concurrency=3, stop=stop, health_file=health))
    async with asyncio.timeout(30):
        while not (host.running and health.exists()):  # noqa: ASYNC110  (polled with a deadline)
            await asyncio.sleep(0.01)
    assert worker_engines(host) == [engine]  # one object serving as both engines runs once
    assert host.worker and runs_background_work(host)
    host.worker = False  # what a serving process on this engine is: it runs no background work
    assert not runs_background_work(host)
    host.worker = True
    stop.set()
    await task
    assert calls == [(3, True)]
    assert not host.running
    assert not health.exists()


async def test_run_worker_without_a_worker_engine_stops_the_host(tmp_path: Path) -> None:
    host = Host(
        Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"), discover_installed=False
    )
    with pytest.raises(NoWorkerEngine):
        await run_worker(host, concurrency=1)
    assert not host.running


async def test_readyz_names_the_engines(checkstack_http: Any) -> None:
    body = (await checkstack_http.get("/readyz")).json()
    assert body["engines"] == {"events": {"engine": "embedded"}, "jobs": {"engine": "embedded"}}
