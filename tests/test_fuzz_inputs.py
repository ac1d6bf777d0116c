"""A schema-driven fuzzer (SPEC §10): no input to any procedure of any installed plugin is a 500.

For every procedure, inputs are derived from its input type's JSON schema: a plausible input,
then that input with each field replaced by values of the wrong type, out-of-range numbers, huge
strings, malformed times and unknown ids, plus top-level garbage. Each is dispatched as an
administrator (so access checks let it reach validation and the handler) in its own
transaction. Any answer is fine except INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from checkstack_core import Plugin
from checkstack_core.auth import Principal, PrincipalKind, RequestInfo
from checkstack_core.contract import CallerKind
from checkstack_core.errors import InternalServerError, RpcError

ADMIN = Principal(PrincipalKind.USER, id="fuzz-admin", name="Fuzz admin", is_admin=True)
SERVICE_CALLER = Principal.service("fuzz")
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
TOP_LEVEL_GARBAGE: list[Any] = [None, {}, [], "text", 42, {"unknownField": 1}]


def installed_plugins() -> list[Plugin]:
    plugins = []
    for ep in importlib.metadata.entry_points(group="checkstack.plugins"):
        obj = ep.load()
        if isinstance(obj, Plugin):
            plugins.append(obj)
    return plugins


@pytest.fixture
def checkstack_plugins() -> list[Any]:
    return installed_plugins()


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def plausible(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """A value of the schema's shape (not necessarily meaningful)."""
    schema = _resolve(schema, defs)
    if depth > 4:
        return None
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, defs).get("type") != "null"]
            return plausible(options[0] if options else schema[key][0], defs, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = schema.get("required", list(properties))
        return {
            name: plausible(properties[name], defs, depth + 1)
            for name in required
            if name in properties
        }
    if kind == "array":
        return []
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2030-01-01T00:00:00Z"
        return "fuzz"[: schema.get("maxLength", 4)].ljust(schema.get("minLength", 0), "z")
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    return None


def inputs_for(input_type: Any) -> Iterator[Any]:
    """Top-level garbage, a plausible input, then each field of it broken in turn."""
    yield from TOP_LEVEL_GARBAGE
    if input_type is None:
        return
    (schema,), components = msgspec.json.schema_components([input_type])
    defs = components
    root = _resolve(schema, defs)
    base = plausible(root, defs)
    yield base
    if not isinstance(base, dict):
        return
    for field in root.get("properties", {}):
        for value in BAD_VALUES:
            yield {**base, field: value}


def all_procedures(host: Any) -> Iterator[tuple[str, Any]]:
    for record in host.active():
        if record.contract is None:
            continue
        for procedure in record.contract.procedures:
            yield record.id, procedure


async def test_no_input_to_any_procedure_is_a_server_error(checkstack_host):
    failures: list[str] = []
    calls = 0
    for plugin_id, procedure in all_procedures(checkstack_host):
        caller = SERVICE_CALLER if procedure.caller is CallerKind.SERVICE else ADMIN
        for raw in inputs_for(procedure.input):
            calls += 1
            try:
                await checkstack_host.dispatcher.dispatch(
                    plugin_id, [(procedure.name, raw)], RequestInfo(), principal=caller
                )
            except InternalServerError as error:
                failures.append(f"{plugin_id}.{procedure.name}({raw!r:.120}): {error.message}")
            except RpcError:
                pass
    assert calls > 1000, f"only {calls} calls: are the plugins installed?"
    assert not failures, f"{len(failures)} server errors:\n" + "\n".join(failures[:30])
