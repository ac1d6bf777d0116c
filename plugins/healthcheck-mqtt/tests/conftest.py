"""Fixtures for the mqtt strategy's tests, on the core's test kit as a third-party author
would write them: a host with the catalog, healthcheck and healthcheck-mqtt plugins (the
scheduler off: tests run checks with ``runNow``), an ``admin`` client, and the local targets:
the Mosquitto broker at 127.0.0.1:1883 (anonymous), a ``private_broker`` (a Mosquitto
the tests start, with a password file and an ACL), a ``closed_port`` and a
``silent_port`` (accepts connections, never answers)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from checkstack_healthcheck.testing import (  # noqa: F401  (fixtures)
    admin,
    closed_port,
    silent_port,
    strategy_plugins,
    strategy_settings,
)

from checkstack_core import Plugin
from checkstack_core.settings import Settings

HOST = "127.0.0.1"
PORT = 1883


@pytest.fixture
def checkstack_plugins() -> list[Plugin]:
    from checkstack_healthcheck_mqtt import plugin

    return strategy_plugins(plugin)


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return strategy_settings(checkstack_database_url)


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
