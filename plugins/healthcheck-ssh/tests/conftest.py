"""SSH strategy tests: a host with the catalog, healthcheck and ssh plugins on the core's
fixtures, and a real SSH server (``asyncssh``) the tests start on a loopback port, with keys
made here.

- ``keys``: the server's host keys (ed25519 and RSA), another host key, the authorised client
  key, another client key (module scope: made once);
- ``ssh_server``: user ``monitor`` logs in with ``PASSWORD`` or the authorised key; commands
  ``check-db`` (prints two lines), ``fail`` (exit 3, ``boom`` on stderr), ``hang`` (never
  ends); ``ssh_server.passwords`` lists the passwords the server received;
- ``admin``: a client over HTTP as an administrator.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import asyncssh
import pytest
from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
    admin,
    strategy_plugins,
    strategy_settings,
)

from checkstack_core import Plugin
from checkstack_core.settings import Settings

USER = "monitor"
PASSWORD = "ssh-Pa55word-never-logged"
PASSPHRASE = "key-passphrase-never-logged"


def plugins() -> list[Plugin]:
    from checkstack_healthcheck_ssh import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    return plugins()


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


@dataclass(frozen=True)
class Keys:
    host: asyncssh.SSHKey
    #: The server's second host key (asyncssh alone would prefer it: the strategy must not).
    host_rsa: asyncssh.SSHKey
    other_host: asyncssh.SSHKey
    client: asyncssh.SSHKey
    other_client: asyncssh.SSHKey
    #: ``client`` in OpenSSH format encrypted with ``PASSPHRASE``.
    client_encrypted: str

    def host_public(self) -> str:
        return self.host.export_public_key().decode().strip()

    def client_private(self) -> str:
        return self.client.export_private_key().decode()


@pytest.fixture(scope="module")
def keys() -> Keys:
    host, other_host, client, other_client = (
        asyncssh.generate_private_key("ssh-ed25519") for _ in range(4)
    )
    with warnings.catch_warnings():
        # One bcrypt round rather than 128 (bcrypt warns): the same decryption code, without
        # a second of key stretching at every use.
        warnings.simplefilter("ignore", UserWarning)
        encrypted = client.export_private_key(passphrase=PASSPHRASE, rounds=1).decode()
    host_rsa = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
    return Keys(host, host_rsa, other_host, client, other_client, encrypted)


@dataclass
class SshServer:
    port: int
    passwords: list[str] = field(default_factory=list)


async def start_ssh_server(keys: Keys) -> tuple[SshServer, Callable[[], Awaitable[None]]]:
    """The test SSH server, listening; and the coroutine function that stops it."""
    stop = asyncio.Event()
    running = SshServer(port=0)

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True  # every user must authenticate

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            running.passwords.append(password)
            return username == USER and password == PASSWORD

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            return username == USER and key.public_data == keys.client.public_data

    async def command(process: asyncssh.SSHServerProcess[str]) -> None:
        if process.command == "check-db":
            process.stdout.write("database: up\nreplicas: 2\n")
            process.exit(0)
        elif process.command == "fail":
            process.stderr.write("boom\n")
            process.exit(3)
        elif process.command == "hang":
            await stop.wait()
            process.exit(0)
        else:
            process.stderr.write("unknown command\n")
            process.exit(127)

    server = await asyncssh.create_server(
        Server,
        "127.0.0.1",
        0,
        server_host_keys=[keys.host_rsa, keys.host],
        process_factory=command,
    )
    running.port = int(server.sockets[0].getsockname()[1])

    async def close() -> None:
        stop.set()
        server.close()
        await server.wait_closed()

    return running, close


@pytest.fixture
async def ssh_server(keys: Keys) -> AsyncIterator[SshServer]:
    running, close = await start_ssh_server(keys)
    try:
        yield running
    finally:
        await close()
