"""Domain logic of the healthcheck plugin, one module per concern: :mod:`.settings` (the settings
and the per-process runtime, with the strategies), :mod:`.configs` (strategy configs and their
secrets), :mod:`.checks` and :mod:`.assignments`, :mod:`.running` and :mod:`.recording` (runs,
hourly and daily aggregates, thresholds), :mod:`.health` (system health and its events, and its
reads), :mod:`.run_history` and :mod:`.stats` (the other reads), :mod:`.retention` and
:mod:`.claims` (the scheduler's claims of due runs), with shared helpers in :mod:`.common`.

Every procedure works on the call's session (one connection per call). Runs are recorded by
:func:`record_runs` in whatever transaction is given: ``runNow``'s, or the scheduler's writer
batch (:mod:`checkstack_healthcheck.scheduler`).

Import from this package (``from checkstack_healthcheck import service; service.claim_due(...)``):
the names below are its API (``_bucket`` and ``_percentile`` for the tests).
"""

from __future__ import annotations

from .assignments import assign, forget_system, unassign
from .checks import create_check, delete_check, get_check, list_checks, set_paused, update_check
from .claims import Due, claim_due, next_due_ms
from .common import DEFAULT_THRESHOLDS, MAX_MESSAGE, MAX_RESULT_BYTES, logger, now_ms
from .configs import masked, parse_config, require_strategy_rules, seal, strategy_of, unseal
from .health import bulk_system_health, reevaluate_systems, system_health
from .recording import Outcome, _bucket, _percentile, record_runs
from .retention import apply_retention
from .run_history import get_run, history
from .running import execute, probe, run_now
from .settings import (
    RUNTIME,
    VAULT_PURPOSE,
    Runtime,
    Settings,
    collect_strategies,
    get_strategies,
    runtime,
)
from .stats import WINDOWS, availability, daily_availability, hourly_stats, status_changes

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MAX_MESSAGE",
    "MAX_RESULT_BYTES",
    "RUNTIME",
    "VAULT_PURPOSE",
    "WINDOWS",
    "Due",
    "Outcome",
    "Runtime",
    "Settings",
    "_bucket",
    "_percentile",
    "apply_retention",
    "assign",
    "availability",
    "bulk_system_health",
    "claim_due",
    "collect_strategies",
    "create_check",
    "daily_availability",
    "delete_check",
    "execute",
    "forget_system",
    "get_check",
    "get_run",
    "get_strategies",
    "history",
    "hourly_stats",
    "list_checks",
    "logger",
    "masked",
    "next_due_ms",
    "now_ms",
    "parse_config",
    "probe",
    "record_runs",
    "reevaluate_systems",
    "require_strategy_rules",
    "run_now",
    "runtime",
    "seal",
    "set_paused",
    "status_changes",
    "strategy_of",
    "system_health",
    "unassign",
    "unseal",
    "update_check",
]
