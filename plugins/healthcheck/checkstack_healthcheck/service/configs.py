"""Strategy configs: which strategy, the rules it requires, validation, and secrets (sealed for
storage, unsealed for a run, masked for outputs)."""

from __future__ import annotations

from typing import Any, cast

import msgspec

from checkstack_core import Context, Forbidden, vault
from checkstack_core.dispatch import validation_issues
from checkstack_core.errors import validation_error

from ..strategy import Strategy
from .settings import runtime

# -- config validation and secrets -----------------------------------------------------------------


def strategy_of(ctx: Context, strategy_id: str) -> Strategy[Any]:
    strategy = runtime(ctx).strategies.get(strategy_id)
    if strategy is None:
        raise validation_error(
            [{"message": f"Unknown strategy: {strategy_id}", "path": ["strategyId"]}]
        )
    return strategy


def require_strategy_rules(ctx: Context, strategy_id: str) -> None:
    """FORBIDDEN unless the caller holds every rule the strategy requires on top of the manage
    rule (``Strategy.required_rules``); a strategy that is not installed requires none."""
    strategy = runtime(ctx).strategies.get(strategy_id)
    if strategy is None:
        return
    missing = [rule for rule in strategy.required_rules if not ctx.principal.holds(rule)]
    if missing:
        raise Forbidden(
            f"Checks of strategy {strategy.id!r} need the access rule {', '.join(missing)}"
        )


def parse_config(strategy: Strategy[Any], raw: dict[str, Any]) -> msgspec.Struct:
    """The config as the strategy's type, or BAD_REQUEST naming the path under ``config``."""
    try:
        value = msgspec.convert(raw, strategy.config_type)
    except msgspec.ValidationError as exc:
        issues = validation_issues(exc)
        for issue in issues:
            issue["path"] = ["config", *issue["path"]]
        raise validation_error(issues) from None
    problems = strategy.validate(value)
    if problems:
        raise validation_error(
            [{"message": message, "path": ["config", *path]} for message, path in problems]
        )
    return value


def seal(ctx: Context, strategy: Strategy[Any], config: dict[str, Any]) -> str:
    """The JSON stored for a (validated) config: its secrets encrypted."""
    paths = vault.secret_paths(strategy.config_type)
    keeper = runtime(ctx).vault
    issues: list[dict[str, Any]] = []

    def encrypt(value: Any, path: tuple[Any, ...]) -> Any:
        if not isinstance(value, str) or value == "":
            return value
        try:
            return keeper.encrypt(value)
        except vault.NoKey:
            issues.append(
                {
                    "message": "Secret fields cannot be stored: the server has no "
                    "CHECKSTACK_SECRET_KEY",
                    "path": ["config", *path],
                }
            )
            return None

    sealed = vault.transform(config, paths, encrypt)
    if issues:
        raise validation_error(issues)
    return msgspec.json.encode(sealed).decode()


def unseal(keeper: vault.Vault, strategy: Strategy[Any], stored: str) -> msgspec.Struct:
    """The config as the strategy's type, secrets decrypted (for a run)."""
    raw = msgspec.json.decode(stored)
    paths = vault.secret_paths(strategy.config_type)
    if paths:
        raw = vault.transform(raw, paths, lambda value, _p: keeper.decrypt(value))
    return msgspec.convert(raw, strategy.config_type)


def masked(strategies: dict[str, Strategy[Any]], strategy_id: str, stored: str) -> dict[str, Any]:
    """The config as outputs show it: secrets masked (every string of a config whose strategy is
    gone, since nothing says which are secret)."""
    raw = msgspec.json.decode(stored)
    strategy = strategies.get(strategy_id)
    if strategy is None:
        return {key: vault.MASK for key in raw}
    return cast(dict[str, Any], vault.mask(raw, vault.secret_paths(strategy.config_type)))
