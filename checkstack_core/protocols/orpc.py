"""The oRPC v1 RPC protocol (SPEC §4.2): what the npm ``@orpc/client`` ``RPCLink`` speaks.

- ``POST /api/{pluginId}/{procedure}`` with the envelope ``{"json": <input>, "meta": [...]}``
  (``{}`` or an empty body for a procedure without input); ``GET`` with ``?data=<envelope>`` for
  queries only (a mutation over GET is ``METHOD_NOT_SUPPORTED``).
- Success: ``200 {"json": <output>, "meta": [[1, ...path], ...]}`` (type code 1 marks each
  datetime of the output; ``{}`` for a procedure without output).
- Errors: the status of the code and exactly
  ``{"json": {"defined": false, "code", "status", "message", "data"}, "meta": []}``; the client
  rejects any other key in ``json`` as a malformed error.
- Batch plugin: a request carrying ``x-orpc-batch: buffered|streaming`` (the client posts to
  ``<first call's URL>/__batch__``) holds an array of ``{url, body, headers?, method?}`` items;
  the answer is ``207`` with ``{index, status, headers?, body}`` per item, as one JSON array
  (buffered) or as server-sent events (streaming). Each item is its own call and transaction.
- ``GET /api/contract.json`` and ``GET /api/{pluginId}/contract.json``: the contracts in oRPC's
  minified contract-router form (``minifyContractRouter``), for typed TypeScript clients.

Every call goes through :class:`~checkstack_core.dispatch.Dispatcher` like the documented
protocol's, so authentication, authorization, validation, transactions and errors are the same;
this module only translates the wire format (the v1 serializer lives in the functions below).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import msgspec.inspect as mi
from litestar import HttpMethod, Request, Response, get, route
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import Stream

from ..auth import RequestInfo
from ..context import ResponseExtras
from ..contract import CallerKind, Contract, Kind
from ..db import ClientGone
from ..dispatch import Dispatcher
from ..errors import (
    BadRequest,
    InternalServerError,
    MethodNotSupported,
    NotFound,
    PayloadTooLarge,
    RpcError,
)
from ..observability import current_request_id
from .common import (
    Departure,
    apply_extras,
    check_cookies,
    check_header_values,
    check_request,
    decode_json,
    litestar_cookie,
    log_unexpected,
    parse_cookies,
    query_value,
    read_body,
    request_info,
)

logger = logging.getLogger("checkstack.protocols.orpc")

#: Most items one batch request may carry (oRPC's ``BatchHandlerPlugin`` default, and the
#: ``BatchLinkPlugin`` default, which splits larger batches before sending them).
BATCH_MAX_SIZE = 10
#: How long a streaming batch may stay silent before a keep-alive comment (oRPC's interval).
KEEPALIVE_SECONDS = 5.0
#: The batch path suffix the client appends to the first call's URL.
BATCH_SUFFIX = "__batch__"

# Type codes of oRPC v1's ``StandardRPCJsonSerializer`` (``meta`` items are ``[code, ...path]``).
BIGINT, DATE, NAN, UNDEFINED, URL, REGEXP, SET, MAP = range(8)

_JSON = "application/json"
# Every method, so that each one the protocol refuses gets its 405 with the path's own Allow
# (Litestar would otherwise answer OPTIONS itself, allowing every method of the route).
_ALL_METHODS = [
    HttpMethod.GET,
    HttpMethod.POST,
    HttpMethod.PUT,
    HttpMethod.PATCH,
    HttpMethod.DELETE,
    HttpMethod.OPTIONS,
    HttpMethod.HEAD,
]
_encoder = msgspec.json.Encoder()
_MISSING: Any = object()

# -- serializer: input envelope -------------------------------------------------------------


def parse_json(data: bytes) -> Any:
    """Decode JSON text; an empty text is ``None`` (oRPC's ``parseEmptyableJSON``). Hostile
    text (too deep, not UTF-8, malformed) is BAD_REQUEST (:func:`.common.decode_json`)."""
    if not data.strip():
        return None
    return decode_json(data)


def decode_envelope(document: Any) -> Any:
    """The raw input of an oRPC envelope ``{"json": ..., "meta": [...]}`` (``None`` when absent)."""
    if document is None:
        return None
    if not isinstance(document, dict):
        raise BadRequest(
            'The body must be an oRPC envelope {"json": <input>, "meta": [...]}, '
            f"got a JSON {type(document).__name__}"
        )
    unexpected = sorted(set(document) - {"json", "meta"})
    if unexpected:
        # A raw input posted without the envelope would otherwise run with no input at all.
        raise BadRequest(
            f'Unexpected key {unexpected[0]!r} in the oRPC envelope: send {{"json": <input>, '
            '"meta": [...]}'
        )
    value = document.get("json")
    meta = document.get("meta")
    if meta is None:
        return value
    if not isinstance(meta, list):
        raise BadRequest("Malformed oRPC meta: expected a list of [type, ...path] items")
    return apply_meta(value, meta)


def apply_meta(value: Any, meta: list[Any]) -> Any:
    """Revive the values ``meta`` marks, in order (a Set's or Map's items come before it).

    Dates stay ISO strings (msgspec converts them into ``datetime`` fields), bigints become
    ints, NaN a float, Maps dicts (with string keys only: the input is JSON, whose object keys
    are strings); an unknown type code, a path that does not exist or a Map key that is not a
    string is ``BAD_REQUEST``.
    """
    root = [value]
    for item in meta:
        if not isinstance(item, list) or not item or type(item[0]) is not int:
            raise BadRequest(f"Malformed oRPC meta item {item!r}: expected [type, ...path]")
        code, path = item[0], item[1:]
        parent: Any = root
        key: str | int = 0
        for segment in path:
            container = parent[key]
            in_object = isinstance(container, dict) and isinstance(segment, str)
            in_array = isinstance(container, list) and type(segment) is int
            if (in_object and segment in container) or (in_array and 0 <= segment < len(container)):
                parent, key = container, segment
            else:
                raise BadRequest(f"Malformed oRPC meta: path {path!r} does not exist in the input")
        parent[key] = _revive(code, parent[key], path)
    return root[0]


def _revive(code: int, value: Any, path: list[Any]) -> Any:
    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise BadRequest(f"Malformed oRPC meta: type {code} at {path!r} expects {what}")

    if code == BIGINT:
        expect(isinstance(value, str), "a string")
        try:
            return int(value)
        except ValueError:
            raise BadRequest(
                f"Malformed oRPC meta: type {code} at {path!r} expects a decimal integer string"
            ) from None
    if code == DATE:
        expect(value is None or isinstance(value, str), "a string or null")
        return value
    if code in (NAN, UNDEFINED):
        expect(value is None, "null")
        return float("nan") if code == NAN else None
    if code in (URL, REGEXP):
        expect(isinstance(value, str), "a string")
        return value
    if code == SET:
        expect(isinstance(value, list), "an array")
        return value
    if code == MAP:
        expect(
            isinstance(value, list)
            and all(
                isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
                for entry in value
            ),
            "an array of [key, value] pairs with string keys",
        )
        return {entry[0]: entry[1] for entry in value}
    raise BadRequest(f"Unsupported oRPC meta type {code} at {path!r}")


# -- serializer: output envelope ------------------------------------------------------------


#: Appends ``[1, *path]`` to ``found`` for each datetime of ``value``. ``path`` is one list the
#: walk appends to and pops from (cheaper than a new tuple per step).
Walker = Callable[[Any, list[Any], list[list[Any]]], None]


class DatePlan:
    """Finds the datetimes of one output type's values, for ``meta`` (type code 1).

    Compiled once per type from ``msgspec.inspect`` into one small function per part of the type
    that can hold a datetime (the other parts are never visited). The walk follows the type
    alongside the value, so it works both on Structs and on already encoded builtins (filtered
    outputs, where dates are strings); ``Any`` parts are inspected value by value.
    """

    def __init__(self, info: mi.Type) -> None:
        self._holds = _holding_nodes(info)
        self._compiled: dict[int, Walker] = {}
        self._walker = self._compile(info) if id(info) in self._holds else None

    @property
    def needed(self) -> bool:
        """False when no value of the type can hold a datetime (the walk is skipped)."""
        return self._walker is not None

    def meta(self, value: Any) -> list[list[Any]]:
        """The ``[1, ...path]`` items of ``value``."""
        found: list[list[Any]] = []
        if self._walker is not None and value is not None:
            self._walker(value, [], found)
        return found

    def _compile(self, info: Any) -> Walker:
        compiled = self._compiled.get(id(info))
        if compiled is not None:
            return compiled
        late: list[Walker] = []

        def recursive(value: Any, path: list[Any], found: list[list[Any]]) -> None:
            late[0](value, path, found)

        self._compiled[id(info)] = recursive  # what a Struct reaching itself calls
        walker = self._build(info)
        late.append(walker)
        self._compiled[id(info)] = walker
        return walker

    def _child(self, info: Any) -> Walker | None:
        return self._compile(info) if id(info) in self._holds else None

    def _build(self, info: Any) -> Walker:
        if isinstance(info, mi.DateTimeType):
            return _date
        if isinstance(info, mi.AnyType):
            return _walk_any
        if isinstance(info, mi.Metadata):
            return self._compile(info.type)
        if isinstance(
            info, mi.StructType | mi.DataclassType | mi.TypedDictType | mi.NamedTupleType
        ):
            return self._fields(info)
        if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            return _items(self._compile(info.item_type))
        if isinstance(info, mi.TupleType):
            return _positions(
                [(i, c) for i, t in enumerate(info.item_types) if (c := self._child(t))]
            )
        if isinstance(info, mi.DictType):
            return _values(self._compile(info.value_type))
        if isinstance(info, mi.UnionType):
            return self._union(info)
        return _nothing

    def _fields(self, info: Any) -> Walker:
        array_like = getattr(info, "array_like", False) or isinstance(info, mi.NamedTupleType)
        offset = 1 if getattr(info, "array_like", False) and info.tag is not None else 0
        fields = [
            (fld.name, getattr(fld, "encode_name", fld.name), index + offset, child)
            for index, fld in enumerate(info.fields)
            if (child := self._child(fld.type)) is not None
        ]
        by_position = [(index, child) for _name, _wire, index, child in fields]
        unset = msgspec.UNSET

        def walk(value: Any, path: list[Any], found: list[list[Any]]) -> None:
            if isinstance(value, dict):  # encoded builtins, or a TypedDict
                for _name, wire, _index, child in fields:
                    item = value.get(wire)
                    if item is not None:
                        path.append(wire)
                        child(item, path, found)
                        path.pop()
            elif isinstance(value, list | tuple):  # array-like encoded, or a NamedTuple
                _walk_positions(by_position, value, path, found)
            else:
                for name, wire, index, child in fields:
                    item = getattr(value, name, None)
                    if item is not None and item is not unset:
                        path.append(index if array_like else wire)
                        child(item, path, found)
                        path.pop()

        return walk

    def _union(self, info: mi.UnionType) -> Walker:
        types = [t.type if isinstance(t, mi.Metadata) else t for t in info.types]
        # An encoded datetime is a string: only unambiguous when no member takes strings.
        strings_are_dates = any(isinstance(t, mi.DateTimeType) for t in types) and not any(
            isinstance(t, mi.StrType | mi.AnyType) for t in types
        )
        options = [
            (t, child)
            for t in types
            if not isinstance(t, mi.DateTimeType) and (child := self._child(t)) is not None
        ]

        def walk(value: Any, path: list[Any], found: list[list[Any]]) -> None:
            if isinstance(value, dt.datetime) or (strings_are_dates and isinstance(value, str)):
                found.append([DATE, *path])
                return
            for option, child in options:
                if _matches(option, value):
                    child(value, path, found)
                    return

        return walk


def _nothing(value: Any, path: list[Any], found: list[list[Any]]) -> None:
    return None


def _date(value: Any, path: list[Any], found: list[list[Any]]) -> None:
    if isinstance(value, dt.datetime | str):
        found.append([DATE, *path])


def _items(child: Walker) -> Walker:
    if child is _date:  # the common list[datetime]: no call per item

        def dates(value: Any, path: list[Any], found: list[list[Any]]) -> None:
            found.extend(
                [DATE, *path, index]
                for index, item in enumerate(value)
                if isinstance(item, dt.datetime | str)
            )

        return dates

    def walk(value: Any, path: list[Any], found: list[list[Any]]) -> None:
        path.append(0)
        for index, item in enumerate(value):
            if item is not None:
                path[-1] = index
                child(item, path, found)
        path.pop()

    return walk


def _walk_positions(
    children: list[tuple[int, Walker]], value: Any, path: list[Any], found: list[list[Any]]
) -> None:
    for index, child in children:
        if index < len(value) and (item := value[index]) is not None:
            path.append(index)
            child(item, path, found)
            path.pop()


def _positions(children: list[tuple[int, Walker]]) -> Walker:
    def walk(value: Any, path: list[Any], found: list[list[Any]]) -> None:
        _walk_positions(children, value, path, found)

    return walk


def _values(child: Walker) -> Walker:
    def walk(value: Any, path: list[Any], found: list[list[Any]]) -> None:
        if not isinstance(value, Mapping):
            return
        for key, item in value.items():
            if item is not None:
                path.append(key if isinstance(key, str) else _json_key(key))
                child(item, path, found)
                path.pop()

    return walk


def _matches(info: mi.Type, value: Any) -> bool:
    """Whether ``value`` (a Struct or its encoded builtins) is of union member ``info``."""
    if isinstance(info, mi.StructType):
        if isinstance(value, msgspec.Struct):
            return isinstance(value, info.cls)
        if isinstance(value, dict):
            return info.tag_field is None or value.get(info.tag_field) == info.tag
        return isinstance(value, list) and info.array_like
    if isinstance(info, mi.DataclassType | mi.TypedDictType | mi.DictType):
        return isinstance(value, dict) or (
            isinstance(info, mi.DataclassType) and isinstance(value, info.cls)
        )
    if isinstance(
        info,
        mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType | mi.TupleType,
    ):
        return isinstance(value, list | tuple | set | frozenset)
    return isinstance(info, mi.AnyType)


def _walk_any(value: Any, path: list[Any], found: list[list[Any]]) -> None:
    if isinstance(value, dt.datetime):
        found.append([DATE, *path])
    elif isinstance(value, dict):
        for key, item in value.items():
            path.append(key if isinstance(key, str) else _json_key(key))
            _walk_any(item, path, found)
            path.pop()
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            path.append(index)
            _walk_any(item, path, found)
            path.pop()
    elif isinstance(value, msgspec.Struct):
        config = value.__struct_config__
        names = value.__struct_fields__
        encoded = getattr(value, "__struct_encode_fields__", names)
        offset = 1 if config.array_like and config.tag is not None else 0
        for index, (name, wire) in enumerate(zip(names, encoded, strict=True)):
            path.append(index + offset if config.array_like else wire)
            _walk_any(getattr(value, name), path, found)
            path.pop()


def _json_key(key: Any) -> str:
    """The JSON object key msgspec writes for a dict key."""
    if isinstance(key, str):
        return key
    builtin = msgspec.to_builtins(key)
    return builtin if isinstance(builtin, str) else str(builtin)


def _children(info: Any) -> list[Any]:
    if isinstance(info, mi.Metadata):
        return [info.type]
    if isinstance(info, mi.StructType | mi.DataclassType | mi.TypedDictType | mi.NamedTupleType):
        return [f.type for f in info.fields]
    if isinstance(info, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return [info.item_type]
    if isinstance(info, mi.TupleType):
        return list(info.item_types)
    if isinstance(info, mi.DictType):
        return [info.value_type]
    if isinstance(info, mi.UnionType):
        return list(info.types)
    return []


def _holding_nodes(root: mi.Type) -> set[int]:
    """Ids of the type nodes from which a datetime (or an ``Any``) is reachable."""
    nodes: dict[int, Any] = {}
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if id(node) in nodes:
            continue
        nodes[id(node)] = node
        stack.extend(_children(node))
    edges = {key: [id(child) for child in _children(node)] for key, node in nodes.items()}
    holds = {key for key, node in nodes.items() if isinstance(node, mi.DateTimeType | mi.AnyType)}
    changed = True
    while changed:  # a fixpoint, so recursive Structs are handled
        changed = False
        for key, children in edges.items():
            if key not in holds and any(child in holds for child in children):
                holds.add(key)
                changed = True
    return holds


_plans: dict[Any, DatePlan | None] = {}


def date_plan(output_type: Any) -> DatePlan | None:
    """The (cached) :class:`DatePlan` of an output type; ``None`` when it never holds a date."""
    if output_type is None:
        return None
    try:
        return _plans[output_type]
    except KeyError:
        pass
    except TypeError:  # unhashable type annotation: compute without caching
        return _compile_plan(output_type)
    plan = _plans[output_type] = _compile_plan(output_type)
    return plan


def _compile_plan(output_type: Any) -> DatePlan | None:
    plan = DatePlan(mi.type_info(output_type))
    return plan if plan.needed else None


def success_envelope(output_type: Any, output: Any) -> dict[str, Any]:
    """``{"json": output, "meta": [...]}``, or ``{}`` for a procedure without output."""
    if output is None:
        return {}
    plan = date_plan(output_type)
    return {"json": output, "meta": plan.meta(output) if plan is not None else []}


def error_envelope(error: RpcError) -> dict[str, Any]:
    """The oRPC error body: ``json`` holds exactly the keys the client accepts."""
    return {
        "json": {
            "defined": False,
            "code": error.code,
            "status": error.status,
            "message": error.message,
            "data": error.data if error.data is not None else {},
        },
        "meta": [],
    }


def error_response(error: RpcError) -> Response[bytes]:
    """An oRPC error response with the status of its code (and the error's extra headers)."""
    return Response(
        content=_encoder.encode(error_envelope(error)),
        status_code=error.status,
        media_type=_JSON,
        headers=error.headers,
    )


def _as_rpc_error(exc: HTTPException) -> RpcError:
    """Litestar's own body-size / disconnect errors, as an :class:`RpcError`."""
    if exc.status_code == 413:
        return PayloadTooLarge("Request body exceeds the limit")
    if exc.status_code < 500:
        return BadRequest(str(exc.detail))
    return InternalServerError()


# -- one call -------------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    """The outcome of one call: the status, the envelope and what the handler added."""

    status: int
    body: dict[str, Any]
    extras: ResponseExtras = field(default_factory=ResponseExtras)


async def run_call(
    dispatcher: Dispatcher,
    method: str,
    plugin_id: str,
    name: str,
    document: Callable[[], Any],
    info: RequestInfo,
    request_id: str | None,
    client: Departure | None = None,
) -> Reply:
    """Run one oRPC call; never raises. ``document`` gives the parsed envelope (or raises).

    ``client``: see :meth:`Dispatcher.dispatch`; a call dropped because its client hung up gets
    a 499 reply that nobody reads (nginx's "client closed request")."""
    try:
        loaded = dispatcher.plugin(plugin_id)
        procedure = loaded.contract.by_name.get(name) if loaded.contract else None
        # A 405 says what the path does accept (RFC 9110 §15.5.6): GET only for queries.
        mutation = procedure is not None and procedure.kind is not Kind.QUERY
        allow = "POST" if mutation else "GET, POST"
        if method not in ("GET", "POST"):
            raise MethodNotSupported(
                f"Method {method} is not supported: use POST (or GET)", headers={"Allow": allow}
            )
        if method == "GET" and allow == "POST":
            raise MethodNotSupported(
                f"{plugin_id}.{name} is a mutation: call it with POST", headers={"Allow": allow}
            )
        raw = decode_envelope(document())
        result = await dispatcher.dispatch(
            plugin_id, [(name, raw)], info, request_id=request_id, client=client
        )
    except ClientGone:
        return Reply(499, {})
    except RpcError as error:
        return Reply(
            error.status, error_envelope(error), ResponseExtras(headers=dict(error.headers or {}))
        )
    except Exception as exc:
        log_unexpected(exc)
        return Reply(500, error_envelope(InternalServerError()))
    assert procedure is not None  # dispatch found it
    return Reply(200, success_envelope(procedure.output, result.outputs[name]), result.response)


async def serve_call(
    request: Request[Any, Any, Any],
    dispatcher: Dispatcher,
    plugin_id: str,
    name: str,
    limit: int,
) -> Response[bytes]:
    """Answer one oRPC request (``GET ?data=`` or ``POST`` envelope); never raises."""
    method = request.method.upper()
    body = b""
    try:
        dispatcher.plugin(plugin_id)
        # Only a POST can change state: a GET may only run a query, any other method is refused
        # (see run_call).
        check_request(
            request.scope,
            request_info(request),
            dispatcher.host.settings.base_url,
            writes=method == "POST",
        )
        if method == "POST":
            body = await read_body(request, limit)
    except RpcError as error:
        return error_response(error)
    except HTTPException as exc:
        return error_response(_as_rpc_error(exc))

    def document() -> Any:
        if method == "GET":
            return parse_json(query_value(request.scope["query_string"], "data"))
        return parse_json(body)

    client = Departure(request.receive)
    try:
        reply = await run_call(
            dispatcher,
            method,
            plugin_id,
            name,
            document,
            request_info(request),
            current_request_id(),
            client,
        )
    finally:
        client.close()
    response = Response(
        content=_encoder.encode(reply.body), status_code=reply.status, media_type=_JSON
    )
    return apply_extras(response, reply.extras)


# -- batch ----------------------------------------------------------------------------------


@dataclass(slots=True)
class BatchItem:
    """One parsed batch item: where it goes and what it carries."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any


def _header_value(index: int, name: str, value: Any) -> str:
    """One item header as text: a string, or a list of strings (a repeated header)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(
            f"Invalid batch request: item {index} header {name!r} must be a string "
            "or a list of strings"
        )
    if name == "authorization" and len(value) > 1:
        raise BadRequest(
            f"Invalid batch request: item {index} has more than one Authorization header"
        )
    return ("; " if name == "cookie" else ", ").join(value)


def parse_batch(items: Any, method: str) -> list[BatchItem]:
    """The items of a batch body (``BAD_REQUEST`` if it is not an array of ``{url, ...}``)."""
    if not isinstance(items, list):
        raise BadRequest("Invalid batch request: expected a JSON array of {url, body} items")
    if not items:
        raise BadRequest("Empty batch: send at least one item")
    if len(items) > BATCH_MAX_SIZE:
        raise PayloadTooLarge(
            f"Batch of {len(items)} requests exceeds the limit of {BATCH_MAX_SIZE}"
        )
    parsed: list[BatchItem] = []
    for index, item in enumerate(items):
        url = item.get("url") if isinstance(item, dict) else None
        item_method = item.get("method", method) if isinstance(item, dict) else None
        if method == "GET" and isinstance(item_method, str) and item_method.upper() != "GET":
            # A GET must never change state, whatever its items say.
            raise BadRequest(
                f"Invalid batch request: item {index} asks for {item_method.upper()} "
                "inside a GET batch: send the batch with POST"
            )
        headers = item.get("headers") or {} if isinstance(item, dict) else None
        if not isinstance(url, str) or not isinstance(item_method, str):
            raise BadRequest(
                f"Invalid batch request: item {index} needs a url (and a method name, if any)"
            )
        if not isinstance(headers, dict):
            raise BadRequest(f"Invalid batch request: item {index} has malformed headers")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise BadRequest(f"Invalid batch request: item {index} has a malformed url") from None
        item_headers = {
            k.lower(): _header_value(index, k.lower(), v)
            for k, v in headers.items()
            if v is not None
        }
        # Item headers are JSON: unlike a real header they can carry NUL or a line break, which
        # would reach the database (a session's user agent) and the log.
        check_header_values(item_headers)
        if "cookie" in item_headers:
            check_cookies([item_headers["cookie"]])
        parsed.append(
            BatchItem(
                method=item_method.upper(),
                path=parts.path,
                query=parts.query,
                headers=item_headers,
                body=item.get("body"),
            )
        )
    return parsed


def refuse_cookie_setters(dispatcher: Dispatcher, items: list[BatchItem]) -> None:
    """BAD_REQUEST when an item calls a procedure declared ``sets_cookies`` (login, logout...).

    Inside a batch, a cookie can only travel serialised in the JSON body, where a script can
    read it (HttpOnly would be lost) and where one request could carry many login attempts.
    Checked before any item runs: the whole batch is refused.
    """
    for index, item in enumerate(items):
        target = _route(item.path)
        if target is None:
            continue
        loaded = dispatcher.host.plugins.get(target[0])
        contract = loaded.contract if loaded is not None else None
        procedure = contract.by_name.get(target[1]) if contract is not None else None
        if procedure is not None and procedure.sets_cookies:
            raise BadRequest(
                f"Invalid batch request: item {index} calls {target[0]}.{target[1]}, which "
                "sets cookies and cannot be batched: call it on its own"
            )


def _item_info(base: RequestInfo, headers: dict[str, str]) -> RequestInfo:
    """The request info of a batch item: the batch's headers overridden by the item's."""
    if not headers:
        return base
    merged = {**base.headers, **headers}
    cookies = parse_cookies(headers["cookie"]) if "cookie" in headers else base.cookies
    return RequestInfo(
        headers=merged, cookies=cookies, client_host=base.client_host, secure=base.secure
    )


def _route(path: str) -> tuple[str, str] | None:
    """``(pluginId, procedure)`` of an ``/api/{pluginId}/{procedure}`` path (behind any prefix
    a reverse proxy adds: item URLs are the absolute URLs the client called)."""
    parts = path.rstrip("/").split("/")
    if len(parts) < 4 or parts[-3] != "api" or not parts[-2] or not parts[-1]:
        return None
    return unquote(parts[-2]), unquote(parts[-1])


def _extras_headers(extras: ResponseExtras) -> dict[str, Any]:
    headers: dict[str, Any] = {k.lower(): v for k, v in extras.headers.items()}
    if extras.cookies:
        headers["set-cookie"] = [litestar_cookie(c).to_header(header="") for c in extras.cookies]
    return headers


async def run_item(
    dispatcher: Dispatcher,
    index: int,
    item: BatchItem,
    base: RequestInfo,
    request_id: str | None,
    client: Departure | None = None,
) -> dict[str, Any]:
    """One batch item's result ``{index, status, headers?, body}``; never raises."""
    target = _route(item.path)
    if target is None:
        error = NotFound(f"No procedure matched {item.path}")
        return {"index": index, "status": error.status, "body": error_envelope(error)}

    def document() -> Any:
        if item.method == "GET":
            return parse_json(query_value(item.query, "data"))
        return item.body

    reply = await run_call(
        dispatcher,
        item.method,
        target[0],
        target[1],
        document,
        _item_info(base, item.headers),
        request_id,
        client,
    )
    result: dict[str, Any] = {"index": index, "status": reply.status, "body": reply.body}
    headers = _extras_headers(reply.extras)
    if headers:
        result["headers"] = headers
    return result


async def serve_batch(
    request: Request[Any, Any, Any], dispatcher: Dispatcher, limit: int
) -> Response[Any]:
    """Answer a batch request (``x-orpc-batch`` header) with 207; never raises."""
    mode = "buffered" if request.headers.get("x-orpc-batch") == "buffered" else "streaming"
    method = request.method.upper()
    try:
        if method not in ("GET", "POST"):
            raise MethodNotSupported(
                f"Method {method} is not supported for batches: use POST",
                headers={"Allow": "GET, POST"},
            )
        check_request(
            request.scope,
            request_info(request),
            dispatcher.host.settings.base_url,
            writes=method == "POST",
        )
        if method == "GET":
            document = parse_json(query_value(request.scope["query_string"], "batch"))
        else:
            document = parse_json(await read_body(request, limit))
        items = parse_batch(document, method)
        refuse_cookie_setters(dispatcher, items)
    except RpcError as error:
        return error_response(error)
    except HTTPException as exc:
        return error_response(_as_rpc_error(exc))

    base = request_info(request)
    request_id = current_request_id()
    if mode == "buffered":
        # A streaming batch is cancelled when its client goes; a buffered one watches its client
        # so that items still queued for the database are dropped (see Dispatcher.dispatch).
        client = Departure(request.receive)
        try:
            results = [
                await run_item(dispatcher, index, item, base, request_id, client)
                for index, item in enumerate(items)
            ]
        finally:
            client.close()
        return Response(content=_encoder.encode(results), status_code=207, media_type=_JSON)
    return Stream(
        _stream(dispatcher, items, base, request_id),
        status_code=207,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache"},
    )


async def _stream(
    dispatcher: Dispatcher, items: list[BatchItem], base: RequestInfo, request_id: str | None
) -> AsyncIterator[bytes]:
    """Server-sent events as oRPC frames them: a first comment, one ``message`` event per item
    (as each completes), keep-alive comments while one runs long, then ``done``."""
    yield b": \n\n"
    for index, item in enumerate(items):
        task = asyncio.ensure_future(run_item(dispatcher, index, item, base, request_id))
        try:
            while True:
                done, _pending = await asyncio.wait({task}, timeout=KEEPALIVE_SECONDS)
                if done:
                    break
                yield b": \n\n"
        finally:
            if not task.done():  # the client went away: do not leave the call running
                task.cancel()
        yield b"event: message\ndata: " + _encoder.encode(task.result()) + b"\n\n"
    yield b"event: done\n\n"


# -- contracts ------------------------------------------------------------------------------


def minified_contract(contract: Contract) -> dict[str, Any]:
    """A plugin's contract as oRPC's ``minifyContractRouter`` writes it: one
    ``{"~orpc": {"errorMap", "meta", "route"}}`` per procedure callable over HTTP."""
    router: dict[str, Any] = {}
    for procedure in contract.procedures:
        if procedure.caller is CallerKind.SERVICE:
            continue  # in-process only: not part of the HTTP API
        route_info: dict[str, Any] = {
            "method": "GET" if procedure.kind is Kind.QUERY else "POST",
        }
        if procedure.description:
            route_info["description"] = procedure.description
        router[procedure.name] = {
            "~orpc": {
                "errorMap": {},
                "meta": {
                    "kind": str(procedure.kind),
                    "caller": str(procedure.caller),
                    "rules": [contract.qualified(rule) for rule in procedure.rules],
                },
                "route": route_info,
            }
        }
    return router


def route_handlers(dispatcher: Dispatcher, limit: int) -> list[Any]:
    """The Litestar handlers of the oRPC protocol and its contract documents."""

    @route(
        ["/api/{plugin_id:str}/{procedure:str}", "/api/{plugin_id:str}/{procedure:str}/"],
        http_method=_ALL_METHODS,
        name="orpc",
        include_in_schema=False,
        status_code=200,
    )
    async def orpc_call(
        request: Request[Any, Any, Any], plugin_id: FromPath[str], procedure: FromPath[str]
    ) -> Response[Any]:
        # The batch plugin intercepts any path carrying its header (oRPC's BatchHandlerPlugin).
        if "x-orpc-batch" in request.headers:
            return await serve_batch(request, dispatcher, limit)
        return await serve_call(request, dispatcher, plugin_id, procedure, limit)

    @route(
        "/api/{plugin_id:str}/{procedure:str}/" + BATCH_SUFFIX,
        http_method=_ALL_METHODS,
        name="orpc-batch",
        include_in_schema=False,
        status_code=207,
    )
    async def orpc_batch(request: Request[Any, Any, Any]) -> Response[Any]:
        if "x-orpc-batch" not in request.headers:
            return error_response(
                NotFound("Batch requests need the x-orpc-batch header (buffered or streaming)")
            )
        return await serve_batch(request, dispatcher, limit)

    @get("/api/{plugin_id:str}/contract.json", name="orpc-contract", include_in_schema=False)
    async def plugin_contract(plugin_id: FromPath[str]) -> Response[bytes]:
        try:
            loaded = dispatcher.plugin(plugin_id)
        except RpcError as error:
            return error_response(error)
        router = minified_contract(loaded.contract) if loaded.contract else {}
        return Response(content=_encoder.encode(router), media_type=_JSON)

    @get("/api/contract.json", name="orpc-contracts", include_in_schema=False)
    async def all_contracts() -> Response[bytes]:
        router = {
            loaded.id: minified_contract(loaded.contract)
            for loaded in dispatcher.host.active()
            if loaded.contract is not None
        }
        return Response(content=_encoder.encode(router), media_type=_JSON)

    return [orpc_call, orpc_batch, plugin_contract, all_contracts]
