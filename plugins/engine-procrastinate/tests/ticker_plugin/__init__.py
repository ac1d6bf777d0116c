"""A test-only plugin for the multi-process tests: interval jobs that record every run.

``startTicker {"key", "everyMs", "sleepMs"}`` schedules job ``ticker.tick`` under ``key``; each run
inserts a row (key, due time, the worker's pid, start) into ``ticker_run`` and marks it finished
after sleeping ``sleepMs``, so a test reads from the database which process ran which slot, and
which run a killed worker never finished. The tests install it as a distribution (an entry point
in a folder on ``PYTHONPATH``) so real ``checkstack serve`` and ``checkstack worker`` processes load
it like any plugin.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from checkstack_core import Context, Contract, Handlers, JobRun, Plugin, Schema, mutation


class TickerInput(Schema):
    key: str
    every_ms: int = 1000
    sleep_ms: int = 0


class Scheduled(Schema):
    key: str
    next_run_at: datetime


contract = Contract(
    "ticker",
    rules=[],
    procedures=[
        mutation("startTicker", input=TickerInput, output=Scheduled, caller="anonymous"),
    ],
)
handlers = Handlers(contract)

RUNS = sa.table(
    "ticker_run",
    sa.column("id", sa.Integer),
    sa.column("key", sa.Text),
    sa.column("slot", sa.DateTime(timezone=True)),
    sa.column("pid", sa.Integer),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("finished_at", sa.DateTime(timezone=True)),
)


@handlers.implement("startTicker")
async def start_ticker(ctx: Context, input: TickerInput) -> Scheduled:
    every = timedelta(milliseconds=input.every_ms)
    # Slots on whole seconds, so the runs of every key line up in the test's reading.
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    job = await ctx.jobs.schedule_interval(
        "ticker.tick",
        key=input.key,
        every=every,
        start_at=start,
        payload={"sleepMs": input.sleep_ms},
    )
    return Scheduled(key=job.key, next_run_at=job.next_run_at)


plugin = Plugin(
    id="ticker",
    name="Ticker (tests)",
    contract=contract,
    handlers=handlers,
    migrations=Path(__file__).parent / "migrations",
)


@plugin.job("tick")
async def tick(ctx: Context, run: JobRun) -> None:
    conn = await ctx.uow.connection()
    row = await conn.execute(
        sa.insert(RUNS)
        .values(key=run.key, slot=run.scheduled_for, pid=os.getpid(), started_at=datetime.now(UTC))
        .returning(RUNS.c.id)
    )
    run_id = row.scalar_one()
    await ctx.uow.commit()  # visible while the run goes on
    await asyncio.sleep(run.payload["sleepMs"] / 1000)
    conn = await ctx.uow.connection()  # a new transaction, committed when the run ends
    await conn.execute(
        sa.update(RUNS).where(RUNS.c.id == run_id).values(finished_at=datetime.now(UTC))
    )
