"""Load acceptance (issue 8): every list procedure under 256 connections, PASS or FAIL.

    uv run python bench/load_acceptance.py [--db sqlite|postgres|both] [--seconds 10]
                                           [--connections 256] [--timeout 2] [--p99-ms 1000]
                                           [--postgres-url postgresql+asyncpg://postgres@...]

The criterion: "256 concurrent connections for 10 s on every list procedure of every first-party
plugin, anonymous and with a read-only key, one server process: no error answer, no socket
timeout, p99 under 1 s, on SQLite and on PostgreSQL".

For each database: one server process (uvicorn, one worker, every installed plugin) on a database
made for the run, seeded through its API (see ``_stack.prepare``: 20 systems, a group, a team,
incidents, maintenance windows, a read-only key holding every ``read`` rule). The list procedures
are discovered from the server's OpenAPI document (queries named ``get...`` needing no input and
answering an object with a required array), not hard-coded; each is loaded with wrk as every
caller allowed to call it (a procedure neither caller may call, e.g. one for logged-in users
only, is listed as n/a). A row PASSes with zero error answers, zero socket errors, zero timeouts
(no answer within ``--timeout`` seconds, including requests still unanswered when the run
ends: the server must answer ``/readyz`` promptly again within that time) and p99 under
``--p99-ms``. Exit status 1 on any FAIL.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    DEFAULT_TIMEOUT,
    LoadResult,
    generator_name,
    load,
    logged_errors,
    print_logged_errors,
    server,
)
from _stack import ANONYMOUS, DEFAULT_POSTGRES_URL, KEY, database, list_procedures, prepare


@dataclass
class Row:
    database: str
    procedure: str
    caller: str
    result: LoadResult | None  # None: the caller may not call it (n/a)
    p99_limit_ms: float

    @property
    def failures(self) -> list[str]:
        if self.result is None:
            return []
        found = [self.result.problems()] if self.result.failed else []
        if self.result.p99_ms is None:
            found.append("no answer at all")
        elif self.result.p99_ms >= self.p99_limit_ms:
            found.append(f"p99 {self.result.p99_ms:.0f} ms >= {self.p99_limit_ms:.0f} ms")
        return found

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "n/a"
        return "FAIL" if self.failures else "PASS"


def _run_database(kind: str, args: argparse.Namespace, logged: Counter[str]) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="checkstack-acceptance-") as tmp:
        workdir = Path(tmp)
        rows: list[Row] = []
        with database(kind, workdir, args.postgres_url) as database_url:
            env = {
                "CHECKSTACK_DATABASE_URL": database_url,
                "CHECKSTACK_STRICT_PLUGINS": "1",
                "CHECKSTACK_SECRET_KEY": secrets.token_urlsafe(32),
            }
            log = workdir / "server.log"
            with server("checkstack_core.app:_factory", env, ready_path="/readyz", log=log) as url:
                stack = prepare(url)
                for procedure in list_procedures(url):
                    for caller in (ANONYMOUS, KEY):
                        if not procedure.readable_by(caller, stack):
                            rows.append(Row(kind, procedure.label, caller, None, args.p99_ms))
                            continue
                        result = load(
                            f"{url}/api/{procedure.plugin}/",
                            procedure.body,
                            stack.headers(caller),
                            connections=args.connections,
                            duration=args.seconds,
                            timeout=args.timeout,
                            # Requests still stuck in the server are seen, and do not weigh on
                            # the next row.
                            settle_url=f"{url}/readyz",
                        )
                        row = Row(kind, procedure.label, caller, result, args.p99_ms)
                        rows.append(row)
                        print(_line(row), flush=True)
            logged.update(logged_errors(log))
        return rows


def _line(row: Row) -> str:
    result = row.result
    if result is None:
        figures = f"{'':>8} {'':>8} {'':>8}"
    else:
        p99 = f"{result.p99_ms:8.0f}" if result.p99_ms is not None else "       -"
        figures = f"{result.requests:8d} {result.rps:8.0f} {p99}"
    detail = "; ".join(row.failures) if row.failures else ""
    if row.result is None:
        detail = "not allowed for this caller"
    return (
        f"{row.verdict:5} {row.database:9} {row.procedure:26} {row.caller:10} {figures}  {detail}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds without an answer after which a request counts as a socket timeout",
    )
    parser.add_argument("--p99-ms", type=float, default=1000.0)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    args = parser.parse_args()

    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"load generator: {generator_name()}; {args.connections} connections for "
        f"{args.seconds:.0f} s per row; timeout {args.timeout:.0f} s; p99 limit "
        f"{args.p99_ms:.0f} ms; one server process",
        flush=True,
    )
    header = (
        f"{'':5} {'database':9} {'procedure':26} {'caller':10} "
        f"{'answers':>8} {'req/s':>8} {'p99 ms':>8}"
    )
    print(header, flush=True)
    rows: list[Row] = []
    logged: Counter[str] = Counter()
    for kind in kinds:
        rows += _run_database(kind, args, logged)

    print("\nsummary")
    print(header)
    for row in rows:
        print(_line(row))
    failed = [row for row in rows if row.verdict == "FAIL"]
    measured = [row for row in rows if row.result is not None]
    print_logged_errors(logged)
    print()
    if failed:
        print(f"FAIL: {len(failed)} of {len(measured)} rows failed")
        sys.exit(1)
    print(f"PASS: all {len(measured)} rows")


if __name__ == "__main__":
    main()
