"""The auth plugin's contract: access rules, input/output types and procedures (SPEC §5).

Importable without the server. Other plugins import :data:`AUTH_ACCESS` from here to tell the
auth plugin that one of their resources is gone (its team grants are then removed).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal, Protocol

import msgspec
from msgspec import UNSET, UnsetType

from checkstack_core import (
    AccessRule,
    Contract,
    EventType,
    InstanceAccess,
    Schema,
    ServiceRef,
    mutation,
    query,
)

if TYPE_CHECKING:
    from checkstack_core import Context, Principal

# -- access rules (qualified: auth.<resource>.<level>) ---------------------------------------------

applications_manage = AccessRule(
    "applications", "manage", "Create, change, rotate and delete API keys (external applications)"
)
users_read = AccessRule("users", "read", "List users and their roles")
users_manage = AccessRule(
    "users", "manage", "Create and delete users, set their roles and passwords"
)
roles_read = AccessRule("roles", "read", "List roles and access rules")
roles_manage = AccessRule("roles", "manage", "Create, change and delete roles")
teams_read = AccessRule("teams", "read", "List teams, their members, managers and resource grants")
teams_manage = AccessRule(
    "teams", "manage", "Create, change and delete teams; grant teams access to resources"
)

#: Resource type of teams themselves: a team's managers are admitted to it (membership changes,
#: reading the team) without holding the global ``teams`` rules.
TEAM_RESOURCE = "auth.team"
TEAMS_MANAGE = "auth.teams.manage"
APPLICATIONS_MANAGE = "auth.applications.manage"

#: The session cookie (``cs_<id>_<secret>``), HttpOnly and SameSite=Lax.
SESSION_COOKIE = "checkstack_session"

# -- shared field types ----------------------------------------------------------------------------

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(max_length=1024)]

# The rules the service checks on a new address and password (passwords.py, whose messages say
# which failed), stated in the schema for clients and schema-driven testers. Where a pattern
# cannot be exact it is stricter: [A-Z] for "an uppercase letter", [0-9] for "a number".
_ONE_OF_EACH = "|".join(
    f"{a}[\\s\\S]*{b}[\\s\\S]*{c}"
    for a, b, c in itertools.permutations(("[A-Z]", "[a-z]", "[0-9]"))
)
NewEmail = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=254,
        extra_json_schema={"pattern": r"^\s*[^@\s]+@[^@\s]+\s*$"},
    ),
]
NewPassword = Annotated[
    str,
    msgspec.Meta(
        max_length=1024,
        extra_json_schema={"minLength": 8, "maxLength": 256, "pattern": _ONE_OF_EACH},
    ),
]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
RuleId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ResourceType = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$", max_length=100)
]
LevelName = Literal["read", "manage"]


class IdInput(Schema):
    id: Id


class Deleted(Schema):
    id: str


class Done(Schema):
    ok: bool = True


# -- onboarding, login, sessions ------------------------------------------------------------------


class OnboardingStatus(Schema):
    needs_onboarding: bool


class OnboardingInput(Schema):
    email: NewEmail
    password: NewPassword
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""


class LoginInput(Schema):
    email: Email
    password: Password


class CurrentUser(Schema):
    id: str
    email: str
    name: str
    roles: list[str]
    rules: list[str]
    is_admin: bool
    teams: list[str]


class ChangePasswordInput(Schema):
    current_password: Password
    new_password: NewPassword


class SessionInfo(Schema):
    id: str
    created_at: datetime
    expires_at: datetime
    user_agent: str
    current: bool


class SessionList(Schema):
    sessions: list[SessionInfo]


# -- users -----------------------------------------------------------------------------------------


class UserInfo(Schema):
    id: str
    email: str
    name: str
    roles: list[str]
    created_at: datetime


class UserList(Schema):
    users: list[UserInfo]


class CreateUserInput(Schema):
    email: NewEmail
    password: NewPassword
    name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    roles: list[Id] = msgspec.field(default_factory=list)


class SetUserRolesInput(Schema):
    id: Id
    roles: list[Id]


class SetUserPasswordInput(Schema):
    id: Id
    password: NewPassword


# -- roles and rules -------------------------------------------------------------------------------


class RuleInfo(Schema):
    id: str
    plugin_id: str
    level: str
    description: str
    default: bool
    public: bool


class RuleList(Schema):
    rules: list[RuleInfo]


class RoleInfo(Schema):
    id: str
    name: str
    description: str
    system: bool
    assignable: bool
    rules: list[str]


class RoleList(Schema):
    roles: list[RoleInfo]


class CreateRoleInput(Schema):
    name: Name
    description: Description = ""
    rules: list[RuleId] = msgspec.field(default_factory=list)


class UpdateRoleInput(Schema):
    id: Id
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    rules: list[RuleId] | UnsetType = UNSET


# -- applications ----------------------------------------------------------------------------------


class ApplicationInfo(Schema):
    id: str
    name: str
    description: str
    roles: list[str]
    teams: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class ApplicationList(Schema):
    applications: list[ApplicationInfo]


class CreateApplicationInput(Schema):
    name: Name
    description: Description = ""
    roles: list[Id] = msgspec.field(default_factory=list)
    teams: list[Id] = msgspec.field(default_factory=list)
    expires_at: datetime | None = None


class CreatedApplication(Schema):
    application: ApplicationInfo
    #: ``ck_<id>_<secret>``: shown this once, never retrievable again.
    token: str


class UpdateApplicationInput(Schema):
    id: Id
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    roles: list[Id] | UnsetType = UNSET
    teams: list[Id] | UnsetType = UNSET
    expires_at: datetime | UnsetType | None = UNSET


class ApplicationToken(Schema):
    id: str
    token: str


# -- teams and resource access ---------------------------------------------------------------------


class TeamInfo(Schema):
    id: str
    name: str
    description: str
    member_count: int
    is_manager: bool


class TeamList(Schema):
    teams: list[TeamInfo]


class TeamMember(Schema):
    kind: Literal["user", "application"]
    id: str
    name: str
    email: str | None = None


class TeamManagerInfo(Schema):
    id: str
    name: str
    email: str


class TeamGrant(Schema):
    resource_type: str
    resource_id: str
    level: str


class TeamDetail(Schema):
    id: str
    name: str
    description: str
    is_manager: bool
    members: list[TeamMember]
    managers: list[TeamManagerInfo]
    grants: list[TeamGrant]


class CreateTeamInput(Schema):
    name: Name
    description: Description = ""


class UpdateTeamInput(Schema):
    id: Id
    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET


class TeamMemberInput(Schema):
    """``id`` is the team; name exactly one of ``userId`` and ``applicationId``."""

    id: Id
    user_id: Id | None = None
    application_id: Id | None = None


class TeamManagerInput(Schema):
    id: Id
    user_id: Id


class GrantInput(Schema):
    team_id: Id
    resource_type: ResourceType
    resource_id: Id
    level: LevelName


class RevokeGrantInput(Schema):
    team_id: Id
    resource_type: ResourceType
    resource_id: Id


class ResourceInput(Schema):
    resource_type: ResourceType
    resource_id: Id


class ResourceGrantInfo(Schema):
    team_id: str
    team_name: str
    level: str


class ResourceAccessInfo(Schema):
    resource_type: str
    resource_id: str
    team_only: bool
    grants: list[ResourceGrantInfo]


class TeamOnlyInput(Schema):
    resource_type: ResourceType
    resource_id: Id
    team_only: bool


# -- the service other plugins use -----------------------------------------------------------------


class AccessService(Protocol):
    """What the auth plugin offers other plugins in process (``ctx.service(AUTH_ACCESS)``)."""

    async def forget_resource(self, ctx: Context, resource_type: str, resource_id: str) -> None:
        """Remove every team grant and setting of a deleted resource, in ``ctx``'s transaction
        (so they disappear exactly when the deletion commits)."""
        ...

    async def user_principal(self, ctx: Context, user_id: str) -> Principal | None:
        """The principal a session of ``user_id`` resolves to (``None``: no such user), read in
        ``ctx``'s transaction: what a plugin acting for a user later (a notification) checks
        that user's access with."""
        ...

    async def team_members(self, ctx: Context, team_id: str) -> list[str]:
        """The ids of the users in ``team_id`` (none when it does not exist), sorted."""
        ...

    async def check_team(self, ctx: Context, team_id: str) -> None:
        """``403`` unless ``ctx``'s caller holds every grant of team ``team_id``: the rule the auth
        plugin applies to its own mutations naming a team, for other plugins acting on a team
        (nobody acts on what holds more than they do)."""
        ...


