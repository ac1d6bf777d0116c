"""Checkstack catalog: the systems a status page shows and the groups they are arranged in
(SPEC §6.1). Other plugins refer to systems by id and clean up on ``catalog.system.deleted``."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Plugin

from .contract import contract
from .handlers import handlers
from .models import MODELS

plugin = Plugin(
    id="catalog",
    name="Catalog",
    description="Systems and groups of systems, with team access per system.",
    contract=contract,
    handlers=handlers,
    models=MODELS,
    migrations=Path(__file__).parent / "migrations",
)

__all__ = ["plugin"]
