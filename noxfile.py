"""Developer sessions: ``uvx nox -s tests_sqlite tests_postgres lint typecheck bench e2e``."""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "typecheck", "tests_sqlite"]

POSTGRES_URL = os.environ.get(
    "CHECKSTACK_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _sync(session: nox.Session) -> None:
    session.run_install(
        "uv", "sync", "--locked", env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location}
    )


@nox.session
def tests_sqlite(session: nox.Session) -> None:
    """The whole suite on SQLite."""
    _sync(session)
    session.run("pytest", *session.posargs, env={"CHECKSTACK_STRICT_PLUGINS": "1"})


@nox.session
def tests_postgres(session: nox.Session) -> None:
    """The whole suite on PostgreSQL (a fresh database per test)."""
    _sync(session)
    session.run(
        "pytest",
        *session.posargs,
        env={"CHECKSTACK_STRICT_PLUGINS": "1", "CHECKSTACK_TEST_DATABASE_URL": POSTGRES_URL},
    )


@nox.session
def e2e(session: nox.Session) -> None:
    """Only the end-to-end tests (real server processes, client examples, oRPC client)."""
    _sync(session)
    session.run(
        "pytest",
        "-m",
        "e2e",
        *session.posargs,
        # Needing node, npm or curl is no reason to skip here: fail instead.
        env={"CHECKSTACK_REQUIRED_TOOLS": "node,npm,curl"},
    )


@nox.session
def mutation(session: nox.Session) -> None:
    """Mutation testing of the access path (.ci/mutation.py): score and surviving mutants in
    docs/mutation-report.md. ``-- --only tokens --jobs 2`` narrows it or widens it."""
    _sync(session)
    session.run("python", ".ci/mutation.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    _sync(session)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the core and the first-party plugins."""
    _sync(session)
    session.run("mypy")


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmark in bench/, each printing its figures and its ratio to a baseline."""
    _sync(session)
    for script in sorted(os.listdir("bench")):
        if script.endswith(".py") and not script.startswith("_"):
            session.run("python", f"bench/{script}")
