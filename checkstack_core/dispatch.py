"""The protocol-independent dispatcher: every call of every protocol goes through here.

Order of checks for each call (SPEC §4.3): parse (by the protocol adapter) → authenticate → find the
procedure → caller kind and rules → validate input → resource-level pre-check → run → resource-level
filtering of the output. A batch is atomic: every call passes every check before any runs, they run
in order in one transaction, and the first failure rolls everything back.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from .auth import Principal, PrincipalKind, RequestInfo, missing_access
from .context import Context, ResponseExtras, UnitOfWork
from .contract import CallerKind, InstanceAccess, Level, Procedure
from .errors import (
    BadRequest,
    Conflict,
    Forbidden,
    InternalServerError,
    NotFound,
    PayloadTooLarge,
    RpcError,
    ServiceUnavailable,
    Unauthorized,
    validation_error,
)
from .limits import datetime_issues

if TYPE_CHECKING:
    from .db import ClientWatch
    from .host import Host, LoadedPlugin

logger = logging.getLogger("checkstack.dispatch")

MAX_BATCH = 50
#: Seconds a client is asked to wait when every database connection is busy.
RETRY_AFTER_BUSY = "1"
_PATH_SUFFIX = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def validation_issues(error: msgspec.ValidationError) -> list[dict[str, Any]]:
    """Turn msgspec's one-line error (``Expected `int`, got `str` - at `$.a[0]` ``) into issues."""
    match = _PATH_SUFFIX.match(str(error))
    assert match is not None  # the pattern matches any string
    path: list[str | int] = []
    if match["path"]:
        for key, index in _PATH_PART.findall(match["path"][1:]):
            path.append(int(index) if index else key)
    return [{"message": match["message"], "path": path}]


def _lookup(data: Any, dotted: str) -> Any:
    """The value at ``dotted`` (``"filter.systemId"``) in ``data``; ``None`` when it is absent
    (callers take only a string, an integer or a list from it)."""
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _strings_in(value: Any) -> set[str]:
    """Every string (and integer, as text) anywhere in a JSON value: what the caller sent."""
    found: set[str] = set()
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.add(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            found.add(str(item))
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _nul_path(value: Any, path: list[str | int]) -> list[str | int] | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return [*path, key]
            found = _nul_path(item, [*path, key])
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, [*path, index])
            if found is not None:
                return found
    return None


def _whole_floats_as_ints(value: Any) -> Any:
    """``value`` with every float that is a whole number as an int (the same object when none)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        changed = {key: _whole_floats_as_ints(item) for key, item in value.items()}
        same = all(changed[key] is item for key, item in value.items())
        return value if same else changed
    if isinstance(value, list):
        items = [_whole_floats_as_ints(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    return value


def _reject_nul(raw: Any) -> bytes | None:
    """Refuse text holding NUL characters, which PostgreSQL cannot store (a 500 otherwise).

    Re-encoding is a fast C pass; the walk for the path runs only when one is there. Returns the
    encoded input for the other checks on its text (``None`` when it is not JSON-shaped).
    """
    try:
        encoded = msgspec.json.encode(raw)
    except (TypeError, msgspec.EncodeError):
        return None  # not JSON-shaped: validation will say so
    if b"\\u0000" in encoded:  # also matches an escaped backslash before "u0000": confirm
        path = _nul_path(raw, [])
        if path is not None:
            raise validation_error(
                [{"message": "Text must not contain NUL characters", "path": path}]
            )
    return encoded


def database_busy() -> ServiceUnavailable:
    """The answer when no database connection freed up within the pool timeout: 503, retry."""
    return ServiceUnavailable(
        "The server is busy: try again shortly", headers={"Retry-After": RETRY_AFTER_BUSY}
    )


def _connection_lost(error: BaseException) -> bool:
    """Whether ``error`` is the database connection dying under the call (the pool drops it)."""
    return isinstance(error, DBAPIError) and error.connection_invalidated


@dataclass(frozen=True, slots=True)
class GuardedRule:
    """A rule tied to individual resources, with what the dispatcher needs to enforce it."""

    rule_id: str
    level: Level
    instance: InstanceAccess


@dataclass(frozen=True, slots=True)
class ProcedurePlan:
    """Everything about a procedure's access the dispatcher needs, computed once."""

    procedure: Procedure
    handler: Any
    #: Qualified ids of the rules every caller must hold globally.
    global_rules: tuple[str, ...]
    #: Rules checked against ids found in the input, before the handler runs.
    prechecks: tuple[GuardedRule, ...]
    #: Rules filtering ids found in the output, after the handler ran.
    filters: tuple[GuardedRule, ...]

    @classmethod
    def build(cls, plugin_id: str, procedure: Procedure, handler: Any) -> ProcedurePlan:
        global_rules: list[str] = []
        prechecks: list[GuardedRule] = []
        filters: list[GuardedRule] = []
        for rule in procedure.rules:
            rule_id = rule.qualified_id(plugin_id)
            instance = procedure.instance_access(rule)
            if instance is None:
                global_rules.append(rule_id)
            elif instance.is_precheck:
                prechecks.append(GuardedRule(rule_id, Level(rule.level), instance))
            else:
                filters.append(GuardedRule(rule_id, Level(rule.level), instance))
        return cls(procedure, handler, tuple(global_rules), tuple(prechecks), tuple(filters))


