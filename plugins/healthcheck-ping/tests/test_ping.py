"""The ping strategy through HTTP against 127.0.0.1 (and a documentation address nothing
answers), and what it says when the process may not send ICMP.

Sending ICMP needs a privilege (see the plugin's docs). The test process is checked for each
kind first: a test needing ICMP skips, saying why, on a machine that allows neither; the
"not permitted" test forces the kind this process lacks (raw sockets without root or
CAP_NET_RAW; datagram sockets outside ``net.ipv4.ping_group_range``).
"""

from __future__ import annotations

import socket
import time
from typing import Any

import msgspec
import pytest

from checkstack_core import BadRequest


def allowed(kind: int) -> bool:
    try:
        socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
    except PermissionError:
        return False
    return True


RAW = allowed(socket.SOCK_RAW)
DATAGRAM = allowed(socket.SOCK_DGRAM)
needs_icmp = pytest.mark.skipif(
    not (RAW or DATAGRAM),
    reason="this process may open neither raw ICMP sockets (root or CAP_NET_RAW) nor ICMP "
    "datagram sockets (net.ipv4.ping_group_range)",
)


async def ping(admin: Any, **config: Any) -> dict[str, Any]:
    body = {"name": "ping", "strategyId": "ping", "config": {"host": "127.0.0.1", **config}}
    created = await admin.call("healthcheck", "createHealthCheck", body)
    return dict(await admin.call("healthcheck", "runNow", {"id": created["id"]}))


async def test_the_strategy_is_served_with_its_schema(admin):
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "ping")["configSchema"]
    assert schema["required"] == ["host"]
    assert sorted(schema["properties"]["mode"]["enum"]) == ["auto", "privileged", "unprivileged"]


@needs_icmp
async def test_loopback_answers_healthy(admin):
    ran = await ping(admin, count=3, intervalMs=10)
    assert ran["status"] == "healthy"
    assert ran["message"].startswith("3/3 replies, round trip ")
    result = ran["result"]
    assert (result["sent"], result["received"], result["lossPercent"]) == (3, 3, 0)
    assert result["mode"] == ("unprivileged" if DATAGRAM else "privileged")
    assert ran["latencyMs"] == result["avgRttMs"]


@needs_icmp
async def test_round_trip_thresholds(admin):
    # No echo crosses the loopback in a microsecond: these thresholds are always exceeded.
    degraded = await ping(admin, count=1, degradedRttMs=0.001)
    assert degraded["status"] == "degraded"
    assert degraded["message"].endswith(" ms (threshold 0.001 ms)")
    assert degraded["message"].startswith("Round trip ")
    unhealthy = await ping(admin, count=1, degradedRttMs=0.001, unhealthyRttMs=0.002)
    assert unhealthy["status"] == "unhealthy"
    assert unhealthy["message"].endswith(" ms (threshold 0.002 ms)")


async def test_without_the_privilege_the_message_says_so(admin):
    if RAW and DATAGRAM:
        pytest.skip("this process may open both kinds of ICMP socket: none can be refused")
    mode, reason = (
        ("unprivileged", "this process's group may not open ICMP datagram sockets")
        if not DATAGRAM
        else ("privileged", "raw sockets need root or CAP_NET_RAW")
    )
    ran = await ping(admin, mode=mode)
    assert ran["status"] == "unhealthy"
    assert ran["message"].startswith(f"ICMP not permitted: {reason}"), ran["message"]


async def test_a_timeout_too_short_for_the_packets_says_so(admin):
    ran = await ping(admin, count=20, intervalMs=10_000)
    assert (ran["status"], ran["message"]) == (
        "unhealthy",
        "Timeout too short for 20 packets 10000 ms apart",
    )


async def test_bad_configs_are_refused_with_the_path(admin):
    for config, path in [
        ({"host": "http://x/"}, ["config", "host"]),
        ({"host": "127.0.0.1", "count": 0}, ["config", "count"]),
        (
            {"host": "127.0.0.1", "degradedLossPercent": 60, "unhealthyLossPercent": 50},
            ["config", "degradedLossPercent"],
        ),
        (
            {"host": "127.0.0.1", "degradedRttMs": 60, "unhealthyRttMs": 50},
            ["config", "degradedRttMs"],
        ),
        ({"host": "127.0.0.1", "mode": "root"}, ["config", "mode"]),
    ]:
        with pytest.raises(BadRequest) as refused:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "bad", "strategyId": "ping", "config": config},
            )
        assert [issue["path"] for issue in refused.value.data["issues"]] == [path]


@pytest.mark.parametrize(
    ("rtts", "thresholds", "expected"),
    [
        ([], {}, ("unhealthy", "No reply (100% packet loss)")),
        ([0.2, 0.3], {}, ("degraded", "33.3% packet loss (threshold 1%)")),
        ([0.2], {"unhealthyLossPercent": 50}, ("unhealthy", "66.7% packet loss (threshold 50%)")),
        ([0.2, 0.3], {"degradedLossPercent": 50}, ("healthy", "2/3 replies, round trip 0.25 ms")),
    ],
)
def test_loss_is_judged_against_the_packets_asked_for(rtts, thresholds, expected):
    """Loopback always answers, so loss is shown on icmplib's own result type, as a lossy link
    would return it (three requests asked for, ``len(rtts)`` replies)."""
    from checkstack_healthcheck_ping.strategy import PingConfig, _judge
    from icmplib import Host

    config = msgspec.convert(
        {"host": "192.0.2.1", "count": 3, **thresholds}, PingConfig, from_attributes=False
    )
    judged = _judge(config, Host("192.0.2.1", 3, rtts), "privileged", time.monotonic())
    assert (judged.status, judged.message) == expected
    assert judged.data["received"] == len(rtts)
