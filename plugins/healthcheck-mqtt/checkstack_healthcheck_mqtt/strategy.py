"""The ``mqtt`` strategy: connect to a broker (authenticating when credentials are set);
optionally subscribe to a topic, publish a unique payload to it and wait for it to come back."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    import aiomqtt

#: CONNACK codes meaning the credentials were refused (MQTT 3.1.1: 4, 5; MQTT 5: 134, 135).
AUTH_REFUSED = {4, 5, 134, 135}


class MqttConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Which broker, as whom, and which topic to make a round trip on."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 1883
    username: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    password: Secret | None = None
    tls: bool = False
    #: With ``tls``: check the certificate against the system's trusted authorities and the
    #: host name.
    verify_tls: bool = True
    #: The MQTT client identifier; a fresh random one per run when unset (two clients with one
    #: identifier disconnect each other).
    client_id: Annotated[str, Meta(min_length=1, max_length=65_535)] | None = None
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    #: A topic (no wildcards) to subscribe to, publish a unique payload on and receive it back.
    topic: Annotated[str, Meta(min_length=1, max_length=65_535)] | None = None
    qos: Annotated[int, Meta(ge=0, le=2)] = 1
    #: Connecting (and the round trip) slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class MqttStrategy(Strategy[MqttConfig]):
    id: ClassVar[str] = "mqtt"
    display_name: ClassVar[str] = "MQTT"
    description: ClassVar[str] = (
        "Connect to an MQTT broker; optionally publish a message on a topic and receive it back."
    )
    config_type: ClassVar[type[msgspec.Struct]] = MqttConfig

    def validate(self, config: MqttConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.topic is not None and ("#" in config.topic or "+" in config.topic):
            problems.append(("topic must not hold the wildcards # or +", ["topic"]))
        if config.password is not None and config.username is None:
            problems.append(("password needs a username", ["username"]))
        return problems

    async def run(self, config: MqttConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: aiomqtt (paho-mqtt, dnspython) loads only where MQTT checks run, not at
        # server start.
        import aiomqtt
        from aiomqtt.exceptions import MqttConnectError
        from paho.mqtt.reasoncodes import ReasonCode

        data: dict[str, Any] = {"connected": False}
        started = time.monotonic()
        phase = "connect"
        client = aiomqtt.Client(
            config.host,
            config.port,
            username=config.username,
            password=config.password,
            identifier=config.client_id or f"checkstack-{uuid.uuid4().hex[:16]}",
            protocol=(
                aiomqtt.ProtocolVersion.V5
                if config.protocol == "5"
                else aiomqtt.ProtocolVersion.V311
            ),
            clean_session=None if config.protocol == "5" else True,
            timeout=max(allotted, 0.001),
            tls_context=_tls(config) if config.tls else None,
            tls_insecure=(not config.verify_tls) if config.tls else None,
        )
        try:
            # End a moment before the deadline, so this run reports what it was doing rather
            # than being cancelled by the healthcheck plugin.
            async with asyncio.timeout(_budget(allotted)):
                async with client:
                    data.update(connected=True, connectMs=_ms(started))
                    if config.topic is not None:
                        phase = "round trip"
                        refused = await _round_trip(client, config.topic, config.qos, data)
                        if refused:
                            return _failed(refused, data)
        except TimeoutError:
            if phase == "round trip":
                return _failed(f"Published message not received within {seconds(allotted)} s", data)
            return _failed(f"Timed out after {seconds(allotted)} s", data)
        except aiomqtt.MqttCodeError as exc:
            code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
            data["error"] = f"{code} {exc.rc}"
            if isinstance(exc, MqttConnectError) and code in AUTH_REFUSED:
                return _failed("Authentication failed", data)
            return _failed(f"Broker refused: {exc.rc}", data)
        except aiomqtt.MqttError as exc:
            return _failed(network_message(exc, allotted), data)
        except (OSError, ssl.SSLError) as exc:
            return _failed(network_message(exc, allotted), data)
        latency = _ms(started)
        if config.degraded_latency_ms is not None and latency > config.degraded_latency_ms:
            return CheckResult(
                "degraded",
                latency_ms=latency,
                message=f"Slow response: {latency:.0f} ms "
                f"(threshold {config.degraded_latency_ms:g} ms)",
                data=data,
            )
        what = "Round trip completed" if config.topic is not None else "Connected"
        return CheckResult(
            "healthy", latency_ms=latency, message=f"{what} in {latency:.0f} ms", data=data
        )


async def _round_trip(
    client: aiomqtt.Client, topic: str, qos: int, data: dict[str, Any]
) -> str | None:
    """Subscribe, publish a unique payload, wait for it; the refusal's message, if refused."""
    from paho.mqtt.reasoncodes import ReasonCode

    payload = f"checkstack {uuid.uuid4().hex}".encode()
    sent = time.monotonic()
    granted = await client.subscribe(topic, qos=qos)
    codes = [g.value if isinstance(g, ReasonCode) else g for g in granted]
    # 0x80 (and any MQTT 5 code from 0x80 up) means the broker refused the subscription.
    if any(code >= 0x80 for code in codes):
        data["subscribeCodes"] = codes
        return "Subscription refused"
    await client.publish(topic, payload, qos=qos)
    async for message in client.messages:
        if message.payload == payload:
            data["roundTripMs"] = _ms(sent)
            return None
    return "Disconnected before the message came back"


def _tls(config: MqttConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _budget(allotted: float) -> float:
    return max(allotted - min(0.05, allotted * 0.05), 0.0)


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 3)


def _failed(message: str, data: dict[str, Any]) -> CheckResult:
    data.setdefault("error", message)
    return CheckResult("unhealthy", message=message, data=data)
