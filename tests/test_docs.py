"""The documentation is held to the code.

- every ``<!-- include: path -->`` block in ``docs/*.md`` shows that file exactly (set
  ``CHECKSTACK_UPDATE_DOCS=1`` to rewrite the blocks from the files), and the plugin-author guide
  shows every file of the hello plugin;
- every setting of ``checkstack_core.settings`` is documented in ``docs/deployers.md``;
- every core hook has a section in ``docs/hooks.md`` headed by its exact signature;
- every relative link in ``docs/*.md`` and ``README.md`` points at an existing file (and heading).
"""

from __future__ import annotations

import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from checkstack_core import hookspecs
from checkstack_core.settings import SETTINGS_HELP

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
HELLO = ROOT / "examples" / "hello-plugin"
MARKER = re.compile(r"^<!-- include: (?P<path>\S+) -->$")
FENCE = re.compile(r"^(```|~~~).*?$\n.*?^\1$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(?P<title>.+?) *$", re.MULTILINE)


@dataclass
class Include:
    doc: Path
    line: int  # 0-based index of the marker line
    path: str
    opening: str | None  # the fence line after the marker, None when missing
    body: str  # the fenced text, with a trailing newline when not empty
    end: int  # index of the closing fence line

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.line + 1}:{self.path}"


def includes(doc: Path) -> list[Include]:
    lines = doc.read_text().split("\n")
    found: list[Include] = []
    for index, line in enumerate(lines):
        match = MARKER.match(line)
        if match is None:
            continue
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not following.startswith("```"):
            found.append(Include(doc, index, match["path"], None, "", index))
            continue
        end = next((j for j in range(index + 2, len(lines)) if lines[j] == "```"), len(lines))
        body = "\n".join(lines[index + 2 : end])
        found.append(
            Include(doc, index, match["path"], following, body + "\n" if body else "", end)
        )
    return found


ALL_INCLUDES_BY_DOC = {doc: includes(doc) for doc in DOCS}
ALL_INCLUDES = [include for found in ALL_INCLUDES_BY_DOC.values() for include in found]


def rewrite(include: Include, content: str) -> None:
    """Replace one block with ``content`` (``CHECKSTACK_UPDATE_DOCS=1``).

    The document is parsed again: rewriting an earlier block may have moved this one.
    """
    current = includes(include.doc)[ALL_INCLUDES_BY_DOC[include.doc].index(include)]
    assert current.path == include.path and current.opening is not None
    lines = include.doc.read_text().split("\n")
    lines[current.line + 1 : current.end + 1] = [current.opening, *content[:-1].split("\n"), "```"]
    include.doc.write_text("\n".join(lines))


def test_the_docs_include_something():
    assert DOCS and ALL_INCLUDES


@pytest.mark.parametrize("include", ALL_INCLUDES, ids=lambda include: include.id)
def test_included_blocks_show_the_file_exactly(include: Include):
    source = (ROOT / include.path).resolve()
    assert source.is_relative_to(ROOT) and source.is_file(), f"{include.id}: no such file"
    assert include.opening is not None, f"{include.id}: the marker must be followed by a ``` fence"
    content = source.read_text()
    assert content.endswith("\n") and "\n```\n" not in content, f"{include.path} can't be fenced"
    if include.body != content and os.environ.get("CHECKSTACK_UPDATE_DOCS") == "1":
        rewrite(include, content)
        return
    assert include.body == content, (
        f"{include.id} differs from {include.path}; "
        "rewrite the blocks with CHECKSTACK_UPDATE_DOCS=1 uv run pytest tests/test_docs.py"
    )


def test_the_plugin_author_guide_shows_every_file_of_the_hello_plugin():
    files = [HELLO / "pyproject.toml"]
    files += [p for p in HELLO.rglob("*.py") if "__pycache__" not in p.parts]
    wanted = {p.relative_to(ROOT).as_posix() for p in files}
    shown = {i.path for i in ALL_INCLUDES if i.doc.name == "plugin-authors.md"}
    assert not wanted - shown, f"not shown in docs/plugin-authors.md: {sorted(wanted - shown)}"


@pytest.mark.parametrize("name", sorted(SETTINGS_HELP))
def test_every_setting_is_in_the_deployer_guide(name: str):
    text = (ROOT / "docs" / "deployers.md").read_text()
    assert f"CHECKSTACK_{name.upper()}" in text, f"docs/deployers.md does not mention {name}"
    assert f"`{name}`" in text, f"docs/deployers.md does not give the TOML key `{name}`"


HOOKS = sorted(
    (name, fn)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("checkstack_")
)


def signature(name: str, fn: object) -> str:
    """``name(arg: Type) -> Return`` as written in hookspecs.py (annotations are strings)."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"{name}({params}) -> {sig.return_annotation}"


@pytest.mark.parametrize(("name", "fn"), HOOKS, ids=[name for name, _ in HOOKS])
def test_every_hook_has_a_section_headed_by_its_signature(name: str, fn: object):
    text = FENCE.sub("", (ROOT / "docs" / "hooks.md").read_text())
    titles = [m["title"] for m in HEADING.finditer(text)]
    headed = [title for title in titles if name in title]
    assert headed, f"docs/hooks.md has no section for {name}"
    assert any(signature(name, fn) in title for title in headed), (
        f"the heading of {name} in docs/hooks.md should contain `{signature(name, fn)}`"
    )


def slug(title: str) -> str:
    """GitHub's anchor for a heading."""
    text = title.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    text = FENCE.sub("", doc.read_text())
    return {slug(m["title"]) for m in HEADING.finditer(text)}


LINKED = [*DOCS, ROOT / "README.md"]


@pytest.mark.parametrize("doc", LINKED, ids=lambda doc: doc.relative_to(ROOT).as_posix())
def test_relative_links_resolve(doc: Path):
    broken: list[str] = []
    for match in LINK.finditer(FENCE.sub("", doc.read_text())):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:...
            continue
        path, _, fragment = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"broken links in {doc.relative_to(ROOT)}: {broken}"
