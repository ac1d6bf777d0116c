"""Fixtures for the mqtt strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-mqtt plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the Mosquitto broker at 127.0.0.1:1883 (anonymous), a ``private_broker`` (a Mosquitto
the tests start, with a password file and an ACL), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from checkstack_core.settings import Settings

SECRET_KEY = "test-secret-key-for-mqtt-checks"
HOST = "127.0.0.1"
PORT = 1883


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_catalog import plugin as catalog
    from checkstack_healthcheck import plugin as healthcheck
    from checkstack_healthcheck_mqtt import plugin as mqtt

    return [catalog, healthcheck, mqtt]


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        secret_key=SECRET_KEY,
        plugin_settings={"healthcheck": {"scheduler": False}},
    )


@pytest.fixture
def admin(checkstack_client: Any, checkstack_auth: Any) -> Any:
    return checkstack_client(checkstack_auth.admin(name="Ada Admin"))


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return _free_port()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(hold, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()


@dataclass(frozen=True)
class Broker:
    port: int
    username: str
    password: str
    #: The topics the user may publish and subscribe to: ``checkstack/#`` (others are refused).
    allowed: str = "checkstack/"


@pytest.fixture(scope="module")
def private_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A Mosquitto broker on a free loopback port that admits one user with a password and lets
    it use ``checkstack/#`` only; one per test module."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    folder: Path = tmp_path_factory.mktemp("mosquitto")
    broker = Broker(port=_free_port(), username="checker", password="Mq-Secret-" + folder.name)
    subprocess.run(
        [passwd, "-b", "-c", str(folder / "passwd"), broker.username, broker.password],
        check=True,
        capture_output=True,
    )
    (folder / "acl").write_text(f"user {broker.username}\ntopic readwrite checkstack/#\n")
    (folder / "mosquitto.conf").write_text(
        f"listener {broker.port} {HOST}\nallow_anonymous false\n"
        f"password_file {folder / 'passwd'}\nacl_file {folder / 'acl'}\n"
        # Started as root (CI), Mosquitto would switch to its own user, which cannot read
        # the test's folder.
        "persistence false\nuser root\nlog_dest stderr\n"
    )
    log = folder / "mosquitto.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [mosquitto, "-c", str(folder / "mosquitto.conf")], stdout=sink, stderr=sink
        )
    try:
        deadline = time.monotonic() + 10
        while not _listening(broker.port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}")
            time.sleep(0.02)
        yield broker
    finally:
        process.terminate()
        process.wait(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((HOST, port)) == 0
