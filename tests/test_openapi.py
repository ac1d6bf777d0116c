"""GET /api/openapi.json and GET /api/docs: generated from the loaded plugins' contracts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from openapi_spec_validator import validate

from checkstack_core import (
    AccessRule,
    Contract,
    Handlers,
    InstanceAccess,
    Plugin,
    Schema,
    mutation,
    query,
)
from checkstack_core.app import create_app
from checkstack_core.host import Host
from checkstack_core.openapi import build_document, openapi_document
from checkstack_core.settings import Settings

HELLO_ACCESS = {
    "getGreeting": {
        "caller": "public",
        "rules": ["hello.hello.read"],
        "kind": "query",
        "instance": None,
    },
    "setGreeting": {
        "caller": "authenticated",
        "rules": ["hello.hello.manage"],
        "kind": "mutation",
        "instance": None,
    },
}
CORE_ACCESS = {
    "getPlugins": {
        "caller": "authenticated",
        "rules": ["core.plugins.read"],
        "kind": "query",
        "instance": None,
    }
}


def resolve_pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"dangling $ref {ref}"
        node = node[part]
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in all_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in all_refs(item)]
    return []


async def fetch_document(http: Any) -> dict[str, Any]:
    response = await http.get("/api/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


async def test_document_lists_every_procedure_with_its_access(checkstack_http, checkstack_host):
    # Served to anyone: no credentials on this request.
    document = await fetch_document(checkstack_http)

    assert document["openapi"] == "3.1.0"
    tags = [tag["name"] for tag in document["tags"]]
    assert tags == [record.id for record in checkstack_host.active()]
    assert tags[:2] == ["core", "hello"]
    for plugin_id, expected in (("hello", HELLO_ACCESS), ("core", CORE_ACCESS)):
        documented = document["paths"][f"/api/{plugin_id}/"]["post"]
        assert documented["operationId"] == plugin_id
        assert documented["tags"] == [plugin_id]
        assert documented["x-checkstack-procedures"] == expected
        body = documented["requestBody"]["content"]["application/json"]["schema"]
        assert set(body["properties"]) == set(expected)
        assert "atomic" in documented["description"].lower()
        for name, access in expected.items():
            item = document["paths"][f"/api/{plugin_id}/{name}"]
            post = item["post"]
            assert post["operationId"] == f"{plugin_id}.{name}"
            assert post["tags"] == [plugin_id]
            assert post["x-checkstack-access"] == access
            assert body["properties"][name]["x-checkstack-access"] == access
            # Queries are also reachable over GET ?data=, mutations only over POST.
            assert ("get" in item) == (access["kind"] == "query")
            if "get" in item:
                assert item["get"]["x-checkstack-access"] == access
                assert item["get"]["parameters"][0]["name"] == "data"
            for status in ("400", "401", "403", "404", "413", "415", "500", "503"):
                assert post["responses"][status] == {
                    "$ref": f"#/components/responses/OrpcError{status}"
                }
                assert documented["responses"][status] == {
                    "$ref": f"#/components/responses/Error{status}"
                }

    get_greeting = document["paths"]["/api/hello/getGreeting"]["post"]
    assert get_greeting["summary"] == "Greet someone with the stored template."
    assert get_greeting["security"] == [{}, {"apiKey": []}, {"session": []}]
    assert document["paths"]["/api/hello/setGreeting"]["post"]["security"] == [
        {"apiKey": []},
        {"session": []},
    ]
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "ck_<applicationId>_<secret>",
        "description": schemes["apiKey"]["description"],
    }
    assert schemes["session"]["in"] == "cookie"


async def test_schemas_are_shared_components_and_every_ref_resolves(checkstack_http):
    document = await fetch_document(checkstack_http)
    schemas = document["components"]["schemas"]

    refs = all_refs(document)
    assert refs
    for ref in refs:
        resolve_pointer(document, ref)

    request = document["paths"]["/api/hello/getGreeting"]["post"]["requestBody"]
    envelope = request["content"]["application/json"]["schema"]["anyOf"][0]
    assert envelope["properties"]["json"] == {
        "anyOf": [{"$ref": "#/components/schemas/GreetingInput"}, {"type": "null"}]
    }
    assert schemas["GreetingInput"]["properties"]["name"] == {
        "type": "string",
        "default": "world",
        "pattern": "^[^\\u0000]*$",  # the dispatcher refuses NUL in every input
    }
    assert schemas["Greeting"]["required"] == ["message"]
    ok = document["paths"]["/api/hello/"]["post"]["responses"]["200"]
    outputs = ok["content"]["application/json"]["schema"]["properties"]
    assert outputs["setGreeting"]["$ref"] == "#/components/schemas/Template"
    # getPlugins takes no input.
    core_body = document["paths"]["/api/core/"]["post"]["requestBody"]
    no_input = core_body["content"]["application/json"]["schema"]["properties"]["getPlugins"]
    assert no_input["$ref"] == "#/components/schemas/NoInput"

    assert schemas["Error"]["required"] == ["code", "message"]
    assert set(schemas["Error"]["properties"]) == {"code", "message", "procedure", "data"}
    orpc = schemas["OrpcError"]["properties"]["json"]
    assert set(orpc["properties"]) == {"defined", "code", "status", "message", "data"}
    assert orpc["additionalProperties"] is False


async def test_document_is_valid_openapi_3_1(checkstack_http):
    validate(await fetch_document(checkstack_http))


async def test_document_is_generated_once_per_host(checkstack_host):
    first = openapi_document(checkstack_host)
    assert openapi_document(checkstack_host) is first


async def test_examples_match_what_the_server_answers(checkstack_http):
    """The documented error shape is the one the server really sends."""
    document = await fetch_document(checkstack_http)
    response = await checkstack_http.post("/api/hello/", json={"setGreeting": {"template": "x"}})
    assert response.status_code == 401
    error = response.json()
    assert set(error) <= set(document["components"]["schemas"]["Error"]["properties"])
    assert error["code"] in document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]


async def test_docs_page_is_self_contained_html(checkstack_http):
    response = await checkstack_http.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"  # charset once
    page = response.text
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1
    assert "/api/openapi.json" in scripts[0]
    assert "innerHTML" not in page
    # No network beyond this server: nothing loaded from another origin.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    csp = response.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp


# -- plugins that failed, name collisions, instance access -----------------------------------------


class Boom(Exception):
    pass


def failing_plugin() -> Plugin:
    rule = AccessRule("broken", "read", "Read")

    class Thing(Schema):
        value: int

    contract = Contract(
        "broken", rules=[rule], procedures=[query("getThing", output=Thing, rules=[rule])]
    )
    plugin = Plugin(id="broken", name="Broken", contract=contract)

    @plugin.on_startup
    async def explode(ctx: Any) -> None:
        raise Boom("startup failed")

    return plugin


async def test_a_plugin_that_failed_to_load_is_absent(checkstack_database_url):
    from checkstack_hello import plugin as hello

    settings = Settings(database_url=checkstack_database_url, strict_plugins=False)
    host = Host(settings, plugins=[hello, failing_plugin()], discover_installed=False)
    # As `checkstack serve` does: the app is built before the host starts (and the plugin fails).
    app = create_app(host)
    async with AsyncTestClient(app) as client:
        assert host.plugins["broken"].status == "failed"
        document = (await client.get("/api/openapi.json")).json()

    assert [tag["name"] for tag in document["tags"]] == ["core", "hello"]
    assert not [path for path in document["paths"] if path.startswith("/api/broken")]
    assert "Thing" not in document["components"]["schemas"]
    validate(document)


def _plugin(plugin_id: str, procedures: list[Any], rules: list[AccessRule]) -> Plugin:
    contract = Contract(plugin_id, rules=rules, procedures=procedures)
    handlers = Handlers(contract)
    for proc in procedures:

        @handlers.implement(proc.name)
        async def unused(ctx: Any, input: Any) -> Any:
            raise NotImplementedError

    return Plugin(id=plugin_id, name=plugin_id.title(), contract=contract, handlers=handlers)


class Shared(Schema):
    """The same type used by two plugins."""

    id: str


def colliding_plugins() -> list[Plugin]:
    """Two plugins whose types share names: ``Item`` and ``Page`` differ, ``Shared`` is the same
    type in both, and the first defines an ``Error`` like the core's error schema."""
    first_item = msgspec.defstruct("Item", [("name", str)], bases=(Schema,))
    first_page = msgspec.defstruct("Page", [("items", list[first_item])], bases=(Schema,))
    first_error = msgspec.defstruct("Error", [("reason", str)], bases=(Schema,))
    first_read = AccessRule("thing", "read", "Read", public=True)
    first = _plugin(
        "first",
        [
            query("getItems", output=first_page, caller="public", rules=[first_read]),
            query("getShared", input=Shared, output=first_error, rules=[first_read]),
        ],
        [first_read],
    )

    second_item = msgspec.defstruct("Item", [("name", str), ("size", int)], bases=(Schema,))
    # The same text as the first plugin's Page, but its Item is another one.
    second_page = msgspec.defstruct("Page", [("items", list[second_item])], bases=(Schema,))
    second_read = AccessRule(
        "item", "read", "Read items", instance=InstanceAccess("second.item", id_param="id")
    )
    second_manage = AccessRule("item", "manage", "Manage items")
    second = _plugin(
        "second",
        [
            query("getItem", input=Shared, output=second_item, rules=[second_read]),
            query("getPage", output=second_page, caller="user", rules=[second_read]),
            mutation("syncItems", output=Shared, caller="service", rules=[second_manage]),
        ],
        [second_read, second_manage],
    )
    return [first, second]


