"""Procedure contracts: access rules, procedures, declared events and a plugin's contract (SPEC
§3.2, §5.5).

A contract is plain data: importing it needs neither the server nor a database, so clients, docs
generators and other plugins can read it. A plugin's ``contract.py`` looks like this::

    read = AccessRule("hello", "read", "Read the greeting", default=True, public=True)
    manage = AccessRule("hello", "manage", "Change the greeting")

    class GreetingInput(Schema):
        name: str = "world"

    class Greeting(Schema):
        message: str

    GREETING_CHANGED = "hello.greeting.changed"

    contract = Contract(
        "hello",
        rules=[read, manage],
        procedures=[
            query(
                "getGreeting", input=GreetingInput, output=Greeting, caller="public", rules=[read]
            ),
        ],
        events=[EventType(GREETING_CHANGED, "The greeting changed", payload="{template}")],
    )
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

PLUGIN_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]*$")
PROCEDURE_NAME_PATTERN = re.compile(r"^[a-z][A-Za-z0-9]*$")
_RESOURCE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$")
#: ``<pluginId>.<resource>.<verb>`` (the resource may be dotted; ``status_changed`` is a verb).
EVENT_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9_-]*){2,}$")


class Schema(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """Base for procedure inputs and outputs: camelCase on the wire, unknown fields rejected.

    Subclass it for every input and output type; field names stay snake_case in Python.
    """


class Level(StrEnum):
    """How much an access rule allows: ``manage`` implies nothing about ``read`` on its own."""

    READ = "read"
    MANAGE = "manage"


class Kind(StrEnum):
    """Whether a procedure only reads (``query``, callable over GET in oRPC) or changes state."""

    QUERY = "query"
    MUTATION = "mutation"


class CallerKind(StrEnum):
    """Who may call a procedure (SPEC §3.2)."""

    #: Anyone, with no check at all (e.g. login).
    ANONYMOUS = "anonymous"
    #: Anonymous callers allowed; the procedure's rules are checked against the anonymous role.
    PUBLIC = "public"
    #: Users and applications (the default).
    AUTHENTICATED = "authenticated"
    #: People only.
    USER = "user"
    #: Other plugins only (in-process calls as a service).
    SERVICE = "service"


@dataclass(frozen=True, slots=True)
class InstanceAccess:
    """How a rule finds the individual resources it guards (SPEC §5.5).

    Exactly one of the locating fields says where the resource ids are:

    - ``id_param``: an input field holding one id, checked before the handler runs;
    - ``ids_param``: an input field holding a list of ids, every one of which must be admitted;
    - ``list_key``: an output field holding a list of ``{"id": ...}`` objects, filtered afterwards;
    - ``record_key``: an output field holding an object keyed by resource id, filtered afterwards;
    - ``resolve``: ``async def (ctx, input) -> list[str]`` finding the ids itself, for procedures
      whose input names something else (``updateIncident {"id"}`` is guarded by the systems the
      incident affects). It runs before any handler of the call or batch, in its transaction.

    Dotted paths (``"filter.systemId"``) reach into nested objects. Names are camelCase wire names.
    """

    resource_type: str
    id_param: str | None = None
    ids_param: str | None = None
    list_key: str | None = None
    record_key: str | None = None
    resolve: Callable[[Any, Any], Awaitable[list[str]]] | None = None

    def __post_init__(self) -> None:
        where = (self.id_param, self.ids_param, self.list_key, self.record_key, self.resolve)
        if sum(1 for f in where if f) != 1:
            raise ValueError(
                "InstanceAccess needs exactly one of id_param, ids_param, list_key, record_key, "
                "resolve"
            )
        if not _RESOURCE_PATTERN.match(self.resource_type) or "." not in self.resource_type:
            raise ValueError(
                f"resource_type must look like '<pluginId>.<resource>', got {self.resource_type!r}"
            )

    @property
    def is_precheck(self) -> bool:
        """True when the ids are known before the handler runs (checked before it)."""
        return bool(self.id_param or self.ids_param or self.resolve)


@dataclass(frozen=True, slots=True)
class AccessRule:
    """A named permission of a plugin: local id ``<resource>.<level>``, qualified by the plugin id.

    ``default`` rules are granted to every logged-in user (role ``users``), ``public`` rules to
    anonymous callers (role ``anonymous``). ``instance`` ties the rule to individual resources.
    """

    resource: str
    level: Level | str
    description: str
    default: bool = False
    public: bool = False
    instance: InstanceAccess | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "level", Level(self.level))
        if not _RESOURCE_PATTERN.match(self.resource):
            raise ValueError(f"Invalid access rule resource {self.resource!r}")

    @property
    def id(self) -> str:
        """The local id, e.g. ``catalog.read``."""
        return f"{self.resource}.{self.level}"

    def qualified_id(self, plugin_id: str) -> str:
        """The id used in roles and error messages, e.g. ``catalog.catalog.read``."""
        return f"{plugin_id}.{self.id}"


@dataclass(frozen=True, slots=True)
class Procedure:
    """One callable operation of a plugin. Build it with :func:`query` or :func:`mutation`.

    ``sets_cookies`` declares that the handler sets cookies (``ctx.response.cookies``), e.g. a
    login setting the session cookie. Such a procedure is refused inside an oRPC batch (400):
    there a cookie would travel serialised in the JSON body, readable by scripts.
    """

    name: str
    kind: Kind
    input: Any = None
    output: Any = None
    caller: CallerKind = CallerKind.AUTHENTICATED
    rules: tuple[AccessRule, ...] = ()
    instance: InstanceAccess | None = None
    description: str = ""
    sets_cookies: bool = False

    def instance_access(self, rule: AccessRule) -> InstanceAccess | None:
        """The instance access of ``rule`` here (the procedure's overrides the rule's)."""
        return self.instance or rule.instance


def _procedure(
    kind: Kind,
    name: str,
    *,
    input: Any = None,
    output: Any = None,
    caller: CallerKind | str = CallerKind.AUTHENTICATED,
    rules: Iterable[AccessRule] = (),
    instance: InstanceAccess | None = None,
    description: str = "",
    sets_cookies: bool = False,
) -> Procedure:
    return Procedure(
        name=name,
        kind=kind,
        input=input,
        output=output,
        caller=CallerKind(caller),
        rules=tuple(rules),
        instance=instance,
        description=description,
        sets_cookies=sets_cookies,
    )


def query(name: str, **options: Any) -> Procedure:
    """Declare a read-only procedure; options as for :class:`Procedure`.

    Pass ``sets_cookies=True`` when the handler sets cookies (a login): the procedure is then
    refused inside oRPC batches, so a cookie never travels in a JSON body.
    """
    return _procedure(Kind.QUERY, name, **options)


def mutation(name: str, **options: Any) -> Procedure:
    """Declare a state-changing procedure. Options as for :func:`query`."""
    return _procedure(Kind.MUTATION, name, **options)


@dataclass(frozen=True, slots=True)
class EventType:
    """An event a plugin emits, declared in its contract so other plugins can discover it.

    ``name`` is ``<pluginId>.<resource>.<verb>`` (e.g. ``catalog.system.created``) and starts with
    the contract's plugin id; ``payload`` describes the payload's keys for readers (free text).
    Declared events are public: the notification plugin offers every one of them to outgoing
    integration webhooks, so a payload must never hold a secret.
    """

    name: str
    description: str
    payload: str = ""


def _is_object_type(tp: Any) -> bool:
    """Inputs and outputs are JSON objects: a non-array-like Struct or a ``dict[str, X]``."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return not getattr(tp.__struct_config__, "array_like", False)
    origin = getattr(tp, "__origin__", None)
    return tp is dict or origin is dict


