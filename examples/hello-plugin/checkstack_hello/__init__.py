"""Checkstack's example plugin: a stored greeting, built step by step in the plugin-author guide."""

from __future__ import annotations

from pathlib import Path

from checkstack_core import Plugin

from . import ui
from .contract import contract
from .handlers import handlers
from .models import GreetingTemplate

plugin = Plugin(
    id="hello",
    name="Hello",
    description="Greets people with a template an administrator can change.",
    contract=contract,
    handlers=handlers,
    models=[GreetingTemplate],
    migrations=Path(__file__).parent / "migrations",
    hooks=ui,
)
