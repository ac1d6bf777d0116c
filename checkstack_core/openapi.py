"""The OpenAPI 3.1 document of the loaded plugins (``GET /api/openapi.json``) and the interactive
docs page that reads it (``GET /api/docs``), SPEC §4.4.

The document is generated from the contracts of the active plugins (the core's own included) the
first time it is asked for after startup, and cached per host: the contract set never changes once
the host runs. Every input and output type goes through ``msgspec.json.schema_components`` and lands
under ``#/components/schemas``; when two plugins define different types under the same name, each
plugin's component is qualified with its id (``hello.Greeting``).

Both protocols are described:

- the documented protocol, one ``POST /api/{pluginId}/`` operation per plugin (operationId
  ``<pluginId>``) whose body maps procedure names to inputs; the access of each procedure is in
  ``x-checkstack-procedures`` and on the body's property of that procedure;
- the oRPC protocol, ``POST /api/{pluginId}/{procedure}`` per procedure (operationId
  ``<pluginId>.<procedure>``) with the ``{"json", "meta"}`` envelope, and ``GET ?data=`` for queries
  (operationId ``<pluginId>.<procedure>.get``). These operations carry ``x-checkstack-access``:
  ``{"caller", "rules", "kind", "instance"}``.

Procedures whose caller kind is ``service`` are left out: plugins call them in process and every
HTTP caller is refused, so they are no part of the HTTP API.

Access decision: the document and the docs page are served to anyone, with no rule. They describe
only procedure shapes and rule names, never data, and the same rule names appear in the FORBIDDEN
messages every caller can provoke; requiring a rule would only hide the API from the people about to
get a key for it (the TypeScript original required one and in practice only ``*`` could read it).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import logging
import re
import weakref
from collections.abc import Iterable
from importlib import resources
from typing import Any

import msgspec
from litestar import Response, get

from .contract import CallerKind, Contract, InstanceAccess, Kind, Procedure
from .dispatch import MAX_BATCH
from .errors import STATUS_BY_CODE
from .host import Host
from .protocols.orpc import UNDEFINED

logger = logging.getLogger("checkstack.openapi")

OPENAPI_PATH = "/api/openapi.json"
DOCS_PATH = "/api/docs"
#: The cookie the auth plugin's login sets (documented as the session security scheme).
SESSION_COOKIE = "checkstack_session"

_SCHEMAS = "#/components/schemas/"
_RESPONSES = "#/components/responses/"
#: Error statuses every procedure may answer with (409 comes from handlers' conflicts).
_ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 429, 500, 503)
_ERROR_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "Input validation failed"),
    401: ("UNAUTHORIZED", "Authentication required"),
    403: ("FORBIDDEN", "Missing access: catalog.catalog.read"),
    404: ("NOT_FOUND", "Procedure not found: catalog.x"),
    409: ("CONFLICT", "A system with this name already exists"),
    413: ("PAYLOAD_TOO_LARGE", "Request body exceeds the limit of 1048576 bytes"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported content type 'text/plain': send application/json"),
    429: ("TOO_MANY_REQUESTS", "Too many failed logins: try again in 60 seconds"),
    500: ("INTERNAL_SERVER_ERROR", "Internal server error"),
    503: ("SERVICE_UNAVAILABLE", "Plugin catalog is unavailable"),
}
_FIXED_SCHEMAS = ("Error", "OrpcError", "OrpcMeta", "NoInput", "JsonWithoutNul")

_cache: weakref.WeakKeyDictionary[Host, tuple[dict[str, Any], bytes]] = weakref.WeakKeyDictionary()


def openapi_document(host: Host) -> dict[str, Any]:
    """The OpenAPI document of ``host``'s active plugins, cached once the host runs (read only)."""
    return _cached(host)[0]


def _cached(host: Host) -> tuple[dict[str, Any], bytes]:
    cached = _cache.get(host)
    if cached is not None:
        return cached
    document = build_document(host)
    result = (document, msgspec.json.encode(document))
    # Before startup a plugin may still fail, so only a running host's document is final.
    if host.running:
        _cache[host] = result
    return result


