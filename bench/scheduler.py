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

    uv run python bench/scheduler.py [--checks 30000] [--duration 60] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _stack import database

INTERVAL_MS = 60_000
WARMUP = 5.0


# -- the targets (a separate process) --------------------------------------------------------------


async def _serve_targets() -> None:
    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    servers = [
        await asyncio.start_server(http, "127.0.0.1", 0, backlog=4096),
        await asyncio.start_server(tcp, "127.0.0.1", 0, backlog=4096),
    ]
    ports = [s.sockets[0].getsockname()[1] for s in servers]
    print(f"{ports[0]} {ports[1]}", flush=True)
    await asyncio.Event().wait()


def start_targets() -> tuple[subprocess.Popen[str], int, int]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-targets"], stdout=subprocess.PIPE, text=True
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


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(p / 100 * len(values) + 0.5) - 1))]


def report(
    label: str, checks: int, lateness: list[float], window: float, cpu: float, target_cpu: float
) -> None:
    p50, p99 = percentile(lateness, 50), percentile(lateness, 99)
    top = max(lateness, default=float("nan"))
    print(
        f"{label:<18} checks/min={checks / window * 60:>8.0f}  lateness p50={p50:7.1f} ms"
        f"  p99={p99:7.1f} ms  max={top:7.1f} ms"
        f"  cpu={cpu:6.1f} s ({100 * cpu / window:5.1f} % of a core)"
        f"  targets cpu={target_cpu:5.1f} s",
        flush=True,
    )


# -- the scheduler ---------------------------------------------------------------------------------


async def seed(host: Any, checks: int, http_port: int, tcp_port: int, start_ms: int) -> None:
    """N checks on 100 systems, slots spread evenly over the interval from ``start_ms``."""
    import msgspec
    from checkstack_healthcheck.models import AssignmentRow, CheckRow, SystemRow
    from sqlalchemy import insert

    now = datetime.now(UTC)
    systems = [str(uuid.uuid4()) for _ in range(100)]
    check_rows: list[dict[str, Any]] = []
    assignment_rows: list[dict[str, Any]] = []
    for i in range(checks):
        check_id = str(uuid.uuid4())
        if i % 2:
            strategy, config = "tcp", {"host": "127.0.0.1", "port": tcp_port}
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


async def run_scheduler(
    url: str, checks: int, duration: float, ports: tuple[int, int]
) -> tuple[int, list[float], float, float]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck import service
    from checkstack_healthcheck_http import plugin as http
    from checkstack_healthcheck_tcp import plugin as tcp

    from checkstack_core.host import Host
    from checkstack_core.settings import Settings

    settings = Settings(
        database_url=url,
        strict_plugins=True,
        plugin_settings={"healthcheck": {"max_concurrency": 500, "poll_interval_seconds": 0.2}},
    )
    host = Host(settings, plugins=[catalog, healthcheck, http, tcp], discover_installed=False)
    await host.start()
    try:
        start_ms = service.now_ms() + int(WARMUP * 1000)
        await seed(host, checks, *ports, start_ms)
        executor = host.services["healthcheck.runtime"].executor
        await asyncio.sleep(max(start_ms / 1000 - time.time(), 0))
        executor.keep_lateness = True
        executor.lateness_ms.clear()
        recorded, cpu = executor.recorded, cpu_self()
        started = time.monotonic()
        await asyncio.sleep(duration)
        window = time.monotonic() - started
        done = executor.recorded - recorded
        return done, list(executor.lateness_ms), cpu_self() - cpu, window
    finally:
        await host.stop()


# -- the baseline: the same probes, no database ----------------------------------------------------


async def run_baseline(
    checks: int, duration: float, ports: tuple[int, int]
) -> tuple[int, list[float], float, float]:
    from checkstack_healthcheck import service
    from checkstack_healthcheck_http.strategy import HttpConfig, HttpStrategy
    from checkstack_healthcheck_tcp.strategy import TcpConfig, TcpStrategy

    http, tcp = HttpStrategy(), TcpStrategy()
    http_config = HttpConfig(url=f"http://127.0.0.1:{ports[0]}/health")
    tcp_config = TcpConfig(host="127.0.0.1", port=ports[1])
    semaphore = asyncio.Semaphore(500)
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
    return done, lateness, cpu_self() - cpu, window


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=30_000)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--serve-targets", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_targets:
        asyncio.run(_serve_targets())
        return
    logging.basicConfig(level=logging.WARNING)
    targets, http_port, tcp_port = start_targets()
    ports = (http_port, tcp_port)
    try:
        print(
            f"{args.checks} checks (half tcp, half http) every 60 s, {args.duration:g} s measured, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        before = child_cpu(targets.pid)
        done, lateness, cpu, window = asyncio.run(run_baseline(args.checks, args.duration, ports))
        report("baseline (no db)", done, lateness, window, cpu, child_cpu(targets.pid) - before)
        for kind in args.db.split(","):
            with tempfile.TemporaryDirectory() as workdir, database(kind, Path(workdir)) as url:
                before = child_cpu(targets.pid)
                done, lateness, cpu, window = asyncio.run(
                    run_scheduler(url, args.checks, args.duration, ports)
                )
                report(
                    f"scheduler {kind}",
                    done,
                    lateness,
                    window,
                    cpu,
                    child_cpu(targets.pid) - before,
                )
    finally:
        targets.terminate()
        targets.wait()


if __name__ == "__main__":
    main()
