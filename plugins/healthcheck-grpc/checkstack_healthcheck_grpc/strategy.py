"""The ``grpc`` strategy: one call of the standard health-checking protocol
(``grpc.health.v1.Health/Check``) for a service name, over plaintext or TLS.

The connection (TCP, and TLS when asked) is made here with asyncio and :mod:`ssl`, then handed
to gRPC through a private Unix socket: that way a refused port, an unknown host, an expired or
untrusted certificate get the same clear messages as every other strategy (gRPC itself reports
them as one opaque ``UNAVAILABLE``), and ``verifyTls: false`` works for any certificate (gRPC
has no switch for it). gRPC then speaks HTTP/2 over the connection unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import ssl
import tempfile
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    import grpc

#: Metadata keys gRPC accepts as text headers: lower case, not reserved (``grpc-``), not
#: binary (``-bin``), nor HTTP/2 pseudo headers.
METADATA_KEY = re.compile(r"[0-9a-z_.-]{1,100}")
#: Bytes copied at once between the private socket and the target.
CHUNK = 64 * 1024


class GrpcConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where the gRPC server is, which service to ask about, and how to connect."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)]
    #: The service name asked about (``package.Service``); empty: the server as a whole.
    service: Annotated[str, Meta(max_length=500)] = ""
    #: Connect over TLS (``false``: plaintext HTTP/2).
    tls: bool = False
    #: With ``tls``: verify the server's certificate and host name.
    verify_tls: bool = True
    #: With ``tls``: the CA certificate(s) to trust instead of the system's, PEM text.
    ca_pem: Annotated[str, Meta(min_length=1, max_length=100_000)] | None = None
    #: Metadata sent with the call (``x-tenant: blue``).
    metadata: Annotated[dict[str, Annotated[str, Meta(max_length=4_000)]], Meta(max_length=30)] = {}
    #: Metadata whose values are secrets (``authorization: Bearer …``): encrypted at rest,
    #: masked in outputs.
    secret_metadata: Annotated[dict[str, Secret], Meta(max_length=10)] = {}
    #: A ``SERVING`` answer slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


#: How each gRPC status code of a failed call reads on the status page.
CALL_FAILED = {
    "NOT_FOUND": "Service unknown to the server",
    "UNIMPLEMENTED": "The server does not offer the gRPC health service",
    "UNAUTHENTICATED": "Authentication failed (UNAUTHENTICATED)",
    "PERMISSION_DENIED": "Permission denied (PERMISSION_DENIED)",
    "UNAVAILABLE": "Server unavailable (UNAVAILABLE)",
}
#: Said when the connection ended before any gRPC answer (gRPC reports it as UNAVAILABLE).
CLOSED = "Connection closed before a gRPC answer"
#: How each health status of an answer reads (``SERVING`` is the healthy one).
ANSWERED = {
    "NOT_SERVING": "Not serving",
    "SERVICE_UNKNOWN": "Service unknown to the server",
    "UNKNOWN": "Health status unknown",
}


class GrpcStrategy(Strategy[GrpcConfig]):
    id: ClassVar[str] = "grpc"
    display_name: ClassVar[str] = "gRPC health"
    description: ClassVar[str] = (
        "Call the standard gRPC health service (grpc.health.v1.Health/Check) for a service "
        "name, over plaintext or TLS; SERVING is healthy."
    )
    config_type: ClassVar[type[msgspec.Struct]] = GrpcConfig

    def validate(self, config: GrpcConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.ca_pem is not None:
            if not config.tls:
                problems.append(("caPem needs tls: true", ["caPem"]))
            elif "-----BEGIN CERTIFICATE-----" not in config.ca_pem:
                problems.append(("caPem must hold PEM certificates", ["caPem"]))
        for field, values in (
            ("metadata", config.metadata),
            ("secretMetadata", config.secret_metadata),
        ):
            for key, value in values.items():
                if (
                    not METADATA_KEY.fullmatch(key)
                    or key.startswith("grpc-")
                    or key.endswith("-bin")
                ):
                    problems.append(
                        (
                            f"Invalid metadata key: {key[:50]} (lower case letters, digits, "
                            "'-', '_', '.'; not grpc-* or *-bin)",
                            [field, key],
                        )
                    )
                elif any(not " " <= c <= "~" for c in value):
                    problems.append(("Metadata values must be printable ASCII", [field, key]))
        return problems

    async def run(self, config: GrpcConfig, deadline: float) -> CheckResult:
        allotted = remaining(deadline)
        timed_out = f"Timed out after {seconds(allotted)} s"
        started = time.monotonic()
        data: dict[str, Any] = {"service": config.service, "tls": config.tls}
        try:
            # Leave time to report before the hard limit ends the run.
            async with asyncio.timeout(allotted * 0.95):
                reader, writer = await asyncio.open_connection(
                    config.host,
                    config.port,
                    ssl=_tls_context(config) if config.tls else None,
                    server_hostname=config.host if config.tls else None,
                )
        except TimeoutError:
            return _failed(timed_out, data)
        except (OSError, ssl.SSLError) as exc:
            return _failed(network_message(exc, allotted), data)
        data["connectMs"] = round((time.monotonic() - started) * 1000, 3)
        if config.tls:
            data["tlsVersion"] = writer.get_extra_info("ssl_object").version()
            data["alpn"] = writer.get_extra_info("ssl_object").selected_alpn_protocol()
        try:
            status = await _check(config, reader, writer, remaining(deadline) * 0.9)
        except _CallFailed as failure:
            data.update(grpcCode=failure.code, grpcDetails=failure.details[:500])
            if failure.code == "DEADLINE_EXCEEDED":
                return _failed(timed_out, data)
            message = _call_failed(failure, config.tls)
            return _failed(message, data, latency=(time.monotonic() - started) * 1000)
        except ValueError:
            # gRPC refuses metadata it cannot send (a secret value that is not ASCII text).
            return _failed("Invalid metadata value", data)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(0.5):
                    await writer.wait_closed()
        latency = round((time.monotonic() - started) * 1000, 3)
        data.update(status=status, latencyMs=latency)
        if status != "SERVING":
            message = ANSWERED.get(status, f"Health status {status}")
            return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
        if config.degraded_latency_ms is not None and latency > config.degraded_latency_ms:
            return CheckResult(
                "degraded",
                latency_ms=latency,
                message=f"Slow answer: {latency:.0f} ms "
                f"(threshold {config.degraded_latency_ms:g} ms)",
                data=data,
            )
        return CheckResult(
            "healthy", latency_ms=latency, message=f"Serving ({latency:.0f} ms)", data=data
        )


class _CallFailed(Exception):
    def __init__(self, code: str, details: str) -> None:
        super().__init__(code)
        self.code = code
        self.details = details


def _call_failed(failure: _CallFailed, tls: bool) -> str:
    """The message for a call that ended with an error status."""
    if failure.code == "UNAVAILABLE" and "failed to connect" in failure.details:
        # The connection was made (by us): the server ended it without speaking HTTP/2.
        if "http1.x" in failure.details:
            return "Not a gRPC server (it answered in HTTP/1.x)"
        return CLOSED if tls else f"{CLOSED} (does the server need tls?)"
    return CALL_FAILED.get(failure.code, f"gRPC call failed ({failure.code})")


def _tls_context(config: GrpcConfig) -> ssl.SSLContext:
    """TLS as gRPC needs it (ALPN ``h2``), verified against the system's CAs or ``caPem``."""
    context = ssl.create_default_context(cadata=config.ca_pem)
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    return context


