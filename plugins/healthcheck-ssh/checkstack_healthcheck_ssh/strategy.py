"""The ``ssh`` strategy: connect, verify the server's host key, log in with a password or a
private key, and optionally run a command whose exit code and output are checked.

Nothing of the machine running Checkstack is used: no ``~/.ssh/config``, ``known_hosts``,
keys or agent; only what the check's config says.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from checkstack_healthcheck.errors import network_message, seconds
from checkstack_healthcheck.strategy import MASK, CheckResult, Secret, Strategy, remaining
from msgspec import Meta

if TYPE_CHECKING:
    import asyncssh

#: Output kept per stream for the assertions (more is read and dropped).
MAX_OUTPUT = 64 * 1024
#: Output shown per stream in the run's result.
KEPT_OUTPUT = 4096
#: ``SHA256:`` + 43 base64 characters (``ssh-keygen -l``), or ``MD5:`` + 16 hex pairs.
#: Host key types in OpenSSH's order of preference: pinned by fingerprint (or not pinned), the
#: server presents the key ``ssh`` would have shown (asyncssh's own order starts with RSA).
HOST_KEY_ALGORITHMS = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
FINGERPRINT = re.compile(
    r"(?i:sha256):[A-Za-z0-9+/]{43}=?|(?i:md5):[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){15}"
)


class SshConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Where to log in, as whom, how to know the server, and what to run."""

    host: Annotated[str, Meta(min_length=1, max_length=255)]
    port: Annotated[int, Meta(ge=1, le=65_535)] = 22
    username: Annotated[str, Meta(min_length=1, max_length=100)]
    #: Password (or keyboard-interactive) login.
    password: Secret | None = None
    #: A private key (OpenSSH, PEM or PKCS#8 text) for public key login.
    private_key: Secret | None = None
    #: The private key's passphrase, when it is encrypted.
    key_passphrase: Secret | None = None
    #: The server's host key: its public key (``ssh-ed25519 AAAA…``, a ``known_hosts`` or
    #: ``ssh-keyscan`` line) or its fingerprint (``SHA256:…`` as ``ssh-keygen -l`` prints it).
    host_key: Annotated[str, Meta(min_length=1, max_length=16_000)] | None = None
    #: Accept whatever host key the server presents (no protection against an impostor, who
    #: would receive the password). Off unless set.
    accept_any_host_key: bool = False
    #: A command to run after logging in (run by the account's shell on the server).
    command: Annotated[str, Meta(min_length=1, max_length=4_000)] | None = None
    #: With ``command``: the exit code it must end with.
    expected_exit_code: Annotated[int, Meta(ge=0, le=255)] = 0
    #: With ``command``: text its standard output must contain.
    output_contains: Annotated[str, Meta(min_length=1, max_length=10_000)] | None = None
    #: With ``command``: a regular expression (Python syntax) found in its standard output.
    output_matches: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    #: A healthy run slower than this is ``degraded``.
    degraded_latency_ms: Annotated[float, Meta(gt=0, le=3_600_000)] | None = None


