"""A generated authorization test: every procedure of every installed plugin, called by every kind
of caller, through HTTP with real API keys and session cookies (SPEC §10); and every mutation
naming a principal, a role or a team, called by a caller holding less than what it names.

Callers: anonymous; an application with no roles at all; per procedure an application holding
exactly its rules and, for each rule, one holding all but that rule (users too, for user-only
procedures); a plain user; an administrator. The expected outcome is computed from the contract
alone (SPEC §3.2, §5.3, §5.5), never from the dispatcher's code.

Two stages keep handlers from running where they need not: first an input that can never pass
validation, so an admitted caller gets 400 and a refused one 401/403 (caller kind and global
rules); then, for procedures whose rules are checked per resource from the input, a generated
valid input naming a resource nobody has grants on (the global rule must decide).
"""

from __future__ import annotations

import importlib.metadata
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from checkstack_core.contract import CallerKind, Procedure
from checkstack_core.plugin import Plugin

from . import vault_plugin
from .conftest import Caller

DENIALS = re.compile(
    r"^(Authentication required|Missing access: .+|This procedure is for users only|"
    r"This procedure is for services only|Access denied to .+)$"
)


def installed_plugins() -> list[Plugin]:
    plugins = []
    for entry_point in importlib.metadata.entry_points(group="checkstack.plugins"):
        loaded = entry_point.load()
        assert isinstance(loaded, Plugin), entry_point
        plugins.append(loaded)
    return plugins


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    plugins = installed_plugins()
    assert {"auth", "hello"} <= {p.id for p in plugins}
    return [*plugins, vault_plugin.plugin]


# -- inputs ---------------------------------------------------------------------------------------


def _string(info: mi.StrType) -> str:
    if info.pattern:
        for candidate in ("probe", "a.b", "a", "1", "a-b.c"):
            if re.search(info.pattern, candidate):
                return candidate
    return (
        "p" * max(5, info.min_length or 0)
        if not info.max_length
        else "p" * max(min(5, info.max_length), info.min_length or 0)
    )


def sample(info: mi.Type) -> Any:
    """A small value of type ``info`` that passes validation where that is easy."""
    if isinstance(info, mi.StructType):
        return {f.encode_name: sample(f.type) for f in info.fields if f.required}
    if isinstance(info, mi.StrType):
        return _string(info)
    if isinstance(info, mi.IntType):
        return max(1, info.ge or 0, (info.gt or 0) + 1)
    if isinstance(info, mi.FloatType):
        return 1.0
    if isinstance(info, mi.BoolType):
        return False
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return [sample(info.item_type) for _ in range(info.min_length or 0)]
    if isinstance(info, mi.DictType):
        return {}
    if isinstance(info, mi.DateTimeType):
        return datetime.now(UTC).isoformat()
    if isinstance(info, mi.UUIDType):
        return str(uuid.uuid4())
    if isinstance(info, mi.LiteralType):
        return info.values[0]
    if isinstance(info, mi.EnumType):
        return next(iter(info.cls)).value
    if isinstance(info, mi.UnionType):
        options = [t for t in info.types if not isinstance(t, mi.NoneType)]
        return sample(options[0]) if options else None
    if isinstance(info, mi.Metadata):
        return sample(info.type)
    return "probe"


def valid_input(procedure: Procedure) -> Any:
    return {} if procedure.input is None else sample(mi.type_info(procedure.input))


def probe_input(procedure: Procedure) -> Any:
    return {"__authorizationProbe__": 1}


# -- expectations ---------------------------------------------------------------------------------


def expected_denial(
    plugin_id: str,
    procedure: Procedure,
    caller: str,
    held: set[str] | None,
    raw: Any,
    *,
    prechecks: bool,
) -> str | None:
    """The denial message ``caller`` must get (``None``: admitted). ``held`` None = admin."""
    kind = procedure.caller
    if kind is CallerKind.ANONYMOUS:
        return None
    if kind is not CallerKind.PUBLIC and caller == "anonymous":
        return "Authentication required"
    if kind is CallerKind.USER and caller != "user":
        return "This procedure is for users only"
    if kind is CallerKind.SERVICE:
        return "This procedure is for services only"

    def lacks(rule_id: str) -> bool:
        return held is not None and rule_id not in held

    for rule in procedure.rules:
        if procedure.instance_access(rule) is None and lacks(rule.qualified_id(plugin_id)):
            return (
                "Authentication required"
                if caller == "anonymous"
                else (f"Missing access: {rule.qualified_id(plugin_id)}")
            )
    if caller == "anonymous":
        # No grant can admit a guest, so a filtered rule a guest lacks is refused outright.
        for rule in procedure.rules:
            instance = procedure.instance_access(rule)
            filtered = instance is not None and not instance.is_precheck
            if filtered and lacks(rule.qualified_id(plugin_id)):
                return "Authentication required"
    if not prechecks:
        return None
    for rule in procedure.rules:
        instance = procedure.instance_access(rule)
        if instance is None or not instance.is_precheck or not lacks(rule.qualified_id(plugin_id)):
            continue
        # Nobody has grants on the sampled resources: without the rule, the rule is what is
        # missing, whether or not the input names a resource (never a skipped check).
        return (
            "Authentication required"
            if caller == "anonymous"
            else f"Missing access: {rule.qualified_id(plugin_id)}"
        )
    return None


