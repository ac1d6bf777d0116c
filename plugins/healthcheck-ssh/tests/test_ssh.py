"""The ``ssh`` strategy against a real SSH server (asyncssh) on a loopback port: password and
key logins, wrong credentials, host keys that do not match (before any password is sent),
commands with exit code and output assertions, timeouts; secrets never shown or logged; then
through HTTP as a user would."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_ssh import SshConfig, SshStrategy

from checkstack_core import BadRequest

from .conftest import PASSPHRASE, PASSWORD, USER, Keys, SshServer

# The test key is encrypted with one bcrypt round (see conftest.keys): bcrypt warns as it
# decrypts it.
pytestmark = pytest.mark.filterwarnings("ignore:Warning. bcrypt.kdf:UserWarning")


def config_for(server: SshServer, **fields: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, "username": USER, **fields}


async def probe(within: float = 5.0, **config: Any) -> CheckResult:
    """One run of the strategy, with ``config`` given as a check's JSON would give it."""
    parsed = msgspec.convert(config, SshConfig)
    assert SshStrategy().validate(parsed) == []
    return await SshStrategy().run(parsed, time.monotonic() + within)


def shown(result: CheckResult) -> str:
    return result.message + msgspec.json.encode(result.data).decode()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


async def test_password_login_with_the_host_key_pinned(ssh_server: SshServer, keys: Keys) -> None:
    result = await probe(**config_for(ssh_server, password=PASSWORD, hostKey=keys.host_public()))
    assert (result.status, result.message[:9]) == ("healthy", "Logged in")
    assert result.data["hostKeyFingerprint"] == keys.host.get_fingerprint()
    # An ssh-keyscan / known_hosts line and the fingerprint pin the same key.
    line = f"[127.0.0.1]:{ssh_server.port} {keys.host_public()}"
    assert (await probe(**config_for(ssh_server, password=PASSWORD, hostKey=line))).status == (
        "healthy"
    )
    # Pinned by fingerprint, the ed25519 key is the one asked for, as OpenSSH's ssh would.
    for fingerprint in (keys.host.get_fingerprint(), keys.host.get_fingerprint("md5")):
        by_print = await probe(**config_for(ssh_server, password=PASSWORD, hostKey=fingerprint))
        assert by_print.status == "healthy", by_print.message
    # Pinned by its public key, the server's RSA key is asked for and accepted too.
    rsa = keys.host_rsa.export_public_key().decode()
    by_rsa = await probe(**config_for(ssh_server, password=PASSWORD, hostKey=rsa))
    assert by_rsa.data["hostKeyFingerprint"] == keys.host_rsa.get_fingerprint()


async def test_key_login_plain_and_encrypted(ssh_server: SshServer, keys: Keys) -> None:
    pin = keys.host.get_fingerprint()
    plain = await probe(**config_for(ssh_server, privateKey=keys.client_private(), hostKey=pin))
    assert plain.status == "healthy", plain.message
    encrypted = keys.client_encrypted
    unlocked = await probe(
        **config_for(ssh_server, privateKey=encrypted, keyPassphrase=PASSPHRASE, hostKey=pin)
    )
    assert unlocked.status == "healthy", unlocked.message
    locked = await probe(**config_for(ssh_server, privateKey=encrypted, hostKey=pin))
    assert locked.message == "The private key is encrypted: set keyPassphrase"
    wrong = await probe(
        **config_for(ssh_server, privateKey=encrypted, keyPassphrase="nope", hostKey=pin)
    )
    assert (wrong.status, wrong.message) == ("unhealthy", "Wrong private key passphrase")
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n-----END OPENSSH PRIVATE KEY-----"
    unreadable = await probe(**config_for(ssh_server, privateKey=garbage, hostKey=pin))
    assert unreadable.message == "The private key could not be read"


async def test_wrong_credentials(ssh_server: SshServer, keys: Keys) -> None:
    pin = keys.host.get_fingerprint()
    password = await probe(**config_for(ssh_server, password="Wrong-pass1", hostKey=pin))
    assert (password.status, password.message) == ("unhealthy", "Authentication failed")
    other = keys.other_client.export_private_key().decode()
    key = await probe(**config_for(ssh_server, privateKey=other, hostKey=pin))
    assert (key.status, key.message) == ("unhealthy", "Authentication failed")
    user = await probe(
        **{**config_for(ssh_server, password=PASSWORD, hostKey=pin), "username": "x"}
    )
    assert user.message == "Authentication failed"


