"""Resource-level access enforced by the dispatcher (SPEC §5.5): pre-checks, filtering, fallback.

Every test runs twice: over ``MemoryAuth`` (the test kit's fake) and over the real auth plugin
(real users, API keys, teams and grants), through the ``checkstack_access`` fixture, so the fake
cannot drift from the product unnoticed.
"""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Forbidden, Unauthorized

READ = "notes.notes.read"
MANAGE = "notes.notes.manage"
ARCHIVE = "notes.archive.manage"
NOTE = "notes.note"


@pytest.fixture(params=["memory", "auth"])
def checkstack_plugins(request: pytest.FixtureRequest) -> list[Any]:
    from checkstack_hello import plugin as hello
    from notes_plugin import plugin as notes

    if request.param == "memory":
        return [hello, notes]
    from checkstack_auth import plugin as auth

    return [auth, hello, notes]


@pytest.fixture
def access(checkstack_access: Any, checkstack_plugins: list[Any]) -> Any:
    # The parametrisation really chose the backend (not a silent fallback to the fake).
    wanted = "auth" if any(p.id == "auth" for p in checkstack_plugins) else "memory"
    assert checkstack_access.backend == wanted
    return checkstack_access


@pytest.fixture
async def notes(checkstack_client: Any, access: Any) -> list[str]:
    admin = checkstack_client(await access.admin())
    for note_id in ("n1", "n2", "n3"):
        await admin.call("notes", "createNote", {"id": note_id, "title": f"title {note_id}"})
    return ["n1", "n2", "n3"]


async def listed(client: Any) -> list[str]:
    return [n["id"] for n in (await client.call("notes", "listNotes"))["notes"]]


async def test_without_grants_the_global_rule_decides(checkstack_client, access, notes):
    reader = checkstack_client(await access.application(READ))
    assert await listed(reader) == notes
    stranger = checkstack_client(await access.application())
    assert await listed(stranger) == []
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.read"):
        await stranger.call("notes", "getNote", {"id": "n1"})
    with pytest.raises(Unauthorized):
        await checkstack_client().call("notes", "getNote", {"id": "n1"})


async def test_default_rules_are_every_users(checkstack_client, access, notes):
    # notes.notes.read is a default rule: any signed-in person holds it, an application does not.
    person = checkstack_client(await access.user())
    assert await listed(person) == notes
    assert (await person.call("notes", "getNote", {"id": "n1"}))["title"] == "title n1"
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.manage"):
        await person.call("notes", "createNote", {"title": "x"})


async def test_a_team_grant_admits_without_the_global_rule(checkstack_client, access, notes):
    await access.grant("ops", NOTE, "n2", "read")
    member = checkstack_client(await access.application(teams=["ops"]))
    assert await listed(member) == ["n2"]
    assert (await member.call("notes", "getNote", {"id": "n2"}))["title"] == "title n2"
    with pytest.raises(Forbidden):
        await member.call("notes", "getNote", {"id": "n1"})


async def test_team_only_hides_a_resource_from_global_rule_holders(
    checkstack_client, access, notes
):
    await access.grant("ops", NOTE, "n1", "read")
    await access.set_team_only(NOTE, "n1")
    outsider = checkstack_client(await access.user(READ, teams=["dev"]))
    assert await listed(outsider) == ["n2", "n3"]
    titles = await outsider.call("notes", "noteTitles")
    assert set(titles["titles"]) == {"n2", "n3"}
    with pytest.raises(Forbidden):
        await outsider.call("notes", "getNote", {"id": "n1"})
    member = checkstack_client(await access.user(READ, teams=["ops"]))
    assert await listed(member) == notes


async def test_team_only_without_any_grant_leaves_the_global_rule_in_charge(
    checkstack_client, access, notes
):
    # Team-only shuts out global holders only where some team has a grant (SPEC §5.5).
    await access.set_team_only(NOTE, "n1")
    reader = checkstack_client(await access.application(READ))
    assert await listed(reader) == notes


async def test_manage_needs_a_manage_grant_on_team_only_resources(checkstack_client, access, notes):
    await access.grant("readers", NOTE, "n1", "read")
    await access.grant("writers", NOTE, "n1", "manage")
    await access.set_team_only(NOTE, "n1")
    reader = checkstack_client(await access.user(READ, MANAGE, teams=["readers"]))
    with pytest.raises(Forbidden, match=r"Access denied to notes\.note n1"):
        await reader.call("notes", "updateNote", {"id": "n1", "title": "changed"})
    assert (await reader.call("notes", "getNote", {"id": "n1"}))["title"] == "title n1"
    writer = checkstack_client(await access.user(MANAGE, teams=["writers"]))
    assert (await writer.call("notes", "updateNote", {"id": "n1", "title": "changed"}))[
        "title"
    ] == "changed"
    # manage implies read
    assert (await writer.call("notes", "getNote", {"id": "n1"}))["title"] == "changed"


async def test_a_read_grant_never_admits_a_manage_call(checkstack_client, access, notes):
    await access.grant("readers", NOTE, "n2", "read")
    member = checkstack_client(await access.application(teams=["readers"]))
    assert (await member.call("notes", "getNote", {"id": "n2"}))["id"] == "n2"
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.manage"):
        await member.call("notes", "updateNote", {"id": "n2", "title": "changed"})


