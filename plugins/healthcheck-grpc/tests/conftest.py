"""gRPC strategy tests: a host with the catalog, healthcheck and grpc plugins on the core's
fixtures, and real gRPC servers (``grpc.aio`` with the reference health servicer of
``grpcio-health-checking``) the tests start on loopback ports.

- ``grpc_server``: plaintext, services ``shop.Cart`` SERVING, ``shop.Payments`` NOT_SERVING,
  and ``shop.Secure`` answering only calls carrying ``authorization: Bearer <TOKEN>``;
- ``tls_server``: the same over TLS with a certificate for 127.0.0.1 from ``ca`` (trustme);
- ``admin``: a client over HTTP as an administrator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
import trustme
from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
    admin,
    strategy_plugins,
    strategy_settings,
)
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from checkstack_core import Plugin
from checkstack_core.settings import Settings

TOKEN = "grpc-s3cr3t-t0ken-value"


def plugins() -> list[Plugin]:
    from checkstack_healthcheck_grpc import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    return plugins()


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


class Servicer(health.aio.HealthServicer):
    """The reference servicer, with one service that wants a bearer token."""

    async def Check(self, request: Any, context: Any) -> Any:
        if request.service == "shop.Secure":
            sent = dict(context.invocation_metadata() or ())
            if sent.get("authorization") != f"Bearer {TOKEN}":
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        return await super().Check(request, context)


@dataclass
class GrpcServer:
    port: int
    servicer: Servicer


async def start(credentials: Any = None) -> tuple[grpc.aio.Server, GrpcServer]:
    server = grpc.aio.server()
    servicer = Servicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    serving = health_pb2.HealthCheckResponse.SERVING
    await servicer.set("shop.Cart", serving)
    await servicer.set("shop.Secure", serving)
    await servicer.set("shop.Payments", health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    return server, GrpcServer(port, servicer)


@pytest.fixture
async def grpc_server() -> AsyncIterator[GrpcServer]:
    server, running = await start()
    try:
        yield running
    finally:
        await server.stop(None)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def tls_server(ca: trustme.CA) -> AsyncIterator[GrpcServer]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    credentials = grpc.ssl_server_credentials(
        [(cert.private_key_pem.bytes(), cert.cert_chain_pems[0].bytes())]
    )
    server, running = await start(credentials)
    try:
        yield running
    finally:
        await server.stop(None)
