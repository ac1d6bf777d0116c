"""A test-only health check strategy for the multi-process tests: ``whoami`` is the ``tcp``
strategy whose result also names the process that ran it (``data.pid``), so a test reads from the
database which worker ran each check. Installed like the ``ticker`` plugin (an entry point in a
folder on ``PYTHONPATH``)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from checkstack_healthcheck.strategy import CheckResult
from checkstack_healthcheck_tcp.strategy import TcpConfig, TcpStrategy

from checkstack_core import Plugin, hookimpl


class Whoami(TcpStrategy):
    id: ClassVar[str] = "whoami"
    display_name: ClassVar[str] = "TCP, naming the process (tests)"

    async def run(self, config: TcpConfig, deadline: float) -> CheckResult:
        result = await super().run(config, deadline)
        result.data = {**result.data, "pid": os.getpid()}
        return result


class hooks:
    @staticmethod
    @hookimpl
    def checkstack_healthcheck_strategies() -> list[Any]:
        return [Whoami()]


plugin = Plugin(
    id="whoami",
    name="whoami (tests)",
    depends_on=["healthcheck"],
    hooks=hooks,
)