class SshStrategy(Strategy[SshConfig]):
    id: ClassVar[str] = "ssh"
    display_name: ClassVar[str] = "SSH"
    description: ClassVar[str] = (
        "Log in over SSH (password or private key) after verifying the host key; optionally "
        "run a command and check its exit code and output."
    )
    config_type: ClassVar[type[msgspec.Struct]] = SshConfig

    def validate(self, config: SshConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if any(c.isspace() or c in "/?#@" for c in config.host):
            problems.append(("host must be a host name or an IP address", ["host"]))
        if config.password is None and config.private_key is None:
            problems.append(("Set password or privateKey", ["password"]))
        if config.key_passphrase is not None and config.private_key is None:
            problems.append(("keyPassphrase needs privateKey", ["keyPassphrase"]))
        if config.private_key not in (None, MASK) and "PRIVATE KEY" not in config.private_key:
            problems.append(
                ("privateKey must be a private key in PEM or OpenSSH text", ["privateKey"])
            )
        if config.host_key is None and not config.accept_any_host_key:
            problems.append(
                (
                    "Set hostKey (the server's public key or SHA256 fingerprint), or "
                    "acceptAnyHostKey: true to skip verifying the server",
                    ["hostKey"],
                )
            )
        elif config.host_key is not None and config.accept_any_host_key:
            problems.append(("Set hostKey or acceptAnyHostKey, not both", ["acceptAnyHostKey"]))
        elif config.host_key is not None and _pinned(config.host_key) is None:
            problems.append(
                (
                    "hostKey must be an OpenSSH public key (ssh-ed25519 AAAA…) or a "
                    "fingerprint (SHA256:…)",
                    ["hostKey"],
                )
            )
        if config.command is None:
            for field, value in (
                ("outputContains", config.output_contains),
                ("outputMatches", config.output_matches),
            ):
                if value is not None:
                    problems.append((f"{field} needs command", [field]))
        if config.output_matches is not None:
            try:
                re.compile(config.output_matches)
            except re.error as exc:
                problems.append((f"Invalid regular expression: {exc}", ["outputMatches"]))
        return problems

    async def run(self, config: SshConfig, deadline: float) -> CheckResult:
        # Read before the first run's imports: their time is the run's, and messages name the
        # check's timeout.
        allotted = remaining(deadline)
        # Imported here: asyncssh (and cryptography) load only where SSH checks run.
        import asyncssh

        started = time.monotonic()
        data: dict[str, Any] = {}
        try:
            keys = [_private_key(config)] if config.private_key is not None else None
        except _KeyProblem as problem:
            return _failed(str(problem), data)
        pin = _Pin(_pinned(config.host_key) if config.host_key is not None else None)
        client = _client_type()(pin)
        phase = "connecting"
        try:
            # Leave time to report before the hard limit ends the run.
            async with asyncio.timeout(allotted * 0.95):
                connection = await asyncssh.connect(
                    config.host,
                    config.port,
                    username=config.username,
                    password=config.password,
                    client_keys=keys,
                    client_factory=lambda: client,
                    known_hosts=pin.known_hosts(config.accept_any_host_key),
                    server_host_key_algs=pin.algorithms(config.accept_any_host_key),
                    # Nothing from this machine: no ~/.ssh/config, keys, agent or Kerberos.
                    config=None,
                    agent_path=None,
                    gss_host=None,
                    pkcs11_provider=None,
                )
                async with connection:
                    host_key = connection.get_server_host_key()
                    if host_key is not None:
                        data["hostKeyFingerprint"] = host_key.get_fingerprint()
                    data["loginMs"] = round((time.monotonic() - started) * 1000, 3)
                    if config.command is None:
                        return _checked(config, data, started)
                    phase = "running the command"
                    output = await _run_command(connection, config.command, data)
        except TimeoutError:
            return _failed(f"Timed out after {seconds(allotted)} s while {phase}", data)
        except asyncssh.HostKeyNotVerifiable:
            if pin.presented is not None:
                data["presentedFingerprint"] = pin.presented
            return _failed("Host key does not match the configured key", data)
        except asyncssh.PermissionDenied:
            return _failed("Authentication failed", data)
        except asyncssh.ConnectionLost:
            return _failed("Connection closed by the server", data)
        except asyncssh.ProtocolError:
            return _failed("Not an SSH server (protocol error)", data)
        except asyncssh.Error as exc:
            # Its text comes from the server or the library: details only, never the message.
            data["reason"] = str(exc.reason)[:300]
            return _failed(f"SSH connection failed ({type(exc).__name__})", data)
        except OSError as exc:
            return _failed(network_message(exc, allotted), data)
        return _checked(config, data, started, output)


class _KeyProblem(Exception):
    pass


def _private_key(config: SshConfig) -> asyncssh.SSHKey:
    """The configured private key, or a :class:`_KeyProblem` saying what is wrong with it
    (asyncssh's own texts are generic, but never repeated: a message is public)."""
    import asyncssh

    assert config.private_key is not None
    try:
        return asyncssh.import_private_key(config.private_key, config.key_passphrase)
    except asyncssh.KeyEncryptionError:
        raise _KeyProblem("Wrong private key passphrase") from None
    except asyncssh.KeyImportError as exc:
        if "assphrase" in str(exc):
            raise _KeyProblem("The private key is encrypted: set keyPassphrase") from None
        raise _KeyProblem("The private key could not be read") from None


def _pinned(text: str) -> str | asyncssh.SSHKey | None:
    """The configured host key: a fingerprint (``SHA256:…``, normalised) or a public key;
    ``None`` when it is neither."""
    import asyncssh

    text = text.strip()
    if FINGERPRINT.fullmatch(text):
        kind, _, value = text.partition(":")
        return f"SHA256:{value.rstrip('=')}" if kind.lower() == "sha256" else f"MD5:{value.lower()}"
    fields = text.split()
    # A known_hosts or ssh-keyscan line starts with the host name(s).
    if len(fields) >= 3 and not fields[1].startswith("AAAA"):
        fields = fields[1:]
    try:
        return asyncssh.import_public_key(" ".join(fields[:2]))
    except (asyncssh.KeyImportError, ValueError):
        return None


class _Pin:
    """Which host key the server must present, and which one it did (for the result)."""

    def __init__(self, pinned: str | asyncssh.SSHKey | None) -> None:
        self.pinned = pinned
        self.presented: str | None = None

    def known_hosts(self, accept_any: bool) -> Any:
        """asyncssh's ``known_hosts``: ``None`` checks nothing; a pinned public key is the one
        trusted key (which also makes the server present a key of its type); otherwise no key
        is trusted up front and :meth:`accepts` decides."""
        if accept_any:
            return None
        if self.pinned is not None and not isinstance(self.pinned, str):
            return ([self.pinned], [], [])
        return ([], [], [])

    def algorithms(self, accept_any: bool) -> Any:
        """asyncssh's ``server_host_key_algs``: a pinned public key's own (``()`` lets asyncssh
        take them from the trusted key), else OpenSSH's order."""
        if not accept_any and self.pinned is not None and not isinstance(self.pinned, str):
            return ()
        return list(HOST_KEY_ALGORITHMS)

    def accepts(self, key: asyncssh.SSHKey) -> bool:
        """Whether a key asyncssh did not trust itself matches the pinned fingerprint."""
        self.presented = key.get_fingerprint("sha256")
        if isinstance(self.pinned, str):
            algorithm = "md5" if self.pinned.startswith("MD5:") else "sha256"
            return bool(key.get_fingerprint(algorithm) == self.pinned)
        return False  # not the pinned public key (asyncssh accepted that one itself)


@functools.cache
def _client_type() -> type[Any]:
    """An ``asyncssh.SSHClient`` asking a :class:`_Pin` about host keys (made on first use, so
    that importing this module does not import asyncssh)."""
    import asyncssh

    quiet = logging.getLogger("asyncssh")
    if quiet.level == logging.NOTSET:
        # A dozen INFO lines per connection would flood the server's log at every run; a
        # deployer who sets this logger's level keeps theirs.
        quiet.setLevel(logging.WARNING)

    class Client(asyncssh.SSHClient):
        def __init__(self, pin: _Pin) -> None:
            self.pin = pin

        def validate_host_public_key(
            self, host: str, addr: str, port: int, key: asyncssh.SSHKey
        ) -> bool:
            return self.pin.accepts(key)

    return Client


async def _run_command(connection: Any, command: str, data: dict[str, Any]) -> str:
    """Run ``command``: its exit code and output start go into ``data``; its standard output
    (the first :data:`MAX_OUTPUT` characters) is returned."""
    process = await connection.create_process(command, errors="replace")
    process.stdin.write_eof()
    stdout, stderr = await asyncio.gather(_read(process.stdout), _read(process.stderr))
    await process.wait_closed()
    data["exitCode"] = process.exit_status
    if process.exit_signal:
        data["exitSignal"] = process.exit_signal[0]
    data["stdout"] = stdout[:KEPT_OUTPUT]
    data["stderr"] = stderr[:KEPT_OUTPUT]
    return stdout


async def _read(stream: Any) -> str:
    """The first :data:`MAX_OUTPUT` characters of ``stream``, read to its end."""
    kept: list[str] = []
    size = 0
    while chunk := await stream.read(8192):
        if size < MAX_OUTPUT:
            kept.append(chunk[: MAX_OUTPUT - size])
            size += len(kept[-1])
    return "".join(kept)


def _checked(
    config: SshConfig, data: dict[str, Any], started: float, output: str = ""
) -> CheckResult:
    """The verdict once logged in (and the command, if any, has run with ``output``)."""
    latency = round((time.monotonic() - started) * 1000, 3)
    if config.command is not None:
        if "exitSignal" in data:
            return _failed(f"Command was ended by signal {data['exitSignal']}", data, latency)
        if data["exitCode"] != config.expected_exit_code:
            return _failed(
                f"Command exited with {data['exitCode']} (expected {config.expected_exit_code})",
                data,
                latency,
            )
        if config.output_contains is not None and config.output_contains not in output:
            return _failed("Output does not contain the expected text", data, latency)
        if config.output_matches is not None and not re.search(config.output_matches, output):
            return _failed("Output does not match the expected pattern", data, latency)
    what = "Logged in" if config.command is None else "Command succeeded"
    if config.degraded_latency_ms is not None and latency > config.degraded_latency_ms:
        return CheckResult(
            "degraded",
            latency_ms=latency,
            message=f"{what}, slowly: {latency:.0f} ms "
            f"(threshold {config.degraded_latency_ms:g} ms)",
            data=data,
        )
    return CheckResult(
        "healthy", latency_ms=latency, message=f"{what} ({latency:.0f} ms)", data=data
    )


def _failed(message: str, data: dict[str, Any], latency: float | None = None) -> CheckResult:
    return CheckResult(
        "unhealthy", latency_ms=latency, message=message, data={**data, "error": message}
    )
