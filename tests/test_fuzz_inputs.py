"""A schema-driven fuzzer (SPEC §10): no input to any procedure of any installed plugin is a 500.

Every call goes through HTTP (``checkstack_http``) as a real principal of the auth plugin: an
administrator's API key for most procedures, an administrator's session cookie for user-only
ones, and no credentials for anonymous ones. Before fuzzing, one real record of every resource
type is made (a system, a group, a window, an incident, a health check, a user, an application, a
team, a role), and inputs name those records wherever a field holds such an id, so inputs reach
the handlers instead of stopping at NOT_FOUND.

For every procedure, inputs are derived from its input type's JSON schema: a plausible input
(arrays hold one element), then that input with each field, at every depth (inside nested objects
and array elements too), replaced by values of the wrong type, out-of-range numbers, huge
strings, malformed times and unknown ids, plus top-level garbage. Procedures that delete or end
things run last, so the records serve every other procedure first. Any answer is fine except a
5xx.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from checkstack_core import Plugin
from checkstack_core.contract import CallerKind

BAD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**63,
    1.5,
    "",
    "x" * 5000,
    "\x00\ud7ff",
    "not-a-uuid",
    "2026-13-45T99:99:99Z",
    "00000000-0000-0000-0000-000000000000",
    [],
    [None],
    {},
    {"nested": {"deep": [1, {"x": None}]}},
]
#: Fewer values below the top level: nested paths are many, and the kinds of breakage the same.
NESTED_BAD_VALUES: list[Any] = [None, 0, "", "x" * 5000, "\x00", [], {}, "not-a-uuid"]
TOP_LEVEL_GARBAGE: list[Any] = [None, {}, [], "text", 42, {"unknownField": 1}]
#: Procedures that remove or end what others need: fuzzed after everything else.
LAST = (
    "delete",
    "remove",
    "revoke",
    "logout",
    "changePassword",
    "setUserPassword",
    # a team-only grant would shut the fuzzing key out of the system every other call names
    "grantTeamAccess",
    "setTeamOnly",
)


def installed_plugins() -> list[Plugin]:
    plugins = []
    for ep in importlib.metadata.entry_points(group="checkstack.plugins"):
        obj = ep.load()
        if isinstance(obj, Plugin):
            plugins.append(obj)
    return plugins


@pytest.fixture
def checkstack_settings(checkstack_database_url: str) -> Any:
    """With a server key, as a deployment that stores secrets (strategy configs, notification
    channels) has: without one those inputs stop at "CHECKSTACK_SECRET_KEY must be set"."""
    from checkstack_core.settings import Settings

    return Settings(
        database_url=checkstack_database_url,
        strict_plugins=True,
        secret_key="fuzz-server-key-not-for-production",
    )


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    plugins = installed_plugins()
    assert {"auth", "catalog", "maintenance", "incident", "healthcheck"} <= {p.id for p in plugins}
    return plugins


# -- real records ----------------------------------------------------------------------------------


class Records:
    """One real record per resource type, and the id a field name stands for."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    #: The record a procedure's ``id`` names when its name does not say (``addUpdate``).
    PLUGIN_RECORD = {
        "catalog": "system",
        "maintenance": "window",
        "incident": "incident",
        "healthcheck": "check",
        "notification": "channel",
    }
    KINDS = (
        "check",
        "group",
        "system",
        "window",
        "incident",
        "team",
        "role",
        "user",
        "application",
        "session",
        "channel",
        "integration",
        "subscription",
    )

    def for_field(self, plugin: str, procedure: str, field: str) -> Any:
        """A real value (an id, a list of ids) for ``field`` of ``procedure``, or ``None``."""
        name = field.lower()
        if name == "id":
            lowered = procedure.lower()
            named = [(lowered.find(k), k) for k in self.KINDS if k in lowered and k in self.ids]
            kind = min(named)[1] if named else self.PLUGIN_RECORD.get(plugin)
            return self.ids.get(kind) if kind else None
        if name == "email":
            return "fuzz-user@example.com"
        if "password" in name and name != "currentpassword":
            return "Fuzz-password-9"
        if name == "rules":
            return ["hello.hello.read"]
        if name == "resourcetype":
            return "catalog.system"
        if name == "resourceid":
            return self.ids.get("system")
        for kind in (
            "system",
            "group",
            "team",
            "user",
            "application",
            "role",
            "window",
            "check",
            "channel",
        ):
            if name in (f"{kind}id", f"{kind}ids", f"{kind}s") and kind in self.ids:
                return [self.ids[kind]] if name.endswith("s") else self.ids[kind]
        return None


