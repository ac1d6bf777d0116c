"""Forms generated from a JSON schema (msgspec's, as a strategy's config schema is): widgets,
secrets never rendered, and the submitted form read back into what validation accepts."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from jinja2 import Environment, FileSystemLoader, PrefixLoader

import checkstack_core.ui.server as ui_server
from checkstack_core import Schema
from checkstack_core.ui.schema_form import MASK, form_fields, read_form


class Tls(Schema):
    verify: bool = True
    ca_file: str | None = None


class HttpConfig(Schema):
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expected_status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 200
    warn_latency_ms: float | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    body_contains: list[str] = msgspec.field(default_factory=list)
    token: Annotated[str | None, msgspec.Meta(extra_json_schema={"x-secret": True})] = None
    tls: Tls = msgspec.field(default_factory=Tls)
    extra: dict[str, int] = msgspec.field(default_factory=dict)


SCHEMA = msgspec.json.schema(HttpConfig)


class FakeForm(dict):  # type: ignore[type-arg]
    pass


def render(fields: list) -> str:  # type: ignore[type-arg]
    env = Environment(
        loader=PrefixLoader({"core": FileSystemLoader(ui_server.HERE / "templates")}),
        autoescape=True,
    )
    template = env.from_string(
        '{% from "core/schema_form.html" import schema_fields %}{{ schema_fields(fields) }}'
    )
    return template.render(fields=fields)


def test_widgets_follow_the_schema():
    fields = {f.name: f for f in form_fields(SCHEMA)}
    assert fields["config.url"].kind == "text" and fields["config.url"].required
    assert fields["config.method"].kind == "select"
    assert fields["config.method"].options == ["GET", "HEAD", "POST"]
    assert fields["config.expectedStatus"].kind == "number"
    assert fields["config.expectedStatus"].step == "1"
    assert fields["config.warnLatencyMs"].kind == "number"
    assert fields["config.headers"].kind == "pairs"
    assert fields["config.bodyContains"].kind == "lines"
    assert fields["config.token"].kind == "password"
    assert fields["config.tls"].kind == "group"
    assert [c.name for c in fields["config.tls"].children] == [
        "config.tls.verify",
        "config.tls.caFile",
    ]
    assert fields["config.extra"].kind == "json"
    html = render(list(fields.values()))
    assert '<label for="sf-config-url">Url</label>' in html
    assert '<input id="sf-config-token" name="config.token" type="password"' in html


def test_a_stored_secret_is_never_rendered():
    stored = {"url": "https://example.com", "token": "s3cr3t-value", "headers": {"A": "1"}}
    fields = form_fields(SCHEMA, stored)
    html = render(fields)
    assert "s3cr3t-value" not in html
    assert f'value="{MASK}"' in html
    assert "A: 1" in html


def test_the_form_reads_back_into_a_valid_config():
    form = FakeForm(
        {
            "config.url": "https://example.com/health",
            "config.method": "HEAD",
            "config.expectedStatus": "204",
            "config.warnLatencyMs": "",
            "config.headers": "Accept: application/json\nX-Trace: on",
            "config.bodyContains": "ok\n\n  ready ",
            "config.token": "new-token",
            "config.tls.verify": "on",
            "config.tls.caFile": "",
            "config.extra": '{"retries": 2}',
        }
    )
    config = read_form(SCHEMA, form)
    assert config == {
        "url": "https://example.com/health",
        "method": "HEAD",
        "expectedStatus": 204,
        "headers": {"Accept": "application/json", "X-Trace": "on"},
        "bodyContains": ["ok", "ready"],
        "token": "new-token",
        "tls": {"verify": True},
        "extra": {"retries": 2},
    }
    assert msgspec.convert(config, HttpConfig).expected_status == 204


def test_bad_values_are_left_for_validation_to_name():
    form = FakeForm({"config.url": "x", "config.expectedStatus": "abc", "config.extra": "{"})
    config = read_form(SCHEMA, form)
    assert config["expectedStatus"] == "abc" and config["extra"] == "{"
    try:
        msgspec.convert(config, HttpConfig)
    except msgspec.ValidationError as error:
        assert "expectedStatus" in str(error)
    else:  # pragma: no cover
        raise AssertionError("a text status should not validate")


def test_validation_messages_land_beside_the_generated_fields():
    from checkstack_core.errors import validation_error
    from checkstack_core.ui import field_errors

    error = validation_error(
        [{"message": "Expected `int`, got `str`", "path": ["config", "expectedStatus"]}]
    )
    errors = field_errors(error, full_path=True)
    assert errors == {"config.expectedStatus": "Expected `int`, got `str`"}
    env = Environment(
        loader=PrefixLoader({"core": FileSystemLoader(ui_server.HERE / "templates")}),
        autoescape=True,
    )
    html = env.from_string(
        '{% from "core/schema_form.html" import schema_fields %}{{ schema_fields(fields, errors) }}'
    ).render(fields=form_fields(SCHEMA), errors=errors)
    assert 'id="sf-config-expectedStatus-error">Expected `int`, got `str`</p>' in html
    assert 'aria-describedby="sf-config-expectedStatus-error"' in html


class Probe(Schema):
    codes: list[int] = msgspec.field(default_factory=list)
    secret_headers: dict[
        str, Annotated[str, msgspec.Meta(extra_json_schema={"x-secret": True})]
    ] = msgspec.field(default_factory=dict)


PROBE = msgspec.json.schema(Probe)


def test_a_map_of_secrets_is_a_password_input_per_entry():
    from checkstack_core.ui.view import Form

    stored = {"codes": [200, 204], "secretHeaders": {"Authorization": "Bearer s3cr3t"}}
    fields = {f.name: f for f in form_fields(PROBE, stored)}
    assert fields["config.codes"].kind == "lines" and fields["config.codes"].value == "200\n204"
    assert fields["config.secretHeaders"].kind == "secret_pairs"
    html = render(list(fields.values()))
    assert "s3cr3t" not in html
    assert 'name="config.secretHeaders.name" type="text" value="Authorization"' in html
    assert html.count('name="config.secretHeaders.value" type="password"') == 2  # + a new row
    assert f'type="password" autocomplete="new-password" value="{MASK}"' in html
    form = Form(
        {
            "config.codes": ["200\n301\nabc"],
            "config.secretHeaders.name": ["Authorization", " X-Key ", ""],
            "config.secretHeaders.value": [MASK, "k3y", "ignored"],
        }
    )
    assert read_form(PROBE, form) == {
        "codes": [200, 301, "abc"],
        "secretHeaders": {"Authorization": MASK, "X-Key": "k3y"},
    }