def test_component_names_are_qualified_only_when_plugins_collide():
    host = Host(Settings(), plugins=colliding_plugins(), discover_installed=False)
    document = build_document(host)
    schemas = document["components"]["schemas"]

    assert set(schemas) >= {
        "first.Item",
        "second.Item",
        "first.Page",
        "second.Page",
        "first.Error",
        "Shared",
        "Error",
    }
    assert "Item" not in schemas and "Page" not in schemas
    assert schemas["second.Item"]["required"] == ["name", "size"]
    assert schemas["first.Page"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/first.Item"
    }
    assert schemas["second.Page"]["properties"]["items"]["items"] == {
        "$ref": "#/components/schemas/second.Item"
    }
    # The core's Error keeps its name and shape; the plugin's is qualified.
    assert set(schemas["Error"]["properties"]) == {"code", "message", "procedure", "data"}
    assert schemas["first.Error"]["required"] == ["reason"]
    first_ok = document["paths"]["/api/first/getShared"]["post"]["responses"]["200"]
    assert first_ok["content"]["application/json"]["schema"]["properties"]["json"] == {
        "$ref": "#/components/schemas/first.Error"
    }
    for ref in all_refs(document):
        resolve_pointer(document, ref)
    validate(document)


def test_instance_access_user_callers_and_service_procedures():
    host = Host(Settings(), plugins=colliding_plugins(), discover_installed=False)
    document = build_document(host)
    paths = document["paths"]

    assert paths["/api/second/getItem"]["post"]["x-checkstack-access"] == {
        "caller": "authenticated",
        "rules": ["second.item.read"],
        "kind": "query",
        "instance": {"resourceType": "second.item", "idParam": "id", "rules": ["second.item.read"]},
    }
    # People only: a session, never an API key.
    assert paths["/api/second/getPage"]["post"]["security"] == [{"session": []}]
    # Service procedures answer every HTTP caller with FORBIDDEN: not part of the HTTP API.
    assert "/api/second/syncItems" not in paths
    body = paths["/api/second/"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"getItem", "getPage"}


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs"])
async def test_served_without_any_rule(checkstack_http, path):
    response = await checkstack_http.get(path, headers={"Authorization": "Bearer nonsense"})
    # Credentials are not even read: the documents describe shapes, not data.
    assert response.status_code == 200