def build_document(host: Host) -> dict[str, Any]:
    """Generate the document from the contracts of ``host.active()`` (uncached)."""
    contracts = [
        (record.id, record.contract) for record in host.active() if record.contract is not None
    ]
    schemas, type_refs = _component_schemas(contracts)
    _refuse_nul_in_inputs(schemas, contracts, type_refs)
    schemas.update(_fixed_schemas())
    tags: list[dict[str, Any]] = []
    paths: dict[str, Any] = {}
    for record in host.active():
        contract = record.contract
        if contract is None:
            continue
        procedures = [p for p in contract.procedures if p.caller is not CallerKind.SERVICE]
        tags.append({"name": record.id, "description": _plugin_description(record)})
        if not procedures:
            continue
        refs = type_refs[record.id]
        paths[f"/api/{record.id}/"] = {"post": _documented_operation(contract, procedures, refs)}
        for proc in procedures:
            paths[f"/api/{record.id}/{proc.name}"] = _orpc_path_item(contract, proc, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Checkstack API",
            "version": _version("checkstack-core"),
            "description": _API_DESCRIPTION,
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": _error_responses(),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "ck_<applicationId>_<secret>",
                    "description": "An external application's API key: "
                    "`Authorization: Bearer ck_<applicationId>_<secret>`.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": SESSION_COOKIE,
                    "description": "A user's session cookie, set by the auth plugin's login.",
                },
            },
        },
        "security": [{"apiKey": []}, {"session": []}],
    }


_API_DESCRIPTION = """\
Every procedure of every loaded plugin, reachable through two protocols with the same \
authentication, authorization, validation and errors:

- **Documented protocol**: `POST /api/{pluginId}/` with a JSON object mapping procedure names to \
inputs, e.g. `{"getGreeting": {}}`; the answer maps each name to its output. Errors are \
`{"code", "message", "procedure"?, "data"?}` with the HTTP status of the code.
- **oRPC v1 RPC protocol**: `POST /api/{pluginId}/{procedure}` with \
`{"json": <input>, "meta": []}` (and `GET ?data=<envelope>` for queries), as the \
`@orpc/client` `RPCLink` sends it.

Authenticate with an API key (`Authorization: Bearer ck_<applicationId>_<secret>`) or a session \
cookie. Each procedure's caller kind and required access rules (all of them are required) are in \
`x-checkstack-access`: `anonymous` (no checks), `public` (anonymous callers allowed, rules checked \
against the anonymous role), `authenticated` (users and applications), `user` (people only).
"""


def route_handlers(host: Host) -> list[Any]:
    """``GET /api/openapi.json`` and ``GET /api/docs`` for ``host`` (both open to anyone)."""
    page = _docs_page()

    @get(OPENAPI_PATH, include_in_schema=False, name="openapi")
    async def openapi_json() -> Response[bytes]:
        return Response(
            _cached(host)[1],
            media_type="application/json",
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )

    @get(DOCS_PATH, include_in_schema=False, name="docs")
    async def docs() -> Response[bytes]:
        # Litestar appends "; charset=utf-8" to text types itself: name it once.
        return Response(page.body, media_type="text/html", headers=page.headers)

    return [openapi_json, docs]


# -- schemas --------------------------------------------------------------------------------------


def _component_schemas(
    contracts: list[tuple[str, Contract]],
) -> tuple[dict[str, Any], dict[str, dict[Any, dict[str, Any]]]]:
    """Shared components of every plugin's types, and per plugin the schema of each type.

    A name defined by several plugins with different schemas (or clashing with a core component)
    is qualified with the plugin id in every plugin that uses it.
    """
    per_plugin = {
        plugin_id: _plugin_schemas(plugin_id, _types_of(contract))
        for plugin_id, contract in contracts
    }
    definitions: dict[str, list[tuple[str, Any]]] = {}
    for plugin_id, (_, components) in per_plugin.items():
        for name, schema in components.items():
            definitions.setdefault(name, []).append((plugin_id, schema))
    qualified = {
        (plugin_id, name)
        for name, defs in definitions.items()
        if name in _FIXED_SCHEMAS or any(schema != defs[0][1] for _, schema in defs)
        for plugin_id, _ in defs
    }
    # A name several plugins share must be qualified too when it refers to a qualified one: the
    # same text would mean different schemas.
    changed = True
    while changed:
        changed = False
        for name, defs in definitions.items():
            if len(defs) < 2 or (defs[0][0], name) in qualified:
                continue
            if any((pid, ref) in qualified for pid, schema in defs for ref in _refs(schema)):
                qualified.update((pid, name) for pid, _ in defs)
                changed = True
    shared: dict[str, Any] = {}
    type_refs: dict[str, dict[Any, dict[str, Any]]] = {}
    for plugin_id, (by_type, components) in per_plugin.items():
        rename = {name: f"{plugin_id}.{name}" for pid, name in qualified if pid == plugin_id}
        for name, schema in components.items():
            shared[rename.get(name, name)] = _rename_refs(schema, rename)
        type_refs[plugin_id] = {tp: _rename_refs(s, rename) for tp, s in by_type.items()}
    return dict(sorted(shared.items())), type_refs