#: ``ctx.service(AUTH_ACCESS).forget_resource(ctx, "catalog.system", system_id)`` after deleting.
AUTH_ACCESS: ServiceRef[AccessService] = ServiceRef("auth.access")

_team_by_id = InstanceAccess(TEAM_RESOURCE, id_param="id")

# -- events ----------------------------------------------------------------------------------------
# Emitted after the change commits. Payloads carry ids, names and role ids: never an email
# address, a password (hash), a session or an application's token or secret.

#: ``{userId, userName, roles}`` (onboarding, ``createUser``, ``checkstack admin create``)
USER_CREATED = "auth.user.created"
#: ``{userId, userName, roles}`` when the user's roles changed
USER_UPDATED = "auth.user.updated"
#: ``{userId, userName}``
USER_DELETED = "auth.user.deleted"
#: ``{applicationId, applicationName, roles, teams}``
APPLICATION_CREATED = "auth.application.created"
#: ``{applicationId, applicationName, roles, teams, changes}``: ``changes`` names the changed
#: fields (``name``, ``description``, ``expiresAt``, ``roles``, ``teams``)
APPLICATION_UPDATED = "auth.application.updated"
#: ``{applicationId, applicationName}`` (the new secret is never in it)
APPLICATION_SECRET_REGENERATED = "auth.application.secret_regenerated"
#: ``{applicationId, applicationName}``
APPLICATION_DELETED = "auth.application.deleted"
#: ``{roleId, roleName, rules}``
ROLE_CREATED = "auth.role.created"
#: ``{roleId, roleName, rules}``
ROLE_UPDATED = "auth.role.updated"
#: ``{roleId, roleName}``
ROLE_DELETED = "auth.role.deleted"
#: ``{teamId, teamName}``
TEAM_CREATED = "auth.team.created"
#: ``{teamId, teamName, change}``: ``change`` is ``edited``, ``members``, ``managers`` or
#: ``access`` (a resource grant given or revoked)
TEAM_UPDATED = "auth.team.updated"
#: ``{teamId, teamName}``
TEAM_DELETED = "auth.team.deleted"
#: ``{resourceType, resourceId, teamOnly}``
RESOURCE_TEAM_ONLY_CHANGED = "auth.resource.team_only_changed"

