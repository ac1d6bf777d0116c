"""Benchmark: the healthcheck scheduler (SPEC §10: 30,000 checks a minute on a 2-core machine,
at least 10,000, with p99 lateness under one second).

N checks (half ``tcp``, half ``http``) at a 60 s interval, their slots spread evenly over the
interval, against local targets served by a separate process (an HTTP/1.1 keep-alive server and
a TCP port that accepts and closes). One server process (an in-process host with the catalog,
healthcheck, http and tcp plugins and the real scheduler: claims in the database, probes, batched
recording with hourly aggregates and system health) runs for ``--duration`` seconds after a
warm-up, on SQLite and on PostgreSQL.

Printed per database: checks recorded per minute, lateness (claim time - due time) p50/p99/max,
the CPU the server process used (seconds and % of one core) and the target process's. The
baseline, measured in the same run, is the same probes fired at the same rate by a bare asyncio
loop with no database: what the scheduler adds is the difference.

``--engine procrastinate --workers 1,2`` measures a scaled deployment instead, on PostgreSQL: the
checks are seeded by a serving host (which runs none) and run by N ``checkstack worker``
processes (``run_worker`` in spawned processes), each claiming its own share; their counts and
lateness are summed. The embedded engine (one process) runs first on the same machine in the same
run, and each procrastinate line ends with its ratio to it. ``db cpu`` is the CPU of every
``postgres`` process on the machine meanwhile (other work on it included).

    uv run python bench/scheduler.py [--checks 30000] [--duration 60] [--db sqlite,postgres]
    uv run python bench/scheduler.py --engine procrastinate --workers 1,2 [--checks 30000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stack import DEFAULT_POSTGRES_URL, database

INTERVAL_MS = 60_000
WARMUP = 5.0
#: What a slow TCP target sends (``--target-delay-ms``), and its checks expect.
BANNER = "ok"


@dataclass
class Options:
    """What every run of one invocation shares."""

    checks: int
    duration: float
    ports: tuple[int, int]
    #: The targets answer after this long: the probes then wait, holding their slots.
    delay_ms: float = 0.0
    #: ``[plugins.healthcheck] max_concurrency`` of each process running checks.
    max_concurrency: int = 500


@dataclass
class Measured:
    done: int
    lateness: list[float]
    cpu: float
    window: float
    #: Claim transactions (the scheduler's round trips to find due runs).
    claims: int = 0


# -- the targets (a separate process) --------------------------------------------------------------


async def _serve_targets(delay: float) -> None:
    """HTTP and TCP targets answering after ``delay`` seconds (a remote service's latency)."""

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                if delay:
                    await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if delay:  # the probe waits for this banner
            await asyncio.sleep(delay)
            writer.write(BANNER.encode())
            with contextlib.suppress(ConnectionError):
                await writer.drain()
        writer.close()

    servers = [
        await asyncio.start_server(http, "127.0.0.1", 0, backlog=4096),
        await asyncio.start_server(tcp, "127.0.0.1", 0, backlog=4096),
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(f"{ports[0]} {ports[1]}", flush=True)
    await asyncio.Event().wait()


def start_targets(delay_ms: float) -> tuple[subprocess.Popen[str], int, int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-targets", "--target-delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    http_port, tcp_port = map(int, process.stdout.readline().split())
    return process, http_port, tcp_port


def child_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running child, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return float("nan")


def postgres_cpu() -> float:
    """CPU seconds of the ``postgres`` processes on the machine: the live ones' own, plus what
    the ended backends used (counted in their parent's children's time once reaped)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition("(")[2].rpartition(")")
        if name == "postgres":
            fields = rest.split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))]


def report(
    label: str,
    measured: Measured,
    target_cpu: float,
    *,
    db_cpu: float | None = None,
    reference: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """Print one line; answer (checks per minute, p99 lateness) for ratios."""
    window, cpu = measured.window, measured.cpu
    per_minute = measured.done / window * 60
    p50, p99 = percentile(measured.lateness, 50), percentile(measured.lateness, 99)
    top = max(measured.lateness, default=float("nan"))
    line = (
        f"{label:<18} checks/min={per_minute:>8.0f}  lateness p50={p50:7.1f} ms"
        f"  p99={p99:7.1f} ms  max={top:7.1f} ms"
        f"  cpu={cpu:6.1f} s ({100 * cpu / window:5.1f} % of a core)"
        f"  targets cpu={target_cpu:5.1f} s"
    )
    if measured.claims:
        line += f"  claims/s={measured.claims / window:5.0f}"
    if db_cpu is not None:
        line += f"  db cpu={db_cpu:5.1f} s"
    if reference is not None:
        line += (
            f"  | vs embedded: checks/min {per_minute / reference[0]:.2f}x,"
            f" p99 {p99 / reference[1]:.2f}x"
        )
    print(line, flush=True)
    return per_minute, p99


# -- the scheduler ---------------------------------------------------------------------------------


async def seed(host: Any, options: Options, start_ms: int) -> None:
    """N checks on 100 systems, slots spread evenly over the interval from ``start_ms``."""
    import msgspec
    from checkstack_healthcheck.models import AssignmentRow, CheckRow, SystemRow
    from sqlalchemy import insert

    checks = options.checks
    http_port, tcp_port = options.ports
    banner = {"expectBanner": BANNER} if options.delay_ms else {}
    now = datetime.now(UTC)
    systems = [str(uuid.uuid4()) for _ in range(100)]
    check_rows: list[dict[str, Any]] = []
    assignment_rows: list[dict[str, Any]] = []
    for i in range(checks):
        check_id = str(uuid.uuid4())
        if i % 2:
            strategy, config = "tcp", {"host": "127.0.0.1", "port": tcp_port, **banner}
        else:
            strategy, config = "http", {"url": f"http://127.0.0.1:{http_port}/health"}
        check_rows.append(
            {
                "id": check_id,
                "name": f"check {i}",
                "strategy_id": strategy,
                "config": msgspec.json.encode(config).decode(),
                "interval_seconds": INTERVAL_MS // 1000,
                "timeout_seconds": 10.0,
                "paused": False,
                "created_at": now,
                "updated_at": now,
            }
        )
        assignment_rows.append(
            {
                "id": str(uuid.uuid4()),
                "check_id": check_id,
                "system_id": systems[i % len(systems)],
                "enabled": True,
                "thresholds": None,
                "interval_ms": INTERVAL_MS,
                "next_run_ms": start_ms + i * INTERVAL_MS // checks,
                "status": "healthy",
                "healthy_streak": 0,
                "failure_streak": 0,
                "unhealthy_streak": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    async with host.db.session() as session:
        connection = await session.connection()
        await connection.execute(
            insert(SystemRow), [{"system_id": s, "status": "healthy"} for s in systems]
        )
        for table, rows in ((CheckRow, check_rows), (AssignmentRow, assignment_rows)):
            for chunk in range(0, len(rows), 2000):
                await connection.execute(insert(table), rows[chunk : chunk + 2000])
        await session.commit()


async def unpark(host: Any, shift_ms: int) -> None:
    from checkstack_healthcheck.models import AssignmentRow
    from sqlalchemy import update

    table = AssignmentRow.__table__  # type: ignore[attr-defined]
    async with host.db.session() as session:
        connection = await session.connection()
        await connection.execute(update(table).values(next_run_ms=table.c.next_run_ms - shift_ms))
        await session.commit()


def make_host(url: str, options: Options, engine: str = "embedded") -> Any:
    """A host with the catalog, healthcheck, http and tcp plugins (and the procrastinate engine
    plugin when it is the engine), the scheduler tuned as for 30,000 checks a minute."""
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_http import plugin as http
    from checkstack_healthcheck_tcp import plugin as tcp

    from checkstack_core.host import Host
    from checkstack_core.settings import Settings

    plugins = [catalog, healthcheck, http, tcp]
    if engine == "procrastinate":
        from checkstack_procrastinate import plugin as procrastinate

        plugins.insert(0, procrastinate)
    settings = Settings(
        database_url=url,
        strict_plugins=True,
        events_engine=engine,
        jobs_engine=engine,
        plugin_settings={
            "healthcheck": {
                "max_concurrency": options.max_concurrency,
                "poll_interval_seconds": 0.2,
            }
        },
    )
    return Host(settings, plugins=plugins, discover_installed=False)


async def run_scheduler(url: str, options: Options) -> Measured:
    from checkstack_healthcheck import service

    host = make_host(url, options)
    await host.start()
    try:
        # Seed with slots an hour ahead, then move them all to just after the warm-up in one
        # statement: seeding (seconds for 30,000 checks) must not eat into the measurement.
        parked = service.now_ms() + 3_600_000
        await seed(host, options, parked)
        start_ms = service.now_ms() + int(WARMUP * 1000)
        await unpark(host, parked - start_ms)
        executor = host.services["healthcheck.runtime"].executor
        await asyncio.sleep(max(start_ms / 1000 - time.time(), 0))
        executor.keep_lateness = True
        executor.lateness_ms.clear()
        recorded, claims, cpu = executor.recorded, executor.claims, cpu_self()
        started = time.monotonic()
        await asyncio.sleep(options.duration)
        window = time.monotonic() - started
        done = executor.recorded - recorded
        return Measured(
            done, list(executor.lateness_ms), cpu_self() - cpu, window, executor.claims - claims
        )
    finally:
        await host.stop()


# -- procrastinate: N worker processes -------------------------------------------------------------


def _worker(url: str, options: Options, ready: Any, start_at: Any, results: Any) -> None:
    """One ``checkstack worker`` process: once told when, measure its share for a duration."""
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_work(url, options, ready, start_at, results))


async def _work(url: str, options: Options, ready: Any, start_at: Any, results: Any) -> None:
    from checkstack_core.workers import run_worker

    host = make_host(url, options, "procrastinate")
    stop = asyncio.Event()
    runner = asyncio.create_task(run_worker(host, concurrency=10, stop=stop))
    while not host.running:
        if runner.done():
            await runner  # startup failed: raise it
        await asyncio.sleep(0.05)
    executor = host.services["healthcheck.runtime"].executor
    ready.put(os.getpid())
    while start_at.value == 0:  # noqa: ASYNC110  (a value shared with the parent process)
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(start_at.value - time.time(), 0))
    executor.keep_lateness = True
    executor.lateness_ms.clear()
    recorded, claims, cpu = executor.recorded, executor.claims, cpu_self()
    await asyncio.sleep(options.duration)
    done, used = executor.recorded - recorded, cpu_self() - cpu
    results.put(
        Measured(done, list(executor.lateness_ms), used, options.duration, executor.claims - claims)
    )
    stop.set()
    await runner


async def run_procrastinate(url: str, options: Options, workers: int) -> Measured:
    """Seed through a serving host, run ``workers`` worker processes; their summed figures."""
    import multiprocessing

    from checkstack_healthcheck import service

    host = make_host(url, options, "procrastinate")
    await host.start()  # migrates; a serving host runs no checks
    try:
        assert host.services["healthcheck.runtime"].executor is None
        parked = service.now_ms() + 3_600_000
        await seed(host, options, parked)
        context = multiprocessing.get_context("spawn")
        ready, results = context.Queue(), context.Queue()
        start_at = context.Value("d", 0.0)
        processes = [
            context.Process(target=_worker, args=(url, options, ready, start_at, results))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        for _ in processes:
            await asyncio.to_thread(ready.get, timeout=300)
        start_ms = service.now_ms() + int(WARMUP * 1000)
        await unpark(host, parked - start_ms)
        start_at.value = start_ms / 1000
        total = Measured(0, [], 0.0, options.duration)
        for _ in processes:
            got = await asyncio.to_thread(results.get, timeout=options.duration + 300)
            total.done += got.done
            total.cpu += got.cpu
            total.claims += got.claims
            total.lateness.extend(got.lateness)
        for process in processes:
            await asyncio.to_thread(process.join, 60)
        return total
    finally:
        await host.stop()


# -- the baseline: the same probes, no database ----------------------------------------------------


async def run_baseline(options: Options) -> Measured:
    from checkstack_healthcheck import service
    from checkstack_healthcheck_http.strategy import HttpConfig, HttpStrategy
    from checkstack_healthcheck_tcp.strategy import TcpConfig, TcpStrategy

    checks, duration, ports = options.checks, options.duration, options.ports
    http, tcp = HttpStrategy(), TcpStrategy()
    http_config = HttpConfig(url=f"http://127.0.0.1:{ports[0]}/health")
    banner = BANNER if options.delay_ms else None
    tcp_config = TcpConfig(host="127.0.0.1", port=ports[1], expect_banner=banner)
    semaphore = asyncio.Semaphore(options.max_concurrency)
    lateness: list[float] = []
    done = 0
    tasks: set[asyncio.Task[None]] = set()

    async def probe(i: int) -> None:
        nonlocal done
        async with semaphore:
            if i % 2:
                await service.probe(tcp, tcp_config, 10)
            else:
                await service.probe(http, http_config, 10)
        done += 1

    start = time.time() + 1
    cpu = cpu_self()
    begun = time.monotonic()
    i = 0
    while time.monotonic() - begun < duration + 1:
        due = start + i * (INTERVAL_MS / 1000) / checks
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(max(time.time() - due, 0) * 1000)
        task = asyncio.create_task(probe(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    window = time.monotonic() - begun - 1
    await asyncio.gather(*tasks, return_exceptions=True)
    return Measured(done, lateness, cpu_self() - cpu, window)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=30_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--db", default="sqlite,postgres", help="embedded engine only")
    parser.add_argument("--engine", choices=["embedded", "procrastinate"], default="embedded")
    parser.add_argument(
        "--workers", default="1,2", help="procrastinate: worker processes, one run per number"
    )
    parser.add_argument(
        "--max-concurrency", type=int, default=500, help="runs in flight per process at most"
    )
    parser.add_argument(
        "--target-delay-ms", type=float, default=0.0, help="the targets answer after this long"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server (a fresh database is made on it per run)",
    )
    parser.add_argument("--serve-targets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_targets:
        asyncio.run(_serve_targets(args.target_delay_ms / 1000))
        return
    logging.basicConfig(level=logging.WARNING)
    targets, http_port, tcp_port = start_targets(args.target_delay_ms)
    options = Options(
        args.checks,
        args.duration,
        (http_port, tcp_port),
        delay_ms=args.target_delay_ms,
        max_concurrency=args.max_concurrency,
    )
    try:
        print(
            f"{args.checks} checks (half tcp, half http) every 60 s, {args.duration:g} s measured, "
            f"targets answering after {args.target_delay_ms:g} ms, max_concurrency "
            f"{args.max_concurrency} per process, {os.cpu_count()} CPUs",
            flush=True,
        )
        before = child_cpu(targets.pid)
        measured = asyncio.run(run_baseline(options))
        report("baseline (no db)", measured, child_cpu(targets.pid) - before)
        kinds = ["postgres"] if args.engine == "procrastinate" else args.db.split(",")
        reference = None
        for kind in kinds:
            with (
                tempfile.TemporaryDirectory() as workdir,
                database(kind, Path(workdir), args.database_url) as url,
            ):
                before, db_before = child_cpu(targets.pid), postgres_cpu()
                measured = asyncio.run(run_scheduler(url, options))
                reference = report(
                    f"embedded {kind}",
                    measured,
                    child_cpu(targets.pid) - before,
                    db_cpu=postgres_cpu() - db_before if kind == "postgres" else None,
                )
        if args.engine == "procrastinate":
            for workers in (int(n) for n in args.workers.split(",")):
                with (
                    tempfile.TemporaryDirectory() as workdir,
                    database("postgres", Path(workdir), args.database_url) as url,
                ):
                    before, db_before = child_cpu(targets.pid), postgres_cpu()
                    measured = asyncio.run(run_procrastinate(url, options, workers))
                    report(
                        f"procrastinate x{workers}",
                        measured,
                        child_cpu(targets.pid) - before,
                        db_cpu=postgres_cpu() - db_before,
                        reference=reference,
                    )
    finally:
        targets.terminate()
        targets.wait()


if __name__ == "__main__":
    main()