#: A string without NUL: the dispatcher refuses NUL anywhere in an input (PostgreSQL cannot
#: store it), in object keys too.
_NO_NUL = "^[^\\u0000]*$"
_NESTED = ("items", "additionalProperties", "not")
_NESTED_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _refuse_nul_in_inputs(
    schemas: dict[str, Any],
    contracts: list[tuple[str, Contract]],
    type_refs: dict[str, dict[Any, dict[str, Any]]],
) -> None:
    """State the no-NUL rule on every string of every input type (components used as inputs,
    and those they refer to); outputs never hold NUL, as every input refused it."""
    pending = [
        name
        for plugin_id, contract in contracts
        for proc in contract.procedures
        if proc.input is not None
        for name in _refs(type_refs[plugin_id][proc.input])
    ]
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        schemas[name] = _without_nul(schemas[name])
        pending.extend(_refs(schemas[name]))


def _without_nul(schema: Any) -> Any:
    """``schema`` with every string (and object key) it allows refused when it holds NUL, and
    every time (``x-checkstack-time``) held to :data:`TIME_PATTERN`.

    A free-form object's values are ``JsonWithoutNul``, a recursive schema, as the server's
    check reaches any depth.
    """
    if not isinstance(schema, dict) or "$ref" in schema:
        return schema
    result = dict(schema)
    for key in _NESTED:
        if isinstance(result.get(key), dict):
            result[key] = _without_nul(result[key])
    for key in _NESTED_LISTS:
        if isinstance(result.get(key), list):
            result[key] = [_without_nul(item) for item in result[key]]
    if isinstance(result.get("properties"), dict):
        result["properties"] = {k: _without_nul(v) for k, v in result["properties"].items()}
    types = result.get("type")
    kinds = set(types) if isinstance(types, list) else {types}
    if result.get(_TIME_MARK):
        result["pattern"] = TIME_PATTERN  # holds no NUL either
    elif "string" in kinds:
        if "pattern" in result:  # one pattern per schema: the second one goes in allOf
            result["allOf"] = [*result.get("allOf", []), {"pattern": _NO_NUL}]
        else:
            result["pattern"] = _NO_NUL
    if "object" in kinds and "properties" not in result:
        result["propertyNames"] = {"pattern": _NO_NUL}
        if "additionalProperties" not in result:
            result["additionalProperties"] = {"$ref": _SCHEMAS + "JsonWithoutNul"}
    return result


def _refs(schema: Any) -> set[str]:
    """Names of the components ``schema`` refers to directly."""
    found: set[str] = set()
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            found.add(ref[len(_SCHEMAS) :])
        for value in schema.values():
            found |= _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            found |= _refs(item)
    return found


def _types_of(contract: Contract) -> list[Any]:
    types: list[Any] = []
    for proc in contract.procedures:
        for tp in (proc.input, proc.output):
            if tp is not None and tp not in types:
                types.append(tp)
    return types


def _plugin_schemas(
    plugin_id: str, types: list[Any]
) -> tuple[dict[Any, dict[str, Any]], dict[str, Any]]:
    """Schemas of one plugin's types; a type msgspec cannot describe becomes an open schema."""
    describable: list[Any] = []
    by_type: dict[Any, dict[str, Any]] = {}
    for tp in types:
        try:
            msgspec.json.schema(tp)
        except Exception as exc:  # unsupported types, unresolvable annotations...
            logger.warning("No JSON schema for %s type %r: %s", plugin_id, tp, exc)
            by_type[tp] = {"description": f"Schema unavailable: {exc}"}
        else:
            describable.append(tp)
    schemas, components = msgspec.json.schema_components(
        describable, ref_template=_SCHEMAS + "{name}"
    )
    by_type.update(zip(describable, schemas, strict=True))
    _state_times(describable, components)
    return by_type, components