EVENTS = [
    EventType(USER_CREATED, "A user was created", payload="{userId, userName, roles}"),
    EventType(USER_UPDATED, "A user's roles changed", payload="{userId, userName, roles}"),
    EventType(USER_DELETED, "A user was deleted", payload="{userId, userName}"),
    EventType(
        APPLICATION_CREATED,
        "An application (API key) was created",
        payload="{applicationId, applicationName, roles, teams}",
    ),
    EventType(
        APPLICATION_UPDATED,
        "An application's name, description, expiry, roles or teams changed",
        payload="{applicationId, applicationName, roles, teams, changes}",
    ),
    EventType(
        APPLICATION_SECRET_REGENERATED,
        "An application's secret was regenerated",
        payload="{applicationId, applicationName}",
    ),
    EventType(
        APPLICATION_DELETED,
        "An application was deleted",
        payload="{applicationId, applicationName}",
    ),
    EventType(ROLE_CREATED, "A role was created", payload="{roleId, roleName, rules}"),
    EventType(ROLE_UPDATED, "A role was changed", payload="{roleId, roleName, rules}"),
    EventType(ROLE_DELETED, "A role was deleted", payload="{roleId, roleName}"),
    EventType(TEAM_CREATED, "A team was created", payload="{teamId, teamName}"),
    EventType(
        TEAM_UPDATED,
        "A team was edited, or its members, managers or resource grants changed",
        payload="{teamId, teamName, change}",
    ),
    EventType(TEAM_DELETED, "A team was deleted", payload="{teamId, teamName}"),
    EventType(
        RESOURCE_TEAM_ONLY_CHANGED,
        "A resource was limited to the teams granted on it, or opened again to every holder "
        "of the rule",
        payload="{resourceType, resourceId, teamOnly}",
    ),
]