def _has_precheck(procedure: Procedure) -> bool:
    return any(
        (instance := procedure.instance_access(rule)) is not None and instance.is_precheck
        for rule in procedure.rules
    )


def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


# -- the test --------------------------------------------------------------------------------------


class Matrix:
    def __init__(self, host: Any, principals: Any, rpc: Any) -> None:
        self.host = host
        self.principals = principals
        self.rpc = rpc
        rules = host.all_rules()
        self.public = {r.qualified_id(p) for p, r in rules if r.public}
        self.default = {r.qualified_id(p) for p, r in rules if r.default}
        self._apps: dict[frozenset[str], Caller] = {}
        self._users: dict[frozenset[str], Caller] = {}
        self.checked = 0
        self.denied = 0

    async def app(self, rules: frozenset[str]) -> Caller:
        if rules not in self._apps:
            self._apps[rules] = await self.principals.app(*sorted(rules))
        return self._apps[rules]

    async def user(self, rules: frozenset[str]) -> Caller:
        if rules not in self._users:
            self._users[rules] = await self.principals.user(*sorted(rules))
        return self._users[rules]

    async def callers(
        self, plugin_id: str, procedure: Procedure
    ) -> list[tuple[str, Caller | None, set[str] | None]]:
        rules = [rule.qualified_id(plugin_id) for rule in procedure.rules]
        found: list[tuple[str, Caller | None, set[str] | None]] = [
            ("anonymous", None, set(self.public)),
            ("application", await self.principals.app(bare=True), set(self.public)),
            ("user", await self.user(frozenset()), self.public | self.default),
            ("user", await self.user_admin(), None),
        ]
        subsets = [frozenset(rules)] + [frozenset(rules) - {rule} for rule in rules]
        for subset in subsets:
            found.append(("application", await self.app(subset), set(subset) | self.public))
            if procedure.caller is CallerKind.USER:
                found.append(
                    ("user", await self.user(subset), set(subset) | self.public | self.default)
                )
        return found

    async def user_admin(self) -> Caller:
        if not hasattr(self, "_admin"):
            self._admin = await self.principals.admin()
        return self._admin

    async def check(
        self, plugin_id: str, procedure: Procedure, *, only_anonymous: bool = False
    ) -> None:
        for kind, caller, held in await self.callers(plugin_id, procedure):
            if only_anonymous and kind != "anonymous":
                continue
            stages = [(probe_input(procedure), False)]
            if _has_precheck(procedure):
                stages.append((valid_input(procedure), True))
            for raw, prechecks in stages:
                response = await self.rpc(plugin_id, procedure.name, raw, caller)
                body = response.json()
                denial = expected_denial(plugin_id, procedure, kind, held, raw, prechecks=prechecks)
                where = f"{plugin_id}.{procedure.name} as {kind} holding {held}: {response.text}"
                message = body.get("message", "") if isinstance(body, dict) else ""
                if denial is not None:
                    assert response.status_code in (401, 403), where
                    assert message == denial, where
                    self.denied += 1
                else:
                    assert not (response.status_code in (401, 403) and DENIALS.match(message)), (
                        where
                    )
                    if not prechecks and (procedure.input is None or _is_struct(procedure.input)):
                        assert response.status_code == 400, where
                self.checked += 1


async def test_every_procedure_of_every_installed_plugin(checkstack_host, principals, rpc):
    matrix = Matrix(checkstack_host, principals, rpc)
    procedures = [
        (record.id, procedure)
        for record in checkstack_host.active()
        if record.contract is not None
        for procedure in record.contract.procedures
    ]
    assert len(procedures) > 40
    for plugin_id, procedure in procedures:
        await matrix.check(plugin_id, procedure)
    assert matrix.checked >= 250
    assert 0 < matrix.denied < matrix.checked


