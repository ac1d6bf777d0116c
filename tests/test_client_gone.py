"""A call whose client hangs up while it waits for a database turn is dropped before it runs.

Nobody would read its answer, and running it would delay every call queued behind it by as much:
after a burst of clients that gave up (timeouts, a load generator stopping), the process would
go on working for them while new requests wait. Both protocols, through the app's ASGI
interface, with the only turn of a one-connection pool held by the test.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from checkstack_core.db import ClientGone, Database
from checkstack_core.settings import Settings


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    from checkstack_hello import plugin as hello
    from notes_plugin import plugin as notes

    return [hello, notes]


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Settings:
    return Settings(database_url=checkstack_database_url, strict_plugins=True, db_pool_size=1)


class Client:
    """One request sent through the app's ASGI interface by a client that may hang up."""

    def __init__(self, app: Any, path: str, body: Any, headers: dict[str, str]):
        self.hung_up = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self._body = [{"type": "http.request", "body": json.dumps(body).encode()}]
        raw_headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._send))

    async def _receive(self) -> dict[str, Any]:
        if self._body:
            return self._body.pop()
        await self.hung_up.wait()  # as a server does once the body is read
        return {"type": "http.disconnect"}

    async def _send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int | None:
        starts = [m for m in self.sent if m["type"] == "http.response.start"]
        return starts[0]["status"] if starts else None


async def queued(db: Database, waiting: int) -> None:
    """Until ``waiting`` calls queue for the (held) turn."""
    for _ in range(500):
        turns = db._turns
        if turns is not None and len(turns._waiters or ()) >= waiting:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{waiting} calls never queued")


@pytest.mark.parametrize(
    ("path", "wrap"),
    [
        ("/api/notes/", lambda body: {"createNote": body}),  # the documented protocol
        ("/api/notes/createNote", lambda body: {"json": body}),  # oRPC
    ],
    ids=["documented", "orpc"],
)
async def test_a_call_whose_client_hung_up_while_queued_never_runs(
    checkstack_host, checkstack_app, checkstack_auth, checkstack_client, path, wrap
):
    admin = checkstack_auth.admin()
    db = checkstack_host.db
    async with db.turn():  # every call now queues
        gone = Client(checkstack_app, path, wrap({"id": "gone", "title": "nobody"}), admin.headers)
        await queued(db, 1)
        stays = Client(checkstack_app, path, wrap({"id": "kept", "title": "read"}), admin.headers)
        await queued(db, 2)
        gone.hung_up.set()
        await asyncio.sleep(0.05)  # the server notices the hang-up while the call still queues
    await asyncio.wait_for(asyncio.gather(gone.task, stays.task), 10)
    assert stays.status == 200, stays.sent
    assert gone.status in (None, 499)  # no answer, or one nobody reads (oRPC)
    notes = await checkstack_client(admin).call("notes", "listNotes", {})
    assert [n["id"] for n in notes["notes"]] == ["kept"]
    assert db.engine.sync_engine.pool.checkedout() == 0


async def test_a_buffered_batch_whose_client_hung_up_runs_no_further_item(
    checkstack_host, checkstack_app, checkstack_auth, checkstack_client
):
    admin = checkstack_auth.admin()
    items = [
        {
            "url": "http://testserver/api/notes/createNote",
            "body": {"json": {"id": f"n{n}", "title": f"note {n}"}},
        }
        for n in range(3)
    ]
    headers = {**admin.headers, "x-orpc-batch": "buffered"}
    db = checkstack_host.db
    async with db.turn():
        gone = Client(checkstack_app, "/api/notes/createNote/__batch__", items, headers)
        await queued(db, 1)
        gone.hung_up.set()
        await asyncio.sleep(0.05)
    await asyncio.wait_for(gone.task, 10)
    # The first item was dropped at its turn; the others never queued, the client being gone.
    notes = await checkstack_client(admin).call("notes", "listNotes", {})
    assert notes["notes"] == []


async def test_a_client_that_stays_is_served_in_its_turn(
    checkstack_host, checkstack_app, checkstack_auth
):
    admin = checkstack_auth.admin()
    async with checkstack_host.db.turn():
        waiting = Client(checkstack_app, "/api/notes/", {"listNotes": {}}, admin.headers)
        await queued(checkstack_host.db, 1)
    await asyncio.wait_for(waiting.task, 10)
    assert waiting.status == 200


class Watch:
    def __init__(self) -> None:
        self.watched = False
        self.gone = False

    def watch(self) -> None:
        self.watched = True


async def test_an_uncontended_call_does_not_watch_its_client(checkstack_host):
    watch = Watch()
    async with checkstack_host.db.turn(watch):
        pass
    assert not watch.watched


async def test_the_turn_of_a_departed_client_goes_to_the_next_in_line(checkstack_host):
    db = checkstack_host.db
    departed, next_in_line = Watch(), Watch()
    order: list[str] = []

    async def take(name: str, watch: Watch) -> None:
        try:
            async with db.turn(watch):
                order.append(name)
        except ClientGone:
            order.append(f"{name} dropped")

    async with db.turn():
        first = asyncio.create_task(take("departed", departed))
        await queued(db, 1)
        second = asyncio.create_task(take("next", next_in_line))
        await queued(db, 2)
        departed.gone = True
    await asyncio.gather(first, second)
    assert departed.watched and next_in_line.watched
    assert order == ["departed dropped", "next"]


async def test_calls_that_never_yield_still_take_turns_first_come_first_served(tmp_path):
    # Inline SQLite reads let a whole call run without yielding. A turn freed at once would go
    # to the next ready call in the same pass of the event loop, and one pass would run every
    # pending call (seconds under load) while a call needing a few passes waited that many
    # times as long. So at most call_capacity calls run in a pass; the others queue in order.
    db = Database(f"sqlite:///{tmp_path / 'gate.db'}", pool_size=2)
    ran: list[int] = []

    async def call(number: int) -> None:
        async with db.turn():
            ran.append(number)

    try:
        calls = [asyncio.create_task(call(n)) for n in range(5)]
        await asyncio.sleep(0)  # one pass: every task's first step
        assert ran == [0, 1] and db.calls_waiting == 3
        await asyncio.gather(*calls)
        assert ran == [0, 1, 2, 3, 4]
        assert (db.calls_running, db.calls_waiting) == (0, 0)
    finally:
        await db.dispose()