#: The times msgspec reads, as a pattern (it emits no format for a ``datetime`` that may be
#: naive): RFC 3339 date and time with seconds and an offset. Stricter than the server where a
#: pattern would not be exact: years 1000-8999 (the dispatcher refuses years 1 and 9999), days
#: up to 28 (a pattern cannot know February), an offset always.
TIME_PATTERN = (
    r"^[1-8][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9])$"
)


_TIME_MARK = "x-checkstack-time"


def _state_times(types: list[Any], components: dict[str, Any]) -> None:
    """Mark every time field of the structs in ``components`` (``x-checkstack-time``): inputs
    state :data:`TIME_PATTERN` on them."""
    seen: set[str] = set()
    pending = list(msgspec.inspect.multi_type_info(types))
    while pending:
        info = pending.pop()
        if isinstance(info, msgspec.inspect.StructType):
            name = info.cls.__name__
            component = components.get(name)
            if name in seen or component is None:
                continue
            seen.add(name)
            properties = component.get("properties", {})
            for fld in info.fields:
                if fld.encode_name in properties:
                    properties[fld.encode_name] = _with_times(properties[fld.encode_name], fld.type)
                pending.append(fld.type)
        elif isinstance(info, msgspec.inspect.UnionType):
            pending.extend(info.types)
        elif isinstance(info, msgspec.inspect.CollectionType):
            pending.append(info.item_type)
        elif isinstance(info, msgspec.inspect.DictType):
            pending.append(info.value_type)


def _with_times(schema: Any, info: Any) -> Any:
    if not isinstance(schema, dict):
        return schema
    if isinstance(info, msgspec.inspect.DateTimeType) and schema.get("type") == "string":
        # Marked here, stated in inputs only (_without_nul): answers hold any valid time.
        return {**schema, _TIME_MARK: True}
    if isinstance(info, msgspec.inspect.UnionType) and isinstance(schema.get("anyOf"), list):
        times = [t for t in info.types if isinstance(t, msgspec.inspect.DateTimeType)]
        strings = [t for t in info.types if isinstance(t, msgspec.inspect.StrType)]
        if times and not strings:  # the union's only string is the time
            return {**schema, "anyOf": [_with_times(m, times[0]) for m in schema["anyOf"]]}
    if isinstance(info, msgspec.inspect.CollectionType) and "items" in schema:
        return {**schema, "items": _with_times(schema["items"], info.item_type)}
    return schema


def _rename_refs(schema: Any, rename: dict[str, str]) -> Any:
    """``schema`` with every ``$ref`` to a renamed component pointing at its new name."""
    if not rename:
        return schema
    if isinstance(schema, dict):
        result = {key: _rename_refs(value, rename) for key, value in schema.items()}
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMAS):
            result["$ref"] = _SCHEMAS + rename.get(ref[len(_SCHEMAS) :], ref[len(_SCHEMAS) :])
        return result
    if isinstance(schema, list):
        return [_rename_refs(item, rename) for item in schema]
    return schema


