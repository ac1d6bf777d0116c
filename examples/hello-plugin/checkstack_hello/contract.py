"""The hello plugin's contract: access rules, input/output types and procedures.

Importable without the server: a client or another plugin can read it.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from checkstack_core import AccessRule, Contract, EventType, Schema, mutation, query

read = AccessRule("hello", "read", "Read the greeting", default=True, public=True)
manage = AccessRule("hello", "manage", "Change the greeting template")


class GreetingInput(Schema):
    name: str = "world"


class Greeting(Schema):
    message: str


class TemplateInput(Schema):
    # The service checks both rules (its messages say which); the schema states them for clients.
    template: Annotated[str, Meta(extra_json_schema={"pattern": r"\{name\}", "maxLength": 500})]


class Template(Schema):
    template: str


#: Emitted after the template changed: ``{"template": str}``.
GREETING_CHANGED = "hello.greeting.changed"


contract = Contract(
    "hello",
    rules=[read, manage],
    procedures=[
        query(
            "getGreeting",
            input=GreetingInput,
            output=Greeting,
            caller="public",
            rules=[read],
            description="Greet someone with the stored template.",
        ),
        mutation(
            "setGreeting",
            input=TemplateInput,
            output=Template,
            rules=[manage],
            description="Replace the greeting template; it must contain {name}.",
        ),
    ],
    events=[EventType(GREETING_CHANGED, "The greeting template changed", payload="{template}")],
)