async def test_public_procedures_follow_the_anonymous_role(checkstack_host, principals, rpc):
    """With every rule removed from ``anonymous``, no public procedure admits a guest."""
    async with principals.ctx() as ctx:
        from checkstack_auth import service

        await service.update_role(ctx, "anonymous", rules=[])
    matrix = Matrix(checkstack_host, principals, rpc)
    matrix.public = set()
    public = [
        (record.id, procedure)
        for record in checkstack_host.active()
        if record.contract is not None
        for procedure in record.contract.procedures
        if procedure.caller is CallerKind.PUBLIC
    ]
    assert public
    for plugin_id, procedure in public:
        await matrix.check(plugin_id, procedure, only_anonymous=True)


async def test_a_missing_resource_id_falls_back_to_the_global_rule(rpc, principals):
    nobody = await principals.app()
    without_id = await rpc("vault", "touchItem", {}, nobody)
    assert without_id.status_code == 403
    assert without_id.json()["message"] == "Missing access: vault.item.manage"
    with_id = await rpc("vault", "touchItem", {"id": "a"}, nobody)
    assert with_id.json()["message"] == "Missing access: vault.item.manage"
    holder = await principals.app("vault.item.manage")
    assert (await rpc("vault", "touchItem", {}, holder)).status_code == 200


# -- more caller kinds (issue 16): an admin application, a service principal, team members and
# -- team managers; admitted callers get an exact status and exactly the filtered output ---------


class _AdminApplicationMatrix(Matrix):
    """The matrix with one caller: an application holding the administrator role."""

    async def callers(
        self, plugin_id: str, procedure: Procedure
    ) -> list[tuple[str, Caller | None, set[str] | None]]:
        if not hasattr(self, "_admin_app"):
            from checkstack_auth.models import ADMIN_ROLE

            self._admin_app = await self.principals.app(roles=(ADMIN_ROLE,), name="admin app")
        return [("application", self._admin_app, None)]


def _all_procedures(host: Any) -> list[tuple[str, Procedure]]:
    return [
        (record.id, procedure)
        for record in host.active()
        if record.contract is not None
        for procedure in record.contract.procedures
    ]


async def test_caller_kind_admin_application(checkstack_host, principals, rpc):
    """An admin key passes every rule but stays an application: user-only and service-only
    procedures refuse it; every other one reaches validation (exactly 400 for the probe)."""
    matrix = _AdminApplicationMatrix(checkstack_host, principals, rpc)
    admin_app = (await matrix.callers("auth", _all_procedures(checkstack_host)[0][1]))[0][1]
    for plugin_id, procedure in _all_procedures(checkstack_host):
        await matrix.check(plugin_id, procedure)
        response = await rpc(plugin_id, procedure.name, probe_input(procedure), admin_app)
        if procedure.caller in (CallerKind.USER, CallerKind.SERVICE):
            assert response.status_code == 403, response.text
        elif procedure.caller is not CallerKind.ANONYMOUS:
            assert response.status_code == 400, (plugin_id, procedure.name, response.text)
            assert response.json()["code"] == "BAD_REQUEST"
    assert matrix.denied > 0


async def test_caller_kind_service_principal(checkstack_host):
    """A plugin acting as itself passes every rule and the service-only caller kind; it is not a
    person, so user-only procedures refuse it. Everything else reaches validation and refuses the
    probe input with exactly BAD_REQUEST."""
    from checkstack_core.errors import BadRequest, Forbidden

    checked = 0
    for plugin_id, procedure in _all_procedures(checkstack_host):
        expected = Forbidden if procedure.caller is CallerKind.USER else BadRequest
        async with checkstack_host.service_context("vault") as ctx:
            with pytest.raises(expected) as refused:
                await ctx.call(plugin_id, procedure.name, probe_input(procedure), as_service=True)
        if expected is Forbidden:
            assert refused.value.message == "This procedure is for users only"
        else:
            assert refused.value.code == "BAD_REQUEST", (plugin_id, procedure.name)
        checked += 1
    assert checked > 40