def test_a_type_without_a_schema_does_not_break_the_document(caplog):
    broken = msgspec.defstruct("Broken", [("value", "Undefined")], bases=(Schema,))
    plugin = _plugin("odd", [query("getOdd", output=broken)], [])
    document = build_document(Host(Settings(), plugins=[plugin], discover_installed=False))

    ok = document["paths"]["/api/odd/getOdd"]["post"]["responses"]["200"]
    schema = ok["content"]["application/json"]["schema"]["properties"]["json"]
    assert schema["description"].startswith("Schema unavailable")
    assert "No JSON schema for odd" in caplog.text
    validate(document)


# -- the document states exactly what the server accepts ------------------------------------------

ENVELOPES = [
    # (procedure path, body or None for no body, extra headers)
    ("/api/hello/getGreeting", {"json": {"name": "Ann"}, "meta": []}),
    ("/api/hello/getGreeting", {"json": {}}),
    ("/api/hello/getGreeting", {"json": None, "meta": None}),
    ("/api/hello/getGreeting", {"meta": [[3]]}),
    ("/api/hello/getGreeting", {"json": None, "meta": [[3]]}),
    ("/api/hello/getGreeting", {"json": {}, "meta": [[3]]}),  # undefined is null only
    ("/api/hello/getGreeting", None),
    ("/api/hello/getGreeting", {}),
    ("/api/hello/getGreeting", {"json": {}, "extra": 1}),
    ("/api/hello/getGreeting", {"json": {"name": "x\u0000y"}}),
    ("/api/hello/getGreeting", {"json": {"nickname": "Ann"}}),
    ("/api/hello/getGreeting", {"json": {}, "meta": [[1, "name"]]}),
    ("/api/hello/getGreeting", {"json": {}, "meta": {}}),
    ("/api/hello/setGreeting", {"json": {"template": "Hi {name}"}}),
    ("/api/hello/setGreeting", {"json": {"template": "Hi there"}}),
    ("/api/hello/setGreeting", {"json": {"template": "{name}" + "x" * 495}}),
    ("/api/hello/setGreeting", {"json": {"template": "{name}" + "x" * 494}}),
    ("/api/hello/setGreeting", {"meta": []}),
    ("/api/hello/setGreeting", None),
    ("/api/notes/getNote", {"json": {"id": "n1"}}),
    ("/api/core/getPlugins", {"json": None}),
    ("/api/core/getPlugins", {"json": {"a": 1}}),
]


