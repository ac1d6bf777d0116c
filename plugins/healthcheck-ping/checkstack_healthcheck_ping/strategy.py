"""The ``ping`` strategy: ICMP echo requests (``icmplib``), judged by packet loss and average
round trip.

ICMP needs a privilege: an *unprivileged* ICMP datagram socket (Linux allows it to the groups in
``net.ipv4.ping_group_range``) or a *raw* socket (root, or the ``CAP_NET_RAW`` capability).
``mode: "auto"`` tries the datagram socket first, then the raw one; without either the run says
``ICMP not permitted: ...`` rather than failing obscurely.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import seconds
from checkstack_healthcheck.strategy import CheckResult, Strategy, remaining
from icmplib import async_ping
from icmplib.exceptions import ICMPLibError, NameLookupError, SocketPermissionError
from msgspec import Meta

Mode = Literal["auto", "unprivileged", "privileged"]
Percent = Annotated[float, Meta(gt=0, le=100)]
Millis = Annotated[float, Meta(gt=0, le=60_000)]

#: Why each mode may be refused, in the words of ``ICMP not permitted: ...``.
NOT_PERMITTED = {
    "unprivileged": "this process's group may not open ICMP datagram sockets "
    "(net.ipv4.ping_group_range)",
    "privileged": "raw sockets need root or CAP_NET_RAW",
}


class PingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Whom to ping, how often, and how much loss and delay is acceptable."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    count: Annotated[int, Meta(ge=1, le=20)] = 3
    interval_ms: Annotated[float, Meta(ge=10, le=10_000)] = 200
    #: How long to wait for each reply (shortened when the check's timeout needs it).
    reply_timeout_ms: Millis = 1_000
    #: ``unprivileged`` (ICMP datagram socket), ``privileged`` (raw socket), or ``auto``: the
    #: first of the two this process may open.
    mode: Mode = "auto"
    #: Packet loss (percent) at or above which the run is ``degraded`` / ``unhealthy``.
    degraded_loss_percent: Percent = 1
    unhealthy_loss_percent: Percent = 100
    #: Average round trip (ms) above which the run is ``degraded`` / ``unhealthy``.
    degraded_rtt_ms: Millis | None = None
    unhealthy_rtt_ms: Millis | None = None


class PingStrategy(Strategy[PingConfig]):
    id: ClassVar[str] = "ping"
    display_name: ClassVar[str] = "Ping (ICMP)"
    description: ClassVar[str] = (
        "Send ICMP echo requests; judge packet loss and round trip. Needs ICMP datagram "
        "sockets (net.ipv4.ping_group_range) or raw sockets (root or CAP_NET_RAW)."
    )
    config_type: ClassVar[type[msgspec.Struct]] = PingConfig

    def validate(self, config: PingConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@:" for c in config.host) and not _is_ipv6(config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.degraded_loss_percent > config.unhealthy_loss_percent:
            problems.append(("must not exceed unhealthyLossPercent", ["degradedLossPercent"]))
        if (
            config.degraded_rtt_ms is not None
            and config.unhealthy_rtt_ms is not None
            and config.degraded_rtt_ms > config.unhealthy_rtt_ms
        ):
            problems.append(("must not exceed unhealthyRttMs", ["degradedRttMs"]))
        return problems

    async def run(self, config: PingConfig, deadline: float) -> CheckResult:
        budget = remaining(deadline) * 0.9
        interval = config.interval_ms / 1000
        # Every reply may be waited for in turn: fit count waits and the gaps in the budget.
        reply_timeout = min(
            config.reply_timeout_ms / 1000, (budget - (config.count - 1) * interval) / config.count
        )
        if reply_timeout < 0.01:
            return _failed(
                f"Timeout too short for {config.count} packets {config.interval_ms:g} ms apart"
            )
        modes: list[Literal["unprivileged", "privileged"]] = (
            ["unprivileged", "privileged"] if config.mode == "auto" else [config.mode]
        )
        refused: list[str] = []
        started = time.monotonic()
        for mode in modes:
            try:
                async with asyncio.timeout(budget):
                    host = await async_ping(
                        config.host,
                        count=config.count,
                        interval=interval,
                        timeout=reply_timeout,
                        privileged=mode == "privileged",
                    )
            except SocketPermissionError:
                refused.append(NOT_PERMITTED[mode])
                continue
            except NameLookupError:
                return _failed("Could not resolve host")
            except TimeoutError:
                return _failed(f"Timed out after {seconds(budget)} s")
            except ICMPLibError as exc:
                return _failed(f"Ping failed: {exc}")
            return _judge(config, host, mode, started)
        return _failed(f"ICMP not permitted: {'; '.join(refused)}")


def _judge(config: PingConfig, host: Any, mode: str, started: float) -> CheckResult:
    received = int(host.packets_received)
    # Counted against the packets asked for: one that could not even be sent is lost too.
    loss = round(100 * (1 - received / config.count), 1)
    data: dict[str, Any] = {
        "address": host.address,
        "mode": mode,
        "sent": config.count,
        "received": received,
        "lossPercent": loss,
        "durationMs": round((time.monotonic() - started) * 1000, 3),
    }
    if received == 0:
        return CheckResult("unhealthy", message="No reply (100% packet loss)", data=data)
    rtt = round(float(host.avg_rtt), 3)
    data.update(
        minRttMs=round(float(host.min_rtt), 3),
        avgRttMs=rtt,
        maxRttMs=round(float(host.max_rtt), 3),
        jitterMs=round(float(host.jitter), 3),
    )

    def result(status: Any, message: str) -> CheckResult:
        return CheckResult(status, latency_ms=rtt, message=message, data=data)

    loss_text = f"{loss:g}% packet loss"
    if loss >= config.unhealthy_loss_percent:
        return result("unhealthy", f"{loss_text} (threshold {config.unhealthy_loss_percent:g}%)")
    if config.unhealthy_rtt_ms is not None and rtt > config.unhealthy_rtt_ms:
        return result(
            "unhealthy", f"Round trip {rtt:g} ms (threshold {config.unhealthy_rtt_ms:g} ms)"
        )
    if loss >= config.degraded_loss_percent:
        return result("degraded", f"{loss_text} (threshold {config.degraded_loss_percent:g}%)")
    if config.degraded_rtt_ms is not None and rtt > config.degraded_rtt_ms:
        return result(
            "degraded", f"Round trip {rtt:g} ms (threshold {config.degraded_rtt_ms:g} ms)"
        )
    return result("healthy", f"{received}/{config.count} replies, round trip {rtt:g} ms")


def _is_ipv6(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).version == 6
    except ValueError:
        return False


def _failed(message: str) -> CheckResult:
    return CheckResult("unhealthy", message=message, data={"error": message})
