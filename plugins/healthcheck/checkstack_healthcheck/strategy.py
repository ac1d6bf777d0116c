"""The strategy hookspec: how other plugins teach the healthcheck plugin a new kind of check.

A *strategy* knows how to probe one kind of target (an HTTP endpoint, a TCP port, ...). It is a
plugin of the healthcheck plugin: its own distribution with a ``checkstack.plugins`` entry point,
``depends_on=["healthcheck"]``, and a ``hooks`` object implementing
:func:`checkstack_healthcheck_strategies`::

    import time
    import msgspec
    from checkstack_core import Plugin, hookimpl
    from checkstack_healthcheck.strategy import CheckResult, Secret, Strategy

    class PingConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
        host: str
        api_token: Secret | None = None      # encrypted at rest, masked in every output

    class Ping(Strategy[PingConfig]):
        id = "ping"
        display_name = "Ping"
        config_type = PingConfig

        async def run(self, config: PingConfig, deadline: float) -> CheckResult:
            started = time.monotonic()
            ...                              # probe; never wait past ``deadline``
            return CheckResult("healthy", latency_ms=(time.monotonic() - started) * 1000,
                               message="Pong", data={"host": config.host})

    class hooks:
        @staticmethod
        @hookimpl
        def checkstack_healthcheck_strategies():
            return [Ping()]

    plugin = Plugin(id="healthcheck-ping", name="Ping checks", depends_on=["healthcheck"],
                    hooks=hooks)

This module imports neither the server nor the database: a strategy distribution depends on it
alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import msgspec

from checkstack_core import hookspec

# A config field (or dict value) holding a secret: encrypted at rest with a key derived from
# ``CHECKSTACK_SECRET_KEY``, masked as MASK in every output, kept when an update sends the mask
# back. Its JSON schema carries ``"x-secret": true``. Shared with other plugins via the core.
from checkstack_core.vault import MASK, Secret

__all__ = [
    "MASK",
    "CheckResult",
    "RunStatus",
    "Secret",
    "Strategy",
    "checkstack_healthcheck_strategies",
    "remaining",
]

RunStatus = Literal["healthy", "degraded", "unhealthy"]


C = TypeVar("C", bound=msgspec.Struct)


@dataclass(slots=True)
class CheckResult:
    """The outcome of one run.

    ``message`` is shown to everyone who may read the status page: keep it short and free of
    configuration details (hosts, URLs, tokens). ``data`` is the structured result, shown only to
    holders of ``healthcheck.details.read``; it must be JSON.
    """

    status: RunStatus
    latency_ms: float | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


class Strategy(Generic[C]):
    """A kind of check. Subclass it, set the class attributes and implement :meth:`run`.

    - ``id``: unique among installed strategies, ``^[a-z][a-z0-9-]*$`` (``"http"``);
    - ``display_name``, ``description``: shown by ``getStrategies``;
    - ``config_type``: a msgspec Struct; a check's ``config`` is validated against it on create
      and update (errors name the path, e.g. ``["config", "url"]``) and its JSON schema is served
      by ``getStrategies``. Mark secret fields with :data:`Secret`;
    - ``required_rules`` (optional): qualified access rules (``"<pluginId>.<resource>.<action>"``,
      usually declared by the strategy's own plugin) a caller must hold, on top of
      ``healthcheck.healthcheck.manage``, to create, update or ``runNow`` a check of this
      strategy; anyone else is answered ``FORBIDDEN``. For strategies whose config decides what
      runs on the server host (a command), not merely what is probed.
    """

    id: ClassVar[str]
    display_name: ClassVar[str]
    description: ClassVar[str] = ""
    config_type: ClassVar[type[msgspec.Struct]]
    required_rules: ClassVar[tuple[str, ...]] = ()

    def validate(self, config: C) -> list[tuple[str, list[str | int]]]:
        """Checks the type cannot express: ``[(message, path-inside-config), ...]``."""
        return []

    async def run(self, config: C, deadline: float) -> CheckResult:
        """Probe once and report. ``deadline`` is a :func:`time.monotonic` instant: finish
        before it (the healthcheck plugin cancels the run at the deadline anyway and records
        ``Timed out after N s``). Expected failures (refused, timed out, wrong answer) are
        results with a clear message, not exceptions; an exception is recorded as an unhealthy
        run with a generic message, never a traceback."""
        raise NotImplementedError


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (never negative)."""
    return max(deadline - time.monotonic(), 0.0)


@hookspec
def checkstack_healthcheck_strategies() -> list[Strategy[Any]]:  # type: ignore[empty-body]
    """Return the health check strategies this plugin provides (called once at startup).

    Implement it in a plugin that declares ``depends_on=["healthcheck"]``; see this module's
    docstring for a complete example.
    """
