"""Cost of API-key authentication: hello getGreeting with a valid key vs the same call anonymously.

    uv run python bench/auth_keys.py [--seconds 5] [--connections 32] [--rounds 3]
                                     [--database-url postgresql+asyncpg://...]

One real server (uvicorn, one worker, the installed auth and hello plugins) answers both kinds of
call, loaded by the same generator in the same run, alternating rounds so machine noise hits both
alike. Both paths read the database once to authenticate: the key's application row joined with its
roles' rules and teams, or the anonymous role's rules. Target: keyed / anonymous >= 0.8.

``--reference`` also measures a second server without the auth plugin (everyone anonymous, rules
from the contracts, no authentication query at all), to show what reading the anonymous role costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from _harness import generator_name, load, server
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from checkstack_core.db import normalize_url

BODY = b'{"getGreeting": {"name": "bench"}}'
EXPECTED = b'{"getGreeting":{"message":"Hello, bench!"}}'
ADMIN = {"email": "bench@example.com", "password": "Bench-pass-123"}


def _post(url: str, procedure: str, input: dict, headers: dict | None = None) -> dict:
    response = httpx.post(f"{url}/api/auth/", json={procedure: input}, headers=headers, timeout=30)
    response.raise_for_status()
    return response.json()[procedure]


def _api_key(url: str) -> str:
    """Onboard an administrator and create an application with no extra role."""
    response = httpx.post(f"{url}/api/auth/", json={"completeOnboarding": ADMIN}, timeout=30)
    response.raise_for_status()
    cookie = {"Cookie": f"checkstack_session={response.cookies['checkstack_session']}"}
    return str(_post(url, "createApplication", {"name": "bench"}, cookie)["token"])


@contextmanager
def _database(base_url: str | None) -> Iterator[str | None]:
    """A fresh database on the PostgreSQL server of ``base_url``, dropped afterwards."""
    if not base_url:
        yield None  # the harness gives every server a fresh SQLite file
        return
    server_url = make_url(normalize_url(base_url))
    name = f"checkstack_bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _line(label: str, values: list[float]) -> None:
    rounds = ", ".join(f"{v:.0f}" for v in values)
    print(f"{label:27}: {statistics.median(values):9.0f} req/s  (rounds: {rounds})")


def _measure(
    env: dict[str, str], args: argparse.Namespace, keyed: list[float], anonymous: list[float]
) -> None:
    """Alternate anonymous and keyed rounds against one server."""
    with server("checkstack_core.app:_factory", env) as url:
        endpoint = f"{url}/api/hello/"
        bearer = {"Authorization": f"Bearer {_api_key(url)}"}
        for headers in ({}, bearer):  # same answer both ways, or the comparison is meaningless
            check = httpx.post(
                endpoint, content=BODY, headers={**headers, "content-type": "application/json"}
            )
            assert check.content == EXPECTED, check.content
        load(endpoint, BODY, bearer, connections=args.connections, duration=1)  # warm up
        for _ in range(args.rounds):
            for headers, sink in (({}, anonymous), (bearer, keyed)):
                result = load(
                    endpoint, BODY, headers, connections=args.connections, duration=args.seconds
                )
                assert result.errors == 0, f"{result.errors} failed requests"
                sink.append(result.rps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to run on (a fresh database is created and dropped on it); "
        "default: a fresh SQLite file",
    )
    parser.add_argument("--reference", action="store_true", help="also measure without auth")
    args = parser.parse_args()

    env = {"CHECKSTACK_PLUGINS": "auth,hello", "CHECKSTACK_STRICT_PLUGINS": "1"}
    keyed: list[float] = []
    anonymous: list[float] = []
    reference: list[float] = []
    with _database(args.database_url) as database_url:
        if database_url:
            env["CHECKSTACK_DATABASE_URL"] = database_url
        _measure(env, args, keyed, anonymous)
    if args.reference:
        plain = {"CHECKSTACK_PLUGINS": "hello", "CHECKSTACK_STRICT_PLUGINS": "1"}
        with server("checkstack_core.app:_factory", plain) as url:
            for _ in range(args.rounds):
                result = load(
                    f"{url}/api/hello/", BODY, connections=args.connections, duration=args.seconds
                )
                assert result.errors == 0, f"{result.errors} failed requests"
                reference.append(result.rps)

    keyed_median, anonymous_median = statistics.median(keyed), statistics.median(anonymous)
    database = args.database_url.split("://", 1)[0] if args.database_url else "sqlite (fresh file)"
    print(
        f"load generator: {generator_name()}, {args.connections} connections, "
        f"{args.rounds} x {args.seconds:.0f} s each; database: {database}"
    )
    if reference:
        _line("no auth plugin (reference)", reference)
    _line("anonymous", anonymous)
    _line("valid API key", keyed)
    print(f"{'ratio key / anonymous':27}: {keyed_median / anonymous_median:9.2f}  (target >= 0.80)")


if __name__ == "__main__":
    main()
