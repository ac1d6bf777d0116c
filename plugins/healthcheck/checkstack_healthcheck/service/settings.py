"""The plugin's settings and its per-process runtime: the strategies the plugins provide, the
vault for their secrets, the scheduler; and ``getStrategies``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from checkstack_core import Context, ServiceRef, vault

from ..contract import StrategyInfo, StrategyList
from ..strategy import Strategy
from .common import logger

# -- the runtime: strategies, secrets, settings ----------------------------------------------------


@dataclass
class Settings:
    """``[plugins.healthcheck]`` in the config file."""

    #: Look for due runs this often (seconds).
    poll_interval_seconds: float = 0.5
    #: Runs in flight at once per process; a slow target holds one slot until its timeout.
    max_concurrency: int = 200
    #: Runs recorded per write transaction, at most.
    write_batch: int = 500
    #: Raw runs are kept this many days; hourly aggregates and status changes longer.
    raw_retention_days: int = 7
    hourly_retention_days: int = 90
    #: ``false`` stops the scheduler in this process (tests; a process that only serves reads).
    scheduler: bool = True

    @classmethod
    def load(cls, raw: dict[str, Any]) -> Settings:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(
                f"Unknown [plugins.healthcheck] settings: {', '.join(sorted(unknown))}"
            )
        settings = cls(**raw)
        if settings.raw_retention_days < 1 or settings.hourly_retention_days < 1:
            raise ValueError("[plugins.healthcheck] retention days must be at least 1")
        if settings.max_concurrency < 1 or settings.write_batch < 1:
            raise ValueError("[plugins.healthcheck] max_concurrency and write_batch must be >= 1")
        if not 0.01 <= settings.poll_interval_seconds <= 60:
            raise ValueError("[plugins.healthcheck] poll_interval_seconds must be 0.01..60")
        return settings


#: The key purpose of strategy secrets (see :class:`checkstack_core.vault.Vault`); fixed, since
#: stored configs were encrypted under it.
VAULT_PURPOSE = b"checkstack healthcheck secret config fields v1"


@dataclass
class Runtime:
    """What the plugin holds per process (provided as a service at startup)."""

    strategies: dict[str, Strategy[Any]]
    vault: vault.Vault
    settings: Settings
    #: The scheduler of this process (set at startup when enabled).
    executor: Any = None
    #: ``getStrategies``' answer, built once: the strategies are fixed at startup, and building
    #: their JSON schemas on every call held the answer to about 430 a second under load.
    strategy_list: StrategyList | None = None


RUNTIME = ServiceRef[Runtime]("healthcheck.runtime")


def collect_strategies(results: Iterable[Any]) -> dict[str, Strategy[Any]]:
    """The strategies the plugins returned from ``checkstack_healthcheck_strategies``, by id
    (the first of two with one id wins; the other is logged)."""
    found: dict[str, Strategy[Any]] = {}
    for provided in results:
        for strategy in provided or ():
            if not isinstance(strategy, Strategy):
                logger.error(
                    "Ignoring a health check strategy that is not a Strategy: %r", strategy
                )
                continue
            if strategy.id in found:
                logger.error("Ignoring a second health check strategy with id %r", strategy.id)
                continue
            found[strategy.id] = strategy
    return found


def runtime(ctx: Context) -> Runtime:
    return ctx.service(RUNTIME)


def get_strategies(ctx: Context) -> StrategyList:
    rt = runtime(ctx)
    if rt.strategy_list is None:
        rt.strategy_list = _strategy_list(rt.strategies)
    return rt.strategy_list


def _strategy_list(strategies: dict[str, Strategy[Any]]) -> StrategyList:
    out = []
    for strategy_id in sorted(strategies):
        strategy = strategies[strategy_id]
        (schema,), components = msgspec.json.schema_components([strategy.config_type])
        if components:
            schema = {**schema, "$defs": components}
            ref = schema.get("$ref", "")
            if ref.startswith("#/$defs/") and "properties" not in schema:
                schema = {**components[ref.rsplit("/", 1)[-1]], "$defs": components}
        out.append(
            StrategyInfo(
                id=strategy.id,
                display_name=strategy.display_name,
                description=strategy.description,
                config_schema=cast(dict[str, Any], schema),
            )
        )
    return StrategyList(strategies=out)