@pytest.fixture
async def team_world(rpc, principals) -> dict[str, Any]:
    """Vault items a, b, c; team ops with a READ grant on a and a MANAGE grant on b; team dev."""
    admin = await principals.admin()
    for item in ("a", "b", "c"):
        created = await rpc("vault", "createItem", {"id": item, "name": item.upper()}, admin)
        assert created.status_code == 200, created.text
    teams = {}
    for name in ("ops", "dev"):
        teams[name] = (await rpc("auth", "createTeam", {"name": name}, admin)).json()["createTeam"][
            "id"
        ]
    for item, level in (("a", "read"), ("b", "manage")):
        grant = {"teamId": teams["ops"], "resourceType": vault_plugin.ITEM, "resourceId": item}
        granted = await rpc("auth", "grantTeamAccess", {**grant, "level": level}, admin)
        assert granted.status_code == 200, granted.text
    return {"admin": admin, **teams}


@pytest.mark.parametrize("kind", ["user", "application"])
async def test_caller_kind_team_member(rpc, principals, team_world, kind):
    """A member holding no rule: exactly its team's items, at exactly its grants' levels."""
    make = principals.user if kind == "user" else principals.app
    member = await make(teams=(team_world["ops"],))
    listed = await rpc("vault", "getItems", None, member)
    assert listed.status_code == 200
    assert listed.json() == {
        "getItems": {"items": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]}
    }
    for item, status in (("a", 200), ("b", 200), ("c", 403)):
        response = await rpc("vault", "getItem", {"id": item}, member)
        assert response.status_code == status, response.text
    assert (await rpc("vault", "getItem", {"id": "a"}, member)).json() == {
        "getItem": {"id": "a", "name": "A"}
    }
    # manage: only through the manage grant on b
    changed = await rpc("vault", "updateItem", {"id": "b", "name": "B2"}, member)
    assert changed.json() == {"updateItem": {"id": "b", "name": "B2"}}
    for item in ("a", "c"):
        refused = await rpc("vault", "updateItem", {"id": item, "name": "x"}, member)
        assert refused.status_code == 403
        assert refused.json()["message"] == "Missing access: vault.item.manage"
    # Being in a team grants nothing on teams themselves.
    teams = await rpc("auth", "getTeams", None, member)
    assert teams.status_code == 200 and teams.json()["getTeams"]["teams"] == []


async def test_caller_kind_team_manager(rpc, principals, team_world):
    """A team manager without any rule manages exactly the teams it manages and sees only those;
    adding a member hands out the team's grants, so only a manager who holds them (a member) may."""
    admin = team_world["admin"]
    manager = await principals.user(teams=(team_world["ops"],))
    outsider = await principals.user()
    for user in (manager, outsider):
        added = await rpc(
            "auth", "addTeamManager", {"id": team_world["ops"], "userId": user.id}, admin
        )
        assert added.status_code == 200, added.text
    app = await principals.app()
    member = {"id": team_world["ops"], "applicationId": app.id}
    refused = await rpc("auth", "addTeamMember", member, outsider)
    assert refused.status_code == 403
    assert "grants access you do not hold" in refused.json()["message"]
    joined = await rpc("auth", "addTeamMember", member, manager)
    assert joined.status_code == 200, joined.text
    assert app.id in [m["id"] for m in joined.json()["addTeamMember"]["members"]]
    foreign = await rpc(
        "auth", "addTeamMember", {"id": team_world["dev"], "applicationId": app.id}, manager
    )
    assert foreign.status_code == 403
    assert foreign.json()["message"] == "Missing access: auth.teams.manage"
    listed = await rpc("auth", "getTeams", None, outsider)
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["getTeams"]["teams"]] == [team_world["ops"]]
    # Managing a team is not a grant on its resources.
    assert (await rpc("vault", "getItem", {"id": "a"}, outsider)).status_code == 403


# -- target-relative checks -----------------------------------------------------------------------

#: How an input field names a principal, a role or a team, by its wire name. ``id`` names what the
#: procedure's name says (``deleteUser``, ``updateRole``, ``addTeamMember``...).
FIELD_KINDS = {
    "userId": "user",
    "applicationId": "application",
    "teamId": "team",
    "roles": "role",
    "teams": "team",
}
ID_KINDS = (("Application", "application"), ("User", "user"), ("Team", "team"), ("Role", "role"))
#: A rule no matrix caller holds: what makes a target "bigger" than the caller.
BIGGER_RULE = "vault.item.manage"


def named_fields(procedure: Procedure) -> dict[str, str]:
    """Input fields (wire names) of ``procedure`` that name a principal, role or team → kind."""
    if procedure.kind != "mutation" or not _is_struct(procedure.input):
        return {}
    found: dict[str, str] = {}
    for field in mi.type_info(procedure.input).fields:
        kind = FIELD_KINDS.get(field.encode_name)
        if field.encode_name == "id":
            kind = next((k for word, k in ID_KINDS if word in procedure.name), None)
        if kind is not None:
            found[field.encode_name] = kind
    return found


