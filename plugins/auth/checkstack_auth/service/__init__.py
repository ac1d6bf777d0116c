"""Domain logic of the auth plugin, one module per concern: :mod:`.roles`, :mod:`.users`,
:mod:`.sessions`, :mod:`.applications`, :mod:`.teams` and :mod:`.grants` (resource access), with
shared helpers in :mod:`.common`, and :mod:`.targets`, the target-relative authorization every
mutation passes before its handler runs.

Every function takes the :class:`~checkstack_core.context.Context` of the call (its transaction and
its principal). Handlers and the CLI share these functions; the CLI acts as the auth plugin itself
(a service principal, which holds every rule), so the same guards apply to everyone else.

Escalation guards: nobody grants or acts on what they do not hold (:mod:`.targets`: rules put into
roles, roles given, changed or deleted, users and applications acted on, teams joined or changed);
only administrators give, take or act on the ``admin`` role; nobody removes their own admin role
or deletes themselves, and the last administrator stays (a lock serializes the check).

Import from this package (``from checkstack_auth import service; service.create_user(...)``): the
names below are its public API.
"""

from __future__ import annotations

from .applications import (
    application_info,
    create_application,
    delete_application,
    list_applications,
    regenerate_secret,
    update_application,
)
from .common import (
    digester,
    get_application,
    get_team,
    get_user,
    is_superior,
    known_resource_types,
    known_rules,
)
from .grants import AccessServiceImpl, grant, resource_access, revoke, set_team_only
from .roles import (
    create_role,
    delete_role,
    list_roles,
    list_rules,
    resolve_role,
    resolve_roles_to_give,
    role_info,
    role_rules,
    sync_rules,
    update_role,
)
from .sessions import (
    DEFAULT_SESSION_DAYS,
    change_password,
    clear_session_cookie,
    current_session_id,
    current_user,
    list_sessions,
    login,
    logout,
    open_session,
    revoke_session,
    session_days,
)
from .teams import (
    change_manager,
    change_member,
    create_team,
    delete_team,
    list_teams,
    may_manage_membership,
    team_detail,
    team_info,
    update_team,
)
from .users import (
    complete_onboarding,
    count_admins,
    count_users,
    create_user,
    delete_user,
    end_sessions,
    list_users,
    revoke_user_sessions,
    set_user_password,
    set_user_roles,
    user_info,
    user_roles,
)

__all__ = [
    "DEFAULT_SESSION_DAYS",
    "AccessServiceImpl",
    "application_info",
    "change_manager",
    "change_member",
    "change_password",
    "clear_session_cookie",
    "complete_onboarding",
    "count_admins",
    "count_users",
    "create_application",
    "create_role",
    "create_team",
    "create_user",
    "current_session_id",
    "current_user",
    "delete_application",
    "delete_role",
    "delete_team",
    "delete_user",
    "digester",
    "end_sessions",
    "get_application",
    "get_team",
    "get_user",
    "grant",
    "is_superior",
    "known_resource_types",
    "known_rules",
    "list_applications",
    "list_roles",
    "list_rules",
    "list_sessions",
    "list_teams",
    "list_users",
    "login",
    "logout",
    "may_manage_membership",
    "open_session",
    "regenerate_secret",
    "resolve_role",
    "resolve_roles_to_give",
    "resource_access",
    "revoke",
    "revoke_session",
    "revoke_user_sessions",
    "role_info",
    "role_rules",
    "session_days",
    "set_team_only",
    "set_user_password",
    "set_user_roles",
    "sync_rules",
    "team_detail",
    "team_info",
    "update_application",
    "update_role",
    "update_team",
    "user_info",
    "user_roles",
]
