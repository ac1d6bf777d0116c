"""What the procrastinate engine promises beyond the embedded one: schedules in the database,
shared by processes and kept across restarts; selection by configuration; a clear refusal on
SQLite; its schema migrated like any plugin's."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from checkstack_procrastinate import plugin
from checkstack_procrastinate.config import EngineSettings, conninfo
from checkstack_procrastinate.events import ProcrastinateEventBus
from checkstack_procrastinate.scheduler import ProcrastinateJobScheduler
from checkstack_procrastinate.schema import unapplied_migrations

from checkstack_core import Context, Contract, EventType, JobRun, Plugin
from checkstack_core.events import DeliveryMode, Event, Subscription
from checkstack_core.host import Host
from checkstack_core.settings import Settings

if TYPE_CHECKING:
    from conftest import Engines

TICK = timedelta(seconds=0.3)
WQ = DeliveryMode.WORK_QUEUE


async def wait_until(predicate, within: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_two_processes_run_each_slot_once_and_share_schedules(pg_engines: Engines) -> None:
    runs: list[tuple[str, float, int]] = []

    def recorder(process: int):  # type: ignore[no-untyped-def]
        async def record(run: JobRun) -> None:
            runs.append((run.key, run.scheduled_for.timestamp(), process))
            await asyncio.sleep(0.05)

        return record

    first, second = pg_engines.process(), pg_engines.process()
    first.jobs.register("h.check", recorder(1), plugin_id="h")
    second.jobs.register("h.check", recorder(2), plugin_id="h")
    await first.start()
    await second.start()

    # Both processes schedule the same keys at startup, as plugins do: the keys stay one each.
    for process in (first, second):
        for key in ("a", "b", "c"):
            await process.jobs.schedule_interval("h.check", key=key, every=TICK)
    assert [j.key for j in await second.jobs.list()] == ["a", "b", "c"]
    await wait_until(lambda: all(sum(r[0] == k for r in runs) >= 8 for k in "abc"))
    for key in "abc":
        await first.jobs.cancel(key)

    counts = Counter((key, slot) for key, slot, _ in runs)
    assert max(counts.values()) == 1, "a slot ran twice"
    for key in "abc":
        slots = sorted(slot for k, slot, _ in runs if k == key)
        gaps = [round(b - a, 3) for a, b in itertools.pairwise(slots)]
        # Runs stay on the schedule's grid. A slot that fell due while the previous run was
        # still going is skipped by design (JobScheduler), which a loaded CI machine does at
        # times: a gap of two ticks is allowed, never a slot off the grid.
        ticks = [gap / TICK.total_seconds() for gap in gaps[1:]]
        assert all(t >= 0.95 and abs(t - round(t)) < 0.05 for t in ticks), gaps
        assert sum(round(t) == 1 for t in ticks) >= len(ticks) // 2, gaps
    assert {process for *_, process in runs} == {1, 2}  # both workers took turns


async def test_schedules_survive_a_restart_and_overdue_ones_run_once(pg_engines: Engines) -> None:
    before = pg_engines.process()
    before.jobs.register("m.job", lambda run: asyncio.sleep(0), plugin_id="m")
    await before.start(work=False)  # a serving process: schedules, runs nothing
    await before.jobs.schedule_interval("m.job", key="i", every=TICK, payload={"n": 1})
    await before.jobs.schedule_once("m.job", key="o", payload={"n": 2})
    await before.close()
    await asyncio.sleep(4 * TICK.total_seconds())  # the deployment is down

    runs: list[JobRun] = []

    async def record(run: JobRun) -> None:
        runs.append(run)

    after = pg_engines.process()
    after.jobs.register("m.job", record, plugin_id="m")
    await after.start()
    restarted = time.time()
    assert [j.key for j in await after.jobs.list()] == ["i", "o"]
    await wait_until(
        lambda: sum(r.key == "i" for r in runs) >= 2 and any(r.key == "o" for r in runs)
    )
    await after.jobs.cancel("i")

    interval = [r for r in runs if r.key == "i"]
    assert interval[0].payload == {"n": 1} and interval[0].scheduled_for.timestamp() < restarted
    assert interval[1].scheduled_for.timestamp() > restarted  # one run for all it missed
    assert [r.payload for r in runs if r.key == "o"] == [{"n": 2}]


async def test_serving_processes_run_nothing(pg_engines: Engines) -> None:
    runs: list[JobRun] = []

    async def record(run: JobRun) -> None:
        runs.append(run)

    serving = pg_engines.process()
    serving.jobs.register("m.job", record, plugin_id="m")
    await serving.start(work=False)
    await serving.jobs.schedule_once("m.job", key="k")
    await asyncio.sleep(1.0)
    assert runs == []
    assert (await serving.jobs.status()) == {"workers": 0}  # type: ignore[attr-defined]

    worker = pg_engines.process()
    worker.jobs.register("m.job", record, plugin_id="m")
    await worker.start()
    await wait_until(lambda: len(runs) == 1)
    assert (await serving.jobs.status()) == {"workers": 1}  # type: ignore[attr-defined]


async def test_selected_by_configuration_through_the_engine_hook(engine_database_url: str) -> None:
    ran = asyncio.Event()
    probe = Plugin(id="probe", name="probe")

    @probe.job("ping")
    async def ping(ctx: Context, run: JobRun) -> None:
        ran.set()

    settings = Settings(
        database_url=engine_database_url,
        strict_plugins=True,
        events_engine="procrastinate",
        jobs_engine="procrastinate",
    )
    host = Host(settings, plugins=[plugin, probe], discover_installed=False)
    await host.start()
    try:
        assert isinstance(host.jobs, ProcrastinateJobScheduler)
        assert isinstance(host.events, ProcrastinateEventBus)
        await host.jobs.schedule_once("probe.ping", key="p")
        stop = asyncio.Event()
        worker = asyncio.create_task(host.jobs.run_worker(concurrency=2, stop=stop))  # type: ignore[attr-defined]
        async with asyncio.timeout(15):
            await ran.wait()
        stop.set()
        await worker
    finally:
        await host.stop()


def declaring_plugins(got: list[Event]) -> list[Plugin]:
    """``widgets`` declares two events; ``audit`` subscribes to every declared event (work queue
    and broadcast) without naming any, as the notification plugin's integrations do."""
    widgets = Plugin(
        id="widgets",
        name="Widgets",
        contract=Contract(
            "widgets",
            events=[
                EventType("widgets.widget.built", "Built"),
                EventType("widgets.widget.scrapped", "Scrapped"),
            ],
        ),
    )
    audit = Plugin(id="audit", name="Audit")

    @audit.on_declared_events(mode="work_queue", group="log")
    async def log(ctx: Context, event: Event) -> None:
        got.append(event)

    @audit.on_declared_events()
    async def watch(ctx: Context, event: Event) -> None:
        got.append(event)

    return [widgets, audit]