@dataclass
class Contract:
    """Everything a plugin offers other code: its access rules, procedures and the events it
    emits."""

    plugin_id: str
    rules: Sequence[AccessRule] = ()
    procedures: Sequence[Procedure] = ()
    events: Sequence[EventType] = ()
    by_name: dict[str, Procedure] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rules = tuple(self.rules)
        self.procedures = tuple(self.procedures)
        self.events = tuple(self.events)
        self.by_name = {p.name: p for p in self.procedures}

    def qualified(self, rule: AccessRule) -> str:
        """The qualified id of one of this contract's rules."""
        return rule.qualified_id(self.plugin_id)

    def validate(self) -> list[str]:
        """Every problem that makes this contract unusable, as messages (empty when valid)."""
        problems: list[str] = []
        if not PLUGIN_ID_PATTERN.match(self.plugin_id):
            problems.append(
                f"Plugin id {self.plugin_id!r} does not match {PLUGIN_ID_PATTERN.pattern}"
            )
        declared: set[str] = set()
        for rule in self.rules:
            if rule.id in declared:
                problems.append(f"Access rule {rule.id} is declared twice")
            declared.add(rule.id)
        seen: set[str] = set()
        for proc in self.procedures:
            if proc.name in seen:
                problems.append(f"Procedure {proc.name} is declared twice")
            seen.add(proc.name)
            if not PROCEDURE_NAME_PATTERN.match(proc.name):
                problems.append(
                    f"Procedure name {proc.name!r} does not match {PROCEDURE_NAME_PATTERN.pattern}"
                )
            for rule in proc.rules:
                if rule.id not in declared or rule not in self.rules:
                    problems.append(
                        f"Procedure {proc.name} names access rule "
                        f"{self.qualified(rule)}, which the plugin does not declare"
                    )
            for role, tp in (("input", proc.input), ("output", proc.output)):
                if tp is not None and not _is_object_type(tp):
                    problems.append(
                        f"Procedure {proc.name} {role} must be a JSON object type "
                        f"(a msgspec Struct or dict), got {tp!r}"
                    )
            if proc.caller is CallerKind.ANONYMOUS and proc.rules:
                problems.append(
                    f"Procedure {proc.name} is for anonymous callers and cannot require rules"
                )
        events: set[str] = set()
        for event in self.events:
            if not isinstance(event, EventType):
                problems.append(f"Event {event!r} is not an EventType")
                continue
            if event.name in events:
                problems.append(f"Event {event.name} is declared twice")
            events.add(event.name)
            if not EVENT_TYPE_PATTERN.match(event.name):
                problems.append(
                    f"Event name {event.name!r} does not look like '<pluginId>.<resource>.<verb>'"
                )
            elif not event.name.startswith(f"{self.plugin_id}."):
                problems.append(
                    f"Event {event.name} does not start with the plugin id {self.plugin_id!r}"
                )
        return problems
