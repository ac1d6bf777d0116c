"""The ``tcp`` strategy: open a connection; optionally read until the expected banner text
arrives."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated, ClassVar

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Strategy, remaining
from msgspec import Meta

#: Bytes of banner read at most.
MAX_BANNER = 4096


class TcpConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to connect and what the server must say first."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)]
    #: Text the server's first bytes must contain (e.g. ``SSH-2.0``, ``220``).
    expect_banner: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    #: A connection slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class TcpStrategy(Strategy[TcpConfig]):
    id: ClassVar[str] = "tcp"
    display_name: ClassVar[str] = "TCP"
    description: ClassVar[str] = (
        "Connect to a TCP port; optionally check the banner the server sends first."
    )
    config_type: ClassVar[type[msgspec.Struct]] = TcpConfig

    def validate(self, config: TcpConfig) -> list[tuple[str, list[str | int]]]:
        if any(c.isspace() or c in "/?#@" for c in config.host):
            return [("host must be a host name or an IP address", ["host"])]
        return []

    async def run(self, config: TcpConfig, deadline: float) -> CheckResult:
        allotted = remaining(deadline)
        started = time.monotonic()
        try:
            async with asyncio.timeout(allotted):
                reader, writer = await asyncio.open_connection(config.host, config.port)
        except TimeoutError:
            return _failed(f"Timed out after {seconds(allotted)} s")
        except OSError as exc:
            return _failed(network_message(exc, allotted))
        connected = round((time.monotonic() - started) * 1000, 3)
        data: dict[str, object] = {"connected": True, "connectMs": connected}
        try:
            if config.expect_banner is not None:
                banner = b""
                try:
                    # Leave time to report before the hard limit ends the run.
                    async with asyncio.timeout(remaining(deadline) * 0.9):
                        while config.expect_banner.encode() not in banner:
                            chunk = await reader.read(MAX_BANNER - len(banner))
                            if not chunk:
                                break
                            banner += chunk
                            if len(banner) >= MAX_BANNER:
                                break
                except TimeoutError:
                    pass
                except OSError as exc:
                    data["error"] = network_message(exc, allotted)
                text = banner.decode("utf-8", errors="replace")
                data["banner"] = text[:1000]
                if config.expect_banner not in text:
                    message = "No banner received" if not banner else "Banner did not match"
                    return CheckResult(
                        "unhealthy", latency_ms=connected, message=message, data=data
                    )
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await writer.wait_closed()
        if config.degraded_latency_ms is not None and connected > config.degraded_latency_ms:
            return CheckResult(
                "degraded",
                latency_ms=connected,
                message=f"Slow connection: {connected:.0f} ms "
                f"(threshold {config.degraded_latency_ms:g} ms)",
                data=data,
            )
        return CheckResult(
            "healthy", latency_ms=connected, message=f"Connected in {connected:.0f} ms", data=data
        )


def _failed(message: str) -> CheckResult:
    return CheckResult("unhealthy", message=message, data={"connected": False, "error": message})
