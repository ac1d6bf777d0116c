"""What the real backend reads about a principal is that principal's own facts: another user's
roles never leak into the rules ``getCurrentUser`` reports (mutation testing found the owner
comparison of the rules query unpinned, see docs/mutation-report.md)."""

from __future__ import annotations

from typing import Any

import pytest
from checkstack_auth import plugin as auth_plugin
from checkstack_hello import plugin as hello_plugin

MANAGE = "hello.hello.manage"


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return [auth_plugin, hello_plugin]


async def test_a_user_reports_only_the_rules_of_its_own_roles(rpc, principals):
    holder = await principals.user(MANAGE)
    plain = await principals.user()
    mine = await rpc("auth", "getCurrentUser", None, plain)
    assert mine.status_code == 200, mine.text
    assert MANAGE not in mine.json()["getCurrentUser"]["rules"]
    theirs = await rpc("auth", "getCurrentUser", None, holder)
    assert MANAGE in theirs.json()["getCurrentUser"]["rules"]


@pytest.mark.parametrize("scheme", ["Basic", "Token", "bearer-ish"])
async def test_a_valid_key_under_another_scheme_is_refused(rpc, principals, scheme):
    app = await principals.app(MANAGE)
    token = app.headers["Authorization"].removeprefix("Bearer ")
    response = await rpc(
        "hello",
        "setGreeting",
        {"template": "Hi {name}"},
        headers={"Authorization": f"{scheme} {token}"},
    )
    assert response.status_code == 401, response.text
    assert response.json()["message"] == "Invalid API key"
