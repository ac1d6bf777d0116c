"""The dns strategy through HTTP against a DNS server the tests start (``dnslib`` on a loopback
UDP port, one zone): every record type, expected values, and each failure a resolver can give
(NXDOMAIN, no answer, SERVFAIL, silence, nothing listening)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from dnslib import RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

ZONE = """
ok.test.        300 IN A     192.0.2.10
ok.test.        300 IN A     192.0.2.11
ok.test.        300 IN AAAA  2001:db8::10
ok.test.        300 IN MX    10 mail.ok.test.
ok.test.        300 IN TXT   "v=spf1 -all"
ok.test.        300 IN NS    ns1.ok.test.
www.ok.test.    300 IN CNAME ok.test.
mail.ok.test.   300 IN A     192.0.2.25
"""


class Zone(BaseResolver):  # type: ignore[misc]
    """Answers from :data:`ZONE`: NXDOMAIN for unknown names, SERVFAIL for ``broken.test``."""

    def __init__(self) -> None:
        self.records = RR.fromZone(ZONE)

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        question = request.q
        if question.qname == "broken.test.":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        known = [rr for rr in self.records if rr.rname == question.qname]
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        for rr in known:
            if rr.rtype == question.qtype:
                reply.add_answer(rr)
        return reply


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    server = DNSServer(
        Zone(), address="127.0.0.1", port=0, logger=DNSLogger("-request,-reply,-truncated")
    )
    server.start_thread()
    try:
        yield int(server.server.server_address[1])
    finally:
        server.stop()
        server.server.server_close()


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A UDP port that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


async def resolve(admin: Any, port: int, name: str, **config: Any) -> dict[str, Any]:
    body = {
        "name": "dns",
        "strategyId": "dns",
        "config": {"name": name, "resolver": "127.0.0.1", "port": port, **config},
        "timeoutSeconds": config.pop("timeout", 5),
    }
    body["config"].pop("timeout", None)
    check = await admin.call("healthcheck", "createHealthCheck", body)
    return dict(await admin.call("healthcheck", "runNow", {"id": check["id"]}))


async def test_the_strategy_is_served_with_its_schema(admin):
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "dns")["configSchema"]
    assert schema["required"] == ["name"]
    assert sorted(schema["properties"]["recordType"]["enum"]) == [
        "A",
        "AAAA",
        "CNAME",
        "MX",
        "NS",
        "TXT",
    ]


async def test_answers_are_healthy(admin, dns_port):
    for name, record_type, expected, answers, message in [
        (
            "ok.test",
            "A",
            ["192.0.2.11", "192.0.2.10"],
            ["192.0.2.10", "192.0.2.11"],
            "Resolved 2 A records",
        ),
        ("ok.test", "AAAA", ["2001:db8:0::10"], ["2001:db8::10"], "Resolved 1 AAAA record"),
        ("www.ok.test", "CNAME", ["OK.test."], ["ok.test"], "Resolved 1 CNAME record"),
        (
            "ok.test",
            "MX",
            ["mail.ok.test", "10 mail.ok.test."],
            ["10 mail.ok.test"],
            "Resolved 1 MX record",
        ),
        ("ok.test", "TXT", ["v=spf1 -all"], ["v=spf1 -all"], "Resolved 1 TXT record"),
        ("ok.test.", "NS", ["ns1.ok.test"], ["ns1.ok.test"], "Resolved 1 NS record"),
        ("mail.ok.test", "A", [], ["192.0.2.25"], "Resolved 1 A record"),
    ]:
        ran = await resolve(admin, dns_port, name, recordType=record_type, expectedValues=expected)
        assert (ran["status"], ran["message"]) == ("healthy", message)
        assert sorted(ran["result"]["answers"]) == answers
        assert ran["result"]["ttl"] == 300


async def test_failures_are_unhealthy_with_a_clear_message(admin, dns_port):
    for name, config, message in [
        ("nothing.test", {}, "Domain does not exist (NXDOMAIN)"),
        ("mail.ok.test", {"recordType": "AAAA"}, "No AAAA record for the name"),
        (
            "ok.test",
            {"expectedValues": ["192.0.2.99"]},
            "Answer does not contain the expected value",
        ),
        (
            "ok.test",
            {"expectedValues": ["192.0.2.10", "192.0.2.98", "192.0.2.99"]},
            "Answer lacks 2 of 3 expected values",
        ),
        (
            "ok.test",
            {"recordType": "TXT", "expectedValues": ["v=spf1"]},
            "Answer does not contain the expected value",
        ),
        ("broken.test", {}, "Resolver answered SERVFAIL"),
    ]:
        ran = await resolve(admin, dns_port, name, **config)
        assert (ran["status"], ran["message"]) == ("unhealthy", message)


async def test_a_slow_answer_is_degraded(admin, dns_port):
    # No answer crosses the loopback in a microsecond: the threshold is always exceeded.
    ran = await resolve(admin, dns_port, "ok.test", degradedLatencyMs=0.001)
    assert ran["status"] == "degraded"
    assert ran["message"].startswith("Slow answer: ")
    assert ran["message"].endswith(" ms (threshold 0.001 ms)")


async def test_a_silent_resolver_times_out(admin, silent_port):
    ran = await resolve(admin, silent_port, "ok.test", timeout=1)
    assert (ran["status"], ran["message"]) == ("unhealthy", "DNS query timed out after 0.9 s")


async def test_nothing_listening_is_unhealthy(admin):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    ran = await resolve(admin, closed, "ok.test", timeout=1)
    # UDP: a closed port looks like a silent server to the resolver.
    assert (ran["status"], ran["message"]) == ("unhealthy", "DNS query timed out after 0.9 s")


async def test_bad_configs_are_refused_with_the_path(admin):
    for config, path in [
        ({"name": "ok.test", "resolver": "dns.example"}, ["config", "resolver"]),
        ({"name": "ok.test", "expectedValues": ["ok.test"]}, ["config", "expectedValues", 0]),
        (
            {"name": "ok.test", "recordType": "AAAA", "expectedValues": ["192.0.2.1"]},
            ["config", "expectedValues", 0],
        ),
        ({"name": "ok.test", "recordType": "SOA"}, ["config", "recordType"]),
        ({"name": "a..b"}, ["config", "name"]),
    ]:
        from checkstack_core import BadRequest

        with pytest.raises(BadRequest) as refused:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "bad", "strategyId": "dns", "config": config},
            )
        assert [issue["path"] for issue in refused.value.data["issues"]] == [path]