@dataclass(slots=True)
class PreparedCall:
    name: str
    plan: ProcedurePlan
    input: Any


@dataclass(slots=True)
class CallResult:
    """What a protocol adapter gets back for a successful call or batch."""

    outputs: dict[str, Any]
    response: ResponseExtras
    principal: Principal


class Dispatcher:
    """Finds, authorizes, validates, runs and filters procedure calls for a :class:`Host`."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self._plans: dict[tuple[str, str], ProcedurePlan] = {}

    # -- entry points -------------------------------------------------------------------------

    def plugin(self, plugin_id: str) -> LoadedPlugin:
        """The loaded plugin ``plugin_id``, or NOT_FOUND / SERVICE_UNAVAILABLE."""
        loaded = self.host.plugins.get(plugin_id)
        if loaded is None or loaded.status == "disabled":
            raise NotFound(f"Plugin not found: {plugin_id}")
        if loaded.status != "active":
            raise ServiceUnavailable(f"Plugin {plugin_id} is unavailable")
        return loaded

    async def authenticate(self, request: RequestInfo, uow: UnitOfWork) -> Principal:
        """The principal of ``request``: authenticated, or anonymous when it has no credentials.

        A failing backend fails the call as a failing handler does, never turning the caller into
        a guest: a lost connection or a busy pool is a 503 (see :meth:`_run_unit`), anything else
        a 500 from the protocol adapter.
        """
        auth = self.host.auth
        principal = await auth.authenticate(request, uow=uow)
        return principal if principal is not None else await auth.anonymous(uow=uow)

    async def dispatch(
        self,
        plugin_id: str,
        calls: Sequence[tuple[str, Any]],
        request: RequestInfo,
        *,
        request_id: str | None = None,
        principal: Principal | None = None,
        client: ClientWatch | None = None,
    ) -> CallResult:
        """Run a call or an atomic batch for a protocol adapter. Raises :class:`RpcError`.

        ``calls`` are (procedure name, raw JSON input) pairs in request order. ``principal``
        skips authentication for a caller the adapter already knows (tests, in-process tools).
        ``client``: the HTTP client, so that a call whose client hung up while it queued for the
        database is dropped before it runs (:class:`~checkstack_core.db.ClientGone`).
        """
        loaded = self.plugin(plugin_id)
        if not calls:
            raise BadRequest("Empty batch: name at least one procedure")
        if len(calls) > MAX_BATCH:
            raise PayloadTooLarge(f"Batch of {len(calls)} calls exceeds the limit of {MAX_BATCH}")
        # One unit of work (one connection) serves authentication, checks and handlers alike.
        # Only a batch of nothing but queries may skip the transaction.
        uow = UnitOfWork(self.host, read_only=self._all_queries(loaded, calls))
        try:
            async with self.host.db.turn(client):
                return await self._run_unit(loaded, calls, request, request_id, principal, uow)
        except PoolTimeout:
            raise database_busy() from None

    async def _run_unit(
        self,
        loaded: LoadedPlugin,
        calls: Sequence[tuple[str, Any]],
        request: RequestInfo,
        request_id: str | None,
        principal: Principal | None,
        uow: UnitOfWork,
    ) -> CallResult:
        """Authenticate, check every call, run them in order and commit: all or nothing."""
        response = ResponseExtras()
        outputs: dict[str, Any] = {}
        try:
            if principal is None:
                principal = await self.authenticate(request, uow)
            context = partial(
                Context,
                self.host,
                loaded.id,
                principal,
                uow,
                request=request,
                request_id=request_id,
                response=response,
            )
            prepared = [await self._prepare(loaded, principal, n, raw, context) for n, raw in calls]
            for call in prepared:
                outputs[call.name] = await self._run(context(), call)
            await self._flush(uow, prepared[-1].name)
            await uow.commit()
        except DBAPIError as exc:
            await self._discard(uow)
            if _connection_lost(exc):
                # The database went away under this call (restart, failover): nothing was
                # committed, and the pool has dropped the connection, so a retry is safe.
                logger.warning("Database connection lost", extra={"request_id": request_id})
                raise database_busy() from None
            raise
        except BaseException:
            await self._discard(uow)
            raise
        await uow.close()
        return CallResult(outputs, response, principal)

    @staticmethod
    def _all_queries(loaded: LoadedPlugin, calls: Sequence[tuple[str, Any]]) -> bool:
        by_name = loaded.contract.by_name if loaded.contract else {}
        # An unknown name fails later (after authentication, as the protocol orders it).
        return all(by_name[name].kind == "query" for name, _raw in calls if name in by_name)

    @staticmethod
    async def _discard(uow: UnitOfWork) -> None:
        try:
            await uow.rollback()
        finally:
            await uow.close()

    async def call_in_process(
        self,
        plugin_id: str,
        name: str,
        input: Any,
        *,
        principal: Principal,
        uow: UnitOfWork,
        parent: Context | None = None,
    ) -> Any:
        """Run one procedure for another plugin, inside the caller's transaction."""
        loaded = self.plugin(plugin_id)
        raw = msgspec.to_builtins(input) if input is not None else None

        context = partial(
            Context,
            self.host,
            plugin_id,
            principal,
            uow,
            request=parent.request if parent else None,
            request_id=parent.request_id if parent else None,
            response=parent.response if parent else None,
        )
        call = await self._prepare(loaded, principal, name, raw, context)
        return await self._run(context(), call, encode=False)

    # -- the steps ----------------------------------------------------------------------------

    def _plan(self, loaded: LoadedPlugin, name: str) -> ProcedurePlan:
        key = (loaded.id, name)
        plan = self._plans.get(key)
        if plan is None:
            procedure = loaded.contract.by_name.get(name) if loaded.contract else None
            if procedure is None:
                raise NotFound(f"Procedure not found: {loaded.id}.{name}", procedure=name)
            plan = self._plans[key] = ProcedurePlan.build(
                loaded.id, procedure, loaded.handlers[name]
            )
        return plan

    async def _prepare(
        self,
        loaded: LoadedPlugin,
        principal: Principal,
        name: str,
        raw: Any,
        context: Callable[[], Context],
    ) -> PreparedCall:
        plan = self._plan(loaded, name)
        try:
            self._authorize(plan, principal)
            value = self._validate(plan.procedure, raw)
            if plan.prechecks and principal.kind is not PrincipalKind.SERVICE:
                await self._precheck(plan, principal, raw, value, context)
        except RpcError as error:
            error.procedure = name
            raise
        return PreparedCall(name, plan, value)

    @staticmethod
    def _authorize(plan: ProcedurePlan, principal: Principal) -> None:
        caller = plan.procedure.caller
        if caller is CallerKind.ANONYMOUS:
            return
        kind = principal.kind
        if caller is not CallerKind.PUBLIC and kind is PrincipalKind.ANONYMOUS:
            raise Unauthorized("Authentication required")
        if caller is CallerKind.USER and kind is not PrincipalKind.USER:
            raise Forbidden("This procedure is for users only")
        if caller is CallerKind.SERVICE and kind is not PrincipalKind.SERVICE:
            raise Forbidden("This procedure is for services only")
        # Filtered and pre-checked rules are decided per resource (a team grant may admit a caller
        # without the global rule); every other rule must be held globally.
        for rule_id in plan.global_rules:
            if not principal.holds(rule_id):
                raise missing_access(principal, rule_id)
        if kind is PrincipalKind.ANONYMOUS:
            # Guests belong to no team, so no grant can admit them: a filtered rule they lack
            # would only ever yield an empty answer. Say why instead.
            for guarded in plan.filters:
                if not principal.holds(guarded.rule_id):
                    raise missing_access(principal, guarded.rule_id)

    @staticmethod
    def _validate(procedure: Procedure, raw: Any) -> Any:
        if procedure.input is None:
            if raw not in (None, {}):
                raise validation_error([{"message": "This procedure takes no input", "path": []}])
            return None
        encoded = _reject_nul(raw) if raw is not None else None
        try:
            value = msgspec.convert({} if raw is None else raw, procedure.input)
        except msgspec.ValidationError as error:
            # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), which msgspec
            # refuses for an int field. Only a failing input pays for the second try.
            whole = _whole_floats_as_ints(raw)
            if whole is raw:
                raise validation_error(validation_issues(error)) from None
            try:
                value = msgspec.convert(whole, procedure.input)
            except msgspec.ValidationError as again:
                raise validation_error(validation_issues(again)) from None
        # Times a handler could not convert to UTC or compute with (year 1 or 9999).
        issues = datetime_issues(encoded, value) if encoded is not None else []
        if issues:
            raise validation_error(issues)
        return value

    async def _precheck(
        self,
        plan: ProcedurePlan,
        principal: Principal,
        raw: Any,
        value: Any,
        context: Callable[[], Context],
    ) -> None:
        for guarded in plan.prechecks:
            has_global = principal.holds(guarded.rule_id)
            resolve = guarded.instance.resolve
            if resolve is not None:
                ids = list(dict.fromkeys(str(i) for i in await resolve(context(), value)))
            else:
                ids = self._input_ids(guarded.instance, raw)
            if not ids:
                # No resource named in the input (e.g. create): the rule is checked globally.
                if not has_global:
                    raise missing_access(principal, guarded.rule_id)
                continue
            resource_type = guarded.instance.resource_type
            admitted = await self.host.auth.admitted_ids(
                principal, resource_type, ids, guarded.level, has_global, uow=context().uow
            )
            if not has_global and not admitted:
                # Neither the rule nor a grant on any of the resources: the honest answer is the
                # missing rule (401 for guests), not a per-resource denial.
                raise missing_access(principal, guarded.rule_id)
            for resource_id in ids:
                if resource_id not in admitted:
                    if resolve is not None and resource_id not in _strings_in(raw):
                        # The id came from stored data, not from the caller: naming it would
                        # disclose a resource the caller may not even read.
                        raise Forbidden(f"Access denied to a {resource_type} this call affects")
                    raise Forbidden(f"Access denied to {resource_type} {resource_id}")

    @staticmethod
    def _input_ids(instance: InstanceAccess, raw: Any) -> list[str]:
        if instance.id_param:
            value = _lookup(raw, instance.id_param)
            return [str(value)] if isinstance(value, str | int) and value != "" else []
        value = _lookup(raw, instance.ids_param or "")
        if isinstance(value, list):
            return list(dict.fromkeys(str(v) for v in value if isinstance(v, str | int)))
        return []

    async def _run(self, ctx: Context, call: PreparedCall, *, encode: bool = True) -> Any:
        plan = call.plan
        try:
            output = self._check_output(plan.procedure, await plan.handler(ctx, call.input))
            if not plan.filters or ctx.principal.kind is PrincipalKind.SERVICE:
                return output
            filtered = await self._filter_output(ctx, plan, output)
            # In-process callers get the typed output back, filtered like an HTTP caller's.
            return filtered if encode else msgspec.convert(filtered, plan.procedure.output)
        except RpcError as error:
            error.procedure = error.procedure or call.name
            raise
        except IntegrityError as exc:
            raise Conflict("The change conflicts with existing data", procedure=call.name) from exc
        except PoolTimeout:
            raise
        except Exception as exc:
            if _connection_lost(exc):
                raise
            logger.exception(
                "Procedure %s.%s failed",
                ctx.plugin_id,
                call.name,
                extra={"request_id": ctx.request_id},
            )
            raise InternalServerError(procedure=call.name) from exc

    @staticmethod
    def _check_output(procedure: Procedure, output: Any) -> Any:
        expected = procedure.output
        if expected is None:
            return None
        if isinstance(expected, type) and isinstance(output, expected):
            return output
        try:
            return msgspec.convert(output, expected, from_attributes=True)
        except msgspec.ValidationError as exc:
            raise InternalServerError("Output validation failed") from exc

    async def _filter_output(self, ctx: Context, plan: ProcedurePlan, output: Any) -> Any:
        principal = ctx.principal
        data = msgspec.to_builtins(output)
        for guarded in plan.filters:
            instance = guarded.instance
            key = instance.list_key or instance.record_key or ""
            container = data.get(key) if isinstance(data, dict) else None
            if instance.list_key and isinstance(container, list):
                ids = [str(item.get("id")) for item in container if isinstance(item, dict)]
            elif instance.record_key and isinstance(container, dict):
                ids = list(container)
            else:
                raise InternalServerError(
                    f"Invalid response shape for filtered procedure: expected {key!r}"
                )
            admitted = (
                await self.host.auth.admitted_ids(
                    principal,
                    instance.resource_type,
                    ids,
                    guarded.level,
                    principal.holds(guarded.rule_id),
                    uow=ctx.uow,
                )
                if ids
                else set()
            )
            if isinstance(container, list):
                data[key] = [
                    item
                    for item in container
                    if isinstance(item, dict) and str(item.get("id")) in admitted
                ]
            else:
                data[key] = {k: v for k, v in container.items() if k in admitted}
        return data

    @staticmethod
    async def _flush(uow: UnitOfWork, last: str) -> None:
        """Flush inside the batch so constraint violations surface as CONFLICT, not a 500."""
        if not uow.has_session:
            return
        try:
            await uow.session.flush()
        except IntegrityError as exc:
            raise Conflict("The change conflicts with existing data", procedure=last) from exc
