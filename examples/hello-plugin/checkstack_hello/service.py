"""Domain logic of the hello plugin: reading and replacing the template."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from checkstack_core.db import utcnow
from checkstack_core.errors import validation_error

from .models import DEFAULT_TEMPLATE, GreetingTemplate

MAX_TEMPLATE_LENGTH = 500


async def current_template(session: AsyncSession) -> str:
    row = await session.get(GreetingTemplate, 1)
    return row.template if row is not None else DEFAULT_TEMPLATE


def render(template: str, name: str) -> str:
    # str.replace, not str.format: a template is user data and must not reach format fields.
    return template.replace("{name}", name)


def check_template(template: str) -> None:
    problems = []
    if "{name}" not in template:
        problems.append("The template must contain {name}")
    if len(template) > MAX_TEMPLATE_LENGTH:
        problems.append(f"The template must be at most {MAX_TEMPLATE_LENGTH} characters")
    if problems:
        raise validation_error([{"message": m, "path": ["template"]} for m in problems])


async def replace_template(session: AsyncSession, template: str) -> str:
    check_template(template)
    row = await session.get(GreetingTemplate, 1)
    if row is None:
        row = GreetingTemplate(id=1, template=template)
    else:
        row.template = template
        row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    return template
