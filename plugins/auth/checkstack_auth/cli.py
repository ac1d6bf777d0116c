"""``checkstack admin``, ``checkstack apps`` and ``checkstack roles``: bootstrap and automate
without a browser, directly against the configured database (SPEC §5.2).

The commands act as the auth plugin itself, so they are not limited by any role: whoever can run
them can read the database anyway. ``apps create`` and ``apps regenerate`` print the token once,
alone on the last line (``--json``: an object with ``id`` and ``token``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import click
import msgspec

from checkstack_core.errors import RpcError

T = TypeVar("T")

PASSWORD_ENV = "CHECKSTACK_ADMIN_PASSWORD"


def _as_auth(fn: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``fn(ctx)`` in one transaction on a started host, acting as the auth plugin."""
    from checkstack_core.cli import open_host, run

    async def go() -> T:
        async with open_host() as host:
            record = host.plugins.get("auth")
            if record is None or record.status != "active":
                reason = record.error if record is not None else "not installed"
                raise click.ClickException(f"The auth plugin is not active: {reason}")
            async with host.service_context("auth") as ctx:
                return await fn(ctx)

    try:
        return run(go())
    except RpcError as error:
        issues = (error.data or {}).get("issues") or []
        details = "".join(f"\n  {issue['message']}" for issue in issues)
        raise click.ClickException(f"{error.message}{details}") from None


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(msgspec.to_builtins(value), indent=2))


def register(cli: click.Group) -> None:
    """Add the auth plugin's command groups to the root ``checkstack`` group."""
    cli.add_command(admin)
    cli.add_command(apps)
    cli.add_command(roles)


# -- admin -----------------------------------------------------------------------------------------


@click.group()
def admin() -> None:
    """Administrators (people who log in to Checkstack)."""


@admin.command("create")
@click.option("--email", required=True, help="Email address to log in with.")
@click.option("--name", default="", help="Display name (default: the part before @).")
@click.option(
    "--password-env",
    default=PASSWORD_ENV,
    show_default=True,
    help="Read the password from this environment variable when it is set (automation); "
    "otherwise prompt for it.",
)
def admin_create(email: str, name: str, password_env: str) -> None:
    """Create an administrator (works before and after onboarding)."""
    from . import passwords, service
    from .models import ADMIN_ROLE

    password = os.environ.get(password_env) or None
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = passwords.password_problems(password, email=email)
    if problems:
        raise click.ClickException("Password rejected:\n  " + "\n  ".join(problems))

    async def create(ctx: Any) -> Any:
        return await service.create_user(ctx, email, password, name=name, roles=[ADMIN_ROLE])

    user = _as_auth(create)
    click.echo(f"Created administrator {user.email} ({user.id})")


# -- apps ------------------------------------------------------------------------------------------


@click.group()
def apps() -> None:
    """External applications (API keys)."""


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"not an ISO 8601 time: {value}", param_hint="--expires-at"
        ) from None
    if parsed.tzinfo is None:
        raise click.BadParameter(
            "give a time zone, e.g. 2030-01-01T00:00:00Z", param_hint="--expires-at"
        )
    return parsed


@apps.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the application is for.")
@click.option("--role", "role_refs", multiple=True, help="Role id or name to give (repeatable).")
@click.option("--team", "team_ids", multiple=True, help="Team id to join (repeatable).")
@click.option("--expires-at", default=None, help="ISO 8601 time after which the key fails.")
@click.option("--json", "as_json", is_flag=True, help="Print {id, token, ...} as JSON.")
def apps_create(
    name: str,
    description: str,
    role_refs: tuple[str, ...],
    team_ids: tuple[str, ...],
    expires_at: str | None,
    as_json: bool,
) -> None:
    """Create an application; its token is printed once, alone on the last line."""
    from . import service

    expiry = _parse_time(expires_at)

    async def create(ctx: Any) -> Any:
        info, token = await service.create_application(
            ctx,
            name,
            description=description,
            roles=role_refs,
            teams=team_ids,
            expires_at=expiry,
        )
        names = [(await service.resolve_role(ctx.session, r)).name for r in info.roles]
        return info, token, names

    info, token, role_names = _as_auth(create)
    if as_json:
        _echo_json({"id": info.id, "token": token, "name": info.name, "roles": info.roles})
        return
    click.echo(f"Created application {info.name} ({info.id})")
    click.echo(f"Roles: {', '.join(sorted(role_names))}")
    click.echo("Token (shown only now; store it in a secret manager):")
    click.echo(token)


