"""TLS is verified by default (a self-signed local server is refused with a clear message, and
accepted with ``verifyTls: false``), and network errors read as messages, never tracebacks."""

from __future__ import annotations

import asyncio
import datetime
import errno
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from checkstack_healthcheck.errors import network_message, seconds
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(tmp_path: Path, *, expired: bool = False) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    start, end = (
        (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
        if expired
        else (now - datetime.timedelta(days=1), now + datetime.timedelta(days=30))
    )
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
async def tls_url(tmp_path: Path) -> AsyncIterator[str]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=self_signed(tmp_path))
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    finally:
        server.close()


async def test_tls_is_verified_by_default(admin, make_check, tls_url):
    checked = await make_check({"url": tls_url})
    run = await admin.call("healthcheck", "runNow", {"id": checked["id"]})
    assert (run["status"], run["message"]) == ("unhealthy", "TLS certificate is self-signed")
    trusting = await make_check({"url": tls_url, "verifyTls": False})
    run = await admin.call("healthcheck", "runNow", {"id": trusting["id"]})
    assert run["status"] == "healthy", run["message"]


def _verification(message: str) -> BaseException:
    error = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    error.verify_message = message
    wrapper = ConnectionError("boom")
    wrapper.__cause__ = error
    return wrapper


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (_verification("certificate has expired"), "TLS certificate has expired"),
        (_verification("self-signed certificate"), "TLS certificate is self-signed"),
        (
            _verification("Hostname mismatch, certificate is not valid for 'x'."),
            "TLS certificate does not match the host name",
        ),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "Could not resolve host"),
        (TimeoutError(), "Timed out after 5 s"),
        (ConnectionResetError(104, "reset"), "Connection reset by peer"),
        # asyncio's wording when every address refused: the number speaks, the text quotes
        # the target.
        (
            OSError(errno.ECONNREFUSED, "Connect call failed ('10.1.2.3', 5672)"),
            "Connection refused",
        ),
        (
            OSError(errno.EHOSTUNREACH, "Connect call failed ('10.1.2.3', 22)"),
            "Host is unreachable",
        ),
        (OSError(errno.EPIPE, "write to 10.1.2.3 failed"), "Connection failed: Broken pipe"),
    ],
)
def test_network_errors_read_as_messages(error, message):
    assert network_message(error, 5.0) == message


@pytest.mark.parametrize(
    ("budget", "written"),
    [
        (5.0, "5"),
        (0.5, "0.5"),
        (0.3, "0.3"),  # 0.3 * 100 is 30.000000000000004 in floats: still 0.3
        (0.499, "0.5"),  # read a moment after a 0.5 s deadline was set
        (0.4951, "0.5"),
        (1.234, "1.24"),
        (0.0, "0"),
    ],
)
def test_timeouts_are_written_as_the_timeout_given(budget, written):
    assert seconds(budget) == written
