"""The documented protocol through HTTP: every row of SPEC §4.3, the order of checks, batches."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlmodel import select

from checkstack_core.dispatch import MAX_BATCH

JSON = {"content-type": "application/json"}
MANAGE = "notes.notes.manage"
READ = "notes.notes.read"


async def post(http: Any, plugin: str, body: Any, caller: Any = None, **kwargs: Any) -> Any:
    headers = {**JSON, **(caller.headers if caller else {}), **kwargs.pop("headers", {})}
    if isinstance(body, bytes | str):
        return await http.post(f"/api/{plugin}/", content=body, headers=headers, **kwargs)
    return await http.post(f"/api/{plugin}/", json=body, headers=headers, **kwargs)


def assert_error(response: Any, status: int, code: str, message: str, **extra: Any) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code
    assert body["message"] == message
    assert set(body) <= {"code", "message", "procedure", "data"}
    for key, value in extra.items():
        assert body[key] == value
    assert "Traceback" not in response.text
    return body


async def note_titles(host: Any) -> list[str]:
    from notes_plugin import NoteRow

    async with host.db.session() as session:
        return sorted(r.title for r in (await session.exec(select(NoteRow))).all())


# -- success ---------------------------------------------------------------------------------


async def test_single_call_answers_with_the_output_keyed_by_procedure(checkstack_http):
    response = await post(checkstack_http, "hello", {"getGreeting": {"name": "Ann"}})
    assert response.status_code == 200
    assert response.json() == {"getGreeting": {"message": "Hello, Ann!"}}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/api/hello", "/api/hello/"])
async def test_trailing_slash_is_optional(checkstack_http, path):
    response = await checkstack_http.post(path, json={"getGreeting": {}})
    assert response.json() == {"getGreeting": {"message": "Hello, world!"}}


@pytest.mark.parametrize("empty_input", [{}, None])
async def test_empty_object_or_null_is_the_input_of_a_procedure_without_input(
    checkstack_http, checkstack_auth, empty_input
):
    user = checkstack_auth.user(READ)
    response = await post(checkstack_http, "notes", {"listNotes": empty_input}, user)
    assert response.json() == {"listNotes": {"notes": []}}


async def test_batch_preserves_request_order(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin()
    body = {
        "createNote": {"title": "b", "id": "n1"},
        "getGreeting": {},
        "listNotes": {},
    }
    response = await post(
        checkstack_http, "notes", {k: v for k, v in body.items() if k != "getGreeting"}, admin
    )
    assert list(response.json()) == ["createNote", "listNotes"]
    assert response.json()["listNotes"] == {"notes": [{"id": "n1", "title": "b"}]}
    reverse = await post(checkstack_http, "notes", {"listNotes": {}, "countNotes": {}}, admin)
    assert list(reverse.json()) == ["listNotes", "countNotes"]


async def test_a_mutation_commits_and_later_calls_see_it(
    checkstack_http, checkstack_auth, checkstack_host
):
    admin = checkstack_auth.admin()
    response = await post(
        checkstack_http, "hello", {"setGreeting": {"template": "Hey {name}"}}, admin
    )
    assert response.json() == {"setGreeting": {"template": "Hey {name}"}}
    again = await post(checkstack_http, "hello", {"getGreeting": {"name": "Bo"}})
    assert again.json() == {"getGreeting": {"message": "Hey Bo"}}


# -- BAD_REQUEST -----------------------------------------------------------------------------


async def test_malformed_json(checkstack_http):
    response = await post(checkstack_http, "hello", b'{"getGreeting": ')
    assert_error(response, 400, "BAD_REQUEST", "Malformed JSON body")


@pytest.mark.parametrize("body", [b"{}", b"", b"   "])
async def test_empty_batch(checkstack_http, body):
    response = await post(checkstack_http, "hello", body)
    assert_error(response, 400, "BAD_REQUEST", "Empty batch: name at least one procedure")


@pytest.mark.parametrize("body", [b"[]", b'"getGreeting"', b"42"])
async def test_body_that_is_not_an_object(checkstack_http, body):
    response = await post(checkstack_http, "hello", body)
    assert response.status_code == 400
    assert response.json()["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("input", "message", "path"),
    [
        ({"name": 5}, "Expected `str`, got `int`", ["name"]),
        ({"nmae": "x"}, "Object contains unknown field `nmae`", []),
        ([1], "Expected `object`, got `array`", []),
    ],
)
async def test_input_validation_failure_lists_issues(checkstack_http, input, message, path):
    response = await post(checkstack_http, "hello", {"getGreeting": input})
    body = assert_error(
        response, 400, "BAD_REQUEST", "Input validation failed", procedure="getGreeting"
    )
    assert body["data"] == {"issues": [{"message": message, "path": path}]}


async def test_missing_required_field(checkstack_http, checkstack_auth):
    response = await post(checkstack_http, "hello", {"setGreeting": {}}, checkstack_auth.admin())
    body = assert_error(response, 400, "BAD_REQUEST", "Input validation failed")
    assert body["data"]["issues"] == [
        {"message": "Object missing required field `template`", "path": []}
    ]


async def test_nested_paths_are_reported_with_indexes(checkstack_http, checkstack_auth):
    response = await post(
        checkstack_http, "notes", {"deleteNotes": {"ids": ["a", 3]}}, checkstack_auth.admin()
    )
    body = assert_error(response, 400, "BAD_REQUEST", "Input validation failed")
    assert body["data"]["issues"] == [{"message": "Expected `str`, got `int`", "path": ["ids", 1]}]


async def test_domain_validation_uses_the_same_shape(checkstack_http, checkstack_auth):
    response = await post(
        checkstack_http,
        "hello",
        {"setGreeting": {"template": "no placeholder"}},
        checkstack_auth.admin(),
    )
    body = assert_error(response, 400, "BAD_REQUEST", "Input validation failed")
    assert body["data"]["issues"][0]["path"] == ["template"]


# -- UNAUTHORIZED ----------------------------------------------------------------------------


async def test_no_credentials_on_a_non_public_procedure(checkstack_http):
    response = await post(checkstack_http, "hello", {"setGreeting": {"template": "{name}"}})
    assert_error(response, 401, "UNAUTHORIZED", "Authentication required", procedure="setGreeting")


@pytest.mark.parametrize(
    "authorization", ["Bearer garbage", "Bearer ck_x_y", "Basic dXNlcjpwYXNz", "Bearer test_999"]
)
async def test_an_invalid_credential_is_401_even_on_a_public_procedure(
    checkstack_http, authorization
):
    response = await post(
        checkstack_http, "hello", {"getGreeting": {}}, headers={"authorization": authorization}
    )
    assert_error(response, 401, "UNAUTHORIZED", "Invalid API key")


async def test_a_revoked_caller_fails_on_the_next_request(checkstack_http, checkstack_auth):
    user = checkstack_auth.user(READ)
    assert (await post(checkstack_http, "notes", {"listNotes": {}}, user)).status_code == 200
    checkstack_auth.revoke(user)
    assert (await post(checkstack_http, "notes", {"listNotes": {}}, user)).status_code == 401


async def test_anonymous_caller_lacking_a_public_rule_must_authenticate(checkstack_http):
    # countNotes is public, but notes.read is not granted to the anonymous role.
    response = await post(checkstack_http, "notes", {"countNotes": {}})
    assert_error(response, 401, "UNAUTHORIZED", "Authentication required")


# -- FORBIDDEN -------------------------------------------------------------------------------


async def test_missing_rule(checkstack_http, checkstack_auth):
    user = checkstack_auth.application(READ)
    response = await post(checkstack_http, "hello", {"setGreeting": {"template": "{name}"}}, user)
    assert_error(
        response, 403, "FORBIDDEN", "Missing access: hello.hello.manage", procedure="setGreeting"
    )


async def test_resource_level_denial(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin()
    await post(checkstack_http, "notes", {"createNote": {"title": "secret", "id": "n1"}}, admin)
    checkstack_auth.grant("team-a", "notes.note", "n1", "read")
    checkstack_auth.set_team_only("notes.note", "n1")
    outsider = checkstack_auth.user(READ, teams=["team-b"])
    response = await post(checkstack_http, "notes", {"getNote": {"id": "n1"}}, outsider)
    assert_error(response, 403, "FORBIDDEN", "Access denied to notes.note n1", procedure="getNote")


async def test_wrong_caller_kind(checkstack_http, checkstack_auth):
    app = checkstack_auth.application(READ)
    response = await post(checkstack_http, "notes", {"whoAmI": {}}, app)
    assert_error(response, 403, "FORBIDDEN", "This procedure is for users only")
    user = checkstack_auth.user()
    ok = await post(checkstack_http, "notes", {"whoAmI": {}}, user)
    assert ok.json()["whoAmI"]["kind"] == "user"


async def test_service_procedures_are_not_reachable_over_http(checkstack_http, checkstack_auth):
    response = await post(checkstack_http, "notes", {"internalCount": {}}, checkstack_auth.admin())
    assert_error(response, 403, "FORBIDDEN", "This procedure is for services only")


# -- NOT_FOUND -------------------------------------------------------------------------------


async def test_unknown_plugin(checkstack_http):
    assert_error(
        await post(checkstack_http, "nope", {"x": {}}), 404, "NOT_FOUND", "Plugin not found: nope"
    )


async def test_unknown_procedure(checkstack_http):
    response = await post(checkstack_http, "hello", {"getGreetings": {}})
    assert_error(
        response,
        404,
        "NOT_FOUND",
        "Procedure not found: hello.getGreetings",
        procedure="getGreetings",
    )


async def test_missing_resource(checkstack_http, checkstack_auth):
    response = await post(
        checkstack_http, "notes", {"getNote": {"id": "ghost"}}, checkstack_auth.user(READ)
    )
    assert_error(response, 404, "NOT_FOUND", "Note not found: ghost", procedure="getNote")


# -- METHOD_NOT_SUPPORTED, PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE ----------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_method_not_supported(checkstack_http, method):
    response = await checkstack_http.request(method, "/api/hello/")
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_SUPPORTED"
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/api/openapi.json", "/api/docs", "/healthz", "/api/plugins"])
async def test_a_405_on_any_route_says_what_it_accepts(checkstack_http, path):
    response = await checkstack_http.delete(path)
    assert response.status_code == 405
    assert response.json()["code"] == "METHOD_NOT_SUPPORTED"
    assert "GET" in response.headers["allow"].split(", ")


async def test_body_over_the_limit(checkstack_http, checkstack_host):
    limit = checkstack_host.settings.max_body_size
    body = b'{"getGreeting": {"name": "' + b"x" * limit + b'"}}'
    response = await post(checkstack_http, "hello", body)
    assert_error(
        response, 413, "PAYLOAD_TOO_LARGE", f"Request body exceeds the limit of {limit} bytes"
    )


async def test_batch_over_the_limit(checkstack_http):
    body = "{" + ",".join(f'"p{i}": {{}}' for i in range(MAX_BATCH + 1)) + "}"
    response = await post(checkstack_http, "hello", body)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_batch_at_the_limit_is_accepted(checkstack_http, checkstack_auth):
    # Duplicate JSON keys collapse, so use distinct procedures with the same effect: the limit
    # counts names, and 50 distinct unknown names fail as NOT_FOUND, not PAYLOAD_TOO_LARGE.
    body = "{" + ",".join(f'"p{i}": {{}}' for i in range(MAX_BATCH)) + "}"
    response = await post(checkstack_http, "hello", body)
    assert response.json()["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_unsupported_media_type(checkstack_http, content_type):
    response = await checkstack_http.post(
        "/api/hello/", content=b'{"getGreeting": {}}', headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_json_with_charset_is_accepted(checkstack_http):
    response = await checkstack_http.post(
        "/api/hello/",
        content=b'{"getGreeting": {}}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


# -- CONFLICT ----------------------------------------------------------------------------------


async def test_conflict_raised_by_a_handler(checkstack_http, checkstack_auth):
    admin = checkstack_auth.admin()
    await post(checkstack_http, "notes", {"createNote": {"title": "a", "id": "n1"}}, admin)
    response = await post(
        checkstack_http, "notes", {"updateNote": {"id": "n1", "title": "taken"}}, admin
    )
    assert_error(response, 409, "CONFLICT", "Title taken is reserved", procedure="updateNote")


async def test_uniqueness_violation_is_a_conflict_not_a_500(
    checkstack_http, checkstack_auth, checkstack_host
):
    admin = checkstack_auth.admin()
    await post(checkstack_http, "notes", {"createNote": {"title": "same"}}, admin)
    response = await post(checkstack_http, "notes", {"createNote": {"title": "same"}}, admin)
    assert_error(response, 409, "CONFLICT", "The change conflicts with existing data")
    assert await note_titles(checkstack_host) == ["same"]


# -- INTERNAL_SERVER_ERROR ----------------------------------------------------------------------


async def test_unexpected_error_is_logged_with_request_id_and_never_leaks(
    checkstack_http, checkstack_auth, caplog
):
    caplog.set_level(logging.ERROR)
    response = await post(
        checkstack_http,
        "notes",
        {"explode": {"title": "boom"}},
        checkstack_auth.admin(),
        headers={"x-request-id": "req-42"},
    )
    body = assert_error(
        response, 500, "INTERNAL_SERVER_ERROR", "Internal server error", procedure="explode"
    )
    assert body == {
        "code": "INTERNAL_SERVER_ERROR",
        "message": "Internal server error",
        "procedure": "explode",
    }
    assert "hunter2" not in response.text
    assert response.headers["x-request-id"] == "req-42"
    failures = [r for r in caplog.records if r.exc_info and "hunter2" in str(r.exc_info[1])]
    assert failures and getattr(failures[0], "request_id", None) == "req-42"


# -- SERVICE_UNAVAILABLE -------------------------------------------------------------------------


async def test_failed_plugin_answers_503_and_the_rest_works(checkstack_settings, tmp_path):
    import httpx
    from checkstack_hello import plugin as hello

    from checkstack_core import Contract, Plugin, query
    from checkstack_core.app import create_app
    from checkstack_core.host import Host

    broken = Plugin(
        id="broken", name="Broken", contract=Contract("broken", procedures=[query("ping")])
    )
    checkstack_settings.strict_plugins = False
    host = Host(checkstack_settings, plugins=[hello, broken], discover_installed=False)
    assert host.plugins["broken"].status == "failed"
    assert "Plugin declares procedures but no handlers" in (host.plugins["broken"].error or "")
    await host.start()
    try:
        transport = httpx.ASGITransport(app=create_app(host))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await post(http, "broken", {"ping": {}})
            assert_error(response, 503, "SERVICE_UNAVAILABLE", "Plugin broken is unavailable")
            assert (await post(http, "hello", {"getGreeting": {}})).status_code == 200
    finally:
        await host.stop()


# -- order of checks ---------------------------------------------------------------------------


async def test_parse_comes_before_authentication(checkstack_http):
    response = await post(checkstack_http, "hello", b"{", headers={"authorization": "Bearer bad"})
    assert response.json()["code"] == "BAD_REQUEST"


async def test_authentication_comes_before_finding_the_procedure(checkstack_http):
    response = await post(
        checkstack_http, "hello", {"nope": {}}, headers={"authorization": "Bearer bad"}
    )
    assert response.json()["code"] == "UNAUTHORIZED"


async def test_rules_come_before_validation(checkstack_http, checkstack_auth):
    reader = checkstack_auth.application(READ)
    response = await post(checkstack_http, "hello", {"setGreeting": {"bad": 1}}, reader)
    assert response.json()["code"] == "FORBIDDEN"
    anonymous = await post(checkstack_http, "hello", {"setGreeting": {"bad": 1}})
    assert anonymous.json()["code"] == "UNAUTHORIZED"


async def test_validation_comes_before_the_resource_precheck(checkstack_http, checkstack_auth):
    checkstack_auth.set_team_only("notes.note", "n1")
    checkstack_auth.grant("t", "notes.note", "n1", "read")
    user = checkstack_auth.user(READ)
    response = await post(checkstack_http, "notes", {"getNote": {"id": "n1", "extra": 1}}, user)
    assert response.json()["code"] == "BAD_REQUEST"


# -- batches are atomic --------------------------------------------------------------------------


async def test_batch_with_an_unauthorized_call_runs_nothing(
    checkstack_http, checkstack_auth, checkstack_host
):
    writer = checkstack_auth.application(MANAGE)  # may create notes, may not read them
    response = await post(
        checkstack_http, "notes", {"createNote": {"title": "x"}, "listNotes": {}}, writer
    )
    # listNotes is filtered, not forbidden; whoAmI (users only) is forbidden for an application:
    assert response.status_code == 200
    response = await post(
        checkstack_http, "notes", {"createNote": {"title": "y"}, "whoAmI": {}}, writer
    )
    assert_error(response, 403, "FORBIDDEN", "This procedure is for users only", procedure="whoAmI")
    assert await note_titles(checkstack_host) == ["x"]


async def test_batch_with_an_invalid_input_runs_nothing(
    checkstack_http, checkstack_auth, checkstack_host
):
    admin = checkstack_auth.admin()
    response = await post(
        checkstack_http, "notes", {"createNote": {"title": "x"}, "updateNote": {"id": 1}}, admin
    )
    assert_error(response, 400, "BAD_REQUEST", "Input validation failed", procedure="updateNote")
    assert await note_titles(checkstack_host) == []


async def test_batch_with_a_failing_handler_rolls_back_earlier_writes(
    checkstack_http, checkstack_auth, checkstack_host
):
    admin = checkstack_auth.admin()
    response = await post(
        checkstack_http,
        "notes",
        {"createNote": {"title": "kept?"}, "explode": {"title": "boom"}},
        admin,
    )
    assert_error(
        response, 500, "INTERNAL_SERVER_ERROR", "Internal server error", procedure="explode"
    )
    assert await note_titles(checkstack_host) == []


async def test_batch_with_a_not_found_rolls_back(checkstack_http, checkstack_auth, checkstack_host):
    admin = checkstack_auth.admin()
    response = await post(
        checkstack_http,
        "notes",
        {"createNote": {"title": "x"}, "deleteNotes": {"ids": ["ghost"]}},
        admin,
    )
    assert_error(response, 404, "NOT_FOUND", "Note not found: ghost", procedure="deleteNotes")
    assert await note_titles(checkstack_host) == []


async def test_events_of_a_rolled_back_batch_are_never_emitted(
    checkstack_http, checkstack_auth, checkstack_host
):
    seen: list[Any] = []
    original = checkstack_host.events.emit

    async def spy(name: str, payload: Any) -> Any:
        seen.append(name)
        return await original(name, payload)

    checkstack_host.events.emit = spy
    admin = checkstack_auth.admin()
    await post(
        checkstack_http, "notes", {"createNote": {"title": "x"}, "explode": {"title": "y"}}, admin
    )
    assert seen == []
    await post(checkstack_http, "notes", {"createNote": {"title": "z"}}, admin)
    assert seen == ["notes.note.created"]


async def test_nul_characters_are_refused_but_a_literal_backslash_u_is_not(
    checkstack_http, checkstack_auth
):
    admin = checkstack_auth.admin()
    response = await post(checkstack_http, "hello", {"getGreeting": {"name": "a\x00b"}}, admin)
    body = assert_error(response, 400, "BAD_REQUEST", "Input validation failed")
    assert body["data"]["issues"] == [
        {"message": "Text must not contain NUL characters", "path": ["name"]}
    ]
    literal = await post(checkstack_http, "hello", {"getGreeting": {"name": "\\u0000"}}, admin)
    assert literal.json() == {"getGreeting": {"message": "Hello, \\u0000!"}}


@pytest.mark.parametrize(
    ("call", "path"),
    [
        ({"createNote": {"id": "n1", "title": "t\x00"}}, ["title"]),  # not the first field
        ({"deleteNotes": {"ids": ["n1", "n\x002"]}}, ["ids", 1]),  # in a list, not first
        ({"createNote": {"title": "t", "odd\x00key": "x"}}, ["odd\x00key"]),  # in a key
    ],
)
async def test_a_nul_character_anywhere_is_refused_with_its_path(
    checkstack_http, checkstack_auth, call, path
):
    admin = checkstack_auth.admin()
    response = await post(checkstack_http, "notes", call, admin)
    body = assert_error(response, 400, "BAD_REQUEST", "Input validation failed")
    assert body["data"]["issues"] == [
        {"message": "Text must not contain NUL characters", "path": path}
    ]


class TestWholeNumbers:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema's "integer" says)."""

    @pytest.fixture
    def checkstack_plugins(self, checkstack_plugins: list[Any]) -> list[Any]:
        from checkstack_core import Contract, Handlers, Plugin, Schema, query

        class Page(Schema):
            offset: int = 0
            scale: float = 1.0
            extra: dict[str, Any] = {}
            sizes: list[int] = []
            tags: list[str] = []

        contract = Contract("pages", procedures=[query("getPage", input=Page, output=Page)])
        handlers = Handlers(contract)

        @handlers.implement("getPage")
        async def get_page(ctx: Any, page: Page) -> Page:
            return page

        plugin = Plugin(id="pages", name="Pages", contract=contract, handlers=handlers)
        return [*checkstack_plugins, plugin]

    async def test_a_whole_float_is_taken_for_an_int(self, checkstack_http, checkstack_auth):
        caller = checkstack_auth.user()
        body = {"getPage": {"offset": 20.0, "scale": 2, "extra": {"n": 1.5, "m": 3.0}}}
        response = await checkstack_http.post("/api/pages/", json=body, headers=caller.headers)
        assert response.status_code == 200, response.text
        page = response.json()["getPage"]
        assert page["offset"] == 20 and isinstance(page["offset"], int)
        assert page["scale"] == 2.0 and page["extra"]["n"] == 1.5

    async def test_whole_floats_in_a_list_are_ints_too(self, checkstack_http, checkstack_auth):
        caller = checkstack_auth.user()
        body = {"getPage": {"sizes": [10.0, 20.0], "tags": ["a"]}}
        response = await checkstack_http.post("/api/pages/", json=body, headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.json()["getPage"]["sizes"] == [10, 20]
        alone = {"getPage": {"offset": 20.0}}  # every field of the object changes
        response = await checkstack_http.post("/api/pages/", json=alone, headers=caller.headers)
        assert response.json()["getPage"]["offset"] == 20
        mixed = {"getPage": {"sizes": [10.0, 20], "tags": ["a"]}}
        response = await checkstack_http.post("/api/pages/", json=mixed, headers=caller.headers)
        assert response.json()["getPage"]["sizes"] == [10, 20]

    async def test_a_whole_float_does_not_excuse_another_field(
        self, checkstack_http, checkstack_auth
    ):
        """The retry with ints still refuses what is wrong elsewhere, with its own path."""
        caller = checkstack_auth.user()
        body = {"getPage": {"offset": 20.0, "tags": [1]}}
        response = await checkstack_http.post("/api/pages/", json=body, headers=caller.headers)
        assert_error(
            response,
            400,
            "BAD_REQUEST",
            "Input validation failed",
            procedure="getPage",
            data={"issues": [{"message": "Expected `str`, got `int`", "path": ["tags", 0]}]},
        )

    async def test_a_fraction_is_still_refused(self, checkstack_http, checkstack_auth):
        caller = checkstack_auth.user()
        response = await checkstack_http.post(
            "/api/pages/", json={"getPage": {"offset": 20.5}}, headers=caller.headers
        )
        assert_error(
            response,
            400,
            "BAD_REQUEST",
            "Input validation failed",
            procedure="getPage",
            data={"issues": [{"message": "Expected `int`, got `float`", "path": ["offset"]}]},
        )
