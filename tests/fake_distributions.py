"""Build plugin distributions on disk (a package plus its ``.dist-info``), as pip would install
them, so discovery through entry points can be tested without touching the environment."""

from __future__ import annotations

import textwrap
from pathlib import Path

PLUGIN_TEMPLATE = """
from checkstack_core import AccessRule, Contract, Handlers, Plugin, Schema, query

read = AccessRule("{resource}", "read", "Read", public=True)
undeclared = AccessRule("ghost", "read", "Never declared")


class Pong(Schema):
    pong: str


contract = Contract(
    "{plugin_id}",
    rules=[read],
    procedures=[query("ping", output=Pong, caller="public", rules=[{rule}])],
)
handlers = Handlers(contract)


@handlers.implement("ping")
async def ping(ctx, _):
    return Pong(pong="{plugin_id}")


plugin = Plugin(
    id="{plugin_id}", name="{plugin_id}", contract=contract, handlers=handlers,
    depends_on={depends_on!r},
)
"""


def make_distribution(root: Path, plugin_id: str, source: str) -> Path:
    """Install a one-module distribution ``checkstack-<id>`` exposing ``plugin`` under ``root``."""
    module = "fake_" + plugin_id.replace("-", "_")
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(textwrap.dedent(source))
    info = root / f"checkstack_{module}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: checkstack-{plugin_id}\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[checkstack.plugins]\n{plugin_id} = {module}:plugin\n")
    return info


def make_plugin(
    root: Path, plugin_id: str, *, depends_on: tuple[str, ...] = (), undeclared_rule: bool = False
) -> Path:
    """A working plugin with a public ``ping`` procedure (or one naming an undeclared rule)."""
    source = PLUGIN_TEMPLATE.format(
        plugin_id=plugin_id,
        resource=plugin_id,
        rule="undeclared" if undeclared_rule else "read",
        depends_on=depends_on,
    )
    return make_distribution(root, plugin_id, source)


def make_broken_set(root: Path) -> None:
    """The four failure kinds of the acceptance list, next to one plugin that works."""
    make_plugin(root, "healthy")
    make_distribution(root, "broken-import", "raise RuntimeError('boom at import')\n")
    make_plugin(root, "needs-missing", depends_on=("nowhere",))
    make_plugin(root, "cycle-a", depends_on=("cycle-b",))
    make_plugin(root, "cycle-b", depends_on=("cycle-a",))
    make_plugin(root, "bad-rule", undeclared_rule=True)
    make_plugin(root, "after-failed", depends_on=("broken-import",))