async def test_a_subscription_to_every_declared_event_runs_in_a_worker(
    engine_database_url: str,
) -> None:
    """Expanded by the host at startup into per-name subscriptions, which procrastinate
    registers like any other: each declared event reaches the work-queue group (in a worker)
    and the broadcast subscription once."""
    got: list[Event] = []
    settings = Settings(
        database_url=engine_database_url,
        strict_plugins=True,
        events_engine="procrastinate",
        jobs_engine="procrastinate",
    )
    host = Host(settings, plugins=[plugin, *declaring_plugins(got)], discover_installed=False)
    await host.start()
    stop = asyncio.Event()
    worker = asyncio.create_task(host.events.run_worker(concurrency=2, stop=stop))  # type: ignore[attr-defined]
    try:
        async with host.service_context("widgets") as ctx:
            await ctx.emit("widgets.widget.built", {"id": "w1"})
            await ctx.emit("widgets.widget.scrapped", {"id": "w1"})
        await wait_until(lambda: len(got) >= 4)
        await host.events.drain()
        assert Counter(e.name for e in got) == {
            "widgets.widget.built": 2,
            "widgets.widget.scrapped": 2,
        }
    finally:
        stop.set()
        await worker
        await host.stop()


async def test_refuses_sqlite_clearly(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        jobs_engine="procrastinate",
        events_engine="procrastinate",
    )
    host = Host(settings, plugins=[plugin], discover_installed=False)
    with pytest.raises(RuntimeError, match=r"procrastinate engine needs PostgreSQL.*sqlite"):
        await host.start()
    await host.stop()


