"""Implementations of the auth plugin's procedures (the logic lives in :mod:`.service`).

Every handler is registered through :func:`implement`, which first runs the target-relative
check (:func:`.service.targets.authorize`): the caller must hold at least what the input names.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from msgspec import UNSET

from checkstack_core import Context, Handlers

from . import service
from .contract import (
    ApplicationInfo,
    ApplicationList,
    ApplicationToken,
    ChangePasswordInput,
    CreateApplicationInput,
    CreatedApplication,
    CreateRoleInput,
    CreateTeamInput,
    CreateUserInput,
    CurrentUser,
    Deleted,
    Done,
    GrantInput,
    IdInput,
    LoginInput,
    OnboardingInput,
    OnboardingStatus,
    ResourceAccessInfo,
    ResourceInput,
    RevokeGrantInput,
    RoleInfo,
    RoleList,
    RuleList,
    SessionList,
    SetUserPasswordInput,
    SetUserRolesInput,
    TeamDetail,
    TeamInfo,
    TeamList,
    TeamManagerInput,
    TeamMemberInput,
    TeamOnlyInput,
    UpdateApplicationInput,
    UpdateRoleInput,
    UpdateTeamInput,
    UserInfo,
    UserList,
    contract,
)
from .service import targets

handlers = Handlers(contract)

Handler = Callable[[Context, Any], Awaitable[Any]]


def implement(name: str) -> Callable[[Handler], Handler]:
    """``handlers.implement(name)``, with the target check run before the handler."""
    register = handlers.implement(name)

    def decorate(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(ctx: Context, input: Any) -> Any:
            await targets.authorize(ctx, name, input)
            return await fn(ctx, input)

        register(guarded)
        return fn

    return decorate


def _given(value: Any) -> Any:
    """``None`` for a field the caller left out (msgspec ``UNSET``)."""
    return None if value is UNSET else value


# -- onboarding and sessions -----------------------------------------------------------------------


@implement("getOnboardingStatus")
async def get_onboarding_status(ctx: Context, _input: None) -> OnboardingStatus:
    return OnboardingStatus(needs_onboarding=await service.count_users(ctx.session) == 0)


@implement("completeOnboarding")
async def complete_onboarding(ctx: Context, input: OnboardingInput) -> CurrentUser:
    user = await service.complete_onboarding(ctx, input.email, input.password, input.name)
    await service.open_session(ctx, user)
    return await service.current_user(ctx, user.id)


@implement("login")
async def login(ctx: Context, input: LoginInput) -> CurrentUser:
    user = await service.login(ctx, input.email, input.password)
    return await service.current_user(ctx, user.id)


@implement("logout")
async def logout(ctx: Context, _input: None) -> Done:
    await service.logout(ctx)
    return Done()


@implement("getCurrentUser")
async def get_current_user(ctx: Context, _input: None) -> CurrentUser:
    return await service.current_user(ctx, ctx.principal.id or "")


@implement("changePassword")
async def change_password(ctx: Context, input: ChangePasswordInput) -> Done:
    await service.change_password(ctx, input.current_password, input.new_password)
    return Done()


@implement("getSessions")
async def get_sessions(ctx: Context, _input: None) -> SessionList:
    return SessionList(sessions=await service.list_sessions(ctx))


@implement("revokeSession")
async def revoke_session(ctx: Context, input: IdInput) -> Deleted:
    await service.revoke_session(ctx, input.id)
    return Deleted(id=input.id)


# -- users -----------------------------------------------------------------------------------------


@implement("getUsers")
async def get_users(ctx: Context, _input: None) -> UserList:
    return UserList(users=await service.list_users(ctx))


@implement("createUser")
async def create_user(ctx: Context, input: CreateUserInput) -> UserInfo:
    user = await service.create_user(
        ctx, input.email, input.password, name=input.name, roles=input.roles
    )
    return await service.user_info(ctx, user)


@implement("setUserRoles")
async def set_user_roles(ctx: Context, input: SetUserRolesInput) -> UserInfo:
    user = await service.set_user_roles(ctx, input.id, input.roles)
    return await service.user_info(ctx, user)


@implement("setUserPassword")
async def set_user_password(ctx: Context, input: SetUserPasswordInput) -> Done:
    await service.set_user_password(ctx, input.id, input.password)
    return Done()


@implement("revokeUserSessions")
async def revoke_user_sessions(ctx: Context, input: IdInput) -> Done:
    await service.revoke_user_sessions(ctx, input.id)
    return Done()


@implement("deleteUser")
async def delete_user(ctx: Context, input: IdInput) -> Deleted:
    await service.delete_user(ctx, input.id)
    return Deleted(id=input.id)


# -- roles and rules -------------------------------------------------------------------------------


@implement("getRules")
async def get_rules(ctx: Context, _input: None) -> RuleList:
    return RuleList(rules=service.list_rules(ctx))


@implement("getRoles")
async def get_roles(ctx: Context, _input: None) -> RoleList:
    return RoleList(roles=await service.list_roles(ctx))


@implement("createRole")
async def create_role(ctx: Context, input: CreateRoleInput) -> RoleInfo:
    return await service.create_role(ctx, input.name, input.description, input.rules)


@implement("updateRole")
async def update_role(ctx: Context, input: UpdateRoleInput) -> RoleInfo:
    return await service.update_role(
        ctx,
        input.id,
        name=_given(input.name),
        description=_given(input.description),
        rules=_given(input.rules),
    )


@implement("deleteRole")
async def delete_role(ctx: Context, input: IdInput) -> Deleted:
    await service.delete_role(ctx, input.id)
    return Deleted(id=input.id)


# -- applications ----------------------------------------------------------------------------------


@implement("getApplications")
async def get_applications(ctx: Context, _input: None) -> ApplicationList:
    return ApplicationList(applications=await service.list_applications(ctx))


@implement("createApplication")
async def create_application(ctx: Context, input: CreateApplicationInput) -> CreatedApplication:
    info, token = await service.create_application(
        ctx,
        input.name,
        description=input.description,
        roles=input.roles,
        teams=input.teams,
        expires_at=input.expires_at,
    )
    return CreatedApplication(application=info, token=token)


@implement("updateApplication")
async def update_application(ctx: Context, input: UpdateApplicationInput) -> ApplicationInfo:
    return await service.update_application(
        ctx,
        input.id,
        name=_given(input.name),
        description=_given(input.description),
        roles=_given(input.roles),
        teams=_given(input.teams),
        expires_at=_given(input.expires_at),
        change_expiry=input.expires_at is not UNSET,
    )


@implement("regenerateApplicationSecret")
async def regenerate_application_secret(ctx: Context, input: IdInput) -> ApplicationToken:
    return ApplicationToken(id=input.id, token=await service.regenerate_secret(ctx, input.id))


@implement("deleteApplication")
async def delete_application(ctx: Context, input: IdInput) -> Deleted:
    await service.delete_application(ctx, input.id)
    return Deleted(id=input.id)


# -- teams and resource access ---------------------------------------------------------------------


@implement("getTeams")
async def get_teams(ctx: Context, _input: None) -> TeamList:
    return TeamList(teams=await service.list_teams(ctx))


@implement("getTeam")
async def get_team(ctx: Context, input: IdInput) -> TeamDetail:
    return await service.team_detail(ctx, input.id)


@implement("createTeam")
async def create_team(ctx: Context, input: CreateTeamInput) -> TeamInfo:
    team = await service.create_team(ctx, input.name, input.description)
    return await service.team_info(ctx, team)


@implement("updateTeam")
async def update_team(ctx: Context, input: UpdateTeamInput) -> TeamInfo:
    team = await service.update_team(
        ctx, input.id, name=_given(input.name), description=_given(input.description)
    )
    return await service.team_info(ctx, team)


@implement("deleteTeam")
async def delete_team(ctx: Context, input: IdInput) -> Deleted:
    await service.delete_team(ctx, input.id)
    return Deleted(id=input.id)


@implement("addTeamMember")
async def add_team_member(ctx: Context, input: TeamMemberInput) -> TeamDetail:
    await service.change_member(ctx, input.id, input.user_id, input.application_id, add=True)
    return await service.team_detail(ctx, input.id)


@implement("removeTeamMember")
async def remove_team_member(ctx: Context, input: TeamMemberInput) -> TeamDetail:
    await service.change_member(ctx, input.id, input.user_id, input.application_id, add=False)
    return await service.team_detail(ctx, input.id)


@implement("addTeamManager")
async def add_team_manager(ctx: Context, input: TeamManagerInput) -> TeamDetail:
    await service.change_manager(ctx, input.id, input.user_id, add=True)
    return await service.team_detail(ctx, input.id)


@implement("removeTeamManager")
async def remove_team_manager(ctx: Context, input: TeamManagerInput) -> TeamDetail:
    await service.change_manager(ctx, input.id, input.user_id, add=False)
    return await service.team_detail(ctx, input.id)


@implement("getResourceAccess")
async def get_resource_access(ctx: Context, input: ResourceInput) -> ResourceAccessInfo:
    return await service.resource_access(ctx, input.resource_type, input.resource_id)


@implement("grantTeamAccess")
async def grant_team_access(ctx: Context, input: GrantInput) -> ResourceAccessInfo:
    return await service.grant(
        ctx, input.team_id, input.resource_type, input.resource_id, input.level
    )


@implement("revokeTeamAccess")
async def revoke_team_access(ctx: Context, input: RevokeGrantInput) -> ResourceAccessInfo:
    return await service.revoke(ctx, input.team_id, input.resource_type, input.resource_id)


@implement("setTeamOnly")
async def set_team_only(ctx: Context, input: TeamOnlyInput) -> ResourceAccessInfo:
    return await service.set_team_only(ctx, input.resource_type, input.resource_id, input.team_only)
