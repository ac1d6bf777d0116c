"""The ``grpc`` strategy against real gRPC servers on loopback ports: SERVING, NOT_SERVING,
unknown services, metadata (a secret bearer token), TLS (trusted CA, untrusted, wrong host,
verification off), refused connections and timeouts; then through HTTP as a user would."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import trustme
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_grpc import GrpcConfig, GrpcStrategy
from grpc_health.v1 import health_pb2

from checkstack_core import BadRequest

from .conftest import TOKEN, GrpcServer


async def probe(within: float = 5.0, **config: Any) -> CheckResult:
    """One run of the strategy, with ``config`` given as a check's JSON would give it."""
    parsed = msgspec.convert(config, GrpcConfig)
    assert GrpcStrategy().validate(parsed) == []
    return await GrpcStrategy().run(parsed, time.monotonic() + within)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def http1_port() -> AsyncIterator[int]:
    """A port answering every request in HTTP/1.1 (a web server, not a gRPC one)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_serving_server_and_service_are_healthy(grpc_server: GrpcServer) -> None:
    whole = await probe(host="127.0.0.1", port=grpc_server.port)
    assert (whole.status, whole.message[:7]) == ("healthy", "Serving")
    assert whole.data["status"] == "SERVING" and whole.latency_ms is not None
    cart = await probe(host="127.0.0.1", port=grpc_server.port, service="shop.Cart")
    assert cart.status == "healthy" and cart.data["service"] == "shop.Cart"


async def test_not_serving_and_unknown_services_are_unhealthy(grpc_server: GrpcServer) -> None:
    payments = await probe(host="127.0.0.1", port=grpc_server.port, service="shop.Payments")
    assert (payments.status, payments.message) == ("unhealthy", "Not serving")
    assert payments.data["status"] == "NOT_SERVING"
    unknown = await probe(host="127.0.0.1", port=grpc_server.port, service="shop.Nothing")
    assert (unknown.status, unknown.message) == ("unhealthy", "Service unknown to the server")
    assert unknown.data["grpcCode"] == "NOT_FOUND"
    # A status change on the server shows in the next run.
    await grpc_server.servicer.set("shop.Payments", health_pb2.HealthCheckResponse.SERVING)
    payments = await probe(host="127.0.0.1", port=grpc_server.port, service="shop.Payments")
    assert payments.status == "healthy"


async def test_metadata_reaches_the_server_and_the_secret_is_never_shown(
    grpc_server: GrpcServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    base = {"host": "127.0.0.1", "port": grpc_server.port, "service": "shop.Secure"}
    without = await probe(**base, metadata={"x-tenant": "blue"})
    assert (without.status, without.message) == (
        "unhealthy",
        "Authentication failed (UNAUTHENTICATED)",
    )
    wrong = await probe(**base, secretMetadata={"authorization": "Bearer nope"})
    assert wrong.message == "Authentication failed (UNAUTHENTICATED)"
    right = await probe(**base, secretMetadata={"authorization": f"Bearer {TOKEN}"})
    assert right.status == "healthy"
    for result in (without, wrong, right):
        assert TOKEN not in result.message + msgspec.json.encode(result.data).decode()
    assert TOKEN not in caplog.text


async def test_tls_with_the_ca_given_is_healthy(tls_server: GrpcServer, ca: trustme.CA) -> None:
    result = await probe(
        host="127.0.0.1", port=tls_server.port, tls=True, caPem=ca.cert_pem.bytes().decode()
    )
    assert result.status == "healthy", result.message
    assert result.data["alpn"] == "h2" and result.data["tlsVersion"].startswith("TLS")


async def test_tls_failures_say_what_is_wrong(tls_server: GrpcServer, ca: trustme.CA) -> None:
    untrusted = await probe(host="127.0.0.1", port=tls_server.port, tls=True)
    assert untrusted.status == "unhealthy"
    assert untrusted.message == (
        "TLS certificate verification failed: unable to get local issuer certificate"
    )
    # A certificate for another name: the right CA does not make it the right server.
    other = trustme.CA()
    wrong_host = await probe(
        host="localhost", port=tls_server.port, tls=True, caPem=other.cert_pem.bytes().decode()
    )
    assert wrong_host.message.startswith("TLS certificate verification failed")
    plaintext_to_tls = await probe(host="127.0.0.1", port=tls_server.port)
    assert (plaintext_to_tls.status, plaintext_to_tls.message) == (
        "unhealthy",
        "Connection closed before a gRPC answer (does the server need tls?)",
    )


async def test_tls_host_name_mismatch(ca: trustme.CA) -> None:
    import grpc

    from .conftest import start

    cert = ca.issue_cert("shop.example.org")
    credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    server, running = await start(credentials)
    try:
        pem = ca.cert_pem.bytes().decode()
        mismatch = await probe(host="127.0.0.1", port=running.port, tls=True, caPem=pem)
        assert mismatch.message == "TLS certificate does not match the host name"
        unverified = await probe(host="127.0.0.1", port=running.port, tls=True, verifyTls=False)
        assert unverified.status == "healthy", unverified.message
    finally:
        await server.stop(None)


async def test_unreachable_targets(closed_port: int, silent_port: int, http1_port: int) -> None:
    refused = await probe(host="127.0.0.1", port=closed_port)
    assert (refused.status, refused.message) == ("unhealthy", "Connection refused")
    web = await probe(host="127.0.0.1", port=http1_port)
    assert (web.status, web.message) == ("unhealthy", "Not a gRPC server (it answered in HTTP/1.x)")
    assert "target" in web.data["grpcDetails"] and "unix:" not in web.data["grpcDetails"]
    silent = await probe(host="127.0.0.1", port=silent_port, within=0.5)
    assert (silent.status, silent.message) == ("unhealthy", "Timed out after 0.5 s")


#: Bad configs: (config fields, the path the error names, words of its message).
BAD_CONFIGS: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"metadata": {"X-Upper": "1"}}, ["config", "metadata", "X-Upper"], "Invalid metadata key"),
    ({"metadata": {"grpc-timeout": "1"}}, ["config", "metadata", "grpc-timeout"], "key"),
    ({"secretMetadata": {"a-bin": "x"}}, ["config", "secretMetadata", "a-bin"], "key"),
    ({"metadata": {"x": "caf\u00e9"}}, ["config", "metadata", "x"], "printable ASCII"),
    ({"caPem": "-----BEGIN CERTIFICATE-----"}, ["config", "caPem"], "needs tls"),
    ({"tls": True, "caPem": "hello"}, ["config", "caPem"], "PEM"),
    ({"host": "http://x"}, ["config", "host"], "host name"),
    ({"port": 0}, ["config", "port"], ">= 1"),
]


async def test_bad_configs_are_refused_with_the_path(admin: Any) -> None:
    for config, path, words in BAD_CONFIGS:
        body = {"host": "127.0.0.1", "port": 50051, **config}
        with pytest.raises(BadRequest) as caught:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "grpc", "strategyId": "grpc", "config": body},
            )
        issue = caught.value.data["issues"][0]
        assert (issue["path"], words in issue["message"]) == (path, True), issue


async def test_through_http(admin: Any, grpc_server: GrpcServer) -> None:
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "grpc")["configSchema"]
    secret = schema["properties"]["secretMetadata"]["additionalProperties"]
    assert secret["x-secret"] is True

    async def check(service: str, **config: Any) -> dict[str, Any]:
        created = await admin.call(
            "healthcheck",
            "createHealthCheck",
            {
                "name": f"gRPC {service}",
                "strategyId": "grpc",
                "timeoutSeconds": 5,
                "config": {
                    "host": "127.0.0.1",
                    "port": grpc_server.port,
                    "service": service,
                    **config,
                },
            },
        )
        return dict(created)

    cart = await check("shop.Cart")
    run = await admin.call("healthcheck", "runNow", {"id": cart["id"]})
    assert run["status"] == "healthy" and run["message"].startswith("Serving")
    payments = await check("shop.Payments")
    run = await admin.call("healthcheck", "runNow", {"id": payments["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", "Not serving")

    secure = await check("shop.Secure", secretMetadata={"authorization": f"Bearer {TOKEN}"})
    assert secure["config"]["secretMetadata"] == {"authorization": "********"}
    run = await admin.call("healthcheck", "runNow", {"id": secure["id"]})
    assert run["status"] == "healthy"
    shown = await admin.call("healthcheck", "getRun", {"id": run["id"]})
    read = await admin.call("healthcheck", "getHealthCheck", {"id": secure["id"]})
    assert TOKEN not in msgspec.json.encode([shown, read]).decode()
