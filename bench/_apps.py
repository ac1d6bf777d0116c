"""Apps the benchmarks serve: the host with a tiny plugin and bare Litestar baselines."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from litestar import Litestar, Request, Response, get, post
from sqlalchemy.ext.asyncio import create_async_engine

from checkstack_core import Contract, Handlers, Plugin, Schema, query
from checkstack_core.app import create_app
from checkstack_core.db import normalize_url
from checkstack_core.host import Host
from checkstack_core.settings import Settings

#: What both sides answer, byte for byte.
PAYLOAD = b'{"echo":{"message":"Hello, world!"}}'


class EchoInput(Schema):
    name: str = "world"


class Echo(Schema):
    message: str


contract = Contract(
    "bench", procedures=[query("echo", input=EchoInput, output=Echo, caller="anonymous")]
)
handlers = Handlers(contract)


@handlers.implement("echo")
async def echo(ctx: Any, input: EchoInput) -> Echo:
    return Echo(message=f"Hello, {input.name}!")


bench_plugin = Plugin(id="bench", name="Benchmark", contract=contract, handlers=handlers)


def checkstack_app() -> Litestar:
    """The full host: request id middleware, dispatcher, validation, the bench plugin."""
    host = Host(Settings.load(), plugins=[bench_plugin], discover_installed=False)
    return create_app(host)


def bare_app() -> Litestar:
    """The baseline: one Litestar handler returning the same JSON bytes."""

    @post("/api/bench/", status_code=200)
    async def bare() -> Response[bytes]:
        return Response(PAYLOAD, media_type="application/json")

    @get("/healthz", sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([bare, healthz], logging_config=None)


def bare_reads_app() -> Litestar:
    """The baseline of ``reads.py``: ``POST /api/catalog/`` answering ``getSystems`` with the
    least work, from the database of ``CHECKSTACK_DATABASE_URL``.

    With a bearer key: one primary-key lookup of the application row and the same
    constant-time digest check as the auth plugin (``checkstack_auth.tokens``, keyed with
    ``CHECKSTACK_SECRET_KEY`` when set). Then one ``SELECT`` of the systems with their groups
    (outer joins), encoded with the catalog's own wire types: the same JSON bytes as the real
    server, which ``reads.py`` checks before measuring. Both queries share one connection.
    """
    from checkstack_auth.models import Application
    from checkstack_auth.tokens import API_KEY_PREFIX, Digester, parse_token
    from checkstack_catalog.contract import System, SystemList
    from checkstack_catalog.models import GroupRow, MembershipRow, SystemRow

    engine = create_async_engine(normalize_url(os.environ["CHECKSTACK_DATABASE_URL"]))
    digester = Digester(os.environ.get("CHECKSTACK_SECRET_KEY") or None)
    apps = sa.inspect(Application).local_table
    systems, groups = sa.inspect(SystemRow).local_table, sa.inspect(GroupRow).local_table
    members = sa.inspect(MembershipRow).local_table
    key_query = sa.select(apps.c.secret_digest, apps.c.expires_at).where(
        apps.c.id == sa.bindparam("id")
    )
    systems_query = (
        sa.select(
            systems.c.id,
            systems.c.name,
            systems.c.description,
            systems.c.metadata,
            systems.c.created_at,
            systems.c.updated_at,
            groups.c.id,
        )
        .select_from(
            systems.outerjoin(members, members.c.system_id == systems.c.id).outerjoin(
                groups, groups.c.id == members.c.group_id
            )
        )
        .order_by(systems.c.name_key, systems.c.id, groups.c.name_key)
    )
    unauthorized = Response(
        b'{"code":"UNAUTHORIZED","message":"Invalid API key"}',
        status_code=401,
        media_type="application/json",
    )

    @post("/api/catalog/", status_code=200)
    async def bare(request: Request[Any, Any, Any]) -> Response[bytes]:
        msgspec.json.decode(await request.body())  # a real handler reads its input too
        header = request.headers.get("authorization")
        async with engine.connect() as conn:
            if header is not None:
                parsed = parse_token(header.partition(" ")[2].strip(), API_KEY_PREFIX)
                if parsed is None:
                    return unauthorized
                row = (await conn.execute(key_query, {"id": parsed.id})).first()
                if row is None or not digester.verify(parsed.secret, row.secret_digest):
                    return unauthorized
                if row.expires_at is not None and row.expires_at <= datetime.now(UTC):
                    return unauthorized
            rows = (await conn.execute(systems_query)).all()
        out: dict[str, System] = {}
        for id_, name, description, metadata, created, updated, group_id in rows:
            system = out.get(id_)
            if system is None:
                system = out[id_] = System(
                    id=id_,
                    name=name,
                    description=description,
                    metadata=metadata,
                    group_ids=[],
                    created_at=created,
                    updated_at=updated,
                )
            if group_id is not None:
                system.group_ids.append(group_id)
        body = msgspec.json.encode({"getSystems": SystemList(systems=list(out.values()))})
        return Response(body, media_type="application/json")

    @get(["/healthz", "/readyz"], sync_to_thread=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar([bare, healthz], logging_config=None)
