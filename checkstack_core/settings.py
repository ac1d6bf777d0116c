"""Settings from ``CHECKSTACK_*`` environment variables and an optional TOML file (SPEC §9).

Precedence: environment variable > TOML file > default. The file is ``CHECKSTACK_CONFIG`` or, if
present, ``checkstack.toml`` in the working directory::

    [checkstack]
    database_url = "postgresql+asyncpg://checkstack@db/checkstack"
    max_body_size = 2097152

    [plugins.healthcheck]        # read by the plugin through host.settings.plugin("healthcheck")
    retention_days = 30
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///checkstack.db"

#: Every setting, its environment variable and meaning (shown by ``checkstack serve --help``).
SETTINGS_HELP: dict[str, str] = {
    "database_url": "CHECKSTACK_DATABASE_URL: SQLAlchemy URL; default the SQLite file "
    "checkstack.db in the working directory; postgresql+asyncpg://... for PostgreSQL",
    "plugins": "CHECKSTACK_PLUGINS: comma-separated allowlist of plugin ids to load",
    "disabled_plugins": "CHECKSTACK_DISABLED_PLUGINS: comma-separated plugin ids to skip",
    "strict_plugins": "CHECKSTACK_STRICT_PLUGINS=1: any plugin failure aborts startup",
    "max_body_size": "CHECKSTACK_MAX_BODY_SIZE: request body limit in bytes (default 1 MiB)",
    "log_level": "CHECKSTACK_LOG_LEVEL: DEBUG, INFO (default), WARNING, ERROR",
    "log_format": "CHECKSTACK_LOG_FORMAT: text (default) or json",
    "events_engine": "CHECKSTACK_EVENTS_ENGINE: event bus engine (default embedded)",
    "jobs_engine": "CHECKSTACK_JOBS_ENGINE: job scheduler engine (default embedded)",
    "secret_key": "CHECKSTACK_SECRET_KEY: server key for HMAC digests and signing; never logged",
    "base_url": "CHECKSTACK_BASE_URL: public URL of the server (cookies are Secure for https)",
    "migrate_on_startup": "CHECKSTACK_MIGRATE_ON_STARTUP=0: do not upgrade the database at startup",
    "db_pool_size": "CHECKSTACK_DB_POOL_SIZE: database connections kept open per process "
    "and calls holding one at once (default 10; as many again may open for work outside calls)",
    "db_pool_timeout": "CHECKSTACK_DB_POOL_TIMEOUT: seconds a request waits for a free database "
    "connection before answering 503 with Retry-After (default 5)",
}


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Settings:
    """The host's configuration. Build it with :meth:`load`."""

    database_url: str = DEFAULT_DATABASE_URL
    plugins: list[str] | None = None
    disabled_plugins: list[str] = field(default_factory=list)
    strict_plugins: bool = False
    max_body_size: int = 1024 * 1024
    log_level: str = "INFO"
    log_format: str = "text"
    events_engine: str = "embedded"
    jobs_engine: str = "embedded"
    secret_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    migrate_on_startup: bool = True
    db_pool_size: int = 10
    db_pool_timeout: float = 5.0
    plugin_settings: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, config_file: str | Path | None = None
    ) -> Settings:
        """Read the TOML file (if any), then the environment on top of it."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = config_file or env.get("CHECKSTACK_CONFIG")
        if path is None and Path("checkstack.toml").is_file():
            path = "checkstack.toml"
        if path is not None:
            with open(path, "rb") as fh:
                document = tomllib.load(fh)
            values.update(document.get("checkstack", {}))
            values["plugin_settings"] = document.get("plugins", {})
        known = {f.name: f for f in fields(cls)}
        unknown = set(values) - set(known)
        if unknown:
            raise ValueError(f"Unknown settings in {path}: {', '.join(sorted(unknown))}")
        for name, spec in known.items():
            raw = env.get(f"CHECKSTACK_{name.upper()}")
            if raw is None:
                continue
            if name in {"plugins", "disabled_plugins"}:
                values[name] = _split(raw)
            elif spec.type in ("bool", bool):
                values[name] = _truthy(raw)
            elif spec.type in ("int", int):
                values[name] = int(raw)
            elif spec.type in ("float", float):
                values[name] = float(raw)
            elif name != "plugin_settings":
                values[name] = raw
        return cls(**values)

    def plugin(self, plugin_id: str) -> dict[str, Any]:
        """The ``[plugins.<id>]`` table of the config file (empty when absent)."""
        return dict(self.plugin_settings.get(plugin_id, {}))
