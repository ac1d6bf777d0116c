"""The dispatcher's less travelled paths, seen through HTTP (SPEC §4.3, §5.5).

Each test here pins a behaviour the rest of the suite did not reach (found by mutation testing,
docs/mutation-testing.md): procedures with two guarded rules, dotted id paths, output conversion
and validation, a filtered procedure declared on the wrong shape, in-process calls that share the
outer request, guests on user-only procedures, services and resource checks. Access tests run
over both auth backends (``MemoryAuth`` and the real auth plugin).
"""

from __future__ import annotations

from typing import Any

import pytest
from probe_plugin import (
    BOX,
    BOX_MANAGE,
    BOX_READ,
    CRATE_READ,
    SHELF,
    SHELF_MANAGE,
    SHELF_READ,
    STAMP_HEADER,
)

from checkstack_core import Forbidden
from checkstack_core.testing.access import BACKENDS, assert_backend, plugins_for


@pytest.fixture(params=BACKENDS)
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_hello import plugin as hello
    from probe_plugin import bare
    from probe_plugin import plugin as probe

    return plugins_for(request.param, [hello, probe, bare])


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    return assert_backend(checkstack_access, checkstack_plugins)


async def call(http: Any, procedure: str, body: Any = None, caller: Any = None, **headers: str):
    response = await http.post(
        "/api/probe/",
        json={procedure: body or {}},
        headers={**(caller.headers if caller else {}), **headers},
    )
    return response


def answer(response: Any, procedure: str) -> Any:
    assert response.status_code == 200, response.text
    return response.json()[procedure]


def refused(response: Any, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["message"] == message


# -- two guarded rules on one procedure --------------------------------------------------------


async def test_each_filtered_rule_filters_its_own_part_of_the_output(checkstack_http, access):
    await access.grant("ops", SHELF, "s2", "read")
    await access.set_team_only(SHELF, "s2")
    await access.grant("ops", BOX, "b2", "read")
    await access.set_team_only(BOX, "b2")
    outsider = await access.user(SHELF_READ, BOX_READ)
    seen = answer(await call(checkstack_http, "inventory", caller=outsider), "inventory")
    assert seen == {"shelves": [{"id": "s1"}], "boxes": {"b1": "first box"}}
    member = await access.user(teams=["ops"])
    seen = answer(await call(checkstack_http, "inventory", caller=member), "inventory")
    assert seen == {"shelves": [{"id": "s2"}], "boxes": {"b2": "second box"}}


async def test_a_guest_must_hold_every_filtered_rule(checkstack_http, access):
    await access.allow_anonymous(SHELF_READ)
    # Holding the first rule is not enough: without the second, authenticate.
    response = await call(checkstack_http, "inventory")
    assert response.status_code == 401, response.text
    assert response.json()["data"] == {"missing": BOX_READ}
    await access.allow_anonymous(BOX_READ)
    seen = answer(await call(checkstack_http, "inventory"), "inventory")
    assert seen == {
        "shelves": [{"id": "s1"}, {"id": "s2"}],
        "boxes": {"b1": "first box", "b2": "second box"},
    }


async def test_every_prechecked_rule_is_checked(checkstack_http, access):
    only_shelves = await access.application(SHELF_MANAGE)
    response = await call(
        checkstack_http, "move", {"boxId": "b1", "shelf": {"id": "s1"}}, only_shelves
    )
    refused(response, 403, f"Missing access: {BOX_MANAGE}")
    only_boxes = await access.application(BOX_MANAGE)
    response = await call(
        checkstack_http, "move", {"boxId": "b1", "shelf": {"id": "s1"}}, only_boxes
    )
    refused(response, 403, f"Missing access: {SHELF_MANAGE}")
    both = await access.application(SHELF_MANAGE, BOX_MANAGE)
    moved = answer(
        await call(checkstack_http, "move", {"boxId": "b1", "shelf": {"id": "s1"}}, both), "move"
    )
    assert moved == {"boxId": "b1", "shelfId": "s1"}


async def test_a_rule_with_no_id_in_the_input_does_not_end_the_checks(checkstack_http, access):
    """No shelf named: the shelf rule is checked globally, and the box rule still per box."""
    await access.grant("ops", BOX, "b2", "manage")
    await access.set_team_only(BOX, "b2")
    manager = await access.application(SHELF_MANAGE, BOX_MANAGE)
    response = await call(checkstack_http, "move", {"boxId": "b2"}, manager)
    refused(response, 403, f"Access denied to {BOX} b2")
    moved = answer(await call(checkstack_http, "move", {"boxId": "b1"}, manager), "move")
    assert moved == {"boxId": "b1", "shelfId": None}


async def test_a_dotted_id_path_reaches_into_the_nested_object(checkstack_http, access):
    await access.grant("ops", SHELF, "s2", "manage")
    await access.set_team_only(SHELF, "s2")
    manager = await access.application(SHELF_MANAGE, BOX_MANAGE)
    response = await call(checkstack_http, "move", {"boxId": "b1", "shelf": {"id": "s2"}}, manager)
    refused(response, 403, f"Access denied to {SHELF} s2")
    member = await access.user(BOX_MANAGE, teams=["ops"])
    moved = answer(
        await call(checkstack_http, "move", {"boxId": "b1", "shelf": {"id": "s2"}}, member), "move"
    )
    assert moved == {"boxId": "b1", "shelfId": "s2"}


async def test_an_absent_id_names_no_resource(checkstack_http, access):
    """Not even one whose id reads like an absent value."""
    for shelf_id in ("None", ""):
        await access.grant("ops", SHELF, shelf_id, "manage")
        await access.set_team_only(SHELF, shelf_id)
    manager = await access.application(SHELF_MANAGE, BOX_MANAGE)
    for body in ({"boxId": "b1"}, {"boxId": "b1", "shelf": None}):
        moved = answer(await call(checkstack_http, "move", body, manager), "move")
        assert moved == {"boxId": "b1", "shelfId": None}


async def test_a_service_call_is_not_checked_per_resource(checkstack_host, access):
    from checkstack_core.context import Context, UnitOfWork

    await access.grant("ops", BOX, "b2", "manage")
    await access.set_team_only(BOX, "b2")
    outsider = (await access.application(SHELF_MANAGE, BOX_MANAGE)).principal
    uow = UnitOfWork(checkstack_host)
    async with uow.scope():
        ctx = Context(checkstack_host, "hello", outsider, uow)
        with pytest.raises(Forbidden, match=f"Access denied to {BOX} b2"):
            await ctx.call("probe", "move", {"boxId": "b2"})
        moved = await ctx.call("probe", "move", {"boxId": "b2"}, as_service=True)
        assert (moved.box_id, moved.shelf_id) == ("b2", None)


async def test_guests_must_authenticate_for_a_user_only_procedure(checkstack_http, access):
    refused(await call(checkstack_http, "whoAmI"), 401, "Authentication required")
    app = await access.application()
    refused(
        await call(checkstack_http, "whoAmI", caller=app), 403, "This procedure is for users only"
    )
    user = await access.user()
    assert answer(await call(checkstack_http, "whoAmI", caller=user), "whoAmI") == {"kind": "user"}


# -- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("object", {"id": "l1", "text": "from attributes"}),
        ("dict", {"id": "l2", "text": "from a dict"}),
    ],
)
async def test_a_handler_output_is_converted_to_the_declared_type(
    checkstack_http, access, how, expected
):
    assert answer(await call(checkstack_http, "shaped", {"how": how}), "shaped") == expected


