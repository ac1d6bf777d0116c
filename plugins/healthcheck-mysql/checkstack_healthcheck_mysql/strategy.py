"""The ``mysql`` strategy (MySQL and MariaDB): connect and authenticate; optionally run a query in
a read-only transaction and compare the first value it returns."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    from asyncmy.errors import Error as MySQLError

SslMode = Literal["disable", "require", "verify-ca", "verify-full"]

#: Characters of a returned value quoted in a message at most.
MAX_QUOTED = 60

#: Server error codes a person reads better as words (the server's text quotes names).
CONNECT_ERRORS = {
    1045: "Authentication failed",  # ER_ACCESS_DENIED_ERROR: wrong user or password
    1044: "Access to the database denied",  # ER_DBACCESS_DENIED_ERROR
    1049: "Database does not exist",  # ER_BAD_DB_ERROR
    1040: "Too many connections",  # ER_CON_COUNT_ERROR
    1129: "Host is blocked by the server",  # ER_HOST_IS_BLOCKED
    1130: "Host is not allowed to connect",  # ER_HOST_NOT_PRIVILEGED
}
QUERY_ERRORS = {
    1064: "syntax error",
    1146: "table does not exist",
    1054: "unknown column",
    1142: "permission denied",
    1044: "permission denied",
    1792: "read-only transaction",  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1317: "query interrupted",
}
#: The server stopped the query at the limit the run set (MariaDB, MySQL).
STATEMENT_TIMEOUTS = {1969, 3024}


class MySQLConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to connect, as whom, and what the server must answer."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 3306
    #: The default database of the session (none when unset).
    database: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    user: Annotated[str, Meta(min_length=1, max_length=80)] = "root"
    password: Secret | None = None
    #: ``require`` encrypts without checking the certificate; ``verify-ca`` checks it against
    #: the system's trusted authorities, ``verify-full`` the host name too.
    sslmode: SslMode = "disable"
    #: Run in a read-only transaction; its first row's first column is the value compared.
    query: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    #: The value the query must return, compared as text (``null`` for NULL).
    expected_value: Annotated[str, Meta(max_length=1_000)] | None = None
    #: Connecting and querying slower than this (in all) is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class MySQLStrategy(Strategy[MySQLConfig]):
    id: ClassVar[str] = "mysql"
    display_name: ClassVar[str] = "MySQL / MariaDB"
    description: ClassVar[str] = (
        "Connect to a MySQL or MariaDB server; optionally run a read-only query and compare its "
        "value."
    )
    config_type: ClassVar[type[msgspec.Struct]] = MySQLConfig

    def validate(self, config: MySQLConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.expected_value is not None and config.query is None:
            problems.append(("expectedValue needs a query", ["expectedValue"]))
        return problems

    async def run(self, config: MySQLConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: asyncmy loads only where MySQL checks run, not at server start.
        import asyncmy
        from asyncmy.errors import Error as MySQLError

        data: dict[str, Any] = {"connected": False, "user": config.user}
        started = time.monotonic()
        phase = "connect"
        try:
            # End a moment before the deadline, so this run reports what it was doing rather
            # than being cancelled by the healthcheck plugin.
            async with asyncio.timeout(_budget(allotted)):
                conn = await asyncmy.connect(
                    host=config.host,
                    port=config.port,
                    user=config.user,
                    password=config.password or "",
                    database=config.database,
                    ssl=_ssl(config.sslmode),
                    connect_timeout=max(allotted, 0.001),
                    autocommit=True,
                )
                try:
                    data.update(connected=True, connectMs=_ms(started))
                    data["serverVersion"] = conn.get_server_info()
                    if config.query is not None:
                        phase = "query"
                        queried = time.monotonic()
                        rows = await _read_only(conn, config.query, remaining(deadline))
                        data["queryMs"] = _ms(queried)
                        data["rows"] = len(rows)
                        data["value"] = _text(rows[0][0]) if rows and len(rows[0]) else None
                finally:
                    # A connection abandoned mid-query is dropped, not closed politely.
                    with contextlib.suppress(Exception):
                        if phase == "query" and "value" not in data:
                            conn.close()
                        else:
                            await asyncio.wait_for(conn.ensure_closed(), 0.5)
        except TimeoutError:
            what = "Query timed out" if phase == "query" else "Timed out"
            return _failed(f"{what} after {seconds(allotted)} s", data)
        except MySQLError as exc:
            code, text = _code(exc)
            if code is not None:
                data["error"] = f"{code} {text}"[:500]
            if code in STATEMENT_TIMEOUTS:
                return _failed(f"Query timed out after {seconds(allotted)} s", data)
            if phase == "query":
                words = QUERY_ERRORS.get(code or 0, f"MySQL error {code}")
                return _failed(f"Query failed: {words}", data)
            if code in CONNECT_ERRORS:
                return _failed(CONNECT_ERRORS[code], data)
            if isinstance(exc.__cause__ or exc.__context__, OSError):
                return _failed(network_message(exc, allotted), data)
            return _failed(f"Connection failed (MySQL error {code})", data)
        except (OSError, ssl.SSLError) as exc:
            return _failed(network_message(exc, allotted), data)
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


async def _read_only(conn: Any, query: str, limit: float) -> list[Any]:
    """``query``'s rows, read only: the session's transactions are made read-only first (a
    ``START TRANSACTION READ ONLY`` would not do: DDL commits it implicitly and runs). The
    server stops the query itself after ``limit`` seconds: a query abandoned by the client would
    otherwise go on running there."""
    async with conn.cursor() as cursor:
        await cursor.execute("SET SESSION TRANSACTION READ ONLY")
        if "mariadb" in conn.get_server_info().lower():
            await cursor.execute("SET SESSION max_statement_time = %s", (round(limit, 3),))
        else:  # MySQL's own limit covers SELECT statements only
            await cursor.execute(
                "SET SESSION max_execution_time = %s", (max(int(limit * 1000), 1),)
            )
        await cursor.execute(query)
        return list(await cursor.fetchall() or [])


def _budget(allotted: float) -> float:
    return max(allotted - min(0.05, allotted * 0.05), 0.0)


def _ssl(mode: SslMode) -> ssl.SSLContext | None:
    if mode == "disable":
        return None
    context = ssl.create_default_context()
    if mode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context.check_hostname = mode == "verify-full"
    return context


def _code(exc: MySQLError) -> tuple[int | None, str]:
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return args[0], str(args[1])
    return None, ""


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _text(value: object) -> str:
    """A returned value as the text ``expectedValue`` is compared with."""
    if value is None:
        return "null"
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _quote(value: str | None) -> str:
    text = "no value" if value is None else value
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def _failed(message: str, data: dict[str, Any], *, latency: float | None = None) -> CheckResult:
    if "error" not in data:
        data["error"] = message
    return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