@apps.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def apps_list(as_json: bool) -> None:
    """List applications with roles, teams and when they were last used (never a secret)."""
    from . import service

    async def applications(ctx: Any) -> tuple[Any, dict[str, str]]:
        found = await service.list_applications(ctx)
        return found, {role.id: role.name for role in await service.list_roles(ctx)}

    found, role_names = _as_auth(applications)
    if as_json:
        _echo_json({"applications": found})  # role ids, as the API answers
        return
    for app in found:
        last = app.last_used_at.isoformat() if app.last_used_at else "never"
        expiry = f", expires {app.expires_at.isoformat()}" if app.expires_at else ""
        # Role names, as `apps create` prints them: the ids of custom roles are opaque.
        names = sorted(role_names.get(role, role) for role in app.roles)
        click.echo(
            f"{app.id}  {app.name}  roles={','.join(names) or '-'}  "
            f"teams={','.join(app.teams) or '-'}  last used {last}{expiry}"
        )


@apps.command("regenerate")
@click.argument("app_id")
@click.option("--json", "as_json", is_flag=True, help="Print {id, token} as JSON.")
def apps_regenerate(app_id: str, as_json: bool) -> None:
    """Issue a new token for APP_ID; the old one fails from the next request on."""
    from . import service

    async def regenerate(ctx: Any) -> str:
        return await service.regenerate_secret(ctx, app_id)

    token = _as_auth(regenerate)
    if as_json:
        _echo_json({"id": app_id, "token": token})
        return
    click.echo(f"New token for application {app_id} (shown only now):")
    click.echo(token)


@apps.command("delete")
@click.argument("app_id")
def apps_delete(app_id: str) -> None:
    """Delete APP_ID; its token fails from the next request on."""
    from . import service

    async def delete(ctx: Any) -> None:
        await service.delete_application(ctx, app_id)

    _as_auth(delete)
    click.echo(f"Deleted application {app_id}")


# -- roles -----------------------------------------------------------------------------------------


@click.group()
def roles() -> None:
    """Roles and the access rules they hold."""


@roles.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def roles_list(as_json: bool) -> None:
    """List roles with their rules."""
    from . import service

    found = _as_auth(service.list_roles)
    if as_json:
        _echo_json({"roles": found})
        return
    for role in found:
        kind = "system" if role.system else "custom"
        rules = "every rule" if role.id == "admin" else (", ".join(role.rules) or "-")
        click.echo(f"{role.id}  {role.name} ({kind}): {rules}")


@roles.command("rules")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def roles_rules(as_json: bool) -> None:
    """List every access rule of the active plugins."""
    from . import service

    async def rules(ctx: Any) -> Any:
        return service.list_rules(ctx)

    found = _as_auth(rules)
    if as_json:
        _echo_json({"rules": found})
        return
    for rule in found:
        flags = ",".join(f for f, on in (("default", rule.default), ("public", rule.public)) if on)
        click.echo(f"{rule.id}{f' [{flags}]' if flags else ''}: {rule.description}")


@roles.command("create")
@click.argument("name")
@click.option("--description", default="", help="What the role is for.")
@click.option("--rule", "rules", multiple=True, help="Qualified rule id to hold (repeatable).")
def roles_create(name: str, description: str, rules: tuple[str, ...]) -> None:
    """Create a custom role NAME holding the given rules."""
    from . import service

    async def create(ctx: Any) -> Any:
        return await service.create_role(ctx, name, description, rules)

    role = _as_auth(create)
    click.echo(f"Created role {role.name} ({role.id}): {', '.join(role.rules) or '-'}")


def _change_rules(role_ref: str, rules: tuple[str, ...], *, add: bool) -> Any:
    from . import service

    async def change(ctx: Any) -> Any:
        role = await service.resolve_role(ctx.session, role_ref)
        held = (await service.role_rules(ctx.session, [role.id]))[role.id]
        wanted = held | set(rules) if add else held - set(rules)
        return await service.update_role(ctx, role.id, rules=sorted(wanted))

    return _as_auth(change)


@roles.command("grant")
@click.argument("role")
@click.argument("rules", nargs=-1, required=True)
def roles_grant(role: str, rules: tuple[str, ...]) -> None:
    """Add RULES (qualified ids) to ROLE (id or name)."""
    info = _change_rules(role, rules, add=True)
    click.echo(f"Role {info.name} now holds: {', '.join(info.rules) or '-'}")


@roles.command("revoke")
@click.argument("role")
@click.argument("rules", nargs=-1, required=True)
def roles_revoke(role: str, rules: tuple[str, ...]) -> None:
    """Remove RULES from ROLE (removals from users/anonymous survive restarts)."""
    info = _change_rules(role, rules, add=False)
    click.echo(f"Role {info.name} now holds: {', '.join(info.rules) or '-'}")


@roles.command("delete")
@click.argument("role")
def roles_delete(role: str) -> None:
    """Delete the custom role ROLE (id or name)."""
    from . import service

    async def delete(ctx: Any) -> str:
        found = await service.resolve_role(ctx.session, role)
        await service.delete_role(ctx, found.id)
        return found.name

    click.echo(f"Deleted role {_as_auth(delete)}")
