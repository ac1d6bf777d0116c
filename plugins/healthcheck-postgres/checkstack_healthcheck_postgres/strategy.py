"""The ``postgres`` strategy: connect and authenticate; optionally run a query in a read-only
transaction and compare the first value it returns."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

#: Characters of a returned value quoted in a message at most.
MAX_QUOTED = 60


class PostgresConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to connect, as whom, and what the server must answer."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 5432
    database: Annotated[str, Meta(min_length=1, max_length=63)] = "postgres"
    user: Annotated[str, Meta(min_length=1, max_length=63)] = "postgres"
    password: Secret | None = None
    #: libpq's modes: ``verify-ca`` and ``verify-full`` check the certificate against the
    #: system's trusted authorities (``verify-full`` also the host name).
    sslmode: SslMode = "prefer"
    #: Run in a read-only transaction; its first row's first column is the value compared.
    query: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    #: The value the query must return, compared as text (``true``/``false``, ``null``).
    expected_value: Annotated[str, Meta(max_length=1_000)] | None = None
    #: Connecting and querying slower than this (in all) is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class PostgresStrategy(Strategy[PostgresConfig]):
    id: ClassVar[str] = "postgres"
    display_name: ClassVar[str] = "PostgreSQL"
    description: ClassVar[str] = (
        "Connect to a PostgreSQL server; optionally run a read-only query and compare its value."
    )
    config_type: ClassVar[type[msgspec.Struct]] = PostgresConfig

    def validate(self, config: PostgresConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.expected_value is not None and config.query is None:
            problems.append(("expectedValue needs a query", ["expectedValue"]))
        return problems

    async def run(self, config: PostgresConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: asyncpg loads only where PostgreSQL checks run, not at server start.
        import asyncpg

        data: dict[str, Any] = {"connected": False, "user": config.user}
        started = time.monotonic()
        phase = "connect"
        try:
            # End a moment before the deadline, so this run reports what it was doing rather
            # than being cancelled by the healthcheck plugin.
            async with asyncio.timeout(_budget(allotted)):
                conn = await asyncpg.connect(
                    host=config.host,
                    port=config.port,
                    user=config.user,
                    password=config.password,
                    database=config.database,
                    ssl=_ssl(config.sslmode),
                    timeout=max(allotted, 0.001),
                )
                try:
                    data.update(connected=True, connectMs=_ms(started))
                    # As the server reports it ("15.20 (Debian 15.20-0+deb12u1)").
                    data["serverVersion"] = str(conn.get_settings().server_version)[:100]
                    if config.query is not None:
                        phase = "query"
                        queried = time.monotonic()
                        async with conn.transaction(readonly=True):
                            rows = await conn.fetch(config.query)
                        data["queryMs"] = _ms(queried)
                        data["rows"] = len(rows)
                        data["value"] = _text(rows[0][0]) if rows and len(rows[0]) else None
                finally:
                    try:
                        await asyncio.wait_for(conn.close(), 0.5)
                    except Exception:  # not closed politely in time: drop the socket
                        conn.terminate()
        except TimeoutError:
            what = "Query timed out" if phase == "query" else "Timed out"
            return _failed(f"{what} after {seconds(allotted)} s", data)
        except asyncpg.PostgresError as exc:
            data["error"] = _server_error(exc)
            if isinstance(
                exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
            ):
                # Wrong password, unknown role, a role not allowed to log in: the server words
                # them differently, a person acts on them the same way.
                return _failed("Authentication failed", data)
            if isinstance(exc, asyncpg.InvalidCatalogNameError):
                return _failed("Database does not exist", data)
            if isinstance(exc, asyncpg.TooManyConnectionsError):
                return _failed("Too many connections", data)
            if phase == "query":
                return _failed(f"Query failed: {_condition(exc)}", data)
            return _failed(f"Connection failed: {_condition(exc)}", data)
        except (OSError, ssl.SSLError) as exc:
            if "rejected SSL upgrade" in str(exc):
                return _failed("Server does not support TLS", data)
            return _failed(network_message(exc, allotted), data)
        except asyncpg.InterfaceError as exc:
            return _failed(f"Connection failed: {_condition(exc)}", data)
        latency = _ms(started)
        if config.query is not None:
            if not data["rows"]:
                return _failed("Query returned no rows", data, latency=latency)
            if config.expected_value is not None and data["value"] != config.expected_value:
                return _failed(
                    f"Query returned {_quote(data['value'])}, "
                    f"expected {_quote(config.expected_value)}",
                    data,
                    latency=latency,
                )
        if config.degraded_latency_ms is not None and latency > config.degraded_latency_ms:
            return CheckResult(
                "degraded",
                latency_ms=latency,
                message=f"Slow response: {latency:.0f} ms "
                f"(threshold {config.degraded_latency_ms:g} ms)",
                data=data,
            )
        done = "Query returned the expected value" if config.expected_value is not None else None
        return CheckResult(
            "healthy",
            latency_ms=latency,
            message=f"{done or 'Connected'} in {latency:.0f} ms",
            data=data,
        )


def _budget(allotted: float) -> float:
    return max(allotted - min(0.05, allotted * 0.05), 0.0)


def _ssl(mode: SslMode) -> str | ssl.SSLContext:
    if mode not in ("verify-ca", "verify-full"):
        return mode
    # The system's trusted authorities (asyncpg's own default looks for ~/.postgresql/root.crt).
    context = ssl.create_default_context()
    context.check_hostname = mode == "verify-full"
    return context


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _text(value: object) -> str:
    """A returned value as the text ``expectedValue`` is compared with."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _quote(value: str | None) -> str:
    text = "no value" if value is None else value
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def _condition(exc: Exception) -> str:
    """``UndefinedTableError`` → ``undefined table``: asyncpg names its errors after the
    server's condition names, which a person can read (the server's text may quote the query)."""
    name = type(exc).__name__.removesuffix("Error") or "error"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).lower()


def _server_error(exc: Exception) -> str:
    return f"{getattr(exc, 'sqlstate', '')} {exc}".strip()[:500]


def _failed(message: str, data: dict[str, Any], *, latency: float | None = None) -> CheckResult:
    if "error" not in data:
        data["error"] = message
    return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