def _fixed_schemas() -> dict[str, Any]:
    codes = list(STATUS_BY_CODE)
    return {
        "Error": {
            "title": "Error",
            "description": "The documented protocol's error body, sent with the HTTP status of "
            "its code.",
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "procedure": {
                    "type": "string",
                    "description": "The procedure of the batch the error belongs to.",
                },
                "data": {
                    "type": "object",
                    "description": 'Details, e.g. `{"issues": [{"message", "path"}]}` for '
                    "validation failures.",
                },
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        },
        "OrpcError": {
            "title": "OrpcError",
            "description": "The oRPC protocol's error body (no other keys, as `@orpc/client` "
            "requires).",
            "type": "object",
            "properties": {
                "json": {
                    "type": "object",
                    "properties": {
                        "defined": {"type": "boolean", "const": False},
                        "code": {"type": "string", "enum": codes},
                        "status": {"type": "integer", "minimum": 400},
                        "message": {"type": "string"},
                        "data": {},
                    },
                    "required": ["defined", "code", "status", "message"],
                    "additionalProperties": False,
                },
                "meta": {"type": "array", "maxItems": 0},
            },
            "required": ["json", "meta"],
            "additionalProperties": False,
        },
        "OrpcMeta": {
            "title": "OrpcMeta",
            "description": "oRPC serializer metadata: `[type, ...path]` entries, each naming a "
            "value of `json` that JSON cannot carry as such: 0 bigint (a decimal string), 1 date "
            "(an ISO 8601 string or null), 2 NaN and 3 undefined (null), 4 URL and 5 RegExp (a "
            "string), 6 Set (an array), 7 Map (an array of [key, value] pairs). The path (object "
            "keys and array indexes from the root of `json`) must exist in `json`; an empty "
            "path is `json` itself.",
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [{"type": "integer", "enum": list(range(8))}],
                "items": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 0}]},
                "minItems": 1,
            },
        },
        "JsonWithoutNul": {
            "title": "JsonWithoutNul",
            "description": "Any JSON value without NUL in its strings and keys.",
            "anyOf": [
                {"type": ["null", "boolean", "number"]},
                {"type": "string", "pattern": _NO_NUL},
                {"type": "array", "items": {"$ref": _SCHEMAS + "JsonWithoutNul"}},
                {
                    "type": "object",
                    "propertyNames": {"pattern": _NO_NUL},
                    "additionalProperties": {"$ref": _SCHEMAS + "JsonWithoutNul"},
                },
            ],
        },
        "NoInput": {
            "title": "NoInput",
            "description": "This procedure takes no input: send `{}` or `null`.",
            "anyOf": [{"type": "object", "maxProperties": 0}, {"type": "null"}],
        },
    }


def input_required(proc: Procedure) -> bool:
    """Whether the procedure refuses a missing (``null``) input: the server reads it as ``{}``,
    which only an input type with a required field refuses."""
    if proc.input is None:
        return False
    try:
        fields = msgspec.structs.fields(proc.input)
    except TypeError:  # not a Struct (a dict type): {} is a valid input
        return False
    return any(f.required for f in fields)


