"""A scaled deployment for real: two ``checkstack serve`` processes and two ``checkstack worker``
processes on one PostgreSQL database, with the procrastinate engine selected by settings only,
running for ``CHECKSTACK_MULTIPROCESS_SECONDS`` (default 120, as the issue asks; set it lower for a
quick local run, at least 20).

One scenario, so the processes start once (a loaded 2-core machine takes tens of seconds):

- interval jobs (the ``ticker`` test plugin, 1 s and 2 s) run once per slot, deployment-wide: no
  slot twice, none missing, whichever worker runs it;
- health checks (1 s and 5 s, the ``whoami`` test strategy: ``tcp`` naming the process that ran
  it) run once per interval (no slot twice, none missing), in both workers and never in a serving
  process, and go on after a worker is killed, losing at most the one run it had in hand;
- maintenance windows start and complete once (their jobs are scheduled by broadcast handlers
  in all four processes, under one key);
- ``kill -9`` of a worker in the middle of a run, half way through: the other worker takes over
  once the dead one's heartbeat is stale, and from then on no slot is missing;
- ``SIGTERM`` of a worker in the middle of a run, at the end: the run finishes, the worker exits 0;
- an API key deleted through one serving process fails on the other at once, and a role change
  made through one is in force on the other at once (authorization caches).

Everything is read from the database or through the API, polled with deadlines; nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from checkstack_core.db import utcnow
from checkstack_core.testing.server import RunningServer

pytestmark = pytest.mark.e2e

SECRET_KEY = "e2e-scale-key-not-for-production"
PASSWORD = "Admin-pass-123"
PLUGINS = "auth,catalog,maintenance,hello,healthcheck,healthcheck-tcp,procrastinate,ticker,whoami"
#: Generous: four processes start at once on a loaded machine.
DEADLINE = 120.0
#: How long the deployment runs, from the first schedule to the SIGTERM of the last worker.
SECONDS = max(float(os.environ.get("CHECKSTACK_MULTIPROCESS_SECONDS", "120")), 20.0)
AUTOMATIC = [("created", None), ("status", "in_progress"), ("status", "completed")]


def install_test_plugins(site: Path) -> None:
    """Install the ``ticker`` and ``whoami`` test plugins as distributions in ``site`` (for
    ``PYTHONPATH``)."""
    for name in ("ticker", "whoami"):
        shutil.copytree(Path(__file__).parent / f"{name}_plugin", site / f"{name}_plugin")
        info = site / f"checkstack_{name}-0.1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: checkstack-{name}\nVersion: 0.1.0\n"
        )
        (info / "entry_points.txt").write_text(
            f"[checkstack.plugins]\n{name} = {name}_plugin:plugin\n"
        )


class WorkerProcess:
    """A ``checkstack worker`` process writing to a log file."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str) -> None:
        self.log_path = workdir / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "checkstack_core", "worker", "--concurrency", "4"],
                cwd=workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class Deployment:
    def __init__(self, database_url: str, workdir: Path, env: dict[str, str]) -> None:
        self.database_url = database_url
        self.api = [RunningServer(database_url, workdir, env) for _ in range(2)]
        full_env = {**os.environ, "CHECKSTACK_DATABASE_URL": database_url, **env}
        full_env.pop("CHECKSTACK_CONFIG", None)
        self.worker_env = full_env
        self.workdir = workdir
        self.workers: list[WorkerProcess] = []

    def start(self) -> None:
        self.api[0].start()  # migrates the database; the others then find it current
        started = threading.Thread(target=self.api[1].start)
        started.start()
        self.workers = [WorkerProcess(self.worker_env, self.workdir, f"worker-{i}") for i in (1, 2)]
        started.join()
        wait_for(lambda: self.workers_alive() == 2, "two workers heartbeating", self.logs)

    def workers_alive(self) -> int:
        engines = httpx.get(f"{self.api[0].url}/readyz", timeout=10).json()["engines"]
        assert engines["events"]["engine"] == engines["jobs"]["engine"] == "procrastinate"
        return int(engines["jobs"].get("workers", 0))

    def logs(self) -> str:
        parts = [f"== api {i}\n{s.logs()}" for i, s in enumerate(self.api)]
        parts += [f"== worker {w.pid}\n{w.logs()}" for w in self.workers]
        return "\n".join(parts)[-30000:]

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        for server in self.api:
            server.close()


def wait_for(predicate: Callable[[], Any], what: str, logs: Callable[[], str]) -> Any:
    deadline = time.monotonic() + DEADLINE
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{logs()}"
        time.sleep(0.05)


