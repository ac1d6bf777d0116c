"""The ``tls`` strategy: a TLS handshake, then the server certificate's chain (against the
system's CAs or a configured bundle), host name and days until expiry.

A failed verification is followed by a second, unverified handshake, so the result still says
what the certificate is (subject, issuer, dates) and an expired certificate is reported as
expired whatever else is wrong with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import CheckResult, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    from cryptography import x509

# OpenSSL's verification codes (X509_V_ERR_*) the messages name.
_NOT_YET_VALID = 9
_EXPIRED = 10
_SELF_SIGNED = 18
_HOSTNAME_MISMATCH = 62
_IP_MISMATCH = 64
_REVOKED = 23

Days = Annotated[int, Meta(ge=0, le=3_650)]


class TlsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to shake hands and what the certificate must be."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 443
    #: The name sent as SNI and matched against the certificate (default: ``host``).
    servername: Annotated[str, Meta(min_length=1, max_length=255)] | None = None
    #: PEM text of the CA certificates to trust instead of the system's.
    ca_bundle: Annotated[str, Meta(min_length=1, max_length=1_000_000)] | None = None
    #: Verify the chain and the host name (``false``: only the dates are judged).
    verify_certificate: bool = True
    #: Fewer days than this until expiry is ``degraded``.
    degraded_days: Days = 14
    #: Fewer days than this until expiry is ``unhealthy`` (an expired certificate always is).
    unhealthy_days: Days | None = None


class TlsStrategy(Strategy[TlsConfig]):
    id: ClassVar[str] = "tls"
    display_name: ClassVar[str] = "TLS certificate"
    description: ClassVar[str] = (
        "Shake hands with a TLS server; check the certificate chain, host name and days until "
        "expiry."
    )
    config_type: ClassVar[type[msgspec.Struct]] = TlsConfig

    def validate(self, config: TlsConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        for field, value in (("host", config.host), ("servername", config.servername)):
            if value is not None and any(c.isspace() or c in "/?#@" for c in value):
                problems.append((f"{field} must be a host name or an IP address", [field]))
        if config.ca_bundle is not None:
            try:
                ssl.create_default_context(cadata=config.ca_bundle)
            except (ssl.SSLError, ValueError):
                problems.append(("caBundle must hold PEM certificates", ["caBundle"]))
        if config.unhealthy_days is not None and config.unhealthy_days > config.degraded_days:
            problems.append(("unhealthyDays must not exceed degradedDays", ["unhealthyDays"]))
        return problems

    async def run(self, config: TlsConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline) * 0.9
        # Imported here: cryptography's X.509 modules load only where TLS checks run, not at
        # server start (the healthcheck plugin's vault loads only Fernet and HKDF).
        from cryptography import x509

        name = config.servername or config.host
        started = time.monotonic()
        failure: ssl.SSLCertVerificationError | None = None
        try:
            async with asyncio.timeout(allotted):
                try:
                    session = await _handshake(config, name, verified=config.verify_certificate)
                except ssl.SSLCertVerificationError as exc:
                    failure = exc
                    session = await _handshake(config, name, verified=False)
        except TimeoutError:
            return _failed(f"Timed out after {seconds(allotted)} s")
        except (OSError, ssl.SSLError) as exc:
            return _failed(network_message(exc, allotted))
        latency = round((time.monotonic() - started) * 1000, 3)
        der, version, cipher = session
        data: dict[str, Any] = {"protocol": version, "cipher": cipher, "handshakeMs": latency}
        if der is None:
            return CheckResult(
                "unhealthy", latency_ms=latency, message="No certificate received", data=data
            )
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            return CheckResult(
                "unhealthy", latency_ms=latency, message="Certificate cannot be read", data=data
            )
        now = datetime.now(UTC)
        expires = certificate.not_valid_after_utc
        days = math.floor((expires - now).total_seconds() / 86_400)
        data.update(
            _describe(certificate),
            daysLeft=days,
            verified=config.verify_certificate and failure is None,
        )

        def result(status: Any, message: str) -> CheckResult:
            return CheckResult(status, latency_ms=latency, message=message, data=data)

        if expires <= now:
            return result("unhealthy", "TLS certificate has expired")
        if certificate.not_valid_before_utc > now:
            return result("unhealthy", "TLS certificate is not valid yet")
        if failure is not None:
            data["verifyError"] = failure.verify_message
            return result("unhealthy", _verify_message(failure))
        if config.unhealthy_days is not None and days < config.unhealthy_days:
            return result("unhealthy", _expires_in(days, config.unhealthy_days))
        if days < config.degraded_days:
            return result("degraded", _expires_in(days, config.degraded_days))
        return result("healthy", f"Certificate valid for {days} more days")


async def _handshake(
    config: TlsConfig, name: str, *, verified: bool
) -> tuple[bytes | None, str | None, str | None]:
    """Connect and shake hands: the server's certificate (DER), protocol and cipher."""
    if verified:
        context = ssl.create_default_context(cadata=config.ca_bundle)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.open_connection(
        config.host, config.port, ssl=context, server_hostname=name
    )
    try:
        tls: ssl.SSLObject = writer.get_extra_info("ssl_object")
        cipher = tls.cipher()
        return tls.getpeercert(binary_form=True), tls.version(), cipher[0] if cipher else None
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(0.5):
                await writer.wait_closed()


def _describe(certificate: x509.Certificate) -> dict[str, Any]:
    """What the result shows of a certificate (details readers only)."""
    from cryptography import x509

    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        alt_names = [str(n) for n in names.get_values_for_type(x509.DNSName)] + [
            str(n) for n in names.get_values_for_type(x509.IPAddress)
        ]
    except x509.ExtensionNotFound:
        alt_names = []
    return {
        "subject": _common_name(certificate.subject),
        "issuer": _common_name(certificate.issuer),
        "altNames": alt_names[:50],
        "notBefore": certificate.not_valid_before_utc.isoformat(),
        "notAfter": certificate.not_valid_after_utc.isoformat(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


def _common_name(name: x509.Name) -> str:
    from cryptography.x509.oid import NameOID

    found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else name.rfc4514_string()


def _verify_message(error: ssl.SSLCertVerificationError) -> str:
    code = error.verify_code
    reason = (error.verify_message or "").strip() or "unknown reason"
    if code == _EXPIRED:  # a certificate of the chain, the server's being valid
        return "TLS certificate chain has an expired certificate"
    if code == _NOT_YET_VALID:
        return "TLS certificate chain has a certificate not valid yet"
    if code in (_HOSTNAME_MISMATCH, _IP_MISMATCH):
        return "TLS certificate does not match the host name"
    if code == _SELF_SIGNED:
        return "TLS certificate is self-signed"
    if code == _REVOKED:
        return "TLS certificate has been revoked"
    return f"TLS certificate is not trusted ({reason})"


def _expires_in(days: int, threshold: int) -> str:
    when = "in less than a day" if days < 1 else f"in {days} day{'s' if days != 1 else ''}"
    return f"Certificate expires {when} (threshold {threshold})"


def _failed(message: str) -> CheckResult:
    return CheckResult("unhealthy", message=message, data={"error": message})