async def call(http: Any, plugin: str, procedure: str, raw: Any, headers: dict[str, str]) -> Any:
    return await http.post(f"/api/{plugin}/", json={procedure: raw}, headers=headers)


async def ok(http: Any, plugin: str, procedure: str, raw: Any, headers: dict[str, str]) -> Any:
    response = await call(http, plugin, procedure, raw, headers)
    assert response.status_code == 200, response.text
    return response.json()[procedure]


async def make_records(http: Any, key: dict[str, str], cookie: dict[str, str]) -> Records:
    records = Records()
    ids = records.ids
    ids["system"] = (await ok(http, "catalog", "createSystem", {"name": "fuzz system"}, key))["id"]
    ids["group"] = (await ok(http, "catalog", "createGroup", {"name": "fuzz group"}, key))["id"]
    window = {
        "title": "fuzz window",
        "startAt": "2031-01-01T00:00:00Z",
        "endAt": "2031-01-01T01:00:00Z",
        "systemIds": [ids["system"]],
    }
    ids["window"] = (await ok(http, "maintenance", "scheduleWindow", window, key))["id"]
    incident = {
        "title": "fuzz incident",
        "severity": "minor",
        "systemIds": [ids["system"]],
        "message": "fuzz",
    }
    created = await call(http, "incident", "createIncident", incident, key)
    if created.status_code != 200:  # the schema decides what an incident needs: ask it
        from checkstack_incident.contract import contract as incident_contract

        schema_input = incident_contract.by_name["createIncident"].input
        incident = {**plausible_for(schema_input, records, "incident", "x"), **incident}
        incident = {k: v for k, v in incident.items() if k in field_names(schema_input)}
        created = await call(http, "incident", "createIncident", incident, key)
    assert created.status_code == 200, created.text
    ids["incident"] = created.json()["createIncident"]["id"]
    # A health check on the system, probing a closed loopback port (fails fast, no traffic out).
    check = {
        "name": "fuzz check",
        "strategyId": "tcp",
        "config": {"host": "127.0.0.1", "port": 9},
        "timeoutSeconds": 1,
    }
    ids["check"] = (await ok(http, "healthcheck", "createHealthCheck", check, key))["id"]
    assigned = {"id": ids["check"], "systemId": ids["system"]}
    await ok(http, "healthcheck", "assignHealthCheck", assigned, key)
    ids["role"] = (await ok(http, "auth", "createRole", {"name": "fuzz role", "rules": []}, key))[
        "id"
    ]
    ids["team"] = (await ok(http, "auth", "createTeam", {"name": "fuzz team"}, key))["id"]
    user = {"email": "fuzz-subject@example.com", "password": "Fuzz-subject-9"}
    ids["user"] = (await ok(http, "auth", "createUser", user, key))["id"]
    app = await ok(http, "auth", "createApplication", {"name": "fuzz subject"}, key)
    ids["application"] = app["application"]["id"] if "application" in app else app["id"]
    sessions = await ok(http, "auth", "getSessions", {}, cookie)
    if sessions.get("sessions"):
        ids["session"] = sessions["sessions"][0]["id"]
    if importlib.util.find_spec("checkstack_notification") is not None:
        # Webhooks to a closed loopback port: attempts fail fast, nothing leaves the machine.
        hook = {"url": "http://127.0.0.1:9/hook", "secret": "fuzz-webhook-secret-0123"}
        channel = {"name": "fuzz channel", "kind": "webhook", "config": hook}
        ids["channel"] = (await ok(http, "notification", "createChannel", channel, key))["id"]
        integration = {"name": "fuzz hook", **hook, "eventTypes": ["catalog.system.created"]}
        made = await ok(http, "notification", "createIntegration", integration, key)
        ids["integration"] = made["id"]
        subscription = {"systemId": ids["system"]}
        made = await ok(http, "notification", "subscribe", subscription, cookie)
        ids["subscription"] = made["id"]
    return records


