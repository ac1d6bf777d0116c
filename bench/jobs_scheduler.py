"""Benchmark: the embedded job scheduler at the healthcheck's rate (SPEC §10).

The target is 10,000 interval checks a minute with p99 lateness under one second on a 2-core
machine. By default this runs the same rate in less time: 2,000 jobs every 12 s, their start times
spread evenly over the interval, for 30 s. Each handler does ``await asyncio.sleep(0)`` and
records its lateness (actual start - ``scheduled_for``).

The baseline, measured in the same run, is a bare loop that ``asyncio.sleep``s until each of the
same firing times in turn; the ratio compares the scheduler's lateness to it.

``--engine procrastinate --workers N`` measures the procrastinate engine instead: a fresh
PostgreSQL database (``--database-url``), the jobs scheduled by this process (as a serving process
would), run by N ``worker`` processes (``--concurrency`` each), each reporting its runs' lateness.

    uv run python bench/jobs_scheduler.py [--jobs 2000] [--interval 12] [--duration 30]
    uv run python bench/jobs_scheduler.py --engine procrastinate --workers 2 --jobs 500
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from checkstack_core.jobs import EmbeddedJobScheduler, JobRun

WARMUP = 1.0  # seconds between scheduling and the first slot, so setup does not count


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of ``values`` (sorted in place)."""
    if not values:
        return float("nan")
    values.sort()
    rank = max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))
    return values[rank]


def report(label: str, lateness: list[float], window: float, cpu: float) -> tuple[float, float]:
    ms = [x * 1000 for x in lateness]
    p50, p99, top = percentile(ms, 50), percentile(ms, 99), max(ms, default=float("nan"))
    print(
        f"{label:<10} runs={len(ms):>6}  runs/min={len(ms) / window * 60:>8.0f}  "
        f"lateness p50={p50:7.2f} ms  p99={p99:7.2f} ms  max={top:7.2f} ms  cpu={cpu:5.2f} s"
    )
    return p50, p99


async def run_scheduler(jobs: int, interval: float, duration: float) -> list[float]:
    scheduler = EmbeddedJobScheduler()
    lateness: list[float] = []
    end_of_window = 0.0

    async def check(run: JobRun) -> None:
        started = time.time()
        await asyncio.sleep(0)
        if run.scheduled_for.timestamp() < end_of_window:
            lateness.append(started - run.scheduled_for.timestamp())

    scheduler.register("bench.check", check, plugin_id="bench")
    await scheduler.start()
    first = datetime.now(UTC) + timedelta(seconds=WARMUP)
    every = timedelta(seconds=interval)
    for i in range(jobs):
        await scheduler.schedule_interval(
            "bench.check",
            key=f"bench:{i}",
            every=every,
            start_at=first + every * i / jobs,
            payload={"checkId": i},
        )
    end_of_window = first.timestamp() + duration
    await asyncio.sleep(end_of_window - time.time() + 0.5)  # let the window's last runs finish
    await scheduler.stop()
    return lateness


def _procrastinate_worker(
    url: str, concurrency: int, end_of_window: float, stop_at: float, results: Any
) -> None:
    """One worker process: run the bench jobs until ``stop_at``, send back their lateness."""
    from checkstack_procrastinate.config import EngineSettings
    from checkstack_procrastinate.runtime import Runtime
    from checkstack_procrastinate.scheduler import ProcrastinateJobScheduler

    lateness: list[float] = []

    async def check(run: JobRun) -> None:
        started = time.time()
        await asyncio.sleep(0)
        if run.scheduled_for.timestamp() < end_of_window:
            lateness.append(started - run.scheduled_for.timestamp())

    async def work() -> None:
        runtime = Runtime(url, EngineSettings(poll_interval=1.0))
        scheduler = ProcrastinateJobScheduler(runtime)
        scheduler.register("bench.check", check, plugin_id="bench")
        await scheduler.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(stop_at - time.time(), stop.set)
        await scheduler.run_worker(concurrency=concurrency, stop=stop)
        await scheduler.stop()

    cpu = time.process_time()
    asyncio.run(work())
    results.put((lateness, time.process_time() - cpu))


