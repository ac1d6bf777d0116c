"""Clear messages for network failures, shared by the strategies (``Connection refused``,
``Timed out after 5 s``, ``TLS certificate has expired``): never a traceback, never the target."""

from __future__ import annotations

import errno
import os
import socket
import ssl

#: Messages by error number: asyncio raises ``OSError(ECONNREFUSED, "Connect call failed
#: ('10.0.0.5', 5432)")`` when every address refused, so the number, not the text, says what
#: happened (and the text quotes the target, which a message must not).
_BY_ERRNO = {
    errno.ECONNREFUSED: "Connection refused",
    errno.ECONNRESET: "Connection reset by peer",
    errno.ENETUNREACH: "Network is unreachable",
    errno.EHOSTUNREACH: "Host is unreachable",
}


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes and contexts, outermost first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def seconds(value: float) -> str:
    """``5`` for 5.0, ``0.5`` for 0.5: how timeouts are written in messages.

    Rounded up to the 10 ms: a strategy reads its budget a moment after the deadline was set
    (0.499 s of a 0.5 s timeout on a busy machine), and the message should name the timeout
    the check was given, not that moment."""
    millis = round(value * 1000)
    return f"{-(-millis // 10) / 100:g}"


def network_message(exc: BaseException, timeout: float | None = None) -> str:
    """The message for a failed connection or exchange."""
    chain = causes(exc)
    for error in chain:
        if isinstance(error, ssl.SSLCertVerificationError):
            reason = (error.verify_message or "").strip()
            if "expired" in reason:
                return "TLS certificate has expired"
            if "self-signed" in reason or "self signed" in reason:
                return "TLS certificate is self-signed"
            # OpenSSL words it "Hostname mismatch" or "IP address mismatch" (then quotes the
            # target, which a message must not).
            if "mismatch" in reason.lower() or "hostname" in reason.lower():
                return "TLS certificate does not match the host name"
            return f"TLS certificate verification failed: {reason or 'unknown reason'}"
        if isinstance(error, ssl.SSLError):
            return f"TLS handshake failed: {error.reason or 'unknown reason'}"
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "Connection refused"
        if isinstance(error, ConnectionResetError):
            return "Connection reset by peer"
        if isinstance(error, socket.gaierror):
            return "Could not resolve host"
        if isinstance(error, TimeoutError | socket.timeout):
            return f"Timed out after {seconds(timeout)} s" if timeout else "Timed out"
        if isinstance(error, OSError) and error.errno is not None:
            if error.errno in _BY_ERRNO:
                return _BY_ERRNO[error.errno]
            if error.errno == errno.ETIMEDOUT:
                return f"Timed out after {seconds(timeout)} s" if timeout else "Timed out"
            # The system's wording for the number: a library's own text may quote the target.
            return f"Connection failed: {os.strerror(error.errno)}"
    text = str(exc).lower()
    if "refused" in text:
        return "Connection refused"
    if "name or service not known" in text or "nodename nor servname" in text:
        return "Could not resolve host"
    return f"Connection failed ({type(exc).__name__})"
