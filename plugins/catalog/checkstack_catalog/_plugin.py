"""The catalog plugin object: contract, handlers, tables and migrations (the package's
``plugin``, loaded on first use)."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Plugin

from . import hooks
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
    hooks=hooks,
)