async def test_a_host_key_mismatch_fails_before_the_password_is_sent(
    ssh_server: SshServer, keys: Keys
) -> None:
    impostor = keys.other_host.export_public_key().decode()
    by_key = await probe(**config_for(ssh_server, password=PASSWORD, hostKey=impostor))
    assert (by_key.status, by_key.message) == (
        "unhealthy",
        "Host key does not match the configured key",
    )
    assert by_key.data["presentedFingerprint"] == keys.host.get_fingerprint()
    fingerprint = keys.other_host.get_fingerprint()
    by_print = await probe(**config_for(ssh_server, password=PASSWORD, hostKey=fingerprint))
    assert by_print.message == "Host key does not match the configured key"
    assert ssh_server.passwords == []
    # The explicit opt-out accepts any key.
    anyway = await probe(**config_for(ssh_server, password=PASSWORD, acceptAnyHostKey=True))
    assert anyway.status == "healthy"
    assert ssh_server.passwords == [PASSWORD]


async def test_command_exit_code_and_output(ssh_server: SshServer, keys: Keys) -> None:
    base = config_for(ssh_server, password=PASSWORD, hostKey=keys.host.get_fingerprint())
    good = await probe(
        **base, command="check-db", outputContains="database: up", outputMatches=r"replicas: \d+"
    )
    assert (good.status, good.message[:17]) == ("healthy", "Command succeeded")
    assert (good.data["exitCode"], good.data["stdout"]) == (0, "database: up\nreplicas: 2\n")
    failed = await probe(**base, command="fail")
    assert (failed.status, failed.message) == ("unhealthy", "Command exited with 3 (expected 0)")
    assert failed.data["stderr"] == "boom\n"
    assert (await probe(**base, command="fail", expectedExitCode=3)).status == "healthy"
    missing = await probe(**base, command="check-db", outputContains="database: down")
    assert (missing.status, missing.message) == (
        "unhealthy",
        "Output does not contain the expected text",
    )
    unmatched = await probe(**base, command="check-db", outputMatches=r"replicas: [3-9]")
    assert unmatched.message == "Output does not match the expected pattern"


async def test_timeouts_and_unreachable_servers(
    ssh_server: SshServer, keys: Keys, silent_port: int, closed_port: int
) -> None:
    base = config_for(ssh_server, password=PASSWORD, hostKey=keys.host.get_fingerprint())
    hung = await probe(within=0.5, **base, command="hang")
    assert (hung.status, hung.message) == (
        "unhealthy",
        "Timed out after 0.5 s while running the command",
    )
    silent = await probe(within=0.5, **{**base, "port": silent_port})
    assert silent.message == "Timed out after 0.5 s while connecting"
    refused = await probe(**{**base, "port": closed_port})
    assert (refused.status, refused.message) == ("unhealthy", "Connection refused")


async def test_not_an_ssh_server() -> None:
    async def web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the client's SSH version line, read as a request
        writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(web, "127.0.0.1", 0)
    try:
        port = int(server.sockets[0].getsockname()[1])
        result = await probe(
            host="127.0.0.1", port=port, username=USER, password=PASSWORD, acceptAnyHostKey=True
        )
    finally:
        server.close()
    assert (result.status, result.message) == ("unhealthy", "Connection closed by the server")


