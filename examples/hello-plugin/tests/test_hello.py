"""The hello plugin's tests, written only with the fixtures checkstack-core ships.

``checkstack_client(caller)`` calls over HTTP (in process) as a caller made by ``checkstack_auth``;
``checkstack_http`` shows the raw wire shape; ``checkstack_host`` is the running host;
``checkstack_server`` is a real ``checkstack serve`` process.
"""

from __future__ import annotations

import httpx
import pytest
from checkstack_hello.contract import GREETING_CHANGED, Greeting
from checkstack_hello.service import current_template

from checkstack_core import BadRequest, Context, Event, Forbidden, Plugin, Unauthorized

MANAGE = "hello.hello.manage"


# -- reading the greeting -------------------------------------------------------------------------


async def test_default_greeting(checkstack_client):
    anonymous = checkstack_client()
    assert await anonymous.call("hello", "getGreeting") == {"message": "Hello, world!"}


async def test_greeting_by_name(checkstack_client):
    anonymous = checkstack_client()
    greeting = await anonymous.call("hello", "getGreeting", {"name": "Ann"}, type=Greeting)
    assert greeting == Greeting(message="Hello, Ann!")


# -- changing it ----------------------------------------------------------------------------------


async def test_a_manager_changes_the_greeting_for_everyone(checkstack_client, checkstack_auth):
    manager = checkstack_client(checkstack_auth.user(MANAGE))
    changed = await manager.call("hello", "setGreeting", {"template": "Hi {name}."})
    assert changed == {"template": "Hi {name}."}
    anonymous = checkstack_client()
    assert await anonymous.call("hello", "getGreeting", {"name": "Bo"}) == {"message": "Hi Bo."}


async def test_changing_the_greeting_needs_the_manage_rule(checkstack_client, checkstack_auth):
    reader = checkstack_client(checkstack_auth.user())  # logged in, without hello.hello.manage
    with pytest.raises(Forbidden) as denied:
        await reader.call("hello", "setGreeting", {"template": "Hi {name}"})
    assert denied.value.status == 403
    assert denied.value.message == "Missing access: hello.hello.manage"

    with pytest.raises(Unauthorized) as anonymous:
        await checkstack_client().call("hello", "setGreeting", {"template": "Hi {name}"})
    assert anonymous.value.status == 401

    greeting = await reader.call("hello", "getGreeting")
    assert greeting == {"message": "Hello, world!"}


async def test_a_template_without_name_is_a_bad_request(checkstack_http, checkstack_auth):
    manager = checkstack_auth.user(MANAGE)
    response = await checkstack_http.post(
        "/api/hello/", json={"setGreeting": {"template": "Hi there"}}, headers=manager.headers
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": "BAD_REQUEST",
        "message": "Input validation failed",
        "procedure": "setGreeting",
        "data": {"issues": [{"message": "The template must contain {name}", "path": ["template"]}]},
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{0}, {name}!", "{0}, Ann!"),
        ("{name.__class__} {name}", "{name.__class__} Ann"),
        ("{name!r:>9} {name}", "{name!r:>9} Ann"),
    ],
)
async def test_other_braces_are_rendered_literally(
    checkstack_client, checkstack_auth, template, message
):
    manager = checkstack_client(checkstack_auth.user(MANAGE))
    await manager.call("hello", "setGreeting", {"template": template})
    greeting = await checkstack_client().call("hello", "getGreeting", {"name": "Ann"})
    assert greeting == {"message": message}


# -- the hello.greeting.changed event -------------------------------------------------------------


class TestGreetingChangedEvent:
    """A tiny listener plugin, loaded beside hello for these tests only, records the event."""

    @pytest.fixture
    def changes(self) -> list[tuple[dict, str]]:
        return []

    @pytest.fixture
    def checkstack_plugins(
        self, checkstack_plugins: list[Plugin], changes: list[tuple[dict, str]]
    ) -> list[Plugin]:
        listener = Plugin(id="listener", name="Listener", depends_on=["hello"])

        @listener.on_event(GREETING_CHANGED)
        async def remember(ctx: Context, event: Event) -> None:
            # Delivered after the commit: the listener's own transaction sees the new template.
            changes.append((event.payload, await current_template(ctx.session)))

        return [*checkstack_plugins, listener]

    async def test_emitted_after_the_change_commits(
        self, checkstack_client, checkstack_auth, checkstack_host, changes
    ):
        manager = checkstack_client(checkstack_auth.user(MANAGE))
        await manager.call("hello", "setGreeting", {"template": "Hey {name}"})
        await checkstack_host.events.drain()
        assert changes == [({"template": "Hey {name}"}, "Hey {name}")]

    async def test_not_emitted_for_a_rejected_change(
        self, checkstack_client, checkstack_auth, checkstack_host, changes
    ):
        manager = checkstack_client(checkstack_auth.user(MANAGE))
        with pytest.raises(BadRequest):
            await manager.call("hello", "setGreeting", {"template": "no placeholder"})
        await checkstack_host.events.drain()
        assert changes == []

    async def test_not_emitted_when_the_transaction_rolls_back(self, checkstack_host, changes):
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with checkstack_host.service_context("hello") as ctx:
                await ctx.call("hello", "setGreeting", {"template": "Hey {name}"})
                raise RuntimeError("changed my mind")
        await checkstack_host.events.drain()
        assert changes == []
        async with checkstack_host.service_context("hello") as ctx:
            assert await current_template(ctx.session) == "Hello, {name}!"


# -- end to end: a real server process ------------------------------------------------------------


@pytest.fixture
def checkstack_server_env() -> dict[str, str]:
    """Serve only the hello plugin, and refuse to start if it cannot load."""
    return {"CHECKSTACK_PLUGINS": "hello", "CHECKSTACK_STRICT_PLUGINS": "1"}


@pytest.mark.e2e
def test_a_real_server_greets_over_http(checkstack_server):
    response = httpx.post(
        f"{checkstack_server.url}/api/hello/", json={"getGreeting": {"name": "Ann"}}, timeout=10
    )
    assert response.status_code == 200
    assert response.json() == {"getGreeting": {"message": "Hello, Ann!"}}