def _request_schema(document: dict, path: str) -> dict:
    body = document["paths"][path]["post"]["requestBody"]
    return {"components": document["components"], **body["content"]["application/json"]["schema"]}


@pytest.mark.parametrize(("path", "body"), ENVELOPES)
async def test_an_envelope_is_valid_exactly_when_the_server_takes_it(
    checkstack_http, checkstack_auth, path, body
):
    """What the oRPC request schema allows is what the server reads (a 400 is a refusal; any
    other answer, 404 for a missing note included, means the envelope and input were taken)."""
    import jsonschema

    document = await fetch_document(checkstack_http)
    admin = checkstack_auth.admin()
    content = b"" if body is None else json.dumps(body).encode()
    response = await checkstack_http.post(
        path, content=content, headers={**admin.headers, "content-type": "application/json"}
    )
    assert response.status_code != 500, response.text
    valid = jsonschema.Draft202012Validator(_request_schema(document, path)).is_valid(body)
    assert valid == (response.status_code != 400), (valid, response.status_code, response.text)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
async def test_an_undocumented_method_is_refused_with_the_documented_ones(checkstack_http, method):
    document = await fetch_document(checkstack_http)
    for path in ("/api/hello/getGreeting", "/api/hello/setGreeting", "/api/hello/"):
        documented = {m.upper() for m in document["paths"][path]}
        response = await checkstack_http.request(method, path)
        assert response.status_code == 405
        assert set(response.headers["allow"].split(", ")) == documented


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-02T06:41:28Z",
        "2026-02-28T23:59:59.123456789+13:59",
        "1000-01-01T00:00:00-00:00",
        "8999-12-28T12:00:00Z",
    ],
)
def test_a_time_the_input_pattern_admits_is_accepted(text):
    from datetime import datetime

    from checkstack_core.limits import datetime_issues
    from checkstack_core.openapi import TIME_PATTERN

    assert re.search(TIME_PATTERN, text)
    value = msgspec.convert(text, datetime)
    assert datetime_issues(msgspec.json.encode(text), value) == []


@pytest.mark.parametrize(
    "text", ["2026-02-30T00:00:00Z", "9999-01-01T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01"]
)
def test_the_input_pattern_is_stricter_where_it_cannot_be_exact(text):
    from checkstack_core.openapi import TIME_PATTERN

    assert not re.search(TIME_PATTERN, text)