async def test_an_output_of_the_wrong_shape_is_a_500_not_an_answer(checkstack_http, access):
    response = await call(checkstack_http, "shaped", {"how": "wrong"})
    refused(response, 500, "Output validation failed")
    assert response.json()["code"] == "INTERNAL_SERVER_ERROR"


async def test_a_filter_declared_on_the_wrong_shape_never_answers_unfiltered(
    checkstack_http, access
):
    reader = await access.user(CRATE_READ)
    response = await call(checkstack_http, "misfiled", caller=reader)
    refused(response, 500, "Invalid response shape for filtered procedure: expected 'crates'")
    assert "a crate" not in response.text


async def test_an_in_process_call_shares_the_outer_request_and_response(checkstack_http, access):
    response = await call(checkstack_http, "relay", **{"x-request-id": "probe-request-0001"})
    assert answer(response, "relay") == {"requestId": "probe-request-0001", "hasRequest": True}
    assert response.headers[STAMP_HEADER] == "stamped"


async def test_a_resolved_id_the_caller_gave_as_a_number_is_named(checkstack_http, access):
    """Naming a resolved id is safe only when the caller sent it: an integer counts too."""
    await access.grant("ops", BOX, "7", "manage")
    await access.set_team_only(BOX, "7")
    manager = await access.application(BOX_MANAGE)
    response = await call(checkstack_http, "weigh", {"boxNumber": 7}, manager)
    refused(response, 403, f"Access denied to {BOX} 7")
    assert answer(await call(checkstack_http, "weigh", {"boxNumber": 8}, manager), "weigh") == {
        "boxId": "8"
    }


@pytest.mark.parametrize("procedure", ["anything", "inventory"])
async def test_a_plugin_without_a_contract_has_no_procedures(checkstack_http, access, procedure):
    admin = await access.admin()
    response = await checkstack_http.post("/api/bare/", json={procedure: {}}, headers=admin.headers)
    refused(response, 404, f"Procedure not found: bare.{procedure}")