def _input_schema(proc: Procedure, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    if proc.input is None:
        return {"$ref": _SCHEMAS + "NoInput"}
    if input_required(proc):
        return refs[proc.input]
    return {"anyOf": [refs[proc.input], {"type": "null"}]}


def _output_schema(proc: Procedure, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    return {"type": "null"} if proc.output is None else refs[proc.output]


# -- operations -----------------------------------------------------------------------------------


def access(contract: Contract, proc: Procedure) -> dict[str, Any]:
    """The ``x-checkstack-access`` of ``proc``: caller kind, required rules, kind, instance access.

    ``instance`` is null, or the resource-level access (§5.5) with the rules it guards; in the rare
    case of rules guarding different resources, a list of those.
    """
    instances: list[tuple[InstanceAccess, list[str]]] = []
    for rule in proc.rules:
        instance = proc.instance_access(rule)
        if instance is None:
            continue
        for known, rule_ids in instances:
            if known == instance:
                rule_ids.append(contract.qualified(rule))
                break
        else:
            instances.append((instance, [contract.qualified(rule)]))
    described = [_instance(instance, rule_ids) for instance, rule_ids in instances]
    return {
        "caller": str(proc.caller),
        "rules": [contract.qualified(rule) for rule in proc.rules],
        "kind": str(proc.kind),
        "instance": (described[0] if len(described) == 1 else described) if described else None,
    }


def _instance(instance: InstanceAccess, rule_ids: list[str]) -> dict[str, Any]:
    described: dict[str, Any] = {"resourceType": instance.resource_type}
    for key, value in (
        ("idParam", instance.id_param),
        ("idsParam", instance.ids_param),
        ("listKey", instance.list_key),
        ("recordKey", instance.record_key),
    ):
        if value:
            described[key] = value
    described["rules"] = rule_ids
    return described


def _security(callers: Iterable[CallerKind]) -> list[dict[str, list[str]]]:
    """Anonymous and public procedures take credentials optionally; ``user`` needs a session."""
    kinds = set(callers)
    schemes: list[dict[str, list[str]]] = []
    if kinds & {CallerKind.ANONYMOUS, CallerKind.PUBLIC}:
        schemes.append({})
    if kinds - {CallerKind.USER}:
        schemes.append({"apiKey": []})
    schemes.append({"session": []})
    return schemes


def _summary(proc: Procedure) -> str:
    first = proc.description.strip().split("\n", 1)[0]
    return first or proc.name


def _access_text(contract: Contract, proc: Procedure) -> str:
    rules = ", ".join(f"`{contract.qualified(r)}`" for r in proc.rules) or "none"
    return f"{proc.kind}, caller `{proc.caller}`, rules {rules}"


def _error_refs(prefix: str) -> dict[str, Any]:
    return {str(status): {"$ref": f"{_RESPONSES}{prefix}{status}"} for status in _ERROR_STATUSES}


def _documented_operation(
    contract: Contract, procedures: list[Procedure], refs: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    plugin_id = contract.plugin_id
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    listing: list[str] = []
    for proc in procedures:
        text = proc.description.strip() or proc.name
        inputs[proc.name] = {
            **_input_schema(proc, refs),
            "description": text,
            "x-checkstack-access": access(contract, proc),
        }
        outputs[proc.name] = {**_output_schema(proc, refs), "description": text}
        listing.append(f"- `{proc.name}` ({_access_text(contract, proc)}): {text}")
    first = procedures[0].name
    description = (
        f"Call one or more procedures of plugin `{plugin_id}`. The body maps procedure names to "
        "inputs (`{}` or `null` for a procedure without input); the answer maps each name to "
        "its output, in request order.\n\n"
        "**Batching:** several names in one body run in one request, at most "
        f"{MAX_BATCH} (`PAYLOAD_TOO_LARGE` beyond). **Atomicity:** every procedure is found, "
        "authorized and validated before any runs, so if one fails nothing runs; they run in "
        "request order inside one database transaction, and if one raises the transaction is "
        "rolled back and its error is returned with `procedure` naming it.\n\n"
        "Procedures:\n" + "\n".join(listing)
    )
    return {
        "operationId": plugin_id,
        "tags": [plugin_id],
        "summary": f"Call {plugin_id} procedures (documented protocol, batchable)",
        "description": description,
        "security": _security(p.caller for p in procedures),
        "x-checkstack-procedures": {p.name: access(contract, p) for p in procedures},
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": inputs,
                        "additionalProperties": False,
                        "minProperties": 1,
                        "maxProperties": MAX_BATCH,
                    },
                    "example": {first: {}},
                }
            },
        },
        "responses": {
            "200": {
                "description": "Each called procedure's output, keyed by name, in request order.",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": outputs,
                            "additionalProperties": False,
                        }
                    }
                },
            },
            **_error_refs("Error"),
        },
    }