class Targets:
    """Targets holding more than a caller (``bigger``) and as little as possible (``smaller``)."""

    def __init__(self, principals: Any) -> None:
        self.principals = principals
        self._bigger: dict[str, tuple[str, str]] = {}
        self._made = 0

    async def make(self, kind: str, *, bigger: bool) -> tuple[str, str]:
        """(id, how messages name it) of a new user, application, role or team."""
        from checkstack_auth import service

        p = self.principals
        self._made += 1
        rules = (BIGGER_RULE,) if bigger else ()
        if kind == "user":
            user = await p.user(*rules)
            return user.id, user.id
        if kind == "application":
            app = await p.app(*rules)
            return app.id, app.id
        if kind == "role":
            name = f"{'bigger' if bigger else 'smaller'} role {self._made}"
            async with p.ctx() as ctx:
                role = await service.create_role(ctx, name, "", list(rules))
            return role.id, name
        team_id = await p.team(f"team {self._made}")
        if bigger:
            async with p.ctx() as ctx:
                await service.grant(ctx, team_id, vault_plugin.ITEM, "x", "manage")
        return team_id, team_id

    async def bigger(self, kind: str) -> tuple[str, str]:
        if kind not in self._bigger:
            self._bigger[kind] = await self.make(kind, bigger=True)
        return self._bigger[kind]


def _target_input(procedure: Procedure, values: dict[str, str]) -> Any:
    raw = valid_input(procedure)
    for field, value in values.items():
        raw[field] = [value] if field in ("roles", "teams") else value
    return raw


async def test_acting_on_more_than_one_holds_is_refused(checkstack_host, principals, rpc):
    """For every mutation of every installed plugin naming a principal, role or team: a caller
    holding the procedure's rules but less than the named target is refused (403, naming the
    target), and the same call naming a target holding less is not refused for its target."""
    targets = Targets(principals)
    callers: dict[frozenset[str], Caller] = {}
    checked: list[str] = []
    for record in checkstack_host.active():
        if record.contract is None:
            continue
        for procedure in record.contract.procedures:
            kinds = named_fields(procedure)
            if not kinds:
                continue
            rules = frozenset(rule.qualified_id(record.id) for rule in procedure.rules)
            assert BIGGER_RULE not in rules
            if rules not in callers:
                callers[rules] = await principals.user(*sorted(rules))
            caller = callers[rules]
            # A user-and-application choice (team members) names one of them at a time.
            required = {f.encode_name for f in mi.type_info(procedure.input).fields if f.required}
            for field, kind in kinds.items():
                fields = {
                    f: k
                    for f, k in kinds.items()
                    if f == field or (f in required and f not in ("userId", "applicationId"))
                }
                smaller = {f: (await targets.make(k, bigger=False))[0] for f, k in fields.items()}
                big_id, big_name = await targets.bigger(kind)
                where = f"{record.id}.{procedure.name} naming a bigger {kind} in {field}"

                refused = await rpc(
                    record.id,
                    procedure.name,
                    _target_input(procedure, {**smaller, field: big_id}),
                    caller,
                )
                message = refused.json().get("message", "")
                assert refused.status_code == 403, f"{where}: {refused.text}"
                assert big_name in message and not DENIALS.match(message), f"{where}: {message}"

                control = await rpc(
                    record.id, procedure.name, _target_input(procedure, smaller), caller
                )
                assert not (control.status_code == 403 and "you do not hold" in control.text), (
                    f"{where}, control: {control.text}"
                )
                assert "administrators" not in control.text, f"{where}, control: {control.text}"
                checked.append(f"{procedure.name}.{field}")
    # Every auth mutation naming someone: users, applications, roles and teams.
    assert len(checked) >= 24, checked
    assert {"regenerateApplicationSecret.id", "setUserPassword.id", "setUserRoles.roles"} <= set(
        checked
    )


def test_every_auth_mutation_declares_its_targets():
    from checkstack_auth.contract import contract
    from checkstack_auth.service.targets import TARGETS, UNTARGETED

    mutations = {p.name for p in contract.procedures if p.kind == "mutation"}
    assert mutations == set(TARGETS) | UNTARGETED
    assert not set(TARGETS) & UNTARGETED
    named = {p.name for p in contract.procedures if named_fields(p)}
    assert named <= set(TARGETS)
