"""Running checks: a strategy's probe under a hard time limit, one run of a stored check, and
``runNow``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
from sqlalchemy import select as sa_select
from sqlmodel import col

from checkstack_core import Context, NotFound, vault
from checkstack_core.db import core_rows, utcnow

from ..contract import DETAILS_READ, SEVERITY, Run, RunNowInput
from ..errors import seconds
from ..models import AssignmentRow
from ..strategy import CheckResult, Strategy
from .checks import _load_check
from .common import MAX_MESSAGE, logger
from .configs import require_strategy_rules, unseal
from .recording import Outcome, record_runs
from .settings import Runtime, runtime

# -- running ---------------------------------------------------------------------------------------


async def probe(strategy: Strategy[Any], config: Any, limit: float) -> CheckResult:
    """Run ``strategy`` once with a hard time ``limit`` (seconds); failures become unhealthy
    results with a clear message (never a traceback)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(limit):
            result = await strategy.run(config, started + limit)
    except TimeoutError:
        return CheckResult(
            "unhealthy",
            latency_ms=round((time.monotonic() - started) * 1000, 3),
            message=f"Timed out after {seconds(limit)} s",
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The exception's text may quote the target or a credential: log and store its type.
        logger.warning("Strategy %s failed: %s", strategy.id, type(exc).__name__)
        return CheckResult("unhealthy", message=f"Check failed: {type(exc).__name__}")
    if not isinstance(result, CheckResult) or result.status not in SEVERITY:
        logger.warning("Strategy %s returned an invalid result", strategy.id)
        return CheckResult("unhealthy", message="Check failed: invalid result from the strategy")
    return result


async def execute(rt: Runtime, strategy_id: str, stored: str, limit: float) -> CheckResult:
    """One run of a stored check: its strategy, its config with secrets decrypted, the probe."""
    strategy = rt.strategies.get(strategy_id)
    if strategy is None:
        return CheckResult("unhealthy", message=f"Strategy not installed: {strategy_id}")
    try:
        config = unseal(rt.vault, strategy, stored)
    except (vault.NoKey, msgspec.ValidationError):
        return CheckResult("unhealthy", message="Stored config cannot be read")
    return await probe(strategy, config, limit)


async def run_now(ctx: Context, input: RunNowInput) -> Run:
    """``runNow``: one run now, stored (counting for the system's health when ``systemId`` is
    given) and returned."""
    session = ctx.session
    check = await _load_check(session, input.id)
    require_strategy_rules(ctx, check.strategy_id)
    if input.system_id is not None:
        found = await core_rows(
            session,
            sa_select(col(AssignmentRow.id)).where(
                col(AssignmentRow.check_id) == check.id,
                col(AssignmentRow.system_id) == input.system_id,
            ),
        )
        if not found:
            raise NotFound(f"Health check {check.id} is not assigned to system {input.system_id}")
    started = utcnow()
    result = await execute(runtime(ctx), check.strategy_id, check.config, check.timeout_seconds)
    outcome = Outcome(check.id, input.system_id, started, result)
    await record_runs(ctx, [outcome])
    assert outcome.run_id is not None
    return Run(
        id=outcome.run_id,
        check_id=check.id,
        system_id=input.system_id,
        status=result.status,
        latency_ms=result.latency_ms,
        message=(result.message or "")[:MAX_MESSAGE],
        timestamp=started,
        result=(msgspec.json.decode(outcome.result_json) if outcome.result_json else None)
        if ctx.principal.holds(DETAILS_READ)
        else msgspec.UNSET,
    )
