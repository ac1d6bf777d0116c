"""A third-party health check strategy, as the docs show it: Redis ``PING`` (with an optional
password, a secret field). A distribution would name ``plugin`` in its ``checkstack.plugins``
entry point; the tests load it directly."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining

from checkstack_core import Plugin, hookimpl


class RedisConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    host: str
    port: Annotated[int, msgspec.Meta(ge=1, le=65_535)] = 6379
    password: Secret | None = None  # encrypted at rest, "********" in every output


class RedisPing(Strategy[RedisConfig]):
    id = "redis"
    display_name = "Redis PING"
    description = "Send PING (after AUTH when a password is set); expect +PONG."
    config_type = RedisConfig

    async def run(self, config: RedisConfig, deadline: float) -> CheckResult:
        allotted = remaining(deadline)
        started = time.monotonic()
        try:
            async with asyncio.timeout(allotted):
                reader, writer = await asyncio.open_connection(config.host, config.port)
                try:
                    if config.password is not None:
                        writer.write(f"AUTH {config.password}\r\n".encode())
                        if not (await reader.readline()).startswith(b"+OK"):
                            return CheckResult("unhealthy", message="Authentication failed")
                    writer.write(b"PING\r\n")
                    reply = await reader.readline()
                finally:
                    writer.close()
        except TimeoutError:
            return CheckResult("unhealthy", message=f"Timed out after {seconds(allotted)} s")
        except OSError as exc:
            return CheckResult("unhealthy", message=network_message(exc, allotted))
        latency = (time.monotonic() - started) * 1000
        if reply.strip() != b"+PONG":
            return CheckResult("unhealthy", latency_ms=latency, message="Unexpected reply")
        return CheckResult(
            "healthy", latency_ms=latency, message="PONG", data={"reply": reply.decode().strip()}
        )


class hooks:
    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[Strategy[RedisConfig]]:
        return [RedisPing()]


plugin = Plugin(
    id="healthcheck-redis",
    name="Redis health checks",
    depends_on=["healthcheck"],
    hooks=hooks,
)
