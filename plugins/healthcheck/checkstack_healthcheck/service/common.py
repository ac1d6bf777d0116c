"""Helpers every part of the healthcheck service shares: the logger, stored-size limits,
thresholds decoding, time helpers, the worst status, read admission and the race-free insert."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import cast

import msgspec

from checkstack_core import Context, Level, NotFound

from ..contract import SEVERITY, SYSTEM, ConsecutiveThresholds, Status, Thresholds

logger = logging.getLogger("checkstack.plugins.healthcheck")

DEFAULT_THRESHOLDS = ConsecutiveThresholds()
_THRESHOLDS_DECODER = msgspec.json.Decoder(Thresholds)
#: Longest message stored for a run.
MAX_MESSAGE = 1000
#: Largest structured result stored for a run (bytes of JSON); bigger ones are replaced.
MAX_RESULT_BYTES = 64 * 1024


# -- helpers ---------------------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _thresholds(raw: str | None) -> Thresholds:
    return DEFAULT_THRESHOLDS if raw is None else _THRESHOLDS_DECODER.decode(raw)


def _worst(statuses: Iterable[str]) -> Status:
    worst = "healthy"
    for status in statuses:
        if SEVERITY[status] > SEVERITY[worst]:
            worst = status
    return cast(Status, worst)


def _check_not_found(check_id: str) -> NotFound:
    return NotFound(f"Health check not found: {check_id}")


async def _readable(ctx: Context, ids: Iterable[str], rule: str) -> set[str]:
    ids = list(dict.fromkeys(ids))
    if not ids:
        return set()
    return await ctx.admitted_ids(SYSTEM, ids, Level.READ, rule_id=rule)