def _request_envelope(proc: Procedure, refs: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    """The request body exactly as the server reads it: an envelope with no other keys, whose
    ``json`` is required unless an absent input is valid (no input, or one whose fields are all
    optional: then a ``null`` body is valid too); ``meta`` may be null or absent.

    ``meta`` is documented as empty: inputs are plain JSON (times are ISO 8601 strings), so a
    client needs none. The server accepts entries that name an existing value of ``json`` of the
    type the entry says (``OrpcMeta``), which JSON Schema cannot express; the one a client sends
    for an absent input, ``[[3]]`` (undefined, with ``json`` null or absent), is listed where an
    absent input is valid.
    """
    envelope: dict[str, Any] = {
        "type": "object",
        "description": "oRPC envelope: `json` is the input, `meta` the serializer metadata "
        "(see `OrpcMeta`; inputs need none).",
        "properties": {
            "json": _input_schema(proc, refs),
            "meta": {"anyOf": [{"type": "array", "maxItems": 0}, {"type": "null"}]},
        },
        "additionalProperties": False,
    }
    if input_required(proc):
        envelope["required"] = ["json"]
        return envelope
    undefined = {
        "type": "object",
        "description": "An absent input, as `@orpc/client` sends `undefined`.",
        "properties": {"json": {"type": "null"}, "meta": {"const": [[UNDEFINED]]}},
        "required": ["meta"],
        "additionalProperties": False,
    }
    return {"anyOf": [envelope, undefined, {"type": "null"}]}


def _response_envelope(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "oRPC envelope: `json` is the output, `meta` the serializer metadata.",
        "properties": {"json": schema, "meta": {"$ref": _SCHEMAS + "OrpcMeta"}},
        "required": ["json", "meta"],
        "additionalProperties": False,
    }


def _orpc_path_item(
    contract: Contract, proc: Procedure, refs: dict[Any, dict[str, Any]]
) -> dict[str, Any]:
    plugin_id = contract.plugin_id
    text = proc.description.strip()
    description = (text + "\n\n" if text else "") + f"Access: {_access_text(contract, proc)}."
    request = _request_envelope(proc, refs)
    required = input_required(proc)
    common = {
        "tags": [plugin_id],
        "summary": _summary(proc),
        "description": description,
        "security": _security([proc.caller]),
        "x-checkstack-access": access(contract, proc),
    }
    responses = {
        "200": {
            "description": "The procedure's output in the oRPC envelope.",
            "content": {
                "application/json": {"schema": _response_envelope(_output_schema(proc, refs))}
            },
        },
        **_error_refs("OrpcError"),
    }
    item: dict[str, Any] = {
        "post": {
            "operationId": f"{plugin_id}.{proc.name}",
            **common,
            "requestBody": {
                "required": required,
                "content": {"application/json": {"schema": request, "example": {"json": {}}}},
            },
            "responses": responses,
        }
    }
    if proc.kind is Kind.QUERY:
        item["get"] = {
            "operationId": f"{plugin_id}.{proc.name}.get",
            **common,
            "parameters": [
                {
                    "name": "data",
                    "in": "query",
                    "required": required,
                    "description": "The same envelope as the POST body, JSON-encoded.",
                    "content": {"application/json": {"schema": request}},
                }
            ],
            "responses": responses,
        }
    return item


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status in _ERROR_STATUSES:
        code, message = _ERROR_EXAMPLES[status]
        description = f"{code}: {_WHEN[status]}"
        responses[f"Error{status}"] = {
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": _SCHEMAS + "Error"},
                    "example": {"code": code, "message": message},
                }
            },
        }
        responses[f"OrpcError{status}"] = {
            "description": description,
            "content": {
                "application/json": {
                    "schema": {"$ref": _SCHEMAS + "OrpcError"},
                    "example": {
                        "json": {
                            "defined": False,
                            "code": code,
                            "status": status,
                            "message": message,
                            "data": {},
                        },
                        "meta": [],
                    },
                }
            },
        }
    return responses


_WHEN = {
    400: "malformed JSON, an empty batch, or input that fails validation "
    "(`data.issues = [{message, path}]`).",
    401: "no credentials on a non-public procedure, or an invalid, expired or revoked key or "
    "session.",
    403: "a required access rule is missing, a resource-level denial, or the wrong caller kind.",
    404: "unknown plugin, unknown procedure, or a missing resource.",
    409: "a uniqueness or state conflict.",
    413: f"the body is over the size limit or the batch has more than {MAX_BATCH} procedures.",
    415: "the body is not JSON.",
    429: "a plugin's rate limit was reached (the auth plugin's login throttle); `Retry-After` "
    "says when to try again.",
    500: "an unexpected error (logged with the request id; no details in the body).",
    503: "the plugin failed to load.",
}


def _plugin_description(record: Any) -> str:
    plugin = record.plugin
    text = plugin.name if plugin else record.id
    if plugin is not None and plugin.description:
        text += f" — {plugin.description}"
    if record.version:
        text += f" (version {record.version})"
    return text


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


# -- docs page ------------------------------------------------------------------------------------


class _DocsPage:
    """The docs page and its headers: a strict CSP allowing only its own inline script and style."""

    def __init__(self, html: str) -> None:
        self.body = html.encode()
        scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
        styles = re.findall(r"<style>(.*?)</style>", html, re.S)
        csp = "; ".join(
            [
                "default-src 'none'",
                "script-src " + " ".join(_csp_hash(s) for s in scripts),
                "style-src " + " ".join(_csp_hash(s) for s in styles),
                "connect-src 'self'",
                "img-src 'self' data:",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )
        self.headers = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        }


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _docs_page() -> _DocsPage:
    html = resources.files("checkstack_core").joinpath("static", "docs.html").read_text("utf-8")
    return _DocsPage(html)