contract = Contract(
    "auth",
    rules=[
        applications_manage,
        users_read,
        users_manage,
        roles_read,
        roles_manage,
        teams_read,
        teams_manage,
    ],
    procedures=[
        # onboarding and sessions
        query(
            "getOnboardingStatus",
            output=OnboardingStatus,
            caller="anonymous",
            description="Whether the first administrator still has to be created.",
        ),
        mutation(
            "completeOnboarding",
            sets_cookies=True,
            input=OnboardingInput,
            output=CurrentUser,
            caller="anonymous",
            description="Create the first administrator and log in; only while no user exists.",
        ),
        mutation(
            "login",
            sets_cookies=True,
            input=LoginInput,
            output=CurrentUser,
            caller="anonymous",
            description="Check email and password and set the session cookie.",
        ),
        mutation(
            "logout",
            sets_cookies=True,
            output=Done,
            caller="anonymous",
            description="End the current session (if any) and clear the session cookie.",
        ),
        query(
            "getCurrentUser",
            output=CurrentUser,
            caller="user",
            description="The logged-in user with their roles, rules and teams.",
        ),
        mutation(
            "changePassword",
            input=ChangePasswordInput,
            output=Done,
            caller="user",
            description="Change one's own password; every other session of the user ends.",
        ),
        query(
            "getSessions",
            output=SessionList,
            caller="user",
            description="One's own active sessions.",
        ),
        mutation(
            "revokeSession",
            input=IdInput,
            output=Deleted,
            caller="user",
            description="End one of one's own sessions.",
        ),
        # users
        query("getUsers", output=UserList, rules=[users_read], description="Every user."),
        mutation(
            "createUser",
            input=CreateUserInput,
            output=UserInfo,
            rules=[users_manage],
            description="Create a user with email and password (and roles the caller may grant).",
        ),
        mutation(
            "setUserRoles",
            input=SetUserRolesInput,
            output=UserInfo,
            rules=[users_manage],
            description="Replace a user's roles. Nobody removes their own admin role or the last "
            "administrator's.",
        ),
        mutation(
            "setUserPassword",
            input=SetUserPasswordInput,
            output=Done,
            rules=[users_manage],
            description="Set a user's password; every session of the user ends.",
        ),
        mutation(
            "revokeUserSessions",
            input=IdInput,
            output=Done,
            rules=[users_manage],
            description="End every session of a user (e.g. a lost laptop).",
        ),
        mutation(
            "deleteUser",
            input=IdInput,
            output=Deleted,
            rules=[users_manage],
            description="Delete a user (not oneself, not the last administrator).",
        ),
        # roles and rules
        query(
            "getRules",
            output=RuleList,
            rules=[roles_read],
            description="Every access rule of every active plugin.",
        ),
        query(
            "getRoles",
            output=RoleList,
            rules=[roles_read],
            description="Every role with its rules.",
        ),
        mutation(
            "createRole",
            input=CreateRoleInput,
            output=RoleInfo,
            rules=[roles_manage],
            description="Create a custom role holding rules the caller holds.",
        ),
        mutation(
            "updateRole",
            input=UpdateRoleInput,
            output=RoleInfo,
            rules=[roles_manage],
            description="Rename a role or replace its rules (added rules must be held by the "
            "caller).",
        ),
        mutation(
            "deleteRole",
            input=IdInput,
            output=Deleted,
            rules=[roles_manage],
            description="Delete a custom role.",
        ),
        # applications
        query(
            "getApplications",
            output=ApplicationList,
            rules=[applications_manage],
            description="Every application with roles, teams and usage; never a secret.",
        ),
        mutation(
            "createApplication",
            input=CreateApplicationInput,
            output=CreatedApplication,
            rules=[applications_manage],
            description="Create an application; its token is returned this once.",
        ),
        mutation(
            "updateApplication",
            input=UpdateApplicationInput,
            output=ApplicationInfo,
            rules=[applications_manage],
            description="Change name, description, roles, teams or expiry of an application.",
        ),
        mutation(
            "regenerateApplicationSecret",
            input=IdInput,
            output=ApplicationToken,
            rules=[applications_manage],
            description="Issue a new token; the old one fails from the next request on.",
        ),
        mutation(
            "deleteApplication",
            input=IdInput,
            output=Deleted,
            rules=[applications_manage],
            description="Delete an application; its token fails from the next request on.",
        ),
        # teams
        query(
            "getTeams",
            output=TeamList,
            rules=[teams_read],
            instance=InstanceAccess(TEAM_RESOURCE, list_key="teams"),
            description="Teams (all of them with auth.teams.read, else those one manages).",
        ),
        query(
            "getTeam",
            input=IdInput,
            output=TeamDetail,
            rules=[teams_read],
            instance=_team_by_id,
            description="A team with its members, managers and grants.",
        ),
        mutation(
            "createTeam",
            input=CreateTeamInput,
            output=TeamInfo,
            rules=[teams_manage],
            description="Create a team.",
        ),
        mutation(
            "updateTeam",
            input=UpdateTeamInput,
            output=TeamInfo,
            rules=[teams_manage],
            description="Rename a team or change its description.",
        ),
        mutation(
            "deleteTeam",
            input=IdInput,
            output=Deleted,
            rules=[teams_manage],
            description="Delete a team with its memberships and grants.",
        ),
        mutation(
            "addTeamMember",
            input=TeamMemberInput,
            output=TeamDetail,
            rules=[teams_manage],
            instance=_team_by_id,
            description="Add a user or an application to a team (team managers may too).",
        ),
        mutation(
            "removeTeamMember",
            input=TeamMemberInput,
            output=TeamDetail,
            rules=[teams_manage],
            instance=_team_by_id,
            description="Remove a user or an application from a team (team managers may too).",
        ),
        mutation(
            "addTeamManager",
            input=TeamManagerInput,
            output=TeamDetail,
            rules=[teams_manage],
            description="Make a user a manager of a team.",
        ),
        mutation(
            "removeTeamManager",
            input=TeamManagerInput,
            output=TeamDetail,
            rules=[teams_manage],
            description="Remove a manager from a team.",
        ),
        query(
            "getResourceAccess",
            input=ResourceInput,
            output=ResourceAccessInfo,
            rules=[teams_read],
            description="Team grants and the team-only flag of one resource.",
        ),
        mutation(
            "grantTeamAccess",
            input=GrantInput,
            output=ResourceAccessInfo,
            rules=[teams_manage],
            description="Give a team read or manage access (manage implies read) to a resource.",
        ),
        mutation(
            "revokeTeamAccess",
            input=RevokeGrantInput,
            output=ResourceAccessInfo,
            rules=[teams_manage],
            description="Remove a team's grant on a resource.",
        ),
        mutation(
            "setTeamOnly",
            input=TeamOnlyInput,
            output=ResourceAccessInfo,
            rules=[teams_manage],
            description="Make a resource reachable only through team grants (or not).",
        ),
    ],
    events=EVENTS,
)
