"""Principals and the authentication/authorization seam between the core and an auth plugin.

The core enforces access (caller kinds, rules, resource checks) in the dispatcher; an auth plugin
answers the questions it asks through :class:`AuthBackend`, handed over by the
``checkstack_auth_backend`` hook. Without an auth plugin, :class:`PublicOnlyAuthBackend` applies:
everyone is anonymous and holds exactly the rules declared ``public``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .contract import Level
from .errors import Forbidden, RpcError, Unauthorized

if TYPE_CHECKING:
    from .context import UnitOfWork


class PrincipalKind(StrEnum):
    """Every request resolves to exactly one kind of principal (SPEC §5.1)."""

    ANONYMOUS = "anonymous"
    USER = "user"
    APPLICATION = "application"
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, and which qualified access rules they hold.

    ``rules`` already include what the ``anonymous`` role holds (whatever a guest may do, a user or
    an application may do too). ``is_admin`` holds every rule, including those of plugins installed
    later. A service principal is a plugin acting as itself, trusted in process.
    """

    kind: PrincipalKind
    id: str | None = None
    name: str | None = None
    rules: frozenset[str] = frozenset()
    team_ids: frozenset[str] = frozenset()
    is_admin: bool = False

    def holds(self, rule_id: str) -> bool:
        """Whether this principal holds the qualified rule ``rule_id`` globally."""
        return self.is_admin or self.kind is PrincipalKind.SERVICE or rule_id in self.rules

    @property
    def is_anonymous(self) -> bool:
        return self.kind is PrincipalKind.ANONYMOUS

    @classmethod
    def anonymous(cls, rules: Iterable[str] = ()) -> Principal:
        """An unauthenticated caller holding ``rules`` (the anonymous role's)."""
        return cls(PrincipalKind.ANONYMOUS, rules=frozenset(rules))

    @classmethod
    def service(cls, plugin_id: str) -> Principal:
        """A plugin acting as itself."""
        return cls(PrincipalKind.SERVICE, id=plugin_id, name=plugin_id)


def missing_access(principal: Principal, rule_id: str) -> RpcError:
    """The error for a caller lacking ``rule_id``: guests must authenticate (401), others are
    forbidden (403 ``Missing access: <rule>``). Raise it: ``raise missing_access(p, rule)``."""
    if principal.kind is PrincipalKind.ANONYMOUS:
        return Unauthorized("Authentication required", data={"missing": rule_id})
    return Forbidden(f"Missing access: {rule_id}")


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What an auth backend may read of an HTTP request (headers are lower-cased)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    client_host: str | None = None
    secure: bool = False

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


@runtime_checkable
class AuthBackend(Protocol):
    """Answers the core's identity and access questions. Every method is async and typed.

    Every method runs on the hot path of a request and receives the call's
    :class:`~checkstack_core.context.UnitOfWork` as ``uow``: read through
    ``await uow.connection()`` (or ``uow.session``), which is the one pooled connection the call
    holds. Never check out another connection (``engine.connect()``) while answering: under load
    every in-flight call would hold one connection and wait for a second, and the pool would run
    dry. Data that rarely changes (rules of roles, team-only settings) belongs in a per-process
    cache validated by one cheap read per call; ``uow.memo`` keeps per-call notes.
    """

    async def authenticate(self, request: RequestInfo, *, uow: UnitOfWork) -> Principal | None:
        """Resolve the caller of ``request``.

        Return ``None`` when the request presents no credentials (the caller is anonymous).
        Raise :class:`~checkstack_core.errors.Unauthorized` when it presents credentials that are
        invalid, expired or revoked: a bad credential never silently becomes anonymous.
        """
        ...

    async def anonymous(self, *, uow: UnitOfWork) -> Principal:
        """The principal of an unauthenticated caller (holding the ``anonymous`` role's rules)."""
        ...

    async def admitted_ids(
        self,
        principal: Principal,
        resource_type: str,
        resource_ids: Sequence[str],
        level: Level,
        has_global: bool,
        *,
        uow: UnitOfWork,
    ) -> set[str]:
        """Which of ``resource_ids`` (of ``resource_type``) ``principal`` may access at ``level``.

        ``has_global`` says whether the principal holds the guarding rule globally. The decision
        per resource (SPEC §5.5): no grants → ``has_global``; grants and not team-only →
        ``has_global`` or a sufficient team grant; team-only → only a sufficient team grant.
        """
        ...


class PublicOnlyAuthBackend:
    """The backend in force when no auth plugin is installed.

    Every caller is anonymous and holds exactly the rules declared ``public``; any presented
    credential is answered with 401, since nothing could verify it.
    """

    def __init__(self, public_rules: Iterable[str]) -> None:
        self._anonymous = Principal.anonymous(public_rules)

    async def authenticate(self, request: RequestInfo, *, uow: UnitOfWork) -> Principal | None:
        if request.authorization:
            raise Unauthorized("Invalid API key")
        return None

    async def anonymous(self, *, uow: UnitOfWork) -> Principal:
        return self._anonymous

    async def admitted_ids(
        self,
        principal: Principal,
        resource_type: str,
        resource_ids: Sequence[str],
        level: Level,
        has_global: bool,
        *,
        uow: UnitOfWork,
    ) -> set[str]:
        return set(resource_ids) if has_global else set()