async def test_secrets_appear_in_no_result_and_no_log(
    ssh_server: SshServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("asyncssh").setLevel(logging.DEBUG)
    try:
        pin = keys.host.get_fingerprint()
        encrypted = keys.client_encrypted
        results = [
            await probe(**config_for(ssh_server, password=PASSWORD, hostKey=pin, command="fail")),
            await probe(**config_for(ssh_server, password=PASSWORD + "x", hostKey=pin)),
            await probe(
                **config_for(
                    ssh_server, privateKey=encrypted, keyPassphrase=PASSPHRASE, hostKey=pin
                )
            ),
            await probe(
                **config_for(ssh_server, privateKey=encrypted, keyPassphrase="x", hostKey=pin)
            ),
        ]
    finally:
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
    assert [r.status for r in results] == ["unhealthy"] * 2 + ["healthy", "unhealthy"]
    key_body = encrypted.splitlines()[2]  # a line of the key's base64 text
    for secret in (PASSWORD, PASSPHRASE, key_body, keys.client_private().splitlines()[2]):
        assert all(secret not in shown(result) for result in results)
        assert secret not in caplog.text
    assert "Auth for user monitor" in caplog.text  # the log was captured at all


#: Bad configs: (config fields, the path the error names, words of its message).
BAD_CONFIGS: list[tuple[dict[str, Any], list[Any], str]] = [
    ({"password": None}, ["config", "password"], "Set password or privateKey"),
    ({"hostKey": None}, ["config", "hostKey"], "acceptAnyHostKey: true"),
    ({"acceptAnyHostKey": True}, ["config", "acceptAnyHostKey"], "not both"),
    ({"hostKey": "SHA256:short"}, ["config", "hostKey"], "fingerprint"),
    ({"hostKey": "ssh-ed25519 AAAAnope"}, ["config", "hostKey"], "public key"),
    ({"outputContains": "up"}, ["config", "outputContains"], "needs command"),
    ({"command": "x", "outputMatches": "("}, ["config", "outputMatches"], "regular"),
    ({"keyPassphrase": "x"}, ["config", "keyPassphrase"], "needs privateKey"),
    ({"password": None, "privateKey": "hunter2"}, ["config", "privateKey"], "private key"),
    ({"expectedExitCode": 256}, ["config", "expectedExitCode"], "<= 255"),
    ({"username": ""}, ["config", "username"], "length"),
]


async def test_bad_configs_are_refused_with_the_path(admin: Any, keys: Keys) -> None:
    for config, path, words in BAD_CONFIGS:
        body = {
            "host": "127.0.0.1",
            "username": USER,
            "password": PASSWORD,
            "hostKey": keys.host.get_fingerprint(),
            **config,
        }
        body = {key: value for key, value in body.items() if value is not None}
        with pytest.raises(BadRequest) as refused:
            await admin.call(
                "healthcheck",
                "createHealthCheck",
                {"name": "ssh", "strategyId": "ssh", "config": body},
            )
        issue = refused.value.data["issues"][0]
        assert (issue["path"], words in issue["message"]) == (path, True), issue
        assert PASSWORD not in str(refused.value.data)


async def test_through_http(admin: Any, ssh_server: SshServer, keys: Keys) -> None:
    strategies = (await admin.call("healthcheck", "getStrategies"))["strategies"]
    schema = next(s for s in strategies if s["id"] == "ssh")["configSchema"]["properties"]
    for field in ("password", "privateKey", "keyPassphrase"):
        assert schema[field]["anyOf"][0]["x-secret"] is True

    async def check(**config: Any) -> dict[str, Any]:
        body = {"name": "ssh", "strategyId": "ssh", "timeoutSeconds": 5}
        created = await admin.call(
            "healthcheck",
            "createHealthCheck",
            {**body, "config": {**config_for(ssh_server), **config}},
        )
        return dict(created)

    pin = keys.host.get_fingerprint()
    by_password = await check(password=PASSWORD, hostKey=pin, command="check-db")
    assert by_password["config"]["password"] == "********"
    run = await admin.call("healthcheck", "runNow", {"id": by_password["id"]})
    assert run["status"] == "healthy" and run["message"].startswith("Command succeeded")

    encrypted = keys.client_encrypted
    by_key = await check(privateKey=encrypted, keyPassphrase=PASSPHRASE, hostKey=pin)
    assert (by_key["config"]["privateKey"], by_key["config"]["keyPassphrase"]) == ("********",) * 2
    run = await admin.call("healthcheck", "runNow", {"id": by_key["id"]})
    assert run["status"] == "healthy" and run["message"].startswith("Logged in")

    wrong = await check(password="Wrong-pass1", hostKey=pin)
    failed = await admin.call("healthcheck", "runNow", {"id": wrong["id"]})
    assert (failed["status"], failed["message"]) == ("unhealthy", "Authentication failed")

    everything = [
        await admin.call("healthcheck", "getHealthChecks"),
        await admin.call("healthcheck", "getRun", {"id": run["id"]}),
        await admin.call("healthcheck", "getHistory", {}),
    ]
    text = msgspec.json.encode(everything).decode()
    for secret in (PASSWORD, PASSPHRASE, encrypted.splitlines()[2]):
        assert secret not in text
