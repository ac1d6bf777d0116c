"""The full stack the read benchmarks load, set up the way a deployer would.

- :func:`database`: a SQLite file or a fresh PostgreSQL database made for the run (dropped after);
- :func:`prepare`: onboard an administrator, create a read-only role (every rule of level
  ``read``) and an application holding it (the API key), and seed a few records in every
  first-party plugin (20 catalog systems, a group, a team, incidents, maintenance windows);
- :func:`list_procedures`: the list procedures of the running server, found in its OpenAPI
  document rather than hard-coded: queries named ``get...`` that need no input and answer an
  object with a required array property;

Everything goes through HTTP, as a client of the server would: nothing here depends on how the
server reads its database or authenticates.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from checkstack_core.db import normalize_url

#: Where ``--db postgres`` creates its database (any database of the server will do to connect).
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
ADMIN = {"email": "bench@example.com", "password": "Bench-pass-123"}
#: The two kinds of caller every list procedure is loaded as.
ANONYMOUS, KEY = "anonymous", "key"


@contextmanager
def database(kind: str, workdir: Path, postgres_url: str = DEFAULT_POSTGRES_URL) -> Iterator[str]:
    """The URL of an empty database: a SQLite file in ``workdir`` or a fresh PostgreSQL
    database on the server of ``postgres_url``, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir}/bench.db"
        return
    server_url = make_url(normalize_url(postgres_url))
    name = f"checkstack_bench_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def call(
    url: str,
    plugin: str,
    procedure: str,
    input: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """One procedure through the documented protocol; its output, or an error naming it."""
    response = httpx.post(
        f"{url}/api/{plugin}/", json={procedure: dict(input or {})}, headers=headers, timeout=60
    )
    if response.status_code != 200:
        raise RuntimeError(
            f"{plugin}.{procedure} answered {response.status_code}: {response.text[:300]}"
        )
    return response.json()[procedure]


@dataclass
class Stack:
    """A prepared server: its URL, the read-only key and what was seeded."""

    url: str
    key: str
    #: The rules the key's role holds (every rule of level ``read``).
    key_rules: frozenset[str]
    #: The rules the anonymous role holds (the public ones).
    public_rules: frozenset[str]
    system_ids: list[str] = field(default_factory=list)

    def headers(self, caller: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if caller == KEY else {}


def prepare(url: str, *, systems: int = 20) -> Stack:
    """Onboard, make the read-only key and seed every first-party plugin (see module docs)."""
    response = httpx.post(f"{url}/api/auth/", json={"completeOnboarding": ADMIN}, timeout=60)
    response.raise_for_status()
    admin = {"Cookie": f"checkstack_session={response.cookies['checkstack_session']}"}

    rules = call(url, "auth", "getRules", headers=admin)["rules"]
    read_rules = sorted(r["id"] for r in rules if r["level"] == "read")
    public_rules = frozenset(r["id"] for r in rules if r["public"])
    role = call(
        url,
        "auth",
        "createRole",
        {"name": "bench-reader", "description": "Read-only (benchmarks)", "rules": read_rules},
        admin,
    )
    created = call(
        url, "auth", "createApplication", {"name": "bench-reader", "roles": [role["id"]]}, admin
    )
    stack = Stack(url, created["token"], frozenset(read_rules), public_rules)

    for i in range(systems):
        system = call(
            url,
            "catalog",
            "createSystem",
            {
                "name": f"System {i:02d}",
                "description": f"Benchmark system number {i}",
                "metadata": {"tier": i % 3, "owner": "bench"},
            },
            admin,
        )
        stack.system_ids.append(system["id"])
    group = call(url, "catalog", "createGroup", {"name": "Core services"}, admin)
    for system_id in stack.system_ids[:5]:
        call(
            url,
            "catalog",
            "addSystemToGroup",
            {"groupId": group["id"], "systemId": system_id},
            admin,
        )
    call(url, "auth", "createTeam", {"name": "Operations"}, admin)
    for i, severity in enumerate(("minor", "major", "critical")):
        call(
            url,
            "incident",
            "createIncident",
            {
                "title": f"Incident {i}",
                "severity": severity,
                "systemIds": stack.system_ids[i : i + 2],
            },
            admin,
        )
    now = datetime.now(UTC)
    for i in range(3):
        start = now + timedelta(days=i + 1)
        call(
            url,
            "maintenance",
            "scheduleWindow",
            {
                "title": f"Window {i}",
                "startAt": start.isoformat(),
                "endAt": (start + timedelta(hours=2)).isoformat(),
                "systemIds": stack.system_ids[i : i + 3],
            },
            admin,
        )
    return stack


@dataclass(frozen=True)
class ListProcedure:
    """A query that lists records and can be called with ``{}``."""

    plugin: str
    name: str
    #: The caller kind of the contract: anonymous, public, authenticated or user.
    caller: str
    rules: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.plugin}.{self.name}"

    @property
    def body(self) -> bytes:
        return f'{{"{self.name}": {{}}}}'.encode()

    def readable_by(self, caller: str, stack: Stack) -> bool:
        """Whether ``caller`` (:data:`ANONYMOUS` or :data:`KEY`) is allowed to call it."""
        if caller == ANONYMOUS:
            return self.caller == "anonymous" or (
                self.caller == "public" and self.rules <= stack.public_rules
            )
        return self.caller == "anonymous" or (
            self.caller in ("public", "authenticated") and self.rules <= stack.key_rules
        )


def _component(document: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any]:
    """The schema behind the ``json`` member of an oRPC envelope schema."""
    inner = ((schema or {}).get("properties") or {}).get("json") or {}
    ref = inner.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return dict(document["components"]["schemas"][ref.rsplit("/", 1)[1]])
    return dict(inner)


def list_procedures(url: str) -> list[ListProcedure]:
    """The list procedures the server at ``url`` serves (from ``GET /api/openapi.json``)."""
    document = httpx.get(f"{url}/api/openapi.json", timeout=60).raise_for_status().json()
    found: list[ListProcedure] = []
    for path, item in sorted(document["paths"].items()):
        parts = path.strip("/").split("/")  # api, plugin, procedure
        if len(parts) != 3 or "post" not in item or not parts[2].startswith("get"):
            continue
        operation = item["post"]
        access = operation["x-checkstack-access"]
        if access["kind"] != "query":
            continue
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if _component(document, body.get("schema")).get("required"):
            continue  # needs input (an id...): not a list
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        output = _component(document, ok)
        properties = output.get("properties") or {}
        if not any(
            properties.get(name, {}).get("type") == "array" for name in output.get("required", [])
        ):
            continue
        found.append(
            ListProcedure(parts[1], parts[2], access["caller"], frozenset(access["rules"]))
        )
    return found
