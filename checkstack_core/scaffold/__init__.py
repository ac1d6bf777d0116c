"""``checkstack new plugin NAME``: a complete plugin distribution, ready to test and install.

The files are templates under ``plugin/`` (``*.tmpl``, so no tool mistakes them for this
package's code) written in the house style of the first-party plugins: ``pyproject.toml`` with
the ``checkstack.plugins`` entry point, ``contract.py``, ``models.py``, ``service.py``,
``handlers.py``, a first migration, ``__init__.py`` with the ``plugin`` object, tests on the
core's fixtures and a README. ``{{token}}`` placeholders are replaced; the ``package`` folder
becomes ``checkstack_<id>`` and ``test_plugin.py`` becomes ``test_<id>.py`` (dashes as underscores).
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..contract import PLUGIN_ID_PATTERN

TEMPLATES = Path(__file__).parent / "plugin"
_TOKEN = re.compile(r"\{\{(\w+)\}\}")
#: ``ix_<id>_item_created_at`` stays within PostgreSQL's 63 characters.
MAX_ID_LENGTH = 40
#: One line of ``pyproject.toml`` and of ``Plugin(description=...)`` within 100 columns.
MAX_DESCRIPTION_LENGTH = 80


class ScaffoldError(ValueError):
    """The plugin cannot be scaffolded as asked (bad id, target not empty)."""


@dataclass(frozen=True)
class Names:
    """Every name the scaffold derives from the plugin id (the guide's table of names)."""

    id: str
    #: the id with dashes as underscores: table and revision names
    snake: str
    pkg: str
    dist: str
    title: str
    description: str
    core_requirement: str
    date: str


def core_requirement() -> str:
    """``checkstack-core>=X.Y,<X.Y+1`` for the installed core (0.x minors may break)."""
    try:
        version = importlib.metadata.version("checkstack-core")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a checkout
        return "checkstack-core"
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"checkstack-core>={major}.{minor},<{upper}"


def names_for(plugin_id: str, description: str | None = None) -> Names:
    from ..loader import CORE_PLUGIN_ID, RESERVED_IDS

    if not PLUGIN_ID_PATTERN.match(plugin_id):
        raise ScaffoldError(
            f"Plugin id {plugin_id!r} does not match {PLUGIN_ID_PATTERN.pattern} "
            "(lower case letters, digits and dashes, starting with a letter)"
        )
    if plugin_id == CORE_PLUGIN_ID or plugin_id in RESERVED_IDS:
        raise ScaffoldError(f"Plugin id {plugin_id!r} is reserved")
    if len(plugin_id) > MAX_ID_LENGTH:
        raise ScaffoldError(
            f"Plugin id {plugin_id!r} is longer than {MAX_ID_LENGTH} characters: its table and "
            "index names would pass PostgreSQL's 63-character limit"
        )
    if plugin_id.startswith("checkstack-"):
        raise ScaffoldError(
            f"Name the plugin, not the distribution: {plugin_id.removeprefix('checkstack-')!r} "
            f"makes {plugin_id!r}"
        )
    title = " ".join(part.capitalize() for part in plugin_id.split("-"))
    text = description or "Items anyone may read and holders of the manage rule may change."
    if len(text) > MAX_DESCRIPTION_LENGTH or any(c in text for c in '"\\\n\r'):
        raise ScaffoldError(
            f"The description is one line of at most {MAX_DESCRIPTION_LENGTH} characters, "
            "without quotes or backslashes"
        )
    snake = plugin_id.replace("-", "_")
    return Names(
        id=plugin_id,
        snake=snake,
        pkg=f"checkstack_{snake}",
        dist=f"checkstack-{plugin_id}",
        title=title,
        description=text,
        core_requirement=core_requirement(),
        date=datetime.now(UTC).date().isoformat(),
    )


def _render(text: str, names: Names) -> str:
    values = vars(names)

    def value(match: re.Match[str]) -> str:
        key = match[1]
        if key not in values:  # a template typo must not ship a "{{x}}" to users
            raise KeyError(f"Unknown scaffold token {{{{{key}}}}}")
        return str(values[key])

    return _TOKEN.sub(value, text)


def _target_path(relative: Path, names: Names) -> Path:
    parts = [names.pkg if part == "package" else part for part in relative.parts]
    name = parts[-1].removesuffix(".tmpl")
    test_module = f"test_{names.snake}.py"
    parts[-1] = test_module if name == "test_plugin.py" else name
    return Path(*parts)


def scaffold(plugin_id: str, directory: Path, *, description: str | None = None) -> list[Path]:
    """Write the distribution of plugin ``plugin_id`` into ``directory`` (new or empty).

    Returns the files written, relative to ``directory``.
    """
    names = names_for(plugin_id, description)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScaffoldError(f"{directory} already exists and is not an empty directory")
    written = []
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = _target_path(template.relative_to(TEMPLATES), names)
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_render(template.read_text(encoding="utf-8"), names), encoding="utf-8")
        written.append(relative)
    return written