def query(database_url: str, statement: str, **params: Any) -> list[Any]:
    async def read() -> list[Any]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(sa.text(statement), params)).all())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def call(url: str, plugin: str, procedure: str, body: Any = None, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{url}/api/{plugin}/", json={procedure: body or {}}, headers=headers, timeout=15
    )


def ok(response: httpx.Response, procedure: str) -> Any:
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def iso(seconds: float) -> str:
    return (utcnow() + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def deployment(
    checkstack_database_base_url: str | None, checkstack_database_url: str, tmp_path: Path
) -> Iterator[Deployment]:
    if not checkstack_database_base_url or (
        make_url(checkstack_database_base_url).get_backend_name() != "postgresql"
    ):
        pytest.skip(
            "processes share jobs and events only on PostgreSQL (set CHECKSTACK_TEST_DATABASE_URL)"
        )
    site = tmp_path / "site"
    site.mkdir()
    install_test_plugins(site)
    env = {
        "CHECKSTACK_STRICT_PLUGINS": "1",
        "CHECKSTACK_PLUGINS": PLUGINS,
        "CHECKSTACK_SECRET_KEY": SECRET_KEY,
        "CHECKSTACK_EVENTS_ENGINE": "procrastinate",
        "CHECKSTACK_JOBS_ENGINE": "procrastinate",
        # A dead worker's jobs move on within about 4 s (the defaults take about 35 s).
        "CHECKSTACK_PROCRASTINATE_HEARTBEAT_INTERVAL": "0.5",
        "CHECKSTACK_PROCRASTINATE_STALLED_AFTER": "3",
        "CHECKSTACK_PROCRASTINATE_RECOVERY_INTERVAL": "0.5",
        "CHECKSTACK_PROCRASTINATE_POLL_INTERVAL": "1",
        "CHECKSTACK_PROCRASTINATE_SHUTDOWN_TIMEOUT": "20",
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    deployment = Deployment(checkstack_database_url, tmp_path, env)
    try:
        deployment.start()
        yield deployment
    finally:
        deployment.close()


def runs(db: str, key: str) -> list[tuple[datetime, int, datetime | None]]:
    return [
        (row[0], row[1], row[2])
        for row in query(
            db, "SELECT slot, pid, finished_at FROM ticker_run WHERE key = :k ORDER BY id", k=key
        )
    ]


def running_on(db: str, key: str, pids: set[int]) -> tuple[datetime, int] | None:
    """A run of ``key`` in progress on one of ``pids`` (its slot and pid), if any."""
    for slot, pid, finished in runs(db, key):
        if finished is None and pid in pids:
            return slot, pid
    return None


def assert_every_slot_once(
    slots: list[datetime], every: timedelta, allowed_gap: tuple[datetime, datetime] | None = None
) -> None:
    """Each slot at most once, on the schedule's grid, and none missing (except strictly
    inside ``allowed_gap``: a dead worker's slots until its jobs were recovered)."""
    assert len(slots) == len(set(slots)), f"a slot ran twice: {sorted(slots)}"
    ordered = sorted(slots)
    assert all((s - ordered[0]) % every == timedelta(0) for s in ordered), ordered
    missing = []
    expected = ordered[0]
    while expected <= ordered[-1]:
        if expected not in slots and not (
            allowed_gap is not None and allowed_gap[0] < expected < allowed_gap[1]
        ):
            missing.append(expected)
        expected += every
    assert missing == [], f"slots never ran: {missing}"


def check_runs(db: str, check_id: str) -> list[tuple[int, int]]:
    """The check's runs: when each started (epoch ms) and the pid of the process that ran it."""
    rows = query(
        db,
        "SELECT started_at, result FROM healthcheck_run WHERE check_id = :c ORDER BY started_at",
        c=check_id,
    )
    return [(round(at.timestamp() * 1000), json.loads(result)["pid"]) for at, result in rows]


def assert_once_per_interval(db: str, check_id: str, killed_ms: int) -> None:
    """Each slot of the check's grid ran at most once and, between its first and last runs, none
    is missing but one at the kill (the run the killed worker had claimed and not recorded).

    The grid is the assignment's: the next due time moves by whole intervals (a run late by a
    full interval would restart it, and show here as a missing slot).
    """
    [(next_ms, interval_ms)] = query(
        db,
        "SELECT next_run_ms, interval_ms FROM healthcheck_assignment WHERE check_id = :c",
        c=check_id,
    )
    slots = [(at - next_ms) // interval_ms for at, _ in check_runs(db, check_id)]
    twice = {k: n for k, n in Counter(slots).items() if n > 1}
    assert twice == {}, f"slots ran twice: {twice}"
    missing = sorted(set(range(min(slots), max(slots) + 1)) - set(slots))
    lost = [next_ms + k * interval_ms for k in missing]
    assert len(lost) <= 1, f"slots never ran: {lost} (kill at {killed_ms})"
    assert all(killed_ms - interval_ms - 1000 <= at <= killed_ms + 1000 for at in lost), (
        f"a slot away from the kill never ran: {lost} (kill at {killed_ms})"
    )


def sleep_until(moment: float) -> None:
    """The scenario runs for ``SECONDS``: wait for the next step's moment (monotonic clock)."""
    time.sleep(max(moment - time.monotonic(), 0.0))


def test_two_api_processes_and_two_workers_on_one_database(deployment: Deployment) -> None:
    db = deployment.database_url
    began = time.monotonic()
    api1, api2 = (server.url for server in deployment.api)
    logs = deployment.logs
    first, second = deployment.workers

    # -- interval jobs, scheduled through the API -----------------------------------------
    ok(
        call(api1, "ticker", "startTicker", {"key": "fast", "everyMs": 1000, "sleepMs": 200}),
        "startTicker",
    )
    ok(call(api2, "ticker", "startTicker", {"key": "slow", "everyMs": 2000}), "startTicker")

    # -- maintenance transitions, scheduled by broadcast handlers in every process -------
    cookie = call(
        api1, "auth", "completeOnboarding", {"email": "root@example.com", "password": PASSWORD}
    )
    assert cookie.status_code == 200, cookie.text
    admin = {"Cookie": f"checkstack_session={cookie.cookies['checkstack_session']}"}
    system = ok(
        call(api2, "catalog", "createSystem", {"name": "Checkout"}, **admin), "createSystem"
    )
    window = ok(
        call(
            api1,
            "maintenance",
            "scheduleWindow",
            {"title": "Switch", "systemIds": [system["id"]], "startAt": iso(3), "endAt": iso(7)},
            **admin,
        ),
        "scheduleWindow",
    )

    # -- health checks (1 s and 5 s): each worker's scheduler claims due runs for itself -----
    checks = []
    for name, interval in (("fast", 1), ("slow", 5)):
        config = {"host": "127.0.0.1", "port": deployment.api[1].port}
        body = {
            "name": name,
            "strategyId": "whoami",
            "config": config,
            "intervalSeconds": interval,
        }
        check = ok(
            call(api1, "healthcheck", "createHealthCheck", body, **admin), "createHealthCheck"
        )
        assign = {"id": check["id"], "systemId": system["id"]}
        ok(call(api2, "healthcheck", "assignHealthCheck", assign, **admin), "assignHealthCheck")
        checks.append(check["id"])

    # -- a key deleted through one process fails on the other at once --------------------
    created = ok(
        call(api1, "auth", "createApplication", {"name": "ci"}, **admin), "createApplication"
    )
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert call(api2, "hello", "getGreeting", **bearer).status_code == 200
    ok(
        call(api1, "auth", "deleteApplication", {"id": created["application"]["id"]}, **admin),
        "deleteApplication",
    )
    refused = call(api2, "hello", "getGreeting", **bearer)
    assert (refused.status_code, refused.json()["message"]) == (401, "Invalid API key")

    # -- a role change through one process is in force on the other at once -------------
    role = ok(
        call(
            api1,
            "auth",
            "createRole",
            {"name": "readers", "rules": ["catalog.catalog.read"]},
            **admin,
        ),
        "createRole",
    )
    app = ok(
        call(api1, "auth", "createApplication", {"name": "bot", "roles": [role["id"]]}, **admin),
        "createApplication",
    )
    bot = {"Authorization": f"Bearer {app['token']}"}
    assert call(api2, "catalog", "createSystem", {"name": "A"}, **bot).status_code == 403  # cached
    manage = ["catalog.catalog.read", "catalog.catalog.manage"]
    ok(call(api1, "auth", "updateRole", {"id": role["id"], "rules": manage}, **admin), "updateRole")
    assert call(api2, "catalog", "createSystem", {"name": "B"}, **bot).status_code == 200
    ok(
        call(api2, "auth", "updateRole", {"id": role["id"], "rules": manage[:1]}, **admin),
        "updateRole",
    )
    denied = call(api1, "catalog", "createSystem", {"name": "C"}, **bot)
    assert denied.status_code == 403, denied.text
    assert call(api2, "catalog", "createSystem", {"name": "D"}, **bot).status_code == 403

    # -- kill -9 a worker in the middle of a run, half way through ------------------------
    sleep_until(began + SECONDS / 2)
    wait_for(lambda: len(runs(db, "fast")) >= 5, "five runs of the 1 s job", logs)
    slot, victim = wait_for(
        lambda: running_on(db, "fast", {first.pid, second.pid}), "a run in progress", logs
    )
    os.kill(victim, signal.SIGKILL)
    killed_at = utcnow()
    killed_ms = round(killed_at.timestamp() * 1000)
    killed = next(w for w in deployment.workers if w.pid == victim)
    survivor = next(w for w in deployment.workers if w.pid != victim)
    killed.process.wait()

    def recovered() -> list[datetime]:
        after = [s for s, pid, _ in runs(db, "fast") if s > slot and pid == survivor.pid]
        return after if len(after) >= 5 else []

    after_kill = wait_for(recovered, "five runs by the survivor after the kill", logs)

    # -- health checks go on after the kill, run by the survivor ----------------------------
    def checked_since_kill() -> bool:
        rows = query(
            db,
            "SELECT count(*) FROM healthcheck_run WHERE check_id = :c AND started_at > :t "
            "AND status = 'healthy'",
            c=checks[0],
            t=killed_at,
        )
        return rows[0][0] >= 3

    wait_for(checked_since_kill, "the 1 s health check to run three times after the kill", logs)
    [(slow_checks,)] = query(
        db, "SELECT count(*) FROM healthcheck_run WHERE check_id = :c", c=checks[1]
    )
    assert slow_checks >= 1

    # -- maintenance: started and completed once ----------------------------------------
    def completed() -> bool:
        status = query(db, "SELECT status FROM maintenance_window WHERE id = :id", id=window["id"])
        return status[0][0] == "completed"

    wait_for(completed, "the window to complete", logs)
    got = ok(call(api2, "maintenance", "getWindow", {"id": window["id"]}), "getWindow")
    assert [(e["kind"], e["toStatus"]) for e in got["timeline"]] == AUTOMATIC, logs()

    # -- SIGTERM at the end: the run in progress finishes, the worker exits cleanly ---------
    sleep_until(began + SECONDS)
    term_slot, _ = wait_for(
        lambda: running_on(db, "fast", {survivor.pid}), "a run in progress on the survivor", logs
    )
    survivor.process.send_signal(signal.SIGTERM)
    assert survivor.process.wait(timeout=60) == 0, logs()
    [(finished,)] = query(
        db, "SELECT finished_at FROM ticker_run WHERE key = 'fast' AND slot = :s", s=term_slot
    )
    assert finished is not None, "the run was not allowed to finish"
    assert "Worker stopped" in survivor.logs()

    # -- every slot once ------------------------------------------------------------------
    # The dead worker held the key until its heartbeat was stale: the next slot then ran once,
    # late (it was overdue), and the one after it is again on time. Slots that fell due in
    # between are the outage; from there on none is missing.
    recovery = sorted(after_kill)[:2]
    outage = (slot, recovery[1])
    fast = runs(db, "fast")
    assert_every_slot_once([s for s, *_ in fast], timedelta(seconds=1), outage)
    assert [s for s, pid, f in fast if f is None] == [slot]  # only the killed run never finished
    assert all(pid == survivor.pid for s, pid, _ in fast if s > slot)
    slow = runs(db, "slow")
    assert len(slow) >= 3
    # The 2 s job was most likely not running when the worker died; if it was, the same holds.
    killed_slow = [s for s, _, f in slow if f is None]
    slow_outage = None
    if killed_slow:
        later = sorted(s for s, *_ in slow if s > killed_slow[0])
        slow_outage = (killed_slow[0], later[1] if len(later) > 1 else later[-1])
    assert_every_slot_once([s for s, *_ in slow], timedelta(seconds=2), slow_outage)
    assert {pid for _, pid, _ in fast + slow} <= {first.pid, second.pid}
    assert deployment.workers_alive() == 0

    # -- health checks: once per interval, shared by both workers, never in a serving process
    for check_id in checks:
        assert_once_per_interval(db, check_id, killed_ms)
    by = Counter(pid for at, pid in check_runs(db, checks[0]) if at < killed_ms)
    assert set(by) == {first.pid, second.pid}, f"runs of the 1 s check before the kill: {by}"
    assert min(by.values()) >= sum(by.values()) // 10, f"one worker ran nearly all: {by}"
    ran = {pid for check_id in checks for _, pid in check_runs(db, check_id)}
    assert ran <= {first.pid, second.pid}, f"checks ran outside the workers: {ran}"
    assert all(pid == survivor.pid for at, pid in check_runs(db, checks[0]) if at > killed_ms)
