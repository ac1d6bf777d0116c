"""The ``dns`` strategy: ask a resolver (the host's, or a chosen one) for one record type of a
name; optionally require values in the answer."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import seconds
from checkstack_healthcheck.strategy import CheckResult, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    import dns.resolver

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS"]
#: Answers kept in the result, at most.
MAX_KEPT = 50


class DnsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """What to resolve, where, and what the answer must hold."""

    #: The name to resolve (``example.com``; taken as absolute, no search domains).
    name: Annotated[str, Meta(min_length=1, max_length=253)]
    record_type: RecordType = "A"
    #: The resolver's IP address; unset: the host's resolvers (``/etc/resolv.conf``).
    resolver: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    port: Annotated[int, Meta(ge=1, le=65_535)] = 53
    #: Values that must all be in the answer: addresses for A/AAAA, host names for CNAME/NS,
    #: ``mail.example.com`` or ``10 mail.example.com`` for MX, the text for TXT.
    expected_values: Annotated[
        list[Annotated[str, Meta(min_length=1, max_length=1_000)]], Meta(max_length=50)
    ] = []
    #: An answer slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class DnsStrategy(Strategy[DnsConfig]):
    id: ClassVar[str] = "dns"
    display_name: ClassVar[str] = "DNS"
    description: ClassVar[str] = (
        "Resolve a name (A, AAAA, CNAME, MX, TXT or NS) on the host's or a chosen resolver; "
        "optionally expect values in the answer."
    )
    config_type: ClassVar[type[msgspec.Struct]] = DnsConfig

    def validate(self, config: DnsConfig) -> list[tuple[str, list[str | int]]]:
        import dns.exception
        import dns.name

        problems: list[tuple[str, list[str | int]]] = []
        try:
            dns.name.from_text(config.name)
        except dns.exception.DNSException:
            problems.append(("name must be a domain name", ["name"]))
        if config.resolver is not None and not _is_ip(config.resolver):
            problems.append(("resolver must be an IP address", ["resolver"]))
        if config.record_type in ("A", "AAAA"):
            version = 4 if config.record_type == "A" else 6
            problems.extend(
                (f"must be an IPv{version} address", ["expectedValues", i])
                for i, value in enumerate(config.expected_values)
                if not _is_ip(value, version)
            )
        return problems

    async def run(self, config: DnsConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout. A tenth is left to report before the hard limit ends the run.
        allotted = remaining(deadline) * 0.9
        # dnspython is imported on the first run, so a server start does not pay for it.
        import dns.asyncresolver
        import dns.exception
        import dns.name
        import dns.resolver

        try:
            resolver = dns.asyncresolver.Resolver(configure=config.resolver is None)
        except dns.resolver.NoResolverConfiguration:
            return CheckResult("unhealthy", message="No resolver configured on the host")
        if config.resolver is not None:
            resolver.nameservers = [config.resolver]
        resolver.port = config.port
        resolver.timeout = resolver.lifetime = allotted
        data: dict[str, Any] = {
            "recordType": config.record_type,
            "resolvers": [str(ns) for ns in resolver.nameservers],
            "port": config.port,
        }
        started = time.monotonic()
        try:
            # dnspython may overshoot its lifetime by its retry backoff: bound it here too.
            async with asyncio.timeout(allotted):
                answer = await resolver.resolve(
                    dns.name.from_text(config.name), config.record_type, search=False
                )
        except dns.resolver.NXDOMAIN:
            return _failed("Domain does not exist (NXDOMAIN)", started, data)
        except dns.resolver.NoAnswer:
            return _failed(f"No {config.record_type} record for the name", started, data)
        except (TimeoutError, dns.exception.Timeout):
            return _failed(f"DNS query timed out after {seconds(allotted)} s", started, data)
        except dns.resolver.NoNameservers as exc:
            return _failed(_no_nameservers(exc), started, data)
        except dns.exception.DNSException as exc:
            return _failed(f"DNS query failed ({type(exc).__name__})", started, data)
        except OSError as exc:
            return _failed(
                f"Resolver unreachable: {exc.strerror or 'network error'}", started, data
            )
        latency = _since(started)
        values = [_text(config.record_type, rdata) for rdata in answer]
        data.update(
            answers=values[:MAX_KEPT],
            ttl=answer.rrset.ttl if answer.rrset is not None else None,
            latencyMs=latency,
        )
        missing = _missing(config, answer)
        if missing:
            data["missing"] = missing
            total = len(config.expected_values)
            message = (
                "Answer does not contain the expected value"
                if total == 1
                else f"Answer lacks {len(missing)} of {total} expected values"
            )
            return CheckResult("unhealthy", latency_ms=latency, message=message, data=data)
        count = len(values)
        noun = "record" if count == 1 else "records"
        threshold = config.degraded_latency_ms
        if threshold is not None and latency > threshold:
            return CheckResult(
                "degraded",
                latency_ms=latency,
                message=f"Slow answer: {latency:.0f} ms (threshold {threshold:g} ms)",
                data=data,
            )
        return CheckResult(
            "healthy",
            latency_ms=latency,
            message=f"Resolved {count} {config.record_type} {noun}",
            data=data,
        )


def _is_ip(value: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or address.version == version


def _host(value: Any) -> str:
    return str(value.to_text() if hasattr(value, "to_text") else value).rstrip(".").lower()


def _text(record_type: str, rdata: Any) -> str:
    """How an answer reads (in the result, and for matching)."""
    if record_type in ("CNAME", "NS"):
        return _host(rdata.target)
    if record_type == "MX":
        return f"{rdata.preference} {_host(rdata.exchange)}"
    if record_type == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return str(rdata.address)


def _forms(record_type: str, rdata: Any) -> set[str]:
    """The spellings of one answer an expected value may use."""
    if record_type in ("A", "AAAA"):
        return {str(ipaddress.ip_address(rdata.address))}
    if record_type == "MX":
        exchange = _host(rdata.exchange)
        return {f"{rdata.preference} {exchange}", exchange}
    return {_text(record_type, rdata)}


def _normal(record_type: str, value: str) -> str:
    if record_type in ("A", "AAAA"):
        return str(ipaddress.ip_address(value))
    if record_type == "TXT":
        return value
    return " ".join(value.split()).rstrip(".").lower()


def _missing(config: DnsConfig, answer: Any) -> list[str]:
    present: set[str] = set()
    for rdata in answer:
        present |= _forms(config.record_type, rdata)
    return [
        value
        for value in config.expected_values
        if _normal(config.record_type, value) not in present
    ]


def _no_nameservers(exc: dns.resolver.NoNameservers) -> str:
    """Why every resolver failed: an answer code, or no answer at all."""
    errors = " ".join(str(error) for error in exc.kwargs.get("errors") or ())
    for code in ("SERVFAIL", "REFUSED", "NOTIMP", "FORMERR"):
        if code in errors:
            return f"Resolver answered {code}"
    return "Resolver failed to answer"


def _failed(message: str, started: float, data: dict[str, Any]) -> CheckResult:
    return CheckResult(
        "unhealthy", latency_ms=_since(started), message=message, data={**data, "error": message}
    )


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
