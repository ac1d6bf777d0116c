"""The tls strategy through HTTP against a TLS server the tests start on loopback, its
certificates made by a CA of the test (``trustme``) and chosen by SNI: valid, expiring soon,
expired, another host's, and a CA the checker does not trust."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme

from checkstack_core import BadRequest


class Target:
    """A threaded TLS server: SNI picks the certificate (``valid.test`` when none matches)."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        now = datetime.now(UTC)
        certificates = {
            "valid.test": self.ca.issue_cert("valid.test", common_name="valid.test"),
            "soon.test": self.ca.issue_cert(
                "soon.test", not_after=now + timedelta(days=5, hours=1)
            ),
            "expired.test": self.ca.issue_cert(
                "expired.test",
                not_before=now - timedelta(days=30),
                not_after=now - timedelta(days=1),
            ),
            "alien.test": trustme.CA().issue_cert("alien.test"),
        }
        contexts = {}
        for name, certificate in certificates.items():
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate.configure_cert(context)
            contexts[name] = context
        default = contexts["valid.test"]

        def pick(tls: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
            tls.context = contexts.get(name or "", default)

        default.sni_callback = pick  # type: ignore[assignment]

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(5)
                try:
                    with default.wrap_socket(self.request, server_side=True) as tls:
                        tls.recv(1)  # until the checker hangs up
                except (ssl.SSLError, OSError):
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.ca_pem = self.ca.cert_pem.bytes().decode()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    server = Target()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def plain_port() -> Iterator[int]:
    """A TCP server that speaks no TLS (it greets like SSH and hangs up)."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            self.request.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


async def check(admin: Any, port: int, **config: Any) -> dict[str, Any]:
    body = {
        "name": "tls",
        "strategyId": "tls",
        "config": {"host": "127.0.0.1", "port": port, **config},
    }
    created = await admin.call("healthcheck", "createHealthCheck", body)
    return dict(await admin.call("healthcheck", "runNow", {"id": created["id"]}))


async def test_the_strategy_is_served_with_its_schema(admin):
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "tls")["configSchema"]
    assert schema["required"] == ["host"]
    assert schema["properties"]["degradedDays"]["default"] == 14


async def test_a_valid_certificate_is_healthy(admin, target):
    ran = await check(admin, target.port, servername="valid.test", caBundle=target.ca_pem)
    assert ran["status"] == "healthy"
    assert ran["message"].startswith("Certificate valid for ")
    result = ran["result"]
    assert (result["subject"], result["altNames"], result["verified"]) == (
        "valid.test",
        ["valid.test"],
        True,
    )
    assert result["protocol"].startswith("TLS")


async def test_a_certificate_expiring_soon_is_degraded(admin, target):
    ran = await check(admin, target.port, servername="soon.test", caBundle=target.ca_pem)
    assert (ran["status"], ran["message"]) == (
        "degraded",
        "Certificate expires in 5 days (threshold 14)",
    )
    ran = await check(
        admin, target.port, servername="soon.test", caBundle=target.ca_pem, unhealthyDays=7
    )
    assert (ran["status"], ran["message"]) == (
        "unhealthy",
        "Certificate expires in 5 days (threshold 7)",
    )
    ran = await check(
        admin, target.port, servername="soon.test", caBundle=target.ca_pem, degradedDays=3
    )
    assert ran["status"] == "healthy"


async def test_bad_certificates_are_unhealthy(admin, target):
    for servername, trusted, message in [
        ("expired.test", True, "TLS certificate has expired"),
        # Expired is said first, even when the chain is not trusted either.
        ("expired.test", False, "TLS certificate has expired"),
        ("wrong.test", True, "TLS certificate does not match the host name"),
        (
            "valid.test",
            False,
            "TLS certificate is not trusted (unable to get local issuer certificate)",
        ),
        (
            "alien.test",
            True,
            "TLS certificate is not trusted (unable to get local issuer certificate)",
        ),
    ]:
        config = {"servername": servername, **({"caBundle": target.ca_pem} if trusted else {})}
        ran = await check(admin, target.port, **config)
        assert (ran["status"], ran["message"]) == ("unhealthy", message)
        # The unverified second handshake still says what the certificate was.
        assert ran["result"]["notAfter"]


async def test_without_verification_only_the_dates_count(admin, target):
    ran = await check(admin, target.port, servername="wrong.test", verifyCertificate=False)
    assert ran["status"] == "healthy"
    assert ran["result"]["verified"] is False
    ran = await check(admin, target.port, servername="expired.test", verifyCertificate=False)
    assert (ran["status"], ran["message"]) == ("unhealthy", "TLS certificate has expired")


async def test_network_failures_are_clear(admin, plain_port):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    refused = await check(admin, closed)
    assert (refused["status"], refused["message"]) == ("unhealthy", "Connection refused")
    plain = await check(admin, plain_port)
    assert plain["status"] == "unhealthy"
    assert plain["message"].startswith("TLS handshake failed: "), plain["message"]


async def test_bad_configs_are_refused_with_the_path(admin):
    for config, path in [
        ({"host": "127.0.0.1", "caBundle": "not a certificate"}, ["config", "caBundle"]),
        ({"host": "https://example.com/"}, ["config", "host"]),
        (
            {"host": "127.0.0.1", "degradedDays": 7, "unhealthyDays": 10},
            ["config", "unhealthyDays"],
        ),
        ({"host": "127.0.0.1", "port": 0}, ["config", "port"]),
    ]:
        with pytest.raises(BadRequest) as refused:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "bad", "strategyId": "tls", "config": config},
            )
        assert [issue["path"] for issue in refused.value.data["issues"]] == [path]
