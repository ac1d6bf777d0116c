"""The core's side of the auth seam, without a database: principals, the error for a missing rule,
and the backend in force when no auth plugin is installed (SPEC §5.1, §5.4).

These are the pieces every plugin and the dispatcher lean on; they are checked here directly so a
break in one of them fails in milliseconds, not only after a full request through the app."""

from __future__ import annotations

from typing import Any

import pytest

from checkstack_core import Level
from checkstack_core.auth import (
    Principal,
    PrincipalKind,
    PublicOnlyAuthBackend,
    RequestInfo,
    missing_access,
)
from checkstack_core.errors import Forbidden, Unauthorized

#: The public-only backend never touches the unit of work: nothing to read without an auth plugin.
NO_UOW: Any = None


@pytest.mark.parametrize("kind", list(PrincipalKind))
def test_only_a_guest_is_anonymous(kind: PrincipalKind) -> None:
    assert Principal(kind).is_anonymous is (kind is PrincipalKind.ANONYMOUS)


def test_a_guest_is_told_to_authenticate_and_which_rule_it_lacks() -> None:
    error = missing_access(Principal.anonymous(), "vault.item.read")
    assert isinstance(error, Unauthorized)
    assert (error.status, error.message) == (401, "Authentication required")
    assert error.data == {"missing": "vault.item.read"}


@pytest.mark.parametrize(
    "kind", [PrincipalKind.USER, PrincipalKind.APPLICATION, PrincipalKind.SERVICE]
)
def test_anyone_authenticated_is_forbidden_naming_the_rule(kind: PrincipalKind) -> None:
    error = missing_access(Principal(kind, id="x"), "vault.item.read")
    assert isinstance(error, Forbidden)
    assert (error.status, error.message) == (403, "Missing access: vault.item.read")


def test_the_authorization_header_is_read_lower_cased() -> None:
    assert RequestInfo(headers={"authorization": "Bearer k"}).authorization == "Bearer k"
    assert RequestInfo().authorization is None


async def test_without_an_auth_plugin_everyone_is_a_guest_with_the_public_rules() -> None:
    backend = PublicOnlyAuthBackend(["hello.hello.read"])
    assert await backend.authenticate(RequestInfo(), uow=NO_UOW) is None
    guest = await backend.anonymous(uow=NO_UOW)
    assert guest.kind is PrincipalKind.ANONYMOUS
    assert guest.rules == frozenset({"hello.hello.read"})


async def test_without_an_auth_plugin_any_credential_is_refused() -> None:
    backend = PublicOnlyAuthBackend([])
    with pytest.raises(Unauthorized, match="Invalid API key"):
        await backend.authenticate(RequestInfo(headers={"authorization": "Bearer k"}), uow=NO_UOW)


@pytest.mark.parametrize("has_global", [True, False])
async def test_without_an_auth_plugin_only_the_global_rule_admits(has_global: bool) -> None:
    backend = PublicOnlyAuthBackend(["vault.item.read"])
    admitted = await backend.admitted_ids(
        Principal.anonymous(["vault.item.read"]),
        "vault.item",
        ["a", "b"],
        Level.READ,
        has_global,
        uow=NO_UOW,
    )
    assert admitted == ({"a", "b"} if has_global else set())
