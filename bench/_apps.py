"""Apps the benchmarks serve: the host with a tiny plugin, and a bare Litestar baseline."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Response, get, post

from checkstack_core import Contract, Handlers, Plugin, Schema, query
from checkstack_core.app import create_app
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