async def _check(
    config: GrpcConfig,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    call_seconds: float,
) -> str:
    """Call ``Health/Check`` over the open connection; the answer's status name."""
    # Imported here: gRPC is large, and the server imports every strategy at startup.
    import grpc.aio
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    folder = tempfile.mkdtemp(prefix="checkstack-grpc-")  # mode 0700: ours alone
    path = os.path.join(folder, "s")
    relays: list[asyncio.Task[None]] = []
    nears: list[asyncio.StreamWriter] = []

    async def relay(near: asyncio.StreamReader, near_writer: asyncio.StreamWriter) -> None:
        nears.append(near_writer)
        if relays:  # one connection to the target, for the first connection gRPC makes
            near_writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        relays.append(task)
        await _pipe_both(near, near_writer, reader, writer)

    server = await asyncio.start_unix_server(relay, path)
    channel = grpc.aio.insecure_channel(
        f"unix:{path}",
        options=[
            ("grpc.default_authority", _authority(config.host, config.port)),
            ("grpc.enable_retries", 0),
            ("grpc.max_receive_message_length", 64 * 1024),
        ],
    )
    metadata = [*config.metadata.items(), *config.secret_metadata.items()]
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = await stub.Check(
            health_pb2.HealthCheckRequest(service=config.service),
            timeout=call_seconds,
            metadata=metadata or None,
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status))
    except grpc.aio.AioRpcError as exc:
        code: grpc.StatusCode = exc.code()
        # gRPC names the address it dialled: ours, meaningless to a reader.
        details = (exc.details() or "").replace(f"unix:{path}", "target")
        raise _CallFailed(code.name, details) from None
    finally:
        await channel.close()
        server.close()
        # Closing both ends ends the copying (cancelling asyncio's connection handler would
        # make asyncio log the cancellation as an error).
        writer.close()
        for near_writer in nears:
            near_writer.close()
        if relays:
            await asyncio.wait(relays, timeout=1)
        shutil.rmtree(folder, ignore_errors=True)


async def _pipe_both(
    near: asyncio.StreamReader,
    near_writer: asyncio.StreamWriter,
    far: asyncio.StreamReader,
    far_writer: asyncio.StreamWriter,
) -> None:
    """Copy bytes both ways until either side closes."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            while chunk := await source.read(CHUNK):
                sink.write(chunk)
                await sink.drain()

    ways = [
        asyncio.ensure_future(pipe(near, far_writer)),
        asyncio.ensure_future(pipe(far, near_writer)),
    ]
    try:
        await asyncio.wait(ways, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for way in ways:
            way.cancel()
        near_writer.close()


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _failed(message: str, data: dict[str, Any], latency: float | None = None) -> CheckResult:
    """An unhealthy result; ``latency`` when the server answered (with an error)."""
    latency = None if latency is None else round(latency, 3)
    return CheckResult(
        "unhealthy", latency_ms=latency, message=message, data={**data, "error": message}
    )
