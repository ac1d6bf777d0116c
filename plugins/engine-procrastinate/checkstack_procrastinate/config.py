"""The engine's settings: the ``[plugins.procrastinate]`` table of ``checkstack.toml``, each key
overridable by an environment variable ``CHECKSTACK_PROCRASTINATE_<KEY>``.

===========================  =======  ==========================================================
key                          default  meaning
===========================  =======  ==========================================================
``heartbeat_interval``       5        seconds between a worker's heartbeats
``stalled_after``            30       seconds without a heartbeat after which a worker counts as
                                      dead: its running jobs and events are handed to another
``recovery_interval``        5        seconds between two looks for stalled jobs (each worker)
``poll_interval``            5        most seconds a worker waits before looking for due jobs
                                      when no notification woke it
``shutdown_timeout``         25       seconds a stopping worker (SIGTERM) lets running jobs
                                      finish before it releases them to another worker
``pool_size``                4        psycopg connections kept by a serving process (a worker
                                      adds its concurrency)
``retry_base_delay``         1        first retry delay (s) of a failed once-job or work-queue
                                      event; doubles each attempt
``retry_max_delay``          300      cap on that delay (s)
``keep_failed_days``         7        failed and aborted procrastinate jobs are deleted after this
===========================  =======  ==========================================================

A job or event held by a killed worker is run again by another within about
``stalled_after + recovery_interval`` seconds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy.engine import make_url

ENV_PREFIX = "CHECKSTACK_PROCRASTINATE_"


@dataclass(frozen=True)
class EngineSettings:
    heartbeat_interval: float = 5.0
    stalled_after: float = 30.0
    recovery_interval: float = 5.0
    poll_interval: float = 5.0
    shutdown_timeout: float = 25.0
    pool_size: int = 4
    retry_base_delay: float = 1.0
    retry_max_delay: float = 300.0
    keep_failed_days: int = 7

    @classmethod
    def load(cls, table: Mapping[str, Any], env: Mapping[str, str] | None = None) -> EngineSettings:
        env = os.environ if env is None else env
        known = {f.name: f for f in fields(cls)}
        unknown = set(table) - set(known)
        if unknown:
            raise ValueError(
                f"Unknown settings in [plugins.procrastinate]: {', '.join(sorted(unknown))}"
            )
        values: dict[str, Any] = dict(table)
        for name in known:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
        for name, spec in known.items():
            if name in values:
                convert = int if spec.type in ("int", int) else float
                try:
                    values[name] = convert(values[name])
                except (TypeError, ValueError):
                    raise ValueError(
                        f"procrastinate setting {name} must be a number, got {values[name]!r}"
                    ) from None
                if values[name] <= 0:
                    raise ValueError(f"procrastinate setting {name} must be positive")
        settings = cls(**values)
        if settings.heartbeat_interval >= settings.stalled_after:
            raise ValueError(
                "procrastinate setting stalled_after must be longer than heartbeat_interval"
            )
        return settings


def conninfo(database_url: str) -> str:
    """The libpq connection string (for psycopg) of the host's SQLAlchemy URL.

    Refuses anything but PostgreSQL with a message saying what to do.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        raise RuntimeError(
            "The procrastinate engine needs PostgreSQL: CHECKSTACK_DATABASE_URL is "
            f"{url.get_backend_name()}. Set CHECKSTACK_DATABASE_URL=postgresql+asyncpg://... or "
            "go back to CHECKSTACK_EVENTS_ENGINE=embedded and CHECKSTACK_JOBS_ENGINE=embedded "
            "(the default: one process on SQLite)."
        )
    query = dict(url.query)
    ssl = query.pop("ssl", None)  # asyncpg's name for libpq's sslmode
    if ssl is not None and "sslmode" not in query:
        query["sslmode"] = ssl
    url = url.set(drivername="postgresql", query=query)
    return url.render_as_string(hide_password=False)
