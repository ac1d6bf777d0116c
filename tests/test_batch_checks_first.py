"""A batch checks every call before running any (SPEC §4.3): a handler early in the batch must not
run at all when a later call fails authorization or validation.

Looking at the database after the rollback cannot tell "never ran" from "ran and was rolled back";
``markCalled`` records each run outside the transaction, so these tests can.
"""

from __future__ import annotations

from typing import Any

import notes_plugin
import pytest

READ = "notes.notes.read"
MANAGE = "notes.notes.manage"


async def batch(http: Any, caller: Any, calls: dict[str, Any]) -> Any:
    return await http.post("/api/notes/", json=calls, headers=caller.headers)


async def test_the_recording_handler_records(checkstack_http, checkstack_auth):
    # The probe works: without this, "nothing recorded" below could pass for a broken probe.
    reader = checkstack_auth.user(READ)
    response = await batch(checkstack_http, reader, {"markCalled": {"label": "a"}, "listNotes": {}})
    assert response.status_code == 200, response.text
    assert notes_plugin.CALLS == ["a"]


@pytest.mark.parametrize(
    ("later", "status", "message"),
    [
        # caller kind: whoAmI is for users only
        ({"whoAmI": {}}, 403, "This procedure is for users only"),
        # a global rule the caller lacks
        ({"createNote": {"title": "x"}}, 403, "Missing access: notes.notes.manage"),
        # the second of two global rules
        ({"archiveNotes": {}}, 403, "Missing access: notes.notes.manage"),
        # a resource pre-check (the note is team-only, held by another team)
        ({"getNote": {"id": "hidden"}}, 403, "Access denied to notes.note hidden"),
    ],
)
async def test_a_later_unauthorized_call_keeps_earlier_handlers_from_running(
    checkstack_http, checkstack_auth, later, status, message
):
    admin = checkstack_auth.admin()
    created = await batch(checkstack_http, admin, {"createNote": {"id": "hidden", "title": "h"}})
    assert created.status_code == 200, created.text
    checkstack_auth.grant("ops", "notes.note", "hidden", "read")
    checkstack_auth.set_team_only("notes.note", "hidden")
    app = checkstack_auth.application(READ)
    response = await batch(checkstack_http, app, {"markCalled": {"label": "early"}, **later})
    assert response.status_code == status, response.text
    assert response.json()["message"] == message
    assert response.json()["procedure"] == next(iter(later))
    assert notes_plugin.CALLS == []


@pytest.mark.parametrize(
    "later",
    [
        {"updateNote": {"id": 1}},  # wrong type
        {"getNote": {}},  # missing field
        {"deleteNotes": {"ids": ["n1"], "extra": True}},  # unknown field
        {"deleteNotes": {"ids": "n1"}},  # a string where a list belongs
        {"createNote": {"title": "nul\x00"}},  # text PostgreSQL cannot store
    ],
)
async def test_a_later_invalid_call_keeps_earlier_handlers_from_running(
    checkstack_http, checkstack_auth, later
):
    admin = checkstack_auth.admin()
    calls = {"markCalled": {"label": "early"}, **later}
    response = await batch(checkstack_http, admin, calls)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BAD_REQUEST"
    assert response.json()["procedure"] == next(iter(later))
    assert notes_plugin.CALLS == []


async def test_an_unauthorized_call_between_two_valid_ones_runs_neither(
    checkstack_http, checkstack_auth
):
    reader = checkstack_auth.user(READ)
    response = await batch(
        checkstack_http,
        reader,
        {"markCalled": {"label": "first"}, "archiveNotes": {}, "listNotes": {}},
    )
    assert response.status_code == 403, response.text
    assert notes_plugin.CALLS == []
