"""A Checkstack server for the oRPC protocol tests: the hello plugin, a fixture plugin whose
procedures reach every error code and carry dates, a plugin that fails at startup, and the test
kit's in-memory auth with fixed API keys.

The Python tests import the plugins from here; the TypeScript client's tests run against it as
a real process: ``python fixture_server.py --port N --database-url URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt

from checkstack_core import (
    AccessRule,
    Conflict,
    Context,
    Contract,
    Handlers,
    Plugin,
    Schema,
    Unauthorized,
    hookimpl,
    mutation,
    query,
)
from checkstack_core.context import Cookie
from checkstack_core.host import Host
from checkstack_core.settings import Settings
from checkstack_core.testing.memory_auth import MemoryAuth

read = AccessRule("things", "read", "Read things", default=True, public=True)
manage = AccessRule("things", "manage", "Change things")


class Moments(Schema):
    at: dt.datetime
    also: list[dt.datetime] = []
    maybe: dt.datetime | None = None
    by_name: dict[str, dt.datetime] = {}
    note: str = ""


class Echo(Schema):
    moments: Moments
    day_after: dt.datetime
    history: list[Moments] = []


class Number(Schema):
    n: int


class Doubled(Schema):
    n: int
    doubled: int


class Message(Schema):
    message: str


contract = Contract(
    "orpcfixture",
    rules=[read, manage],
    procedures=[
        query(
            "echoDates",
            input=Moments,
            output=Echo,
            caller="public",
            rules=[read],
            description="Echo the dates sent, plus the day after the first one.",
        ),
        query("double", input=Number, output=Doubled, caller="public", rules=[read]),
        mutation("touch", caller="anonymous", description="No input, no output."),
        mutation("conflict", caller="anonymous"),
        mutation("crash", caller="anonymous"),
        query("secret", output=Message, rules=[manage]),
        query("whoAmI", output=Message, caller="user"),
        mutation("remember", input=Message, output=Message, caller="anonymous"),
        mutation("expire", caller="anonymous"),
    ],
)
handlers = Handlers(contract)


@handlers.implement("echoDates")
async def echo_dates(ctx: Context, input: Moments) -> Echo:
    return Echo(moments=input, day_after=input.at + dt.timedelta(days=1), history=[input, input])


@handlers.implement("double")
async def double(ctx: Context, input: Number) -> Doubled:
    return Doubled(n=input.n, doubled=input.n * 2)


@handlers.implement("touch")
async def touch(ctx: Context, input: None) -> None:
    return None


@handlers.implement("conflict")
async def conflict(ctx: Context, input: None) -> None:
    raise Conflict("Thing already exists: one")


@handlers.implement("crash")
async def crash(ctx: Context, input: None) -> None:
    raise RuntimeError("secret detail that must not reach the client")


@handlers.implement("secret")
async def secret(ctx: Context, input: None) -> Message:
    return Message(message="the secret")


@handlers.implement("whoAmI")
async def who_am_i(ctx: Context, input: None) -> Message:
    return Message(message=ctx.principal.name)


@handlers.implement("remember")
async def remember(ctx: Context, input: Message) -> Message:
    ctx.response.cookies.append(Cookie("remembered", input.message, max_age=60))
    ctx.response.headers["X-Remembered"] = input.message
    return input


@handlers.implement("expire")
async def expire(ctx: Context, input: None) -> None:
    raise Unauthorized("Session expired", headers={"set-cookie": "session=; Max-Age=0; Path=/"})


plugin = Plugin(id="orpcfixture", name="oRPC fixture", contract=contract, handlers=handlers)

broken_contract = Contract(
    "orpcbroken", procedures=[query("ping", output=Message, caller="anonymous")]
)
broken_handlers = Handlers(broken_contract)


@broken_handlers.implement("ping")
async def ping(ctx: Context, input: None) -> Message:
    return Message(message="pong")


broken = Plugin(
    id="orpcbroken", name="oRPC broken", contract=broken_contract, handlers=broken_handlers
)


@broken.on_startup
async def fail_at_startup(ctx: Context) -> None:
    raise RuntimeError("this plugin fails at startup on purpose")


#: The API keys the server accepts (``Authorization: Bearer <token>``), by role.
TOKENS = {
    "admin": "test_1",  # holds every rule
    "manager": "test_2",  # an application holding hello.hello.read and hello.hello.manage
    "limited": "test_3",  # an application holding only hello.hello.read
    "user": "test_4",  # a person holding the default rules
}


def make_auth() -> MemoryAuth:
    """The in-memory auth backend with the callers of :data:`TOKENS`."""
    auth = MemoryAuth()
    issued = {
        "admin": auth.admin(name="Admin"),
        "manager": auth.application(
            "hello.hello.read", "hello.hello.manage", "orpcfixture.things.read", name="Manager app"
        ),
        "limited": auth.application("hello.hello.read", name="Limited app"),
        "user": auth.user("hello.hello.read", "orpcfixture.things.read", name="Ann"),
    }
    assert {role: caller.token for role, caller in issued.items()} == TOKENS
    return auth


def make_host(database_url: str, auth: MemoryAuth) -> Host:
    """A host with hello, the fixture plugin and the broken plugin, using ``auth``."""
    from checkstack_hello import plugin as hello

    host = Host(
        Settings(database_url=database_url, strict_plugins=False),
        plugins=[hello, plugin, broken],
        discover_installed=False,
    )

    class MemoryAuthHooks:
        @hookimpl
        def checkstack_auth_backend(self, host: Host) -> MemoryAuth:
            auth.anonymous_rules |= host.public_rules()
            return auth

    host.pm.register(MemoryAuthHooks(), name="orpc-fixture-memory-auth")
    return host


def main() -> None:
    import uvicorn

    from checkstack_core.app import create_app

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    app = create_app(make_host(args.database_url, make_auth()))
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    asyncio.run(uvicorn.Server(config).serve())


if __name__ == "__main__":
    main()
