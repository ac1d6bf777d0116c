"""The ``redis`` strategy: connect (authenticating when credentials are set), select the database,
``PING``; optionally ``GET`` a key and compare its value."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    from redis import exceptions as errors

#: Characters of a value quoted in a message at most.
MAX_QUOTED = 60


class RedisConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to connect, as whom, and what a key must hold."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 6379
    #: The logical database (``SELECT``).
    db: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    #: An ACL user (Redis 6+); without it the password is the ``default`` user's.
    username: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    password: Secret | None = None
    tls: bool = False
    #: With ``tls``: check the certificate against the system's trusted authorities and the
    #: host name.
    verify_tls: bool = True
    #: A key to read; it must exist (and hold ``expectedValue`` when that is set).
    key: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    expected_value: Annotated[str, Meta(max_length=10_000)] | None = None
    #: Connecting and answering slower than this (in all) is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class RedisStrategy(Strategy[RedisConfig]):
    id: ClassVar[str] = "redis"
    display_name: ClassVar[str] = "Redis"
    description: ClassVar[str] = (
        "PING a Redis server (after AUTH when credentials are set); optionally check a key's value."
    )
    config_type: ClassVar[type[msgspec.Struct]] = RedisConfig

    def validate(self, config: RedisConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.expected_value is not None and config.key is None:
            problems.append(("expectedValue needs a key", ["expectedValue"]))
        if config.username is not None and config.password is None:
            problems.append(("username needs a password", ["password"]))
        return problems

    async def run(self, config: RedisConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: redis-py loads only where Redis checks run, not at server start.
        import redis.asyncio as redis
        from redis import exceptions as errors
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        data: dict[str, Any] = {"connected": False}
        started = time.monotonic()
        client = redis.Redis(
            host=config.host,
            port=config.port,
            db=config.db,
            username=config.username,
            password=config.password,
            ssl=config.tls,
            ssl_cert_reqs="required" if config.verify_tls else "none",
            ssl_check_hostname=config.verify_tls,
            socket_connect_timeout=max(allotted, 0.001),
            socket_timeout=max(allotted, 0.001),
            # One attempt: a health check reports what it saw, it does not retry it away.
            retry=Retry(NoBackoff(), 0),
            single_connection_client=True,
        )
        try:
            # End a moment before the deadline, so this run reports what it saw rather than
            # being cancelled by the healthcheck plugin.
            async with asyncio.timeout(_budget(allotted)):
                await client.ping()
                data.update(connected=True, pingMs=_ms(started))
                if config.key is not None:
                    value = await client.get(config.key)
                    data["value"] = None if value is None else _text(value)[:1_000]
        except (TimeoutError, errors.TimeoutError):
            return _failed(f"Timed out after {seconds(allotted)} s", data)
        except errors.AuthenticationError:
            return _failed("Authentication failed", data)
        except errors.ConnectionError as exc:
            return _failed(network_message(exc, allotted), data)
        except errors.ResponseError as exc:
            return _failed(_response_message(exc), data)
        except errors.RedisError as exc:
            return _failed(f"Redis error ({type(exc).__name__})", data)
        except OSError as exc:
            return _failed(network_message(exc, allotted), data)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 0.5)
        latency = _ms(started)
        if config.key is not None:
            if data["value"] is None:
                return _failed("Key not found", data, latency=latency)
            if config.expected_value is not None and data["value"] != config.expected_value:
                return _failed(
                    f"Key holds {_quote(data['value'])}, expected {_quote(config.expected_value)}",
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
        what = "Key holds the expected value" if config.key is not None else "PONG"
        return CheckResult(
            "healthy", latency_ms=latency, message=f"{what} in {latency:.0f} ms", data=data
        )


def _response_message(exc: errors.ResponseError) -> str:
    """The server's refusal in words; its own text can quote a key or a user name."""
    from redis import exceptions as errors

    text = str(exc)
    if isinstance(exc, errors.NoPermissionError) or text.startswith("NOPERM"):
        return "Permission denied"
    if text.startswith("WRONGTYPE"):
        return "Key holds a value that is not a string"
    if text.startswith(("NOAUTH", "WRONGPASS")):
        return "Authentication failed"
    if "DB index is out of range" in text:
        return "Database index out of range"
    if text.startswith("LOADING"):
        return "Server is loading its data"
    return f"Server error ({text.split(' ', 1)[0][:30]})"


def _budget(allotted: float) -> float:
    return max(allotted - min(0.05, allotted * 0.05), 0.0)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _quote(value: str) -> str:
    return value if len(value) <= MAX_QUOTED else value[: MAX_QUOTED - 1] + "…"


def _failed(message: str, data: dict[str, Any], *, latency: float | None = None) -> CheckResult:
    data.setdefault("error", message)
    return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