async def test_every_id_of_a_list_input_must_be_admitted(checkstack_client, access, notes):
    await access.grant("ops", NOTE, "n1", "manage")
    await access.set_team_only(NOTE, "n1")
    global_manager = checkstack_client(await access.application(MANAGE))
    with pytest.raises(Forbidden, match="n1"):
        await global_manager.call("notes", "deleteNotes", {"ids": ["n2", "n1"]})
    assert await global_manager.call("notes", "deleteNotes", {"ids": ["n2"]}) == {"count": 1}


async def test_every_id_of_a_long_list_is_checked(checkstack_client, access, notes):
    """More ids than the real backend looks up at once (500): the last is checked too."""
    await access.grant("ops", NOTE, "n3", "manage")
    await access.set_team_only(NOTE, "n3")
    manager = checkstack_client(await access.user(MANAGE))
    ids = [f"gone-{number}" for number in range(500)]
    with pytest.raises(Forbidden, match=r"Access denied to notes\.note n3"):
        await manager.call("notes", "deleteNotes", {"ids": [*ids, "n3"]})


async def test_a_rule_is_never_skipped_when_the_input_lacks_the_id(checkstack_client, access):
    # createNote's rule is tied to "id", which a create usually omits: the rule is checked globally.
    reader = checkstack_client(await access.user(READ))
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.manage"):
        await reader.call("notes", "createNote", {"title": "sneaky"})
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.manage"):
        await reader.call("notes", "deleteNotes", {"ids": []})
    anonymous = checkstack_client()
    with pytest.raises(Unauthorized):
        await anonymous.call("notes", "createNote", {"title": "sneaky"})


async def test_admins_pass_every_rule_but_not_team_only(checkstack_client, access, notes):
    await access.grant("ops", NOTE, "n3", "read")
    await access.set_team_only(NOTE, "n3")
    admin = checkstack_client(await access.admin())
    assert await listed(admin) == ["n1", "n2"]


async def test_in_process_calls_apply_the_callers_rights(checkstack_host, access):
    from checkstack_core.context import Context, UnitOfWork

    reader = (await access.application(READ)).principal
    uow = UnitOfWork(checkstack_host)
    async with uow.scope():
        ctx = Context(checkstack_host, "hello", reader, uow)
        with pytest.raises(Forbidden):
            await ctx.call("notes", "createNote", {"title": "x"})
        count = await ctx.call("notes", "internalCount", as_service=True)
        assert count.count == 0


async def test_a_resolver_finds_the_guarded_ids_for_inputs_that_name_something_else(
    checkstack_client, access, notes
):
    await access.grant("ops", NOTE, "n1", "manage")
    await access.set_team_only(NOTE, "n1")
    # A team manager without the global rule may act on the resolved note...
    member = checkstack_client(await access.user(teams=["ops"]))
    renamed = await member.call("notes", "retitle", {"title": "title n1", "newTitle": "ops note"})
    assert renamed == {"id": "n1", "title": "ops note"}
    # ...a global manager outside the team may not, because the note is team-only...
    outsider = checkstack_client(await access.user(MANAGE))
    with pytest.raises(Forbidden, match=r"Access denied to a notes\.note this call affects"):
        await outsider.call("notes", "retitle", {"title": "ops note", "newTitle": "stolen"})
    # ...and when nothing resolves, the rule is checked globally (never skipped).
    with pytest.raises(Forbidden, match="Missing access"):
        await member.call("notes", "retitle", {"title": "n2 (missing)", "newTitle": "x"})
    assert (await outsider.call("notes", "retitle", {"title": "title n2", "newTitle": "y"}))[
        "title"
    ] == "y"


async def test_in_process_calls_on_behalf_of_a_caller_are_filtered_too(
    checkstack_host, access, notes
):
    from checkstack_core.context import Context, UnitOfWork

    await access.grant("ops", NOTE, "n1", "read")
    await access.set_team_only(NOTE, "n1")
    outsider = (await access.application(READ)).principal
    uow = UnitOfWork(checkstack_host)
    async with uow.scope():
        ctx = Context(checkstack_host, "hello", outsider, uow)
        listed_for_outsider = await ctx.call("notes", "listNotes")
        assert [n.id for n in listed_for_outsider.notes] == ["n2", "n3"]
        as_service = await ctx.call("notes", "listNotes", as_service=True)
        assert [n.id for n in as_service.notes] == ["n1", "n2", "n3"]


async def test_guests_without_a_filtered_rule_must_authenticate(checkstack_client, access, notes):
    guest = checkstack_client()
    with pytest.raises(Unauthorized):
        await guest.call("notes", "publicNotes")
    await access.allow_anonymous(READ)
    await access.grant("ops", NOTE, "n1", "read")
    await access.set_team_only(NOTE, "n1")
    assert [n["id"] for n in (await guest.call("notes", "publicNotes"))["notes"]] == ["n2", "n3"]


async def test_two_global_rules_combine_with_and(checkstack_client, access):
    only_first = checkstack_client(await access.application(MANAGE))
    with pytest.raises(Forbidden, match=r"Missing access: notes\.archive\.manage"):
        await only_first.call("notes", "archiveNotes")
    only_second = checkstack_client(await access.application(ARCHIVE))
    with pytest.raises(Forbidden, match=r"Missing access: notes\.notes\.manage"):
        await only_second.call("notes", "archiveNotes")
    both = checkstack_client(await access.application(MANAGE, ARCHIVE))
    assert await both.call("notes", "archiveNotes") == {"count": 0}
    guest = checkstack_client()
    with pytest.raises(Unauthorized):
        await guest.call("notes", "archiveNotes")