async def test_installed_but_not_selected_changes_nothing_on_sqlite(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", strict_plugins=True
    )
    host = Host(settings, plugins=[plugin], discover_installed=False)
    await host.start()
    try:
        assert host.plugins["procrastinate"].status == "active"
        assert type(host.jobs).__name__ == "EmbeddedJobScheduler"
    finally:
        await host.stop()


def test_settings_and_connection_string() -> None:
    assert conninfo("postgresql+asyncpg://u:p@db:5432/cs?ssl=require") == (
        "postgresql://u:p@db:5432/cs?sslmode=require"
    )
    settings = EngineSettings.load(
        {"stalled_after": 12}, env={"CHECKSTACK_PROCRASTINATE_HEARTBEAT_INTERVAL": "3"}
    )
    assert (settings.stalled_after, settings.heartbeat_interval) == (12.0, 3.0)
    with pytest.raises(ValueError, match=r"Unknown settings.*nope"):
        EngineSettings.load({"nope": 1}, env={})
    with pytest.raises(ValueError, match="longer than heartbeat_interval"):
        EngineSettings.load({"heartbeat_interval": 40}, env={})


def test_every_schema_change_of_the_installed_procrastinate_is_migrated() -> None:
    assert unapplied_migrations() == []


async def test_a_stopping_worker_hands_an_unfinished_run_to_another(pg_engines: Engines) -> None:
    started: list[tuple[int, int]] = []
    finished: list[int] = []

    def handler(process: int):  # type: ignore[no-untyped-def]
        async def run(job: JobRun) -> None:
            started.append((process, job.attempt))
            await asyncio.sleep(30 if process == 1 else 0)
            finished.append(process)

        return run

    first = pg_engines.process(shutdown_timeout=0.3)
    first.jobs.register("m.long", handler(1), plugin_id="m")
    await first.start()
    await first.jobs.schedule_once("m.long", key="k")
    await wait_until(lambda: started == [(1, 1)])
    first.stop.set()  # SIGTERM: the grace period is over long before the run is
    assert first.worker is not None
    await first.worker

    second = pg_engines.process()
    second.jobs.register("m.long", handler(2), plugin_id="m")
    await second.start()
    await wait_until(lambda: finished == [2])
    assert started == [(1, 1), (2, 2)]
    await second.jobs.drain()
    assert await second.jobs.get("k") is None


async def test_work_of_a_dead_worker_is_run_by_a_live_one(pg_engines: Engines) -> None:
    delivered: list[str] = []
    ran: list[str] = []

    async def deliver(event: Event) -> None:
        delivered.append(event.payload["n"])

    async def job(run: JobRun) -> None:
        ran.append(run.key)

    serving = pg_engines.process()
    serving.events.subscribe(Subscription("m.thing.done", deliver, "m", WQ, "g"))
    serving.jobs.register("m.job", job, plugin_id="m")
    await serving.start(work=False)
    await serving.events.emit("m.thing.done", {"n": "1"})
    await serving.jobs.schedule_once("m.job", key="k")

    # A worker took both and died without a word (kill -9): its heartbeat stopped long ago.
    runtime = serving.runtime
    async with runtime.transaction() as cursor:
        await cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') "
            "RETURNING id"
        )
        dead = (await cursor.fetchone())["id"]
        await cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
            "WHERE queue_name LIKE 'checkstack-%%'",
            (dead,),
        )

    live = pg_engines.process()
    live.events.subscribe(Subscription("m.thing.done", deliver, "m", WQ, "g"))
    live.jobs.register("m.job", job, plugin_id="m")
    await live.start()  # its recovery pass hands the dead worker's jobs back to the queue
    await wait_until(lambda: delivered == ["1"] and ran == ["k"])


async def test_a_worker_that_stops_on_its_own_fails_loudly(pg_engines: Engines) -> None:
    process = pg_engines.process()
    await process.start()
    runtime = process.runtime
    await wait_until(lambda: runtime.working)
    runtime._worker.stop()  # what procrastinate does when a side task (its listener...) fails
    assert process.worker is not None
    with pytest.raises(RuntimeError, match="stopped on its own"):
        await process.worker
