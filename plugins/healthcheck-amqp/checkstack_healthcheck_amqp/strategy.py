"""The ``amqp`` strategy (AMQP 0-9-1, RabbitMQ): connect and open a channel; optionally check a
queue's backlog, and make a round trip through a temporary queue."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from checkstack_healthcheck.errors import causes, network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    import aiormq.abc
    from yarl import URL


class AmqpConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Which broker and virtual host, as whom, and what to check there."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 5672
    vhost: Annotated[str, Meta(min_length=1, max_length=255)] = "/"
    username: Annotated[str, Meta(min_length=1, max_length=255)] = "guest"
    password: Secret | None = None
    tls: bool = False
    #: With ``tls``: check the certificate against the system's trusted authorities and the
    #: host name.
    verify_tls: bool = True
    #: Declare a temporary (exclusive, auto-delete) queue, publish a unique message to it and
    #: consume it.
    round_trip: bool = False
    #: A queue that must exist (checked without changing it) ...
    queue: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    #: ... holding at most this many ready messages.
    max_messages: Annotated[int, Meta(ge=0)] | None = None
    #: Connecting (and the checks) slower than this in all is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class AmqpStrategy(Strategy[AmqpConfig]):
    id: ClassVar[str] = "amqp"
    display_name: ClassVar[str] = "AMQP (RabbitMQ)"
    description: ClassVar[str] = (
        "Connect to an AMQP 0-9-1 broker such as RabbitMQ; optionally check a queue's backlog "
        "and make a publish/consume round trip."
    )
    config_type: ClassVar[type[msgspec.Struct]] = AmqpConfig

    def validate(self, config: AmqpConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.max_messages is not None and config.queue is None:
            problems.append(("maxMessages needs a queue", ["maxMessages"]))
        return problems

    async def run(self, config: AmqpConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: aiormq (pamqp, yarl) loads only where AMQP checks run, not at server
        # start.
        import aiormq
        from aiormq import exceptions as errors

        data: dict[str, Any] = {"connected": False, "user": config.username}
        started = time.monotonic()
        phase = "connect"
        connection: aiormq.abc.AbstractConnection | None = None
        try:
            # End a moment before the deadline, so this run reports what it was doing rather
            # than being cancelled by the healthcheck plugin.
            async with asyncio.timeout(_budget(allotted)):
                connection = await aiormq.connect(_url(config), context=_tls(config))
                channel = await connection.channel()
                data.update(connected=True, connectMs=_ms(started))
                data["server"] = _server(connection)
                if config.queue is not None:
                    phase = "queue"
                    declared = await channel.queue_declare(config.queue, passive=True)
                    data["messages"] = declared.message_count
                    data["consumers"] = declared.consumer_count
                if config.round_trip:
                    phase = "round trip"
                    await _round_trip(channel, data)
        except TimeoutError:
            if phase == "round trip":
                return _failed(f"Published message not received within {seconds(allotted)} s", data)
            return _failed(f"Timed out after {seconds(allotted)} s", data)
        except errors.ProbableAuthenticationError:
            return _failed("Authentication failed", data)
        except errors.ChannelNotFoundEntity:
            return _failed("Queue does not exist", data)
        except errors.ChannelAccessRefused:
            return _failed("Access refused", data)
        except errors.InvalidFrameError as exc:
            # The broker closes the connection instead of opening the virtual host: it does not
            # exist or the user may not use it.
            if phase == "connect" and "Connection.Close" in str(exc):
                return _failed("Virtual host not found or not permitted", data)
            return _failed("Unexpected answer from the broker", data)
        except errors.AMQPError as exc:
            # aiormq wraps the socket's error in one of its own whose text quotes the address:
            # word the socket's.
            inner = next((e for e in causes(exc)[1:] if isinstance(e, OSError)), exc)
            return _failed(network_message(inner, allotted), data)
        except (OSError, ssl.SSLError) as exc:
            return _failed(network_message(exc, allotted), data)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), 0.5)
        latency = _ms(started)
        messages = data.get("messages")
        if (
            config.max_messages is not None
            and messages is not None
            and (messages > config.max_messages)
        ):
            return _failed(
                f"Queue holds {messages} messages, expected at most {config.max_messages}",
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
        what = "Round trip completed" if config.round_trip else "Connected"
        return CheckResult(
            "healthy", latency_ms=latency, message=f"{what} in {latency:.0f} ms", data=data
        )


async def _round_trip(channel: aiormq.abc.AbstractChannel, data: dict[str, Any]) -> None:
    """Publish a unique message to a temporary queue and wait until it is consumed."""
    sent = time.monotonic()
    declared = await channel.queue_declare("", exclusive=True, auto_delete=True)
    payload = f"checkstack {uuid.uuid4().hex}".encode()
    received: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
        if message.body == payload and not received.done():
            received.set_result(None)

    await channel.basic_consume(declared.queue or "", on_message, no_ack=True)
    await channel.basic_publish(payload, routing_key=declared.queue or "")
    await received
    data["roundTripMs"] = _ms(sent)


def _url(config: AmqpConfig) -> URL:
    from yarl import URL

    # aiormq takes the virtual host from the path ("/" for the default one).
    return URL.build(
        scheme="amqps" if config.tls else "amqp",
        host=config.host,
        port=config.port,
        user=config.username,
        password=config.password or "",
        path="/" if config.vhost == "/" else "/" + config.vhost,
    )


def _tls(config: AmqpConfig) -> ssl.SSLContext | None:
    if not config.tls:
        return None
    context = ssl.create_default_context()
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _server(connection: aiormq.abc.AbstractConnection) -> str:
    properties = connection.server_properties or {}
    return " ".join(str(properties.get(key, "")) for key in ("product", "version")).strip()


def _budget(allotted: float) -> float:
    return max(allotted - min(0.05, allotted * 0.05), 0.0)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _failed(message: str, data: dict[str, Any], *, latency: float | None = None) -> CheckResult:
    data.setdefault("error", message)
    return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
