"""Read throughput: catalog getSystems (20 systems) against a bare handler on the same database.

    uv run python bench/reads.py [--db sqlite|postgres|both] [--connections 32,256]
                                 [--seconds 5] [--rounds 3] [--quick] [--timeout 2]
                                 [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/x]

One real server (uvicorn, one worker, every installed plugin, strict loading) on a database made
for the run (a SQLite file, or a fresh PostgreSQL database dropped afterwards) is seeded through
its API: 20 systems (5 of them in a group), incidents, maintenance windows, a team, and a
read-only API key (an application whose role holds every ``read`` rule, catalog.catalog.read
among them).

The baseline (``_apps.bare_reads_app``) is a plain Litestar handler on the SAME database: with a
key, one primary-key lookup of the application row and the same constant-time digest check; then
one SELECT of the systems; the same JSON bytes (checked before measuring). Both are loaded by the
same generator (wrk with a Lua script: POST, JSON body, headers, ``--latency``) in the same run,
in alternating rounds, so machine noise hits both alike. Printed for each database, number of
connections and caller: requests/s and p99 of both, and the ratio checkstack / bare (issue 8
target: >= 0.5 at 32 connections).

Also measured, one round each: ``hello.getGreeting`` and one list procedure of every other
plugin (found in the server's OpenAPI document), anonymously and with the key where allowed.

Error answers, socket errors and timeouts (no answer within ``--timeout``, and a server still
busy longer than that after the load stopped: requests hung inside) are counted in every
measurement and marked with the server that had them. A run in which checkstack had any says so at
the end and exits with status 1; the bare baseline's own (it has no fair queue: at 256
connections some of its requests may wait past the timeout) are marked but do not fail the run.
What the servers logged as errors is summed up by cause at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from _harness import (
    DEFAULT_TIMEOUT,
    LoadResult,
    generator_name,
    load,
    logged_errors,
    print_logged_errors,
    server,
)
from _stack import (
    ANONYMOUS,
    DEFAULT_POSTGRES_URL,
    KEY,
    ListProcedure,
    Stack,
    database,
    list_procedures,
    prepare,
)

SYSTEMS_BODY = b'{"getSystems": {}}'
GREETING = ListProcedure("hello", "getGreeting", "public", frozenset({"hello.hello.read"}))


@dataclass
class Series:
    """The rounds of one measurement."""

    results: list[LoadResult] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.results) if self.results else 0.0

    @property
    def p99(self) -> float | None:
        values = [r.p99_ms for r in self.results if r.p99_ms is not None]
        return statistics.median(values) if values else None

    @property
    def problems(self) -> str:
        return "; ".join(r.problems() for r in self.results if r.failed)

    def cell(self) -> str:
        p99 = f"{self.p99:8.1f}" if self.p99 is not None else "       -"
        return f"{self.rps:8.0f} {p99}"


@dataclass
class Comparison:
    database: str
    connections: int
    caller: str
    bare: Series = field(default_factory=Series)
    checkstack: Series = field(default_factory=Series)

    @property
    def ratio(self) -> float:
        return self.checkstack.rps / self.bare.rps if self.bare.rps else float("nan")


@dataclass
class Extra:
    database: str
    connections: int
    label: str
    caller: str
    series: Series = field(default_factory=Series)


def _same_answer(checkstack: str, bare: str, stack: Stack) -> None:
    """Both servers give the same bytes for both callers, or the comparison is meaningless."""
    for caller in (ANONYMOUS, KEY):
        headers = {**stack.headers(caller), "content-type": "application/json"}
        ours = httpx.post(f"{checkstack}/api/catalog/", content=SYSTEMS_BODY, headers=headers)
        theirs = httpx.post(f"{bare}/api/catalog/", content=SYSTEMS_BODY, headers=headers)
        if ours.status_code != 200 or ours.content != theirs.content:
            raise SystemExit(
                f"getSystems answers differ ({caller}):\n  checkstack {ours.status_code}: "
                f"{ours.content[:300]!r}\n  bare {theirs.status_code}: {theirs.content[:300]!r}"
            )
    count = len(ours.json()["getSystems"]["systems"])
    assert count == len(stack.system_ids), count


def _extras(procedures: list[ListProcedure], stack: Stack) -> list[ListProcedure]:
    """hello.getGreeting and the first readable list procedure of every plugin but the catalog."""
    chosen = [GREETING]
    seen = {"catalog", "hello"}
    for procedure in procedures:
        readable = procedure.readable_by(ANONYMOUS, stack) or procedure.readable_by(KEY, stack)
        if procedure.plugin not in seen and readable:
            chosen.append(procedure)
            seen.add(procedure.plugin)
    return chosen


def _run_database(
    kind: str, args: argparse.Namespace, comparisons: list[Comparison], extras: list[Extra]
) -> Counter[str]:
    """Measure on one kind of database; returns what the servers logged as errors."""
    with tempfile.TemporaryDirectory(prefix="checkstack-reads-") as tmp:
        workdir = Path(tmp)
        with database(kind, workdir, args.postgres_url) as database_url:
            env = {
                "CHECKSTACK_DATABASE_URL": database_url,
                "CHECKSTACK_STRICT_PLUGINS": "1",
                "CHECKSTACK_SECRET_KEY": secrets.token_urlsafe(32),
            }
            logs = (workdir / "checkstack.log", workdir / "bare.log")
            with server(
                "checkstack_core.app:_factory", env, ready_path="/readyz", log=logs[0]
            ) as checkstack:
                stack = prepare(checkstack)
                procedures = list_procedures(checkstack)
                with server("_apps:bare_reads_app", env, log=logs[1]) as bare:
                    _same_answer(checkstack, bare, stack)
                    for connections in args.connections:
                        print(f"-- {kind}, {connections} connections", flush=True)
                        _compare(kind, connections, checkstack, bare, stack, args, comparisons)
                        for procedure in _extras(procedures, stack):
                            for caller in (ANONYMOUS, KEY):
                                if not procedure.readable_by(caller, stack):
                                    continue
                                extra = Extra(kind, connections, procedure.label, caller)
                                extra.series.results.append(
                                    _load(checkstack, procedure, stack, caller, connections, args)
                                )
                                extras.append(extra)
            return logged_errors(*logs)


def _load(
    base: str,
    procedure: ListProcedure,
    stack: Stack,
    caller: str,
    connections: int,
    args: argparse.Namespace,
    side: str = "checkstack",
) -> LoadResult:
    url = f"{base}/api/{procedure.plugin}/"
    result = load(
        url,
        procedure.body,
        stack.headers(caller),
        connections=connections,
        duration=args.seconds,
        timeout=args.timeout,
        settle_url=f"{base}/readyz",
    )
    if result.failed:
        print(f"    !!! {side}, {procedure.label} ({caller}): {result.problems()}", flush=True)
    return result


def _compare(
    kind: str,
    connections: int,
    checkstack: str,
    bare: str,
    stack: Stack,
    args: argparse.Namespace,
    comparisons: list[Comparison],
) -> None:
    systems = ListProcedure("catalog", "getSystems", "public", frozenset())
    pairs = [Comparison(kind, connections, caller) for caller in (ANONYMOUS, KEY)]
    comparisons.extend(pairs)
    warm = argparse.Namespace(**{**vars(args), "seconds": 1})
    print("    (warm-up)", flush=True)
    for base, side in ((bare, "bare"), (checkstack, "checkstack")):
        _load(base, systems, stack, KEY, connections, warm, side)
    print("    (measuring)", flush=True)
    for _ in range(args.rounds):
        for pair in pairs:
            pair.bare.results.append(
                _load(bare, systems, stack, pair.caller, connections, args, "bare")
            )
            pair.checkstack.results.append(
                _load(checkstack, systems, stack, pair.caller, connections, args)
            )


def _report(comparisons: list[Comparison], extras: list[Extra]) -> tuple[bool, bool]:
    """Print the tables; whether checkstack's measurements had errors, and the baseline's."""
    print()
    print("catalog.getSystems, 20 systems          bare            checkstack")
    print("database    conns  caller       req/s   p99 ms     req/s   p99 ms   ratio")
    failed = baseline_failed = False
    for c in comparisons:
        print(
            f"{c.database:10} {c.connections:6}  {c.caller:10} {c.bare.cell()}  "
            f"{c.checkstack.cell()}  {c.ratio:6.2f}"
        )
        for side, series in (("bare", c.bare), ("checkstack", c.checkstack)):
            if series.problems:
                if side == "bare":
                    baseline_failed = True
                else:
                    failed = True
                print(f"    !!! {side}: {series.problems}")
    print()
    print("other procedures (checkstack, 1 round)")
    print("database    conns  procedure                    caller       req/s   p99 ms")
    for e in extras:
        print(f"{e.database:10} {e.connections:6}  {e.label:28} {e.caller:10} {e.series.cell()}")
        if e.series.problems:
            failed = True
            print(f"    !!! {e.series.problems}")
    return failed, baseline_failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--connections",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[32, 256],
        help="comma-separated connection counts (default 32,256)",
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 s, 1 round")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds without an answer after which a request counts as timed out",
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="PostgreSQL server for --db postgres (a fresh database is created and dropped)",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2.0, 1

    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"load generator: {generator_name()}; {args.rounds} x {args.seconds:.0f} s rounds; "
        f"timeout {args.timeout:.0f} s; one server process each",
        flush=True,
    )
    comparisons: list[Comparison] = []
    extras: list[Extra] = []
    logged: Counter[str] = Counter()
    for kind in kinds:
        logged += _run_database(kind, args, comparisons, extras)
    failed, baseline_failed = _report(comparisons, extras)
    print_logged_errors(logged)
    if baseline_failed and not failed:
        print("\nThe bare baseline had errors (marked '!!! bare' above); checkstack had none.")
    if failed:
        print("\n" + "!" * 78)
        print("!!! CHECKSTACK HAD ERRORS (see '!!!' above): the figures marked are not clean.")
        print("!" * 78)
        sys.exit(1)


if __name__ == "__main__":
    main()