# -- inputs ----------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def plausible(
    schema: dict[str, Any],
    defs: dict[str, Any],
    records: Records,
    where: tuple[str, str],
    field: str = "",
    depth: int = 0,
) -> Any:
    """A value of the schema's shape, naming real records where a field holds their id."""
    schema = _resolve(schema, defs)
    if depth > 5:
        return None
    real = records.for_field(*where, field) if field else None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, defs).get("type") != "null"]
            chosen = options[0] if options else schema[key][0]
            return plausible(chosen, defs, records, where, field, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {
            name: plausible(properties[name], defs, records, where, name, depth + 1)
            for name in properties
        }
    if kind == "array":
        if isinstance(real, list):
            return real
        item = plausible(schema.get("items", {}), defs, records, where, field, depth + 1)
        return [item]  # non-empty: the element is fuzzed too
    if kind == "string":
        if isinstance(real, str):
            return real
        if schema.get("format") == "date-time":
            # Ends after starts, as the validators demand.
            later = field.lower() in ("endat", "to", "until")
            return "2030-01-01T01:00:00Z" if later else "2030-01-01T00:00:00Z"
        return "fuzz"[: schema.get("maxLength", 4)].ljust(schema.get("minLength", 0), "z")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return None


def _schema(input_type: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    (schema,), defs = msgspec.json.schema_components([input_type])
    return _resolve(schema, defs), defs


def plausible_for(input_type: Any, records: Records, plugin: str, procedure: str) -> Any:
    root, defs = _schema(input_type)
    return plausible(root, defs, records, (plugin, procedure))


def field_names(input_type: Any) -> set[str]:
    return set(_schema(input_type)[0].get("properties", {}))


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path into ``value``: each key of each object and each element of each array."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from leaf_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from leaf_paths(item, (*path, index))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: replaced(value[head], rest, new)}
    copy = list(value)
    copy[head] = replaced(copy[head], rest, new)
    return copy


def inputs_for(input_type: Any, records: Records, plugin: str, procedure: str) -> Iterator[Any]:
    """A plausible input, top-level garbage, then each field of it broken in turn, at any depth."""
    base = {} if input_type is None else plausible_for(input_type, records, plugin, procedure)
    yield base
    yield from TOP_LEVEL_GARBAGE
    if input_type is None:
        return
    if not isinstance(base, dict):
        return
    # Without each optional field too: defaults must work as well.
    for field in base:
        yield {k: v for k, v in base.items() if k != field}
    for path in leaf_paths(base):
        for value in BAD_VALUES if len(path) == 1 else NESTED_BAD_VALUES:
            yield replaced(base, path, value)


def all_procedures(host: Any) -> list[tuple[str, Any]]:
    found = [
        (record.id, procedure)
        for record in host.active()
        if record.contract is not None
        for procedure in record.contract.procedures
    ]
    # Stable: the order of the contracts, with what deletes or ends things last.
    return sorted(
        found,
        key=lambda item: (item[1].name.startswith(LAST), item[1].name.startswith("delete")),
    )


# -- the test --------------------------------------------------------------------------------------


class Callers:
    """Real principals: an administrator's API key and session; renewed if a call ends them."""

    def __init__(self, access: Any) -> None:
        self.access = access
        self.key: dict[str, str] = {}
        self.cookie: dict[str, str] = {}

    async def renew(self) -> None:
        self.key = (await self.access.application(*self._every_rule)).headers
        self.cookie = (await self.access.admin()).headers

    async def start(self, host: Any) -> None:
        self._every_rule = sorted(r.qualified_id(p) for p, r in host.all_rules())
        await self.renew()

    def headers(self, procedure: Any) -> dict[str, str]:
        if procedure.caller is CallerKind.ANONYMOUS:
            return {}
        return self.cookie if procedure.caller is CallerKind.USER else self.key


async def test_no_input_to_any_procedure_is_a_server_error(
    checkstack_host, checkstack_http, checkstack_access
):
    assert checkstack_access.backend == "auth"  # real principals, not the fake
    callers = Callers(checkstack_access)
    await callers.start(checkstack_host)
    records = await make_records(checkstack_http, callers.key, callers.cookie)
    failures: list[str] = []
    statuses: dict[int, int] = {}
    admitted: list[str] = []  # procedures whose plausible input succeeded
    calls = 0
    procedures = all_procedures(checkstack_host)
    for plugin_id, procedure in procedures:
        for number, raw in enumerate(
            inputs_for(procedure.input, records, plugin_id, procedure.name)
        ):
            calls += 1
            headers = callers.headers(procedure)
            response = await call(checkstack_http, plugin_id, procedure.name, raw, headers)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if number == 0 and response.status_code == 200:
                admitted.append(f"{plugin_id}.{procedure.name}")
            if response.status_code >= 500:
                failures.append(f"{plugin_id}.{procedure.name}({raw!r:.160}): {response.text}")
            elif response.status_code == 401 and headers:
                await callers.renew()  # the call ended our session or key (logout, delete)
    assert calls > 3000, f"only {calls} calls: are the plugins installed?"
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:30])
    # The records made the inputs count: most plausible inputs name real records and succeed
    # (the rest are service-only procedures, conflicts of names or deliberate refusals).
    assert len(admitted) >= 0.7 * len(procedures), (len(admitted), len(procedures), statuses)
