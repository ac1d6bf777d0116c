"""``checkstack new plugin``: the distribution it writes is complete, lint-clean, and its own
tests pass at once, on whichever database this run uses (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from checkstack_core.cli import cli
from checkstack_core.scaffold import MAX_ID_LENGTH, core_requirement

EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "checkstack_todo/__init__.py",
    "checkstack_todo/contract.py",
    "checkstack_todo/models.py",
    "checkstack_todo/service.py",
    "checkstack_todo/handlers.py",
    "checkstack_todo/migrations/0001_create_items.py",
    "tests/conftest.py",
    "tests/test_todo.py",
}


def new_plugin(directory: Path, *args: str) -> Path:
    result = CliRunner().invoke(cli, ["new", "plugin", *args, "--directory", str(directory)])
    assert result.exit_code == 0, result.output
    return directory


def install_in_place(root: Path, plugin_id: str, site: Path) -> dict[str, str]:
    """Make the scaffolded plugin importable and discoverable as ``pip install -e`` would (its
    entry point in a ``.dist-info``), without building anything; the environment to use."""
    pkg = plugin_id.replace("-", "_")
    info = site / f"checkstack_{pkg}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: checkstack-{plugin_id}\nVersion: 0.1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[checkstack.plugins]\n{plugin_id} = checkstack_{pkg}:plugin\n"
    )
    skipped = ("PYTEST_ADDOPTS", "CHECKSTACK_REQUIRED_TOOLS", "CHECKSTACK_PLUGINS")
    env = {k: v for k, v in os.environ.items() if k not in skipped}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(root)])
    return env


def test_new_plugin_writes_a_complete_distribution(tmp_path):
    root = new_plugin(tmp_path / "checkstack-todo", "todo")
    written = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert written == EXPECTED_FILES
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "checkstack-todo"
    assert project["project"]["dependencies"] == [core_requirement()]
    assert project["project"]["entry-points"]["checkstack.plugins"] == {
        "todo": "checkstack_todo:plugin"
    }
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["checkstack_todo"]
    assert "{{" not in "".join((root / name).read_text() for name in EXPECTED_FILES)


@pytest.mark.parametrize("plugin_id", ["todo", "release-notes-for-customers-and-partner"])
def test_the_scaffold_is_lint_clean_for_any_id(tmp_path, plugin_id):
    assert len(plugin_id) <= MAX_ID_LENGTH
    root = new_plugin(tmp_path / "plugin", plugin_id, "--description", "d" * 80)
    # The scaffold's own ruff settings (the house rules, its package first-party).
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.e2e
def test_the_scaffolded_plugins_tests_pass_without_warnings(tmp_path, checkstack_database_base_url):
    root = new_plugin(tmp_path / "checkstack-release-notes", "release-notes")
    env = install_in_place(root, "release-notes", tmp_path / "site")
    env.pop("CHECKSTACK_TEST_DATABASE_URL", None)
    if checkstack_database_base_url:
        env["CHECKSTACK_TEST_DATABASE_URL"] = checkstack_database_base_url
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-W", "error"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 passed" in result.stdout, result.stdout
    assert "warning" not in result.stdout.lower(), result.stdout


@pytest.mark.e2e
def test_the_models_and_the_first_migration_agree(tmp_path, checkstack_database_url):
    """Autogenerating against the first migration's tables finds nothing to change."""
    root = new_plugin(tmp_path / "checkstack-todo", "todo")
    env = install_in_place(root, "todo", tmp_path / "site")
    env.update(CHECKSTACK_DATABASE_URL=checkstack_database_url, CHECKSTACK_PLUGINS="todo")
    result = subprocess.run(
        [sys.executable, "-m", "checkstack_core", "db", "revision", "todo", "-m", "nothing"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [revision] = (root / "checkstack_todo" / "migrations").glob("*_nothing.py")
    body = revision.read_text().split("def upgrade() -> None:", 1)[1]
    commands = [line.strip() for line in body.splitlines() if line.strip()]
    assert commands[:3] == [
        "# ### commands auto generated by Alembic - please adjust! ###",
        "pass",
        "# ### end Alembic commands ###",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Todo"], "does not match"),
        (["2do"], "does not match"),
        (["docs"], "is reserved"),
        (["core"], "is reserved"),
        (["checkstack-todo"], "Name the plugin, not the distribution: 'todo'"),
        (["x" * (MAX_ID_LENGTH + 1)], "63-character limit"),
        (["todo", "--description", 'say "hi"'], "without quotes"),
        (["todo", "--description", "d" * 81], "at most 80 characters"),
    ],
)
def test_bad_names_are_refused(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["new", "plugin", *args, "--directory", str(tmp_path / "p")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "p").exists()


def test_an_existing_folder_is_never_overwritten(tmp_path):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["new", "plugin", "todo", "--directory", str(tmp_path / "p")])
    assert result.exit_code == 1 and "already exists" in result.output
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["notes.txt"]


def test_the_default_folder_is_named_for_the_distribution(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["new", "plugin", "todo"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "checkstack-todo" / "checkstack_todo" / "contract.py").is_file()
    assert "pip install -e" in result.output
