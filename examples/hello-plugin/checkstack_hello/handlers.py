"""Implementations of the hello plugin's procedures."""

from __future__ import annotations

from checkstack_core import Context, Handlers

from . import service
from .contract import GREETING_CHANGED, Greeting, GreetingInput, Template, TemplateInput, contract

handlers = Handlers(contract)


@handlers.implement("getGreeting")
async def get_greeting(ctx: Context, input: GreetingInput) -> Greeting:
    template = await service.current_template(ctx.session)
    return Greeting(message=service.render(template, input.name))


@handlers.implement("setGreeting")
async def set_greeting(ctx: Context, input: TemplateInput) -> Template:
    template = await service.replace_template(ctx.session, input.template)
    await ctx.emit(GREETING_CHANGED, {"template": template})
    return Template(template=template)