async def run_procrastinate(
    base_url: str, jobs: int, interval: float, duration: float, workers: int, concurrency: int
) -> tuple[list[float], float]:
    import multiprocessing
    import tempfile
    from pathlib import Path

    from checkstack_procrastinate import plugin
    from checkstack_procrastinate.config import EngineSettings
    from checkstack_procrastinate.runtime import Runtime
    from checkstack_procrastinate.scheduler import ProcrastinateJobScheduler

    from checkstack_core import migrations
    from checkstack_core.db import Database
    from checkstack_core.testing.database import temporary_database

    async with temporary_database(base_url, Path(tempfile.gettempdir())) as url:
        db = Database(url)
        await migrations.upgrade(db, [plugin])
        await db.dispose()
        runtime = Runtime(url, EngineSettings())
        scheduler = ProcrastinateJobScheduler(runtime)
        scheduler.register("bench.check", lambda run: asyncio.sleep(0), plugin_id="bench")
        await scheduler.start()
        # Scheduling takes a while for many jobs: the window starts once they are all in.
        first = datetime.now(UTC) + timedelta(seconds=WARMUP + jobs / 200)
        every = timedelta(seconds=interval)
        for i in range(jobs):
            await scheduler.schedule_interval(
                "bench.check", key=f"bench:{i}", every=every, start_at=first + every * i / jobs
            )
        end_of_window = first.timestamp() + duration
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        processes = [
            context.Process(
                target=_procrastinate_worker,
                args=(url, concurrency, end_of_window, end_of_window + 2.0, results),
            )
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        lateness: list[float] = []
        cpu = 0.0
        for _ in processes:
            got, used = await asyncio.to_thread(results.get)
            lateness.extend(got)
            cpu += used
        for process in processes:
            process.join()
        await scheduler.stop()
        return lateness, cpu


async def run_baseline(jobs: int, interval: float, duration: float) -> list[float]:
    lateness: list[float] = []
    step = interval / jobs
    first = time.time() + WARMUP
    for k in range(round(duration / step)):
        due = first + k * step
        await asyncio.sleep(due - time.time())
        lateness.append(time.time() - due)
        await asyncio.sleep(0)
    return lateness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=12.0, help="seconds")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per measurement")
    parser.add_argument("--engine", choices=["embedded", "procrastinate"], default="embedded")
    parser.add_argument("--workers", type=int, default=1, help="procrastinate worker processes")
    parser.add_argument("--concurrency", type=int, default=10, help="jobs at once per worker")
    parser.add_argument(
        "--database-url",
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server for --engine procrastinate (a fresh database is made on it)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    rate = args.jobs / args.interval * 60
    print(
        f"{args.jobs} interval jobs every {args.interval:g} s = {rate:,.0f} runs/min target, "
        f"{args.duration:g} s each for the scheduler and the baseline; "
        f"expected runs: {round(args.jobs * args.duration / args.interval)}"
    )

    if args.engine == "procrastinate":
        lateness, used = asyncio.run(
            run_procrastinate(
                args.database_url,
                args.jobs,
                args.interval,
                args.duration,
                args.workers,
                args.concurrency,
            )
        )
        label = f"procr. x{args.workers}"
        scheduler = report(label, lateness, args.duration, used)
    else:
        cpu = time.process_time()
        lateness = asyncio.run(run_scheduler(args.jobs, args.interval, args.duration))
        scheduler = report("scheduler", lateness, args.duration, time.process_time() - cpu)

    cpu = time.process_time()
    lateness = asyncio.run(run_baseline(args.jobs, args.interval, args.duration))
    baseline = report("baseline", lateness, args.duration, time.process_time() - cpu)

    print(
        f"ratio scheduler/baseline: p50 {scheduler[0] / baseline[0]:.2f}x, "
        f"p99 {scheduler[1] / baseline[1]:.2f}x  (p99 target: < 1000 ms)"
    )


if __name__ == "__main__":
    main()
