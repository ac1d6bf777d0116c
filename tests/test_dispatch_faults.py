"""What a call answers when the database fails under it (SPEC §4.3): a lost connection or a pool
with no free connection is a 503 with ``Retry-After`` (nothing was committed, so a retry is safe),
any other database failure a 500; a uniqueness violation found when the batch is flushed is a
409. In every case nothing is kept and no connection stays checked out.

Over both auth backends; faults come from the driver (:mod:`db_faults`), on SQLite too.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
from db_faults import failing_statement

from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for

#: Seconds a call waits for a database connection here (the pool holds one, plus one overflow).
POOL_TIMEOUT = 0.5


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_hello import plugin as hello
    from notes_plugin import plugin as notes

    return plugins_for(request.param, [hello, notes])


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Any:
    from checkstack_core.settings import Settings

    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        db_pool_size=1,
        db_pool_timeout=POOL_TIMEOUT,
    )


@pytest.fixture
async def admin(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return await assert_backend(checkstack_access, checkstack_plugins).admin()


async def post(http: Any, caller: Any, calls: dict[str, Any]) -> Any:
    return await http.post("/api/notes/", json=calls, headers=caller.headers)


async def titles(http: Any, caller: Any) -> dict[str, str]:
    response = await post(http, caller, {"listNotes": {}})
    assert response.status_code == 200, response.text
    return {n["id"]: n["title"] for n in response.json()["listNotes"]["notes"]}


async def no_connection_held(host: Any) -> None:
    flush = getattr(host.auth, "flush", None)
    if flush is not None:
        await flush()  # the auth plugin's lastUsedAt writes, off the call's connection
    assert host.db.engine.sync_engine.pool.checkedout() == 0


async def test_a_connection_lost_under_a_handler_answers_503_and_keeps_nothing(
    checkstack_host, checkstack_http, admin
):
    assert (
        await post(checkstack_http, admin, {"createNote": {"id": "n1", "title": "one"}})
    ).is_success
    engine = checkstack_host.db.engine
    with failing_statement(engine, "INSERT INTO notes_note", lost=True) as failed:
        lost = await post(
            checkstack_http,
            admin,
            {"updateNote": {"id": "n1", "title": "renamed"}, "createNote": {"title": "two"}},
        )
    assert failed, "the fault was never injected"
    assert lost.status_code == 503, lost.text
    assert lost.json()["code"] == "SERVICE_UNAVAILABLE"
    assert lost.headers["retry-after"] == "1"
    await no_connection_held(checkstack_host)
    # Nothing of the batch was kept, and the next call finds a working connection.
    assert await titles(checkstack_http, admin) == {"n1": "one"}
    again = await post(checkstack_http, admin, {"createNote": {"id": "n2", "title": "two"}})
    assert again.status_code == 200, again.text


async def test_a_database_failure_at_the_final_flush_is_a_500_and_keeps_nothing(
    checkstack_host, checkstack_http, admin
):
    assert (
        await post(checkstack_http, admin, {"createNote": {"id": "n1", "title": "one"}})
    ).is_success
    with failing_statement(checkstack_host.db.engine, "UPDATE notes_note") as failed:
        response = await post(checkstack_http, admin, {"updateNote": {"id": "n1", "title": "new"}})
    assert failed, "the fault was never injected"
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "INTERNAL_SERVER_ERROR"
    assert "injected" not in response.text
    await no_connection_held(checkstack_host)
    assert await titles(checkstack_http, admin) == {"n1": "one"}


async def test_a_uniqueness_conflict_found_at_the_final_flush_is_a_409(
    checkstack_host, checkstack_http, admin
):
    for note_id, title in (("n1", "one"), ("n2", "two")):
        created = await post(
            checkstack_http, admin, {"createNote": {"id": note_id, "title": title}}
        )
        assert created.status_code == 200, created.text
    # updateNote does not flush: the dispatcher's flush at the end of the batch finds the clash.
    response = await post(checkstack_http, admin, {"updateNote": {"id": "n2", "title": "one"}})
    assert response.status_code == 409, response.text
    assert response.json() == {
        "code": "CONFLICT",
        "message": "The change conflicts with existing data",
        "procedure": "updateNote",
    }
    await no_connection_held(checkstack_host)
    assert await titles(checkstack_http, admin) == {"n1": "one", "n2": "two"}


async def test_a_batch_that_starts_with_a_query_is_still_one_transaction(
    checkstack_host, checkstack_http, admin
):
    batch = {
        "listNotes": {},
        "createNote": {"id": "n9", "title": "nine"},
        "getNote": {"id": "missing"},
    }
    response = await post(checkstack_http, admin, batch)
    assert response.status_code == 404, response.text
    assert response.json()["procedure"] == "getNote"
    assert await titles(checkstack_http, admin) == {}


async def test_a_pool_without_a_free_connection_answers_503(
    checkstack_host, checkstack_http, admin
):
    """Other work of the process (jobs, event handlers) holds every connection the pool may open:
    the caller waits ``db_pool_timeout`` seconds for one, then is asked to retry. With the auth
    plugin the wait ends while its key is looked up, with the in-memory backend in the handler."""
    engine = checkstack_host.db.engine
    async with AsyncExitStack() as held:
        while engine.sync_engine.pool.checkedout() < 2:  # pool_size 1 + max_overflow 1
            await held.enter_async_context(engine.connect())
        busy = await post(checkstack_http, admin, {"listNotes": {}})
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "1"
    await no_connection_held(checkstack_host)
    assert await titles(checkstack_http, admin) == {}
