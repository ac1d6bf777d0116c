"""The auth plugin's pages: onboarding, sign-in and sign-out, and Authentication Settings with its
tabs Applications, Roles, Users and Teams (SPEC §11, docs/ui.md).

Every page calls this plugin's procedures through ``view.call`` as the signed-in user: what a
person may see and change here is exactly what the API lets them, and a refusal shows the API's
message.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkstack_core.errors import RpcError
from checkstack_core.ui import field_errors, offset_of

if TYPE_CHECKING:
    from litestar import Response

    from checkstack_core.ui import UiRegistrar
    from checkstack_core.ui.view import View

TEMPLATES = Path(__file__).parent / "templates"
SETTINGS = "/auth/settings"
APPLICATIONS = f"{SETTINGS}/applications"
ROLES = f"{SETTINGS}/roles"
USERS = f"{SETTINGS}/users"
TEAMS = f"{SETTINGS}/teams"
PROFILE = "/auth/profile"
#: Tabs of Authentication Settings: (label, path, a rule that makes the tab usable).
TABS = (
    ("Users", USERS, "auth.users.read"),
    ("Roles", ROLES, "auth.roles.read"),
    ("Applications", APPLICATIONS, "auth.applications.manage"),
    ("Teams", TEAMS, "auth.teams.read"),
)
#: Rows per page of the Applications and Users tables.
PAGE_SIZE = 50
#: Roles every user or application holds implicitly: never offered as checkboxes.
IMPLICIT_ROLES = ("users", "anonymous")
#: Answers that mean "you may not", shown as such instead of as a failure.
REFUSALS = ("UNAUTHORIZED", "FORBIDDEN")


def register(ui: UiRegistrar) -> None:
    ui.templates("auth", TEMPLATES)
    ui.login("/login")
    ui.page("/login", login_page)
    ui.page("/logout", logout_page, methods=("POST",))
    ui.page("/onboarding", onboarding_page)
    ui.page(SETTINGS, settings_page, methods=("GET",))
    ui.page(APPLICATIONS, applications_page)
    ui.page(APPLICATIONS + "/{id:str}/roles", application_roles_page, methods=("POST",))
    ui.page(APPLICATIONS + "/{id:str}/regenerate", regenerate_page)
    ui.page(APPLICATIONS + "/{id:str}/delete", delete_application_page)
    ui.page(ROLES, roles_page)
    ui.page(ROLES + "/{id:str}", role_page)
    ui.page(ROLES + "/{id:str}/delete", delete_role_page)
    ui.page(USERS, users_page)
    ui.page(USERS + "/{id:str}/roles", user_roles_page, methods=("POST",))
    ui.page(USERS + "/{id:str}/delete", delete_user_page)
    ui.page(TEAMS, teams_page)
    ui.page(TEAMS + "/{id:str}", team_page)
    ui.page(PROFILE, profile_page)
    ui.nav("Profile", PROFILE, order=990, rules=["signed-in"])
    ui.nav(
        "Authentication Settings",
        SETTINGS,
        order=900,
        rules=[rule for _label, _path, rule in TABS],
    )


# -- helpers -----------------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this server only (never ``//other.site``)."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        # Browsers drop tabs and line breaks and read "\\" as "/": "/\t/evil" is "//evil".
        or any(ch == "\\" or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target)
    ):
        return "/"
    return target


async def _tab_page(view: View, template: str, **context: Any) -> Response[Any]:
    principal = await view.principal()
    tabs = [
        {"label": label, "href": href, "usable": principal.holds(rule)}
        for label, href, rule in TABS
    ]
    return await view.render(template, tabs=tabs, **context)


def _assignable(roles: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in roles if r["id"] not in IMPLICIT_ROLES]


def _group_rules(rules: Iterable[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        groups.setdefault(rule["pluginId"], []).append(rule)
    return [
        (plugin, sorted(items, key=lambda r: r["id"])) for plugin, items in sorted(groups.items())
    ]


# -- onboarding, sign-in, sign-out -------------------------------------------------------------


async def onboarding_page(view: View) -> Response[Any]:
    status = await view.call("auth", "getOnboardingStatus")
    if not status["needsOnboarding"]:
        return view.redirect("/login")
    error: RpcError | None = None
    values: dict[str, str] = {}
    if view.is_post:
        form = await view.form()
        values = {"email": form["email"], "name": form["name"]}
        try:
            await view.call(
                "auth",
                "completeOnboarding",
                {"email": form["email"], "password": form["password"], "name": form["name"]},
            )
        except RpcError as exc:
            error = exc
        else:
            return view.redirect(SETTINGS)
    return await view.render(
        "auth/onboarding.html",
        title="Create the first administrator",
        error=error,
        errors=field_errors(error) if error else {},
        values=values,
        status=error.status if error else 200,
    )


async def login_page(view: View) -> Response[Any]:
    status = await view.call("auth", "getOnboardingStatus")
    if status["needsOnboarding"]:
        return view.redirect("/onboarding")
    target = safe_next(view.query.get("next"))
    error: RpcError | None = None
    email = ""
    if view.is_post:
        form = await view.form()
        email = form["email"]
        target = safe_next(form["next"])
        try:
            await view.call("auth", "login", {"email": email, "password": form["password"]})
        except RpcError as exc:
            error = exc
        else:
            return view.redirect(target)
    return await view.render(
        "auth/login.html",
        title="Sign in",
        error=error,
        email=email,
        next=target,
        status=error.status if error else 200,
    )


async def logout_page(view: View) -> Response[Any]:
    await view.call("auth", "logout")
    return view.redirect("/")


async def settings_page(view: View) -> Response[Any]:
    principal = await view.principal()
    for _label, href, rule in TABS:
        if principal.holds(rule):
            return view.redirect(href)
    return view.redirect(APPLICATIONS)  # shows the API's refusal


# -- Applications ------------------------------------------------------------------------------


async def _applications(view: View) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """The applications, and the roles to offer (``None`` without ``auth.roles.read``)."""
    try:
        both = await view.batch("auth", {"getApplications": None, "getRoles": None})
    except RpcError as error:
        if error.code != "FORBIDDEN" or error.procedure != "getRoles":
            raise
        apps = await view.call("auth", "getApplications")
        return apps["applications"], None
    return both["getApplications"]["applications"], _assignable(both["getRoles"]["roles"])


async def applications_page(view: View, **context: Any) -> Response[Any]:
    status = 200
    if view.is_post and "secret" not in context:
        form = await view.form()
        values = {"name": form["name"], "description": form["description"]}
        try:
            created = await view.call("auth", "createApplication", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(create_error=error, create_errors=field_errors(error), values=values)
            status = error.status
        else:
            context["secret"] = {
                "token": created["token"],
                "name": created["application"]["name"],
                "created": True,
            }
    applications, roles = await _applications(view)
    offset = offset_of(view.query, PAGE_SIZE)
    notice = {"deleted": "The application was deleted; its token no longer works."}.get(
        view.query.get("done", "")
    )
    return await _tab_page(
        view,
        "auth/applications.html",
        title="Applications · Authentication Settings",
        applications=applications[offset : offset + PAGE_SIZE],
        total=len(applications),
        offset=offset,
        limit=PAGE_SIZE,
        roles=roles,
        notice=notice,
        status=status,
        **context,
    )


async def application_roles_page(view: View) -> Response[Any]:
    """Save the role checkboxes of one application (htmx: on every change; else a button)."""
    app_id = view.params["id"]
    form = await view.form()
    wanted = form.all("role")
    message, failed = "Roles saved.", False
    try:
        app = await view.call("auth", "updateApplication", {"id": app_id, "roles": wanted})
    except RpcError as error:
        if error.code == "UNAUTHORIZED" or not view.is_htmx:
            raise
        message, failed = error.message, True
        app = None
    if not view.is_htmx:
        return view.redirect(APPLICATIONS)
    applications, roles = await _applications(view)
    if app is None:
        app = next((a for a in applications if a["id"] == app_id), None)
        if app is None:
            message = f"Application not found: {app_id}"
            app = {"id": app_id, "name": app_id, "roles": wanted}
    return await view.render(
        "auth/_application_roles.html",
        app=app,
        roles=roles,
        save_message=message,
        save_failed=failed,
    )


async def _find_application(view: View, app_id: str) -> dict[str, Any]:
    apps = await view.call("auth", "getApplications")
    for app in apps["applications"]:
        if app["id"] == app_id:
            return app
    raise RpcError(f"Application not found: {app_id}", code="NOT_FOUND")


async def regenerate_page(view: View) -> Response[Any]:
    app_id = view.params["id"]
    if view.is_post:
        rotated = await view.call("auth", "regenerateApplicationSecret", {"id": app_id})
        app = await _find_application(view, app_id)
        return await applications_page(
            view, secret={"token": rotated["token"], "name": app["name"], "created": False}
        )
    app = await _find_application(view, app_id)
    return await _tab_page(
        view,
        "auth/confirm.html",
        title=f"Regenerate the secret of {app['name']}",
        question=f"Regenerate the secret of the application “{app['name']}”?",
        consequence="Its current token stops working immediately, in every client that "
        "uses it. The new secret is shown once.",
        action=f"{APPLICATIONS}/{app_id}/regenerate",
        confirm_label="Regenerate Secret",
        cancel=APPLICATIONS,
    )


async def delete_application_page(view: View) -> Response[Any]:
    app_id = view.params["id"]
    if view.is_post:
        await view.call("auth", "deleteApplication", {"id": app_id})
        return view.redirect(APPLICATIONS + "?done=deleted")
    app = await _find_application(view, app_id)
    return await _tab_page(
        view,
        "auth/confirm.html",
        title=f"Delete {app['name']}",
        question=f"Delete the application “{app['name']}”?",
        consequence="Its token stops working immediately. This cannot be undone.",
        action=f"{APPLICATIONS}/{app_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=APPLICATIONS,
    )


# -- Roles -------------------------------------------------------------------------------------


async def roles_page(view: View) -> Response[Any]:
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values = {
            "name": form["name"],
            "description": form["description"],
            "rules": form.all("rule"),
        }
        try:
            role = await view.call("auth", "createRole", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(create_error=error, create_errors=field_errors(error), values=values)
            status = error.status
        else:
            context["notice"] = f"Role “{role['name']}” created."
    data = await view.batch("auth", {"getRoles": None, "getRules": None})
    roles = data["getRoles"]["roles"]
    offset = offset_of(view.query, PAGE_SIZE)
    return await _tab_page(
        view,
        "auth/roles.html",
        title="Roles · Authentication Settings",
        roles=roles[offset : offset + PAGE_SIZE],
        total=len(roles),
        offset=offset,
        limit=PAGE_SIZE,
        rule_groups=_group_rules(data["getRules"]["rules"]),
        status=status,
        **context,
    )


async def role_page(view: View) -> Response[Any]:
    role_id = view.params["id"]
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values = {
            "id": role_id,
            "name": form["name"],
            "description": form["description"],
            "rules": form.all("rule"),
        }
        try:
            await view.call("auth", "updateRole", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error))
            status = error.status
        else:
            context["notice"] = "Role saved."
    data = await view.batch("auth", {"getRoles": None, "getRules": None})
    role = next((r for r in data["getRoles"]["roles"] if r["id"] == role_id), None)
    if role is None:
        raise RpcError(f"Role not found: {role_id}", code="NOT_FOUND")
    return await _tab_page(
        view,
        "auth/role.html",
        title=f"Role {role['name']} · Authentication Settings",
        role=role,
        rule_groups=_group_rules(data["getRules"]["rules"]),
        status=status,
        **context,
    )


async def delete_role_page(view: View) -> Response[Any]:
    role_id = view.params["id"]
    if view.is_post:
        await view.call("auth", "deleteRole", {"id": role_id})
        return view.redirect(ROLES)
    roles = (await view.call("auth", "getRoles"))["roles"]
    role = next((r for r in roles if r["id"] == role_id), None)
    if role is None:
        raise RpcError(f"Role not found: {role_id}", code="NOT_FOUND")
    return await _tab_page(
        view,
        "auth/confirm.html",
        title=f"Delete role {role['name']}",
        question=f"Delete the role “{role['name']}”?",
        consequence="Every user and application holding it loses its rules at once.",
        action=f"{ROLES}/{role_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=ROLES,
    )


# -- Users -------------------------------------------------------------------------------------


async def _users(view: View) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    try:
        both = await view.batch("auth", {"getUsers": None, "getRoles": None})
    except RpcError as error:
        if error.code != "FORBIDDEN" or error.procedure != "getRoles":
            raise
        return (await view.call("auth", "getUsers"))["users"], None
    return both["getUsers"]["users"], _assignable(both["getRoles"]["roles"])


async def users_page(view: View) -> Response[Any]:
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values = {
            "email": form["email"],
            "name": form["name"],
            "password": form["password"],
            "roles": form.all("role"),
        }
        try:
            user = await view.call("auth", "createUser", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            values.pop("password")
            context.update(create_error=error, create_errors=field_errors(error), values=values)
            status = error.status
        else:
            context["notice"] = f"User {user['email']} created."
    users, roles = await _users(view)
    offset = offset_of(view.query, PAGE_SIZE)
    return await _tab_page(
        view,
        "auth/users.html",
        title="Users · Authentication Settings",
        users=users[offset : offset + PAGE_SIZE],
        total=len(users),
        offset=offset,
        limit=PAGE_SIZE,
        roles=roles,
        status=status,
        **context,
    )


async def user_roles_page(view: View) -> Response[Any]:
    user_id = view.params["id"]
    form = await view.form()
    wanted = form.all("role")
    message, failed = "Roles saved.", False
    try:
        await view.call("auth", "setUserRoles", {"id": user_id, "roles": wanted})
    except RpcError as error:
        if error.code == "UNAUTHORIZED" or not view.is_htmx:
            raise
        message, failed = error.message, True
    if not view.is_htmx:
        return view.redirect(USERS)
    users, roles = await _users(view)
    user = next((u for u in users if u["id"] == user_id), {"id": user_id, "roles": wanted})
    return await view.render(
        "auth/_user_roles.html", user=user, roles=roles, save_message=message, save_failed=failed
    )


async def delete_user_page(view: View) -> Response[Any]:
    user_id = view.params["id"]
    if view.is_post:
        await view.call("auth", "deleteUser", {"id": user_id})
        return view.redirect(USERS)
    users = (await view.call("auth", "getUsers"))["users"]
    user = next((u for u in users if u["id"] == user_id), None)
    if user is None:
        raise RpcError(f"User not found: {user_id}", code="NOT_FOUND")
    return await _tab_page(
        view,
        "auth/confirm.html",
        title=f"Delete {user['email']}",
        question=f"Delete the user {user['email']}?",
        consequence="Their sessions end at once and they can no longer sign in. "
        "This cannot be undone.",
        action=f"{USERS}/{user_id}/delete",
        confirm_label="Delete",
        danger=True,
        cancel=USERS,
    )


# -- Teams -------------------------------------------------------------------------------------


async def teams_page(view: View) -> Response[Any]:
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        values = {"name": form["name"], "description": form["description"]}
        try:
            team = await view.call("auth", "createTeam", values)
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(create_error=error, create_errors=field_errors(error), values=values)
            status = error.status
        else:
            context["notice"] = f"Team “{team['name']}” created."
    teams = (await view.call("auth", "getTeams"))["teams"]
    offset = offset_of(view.query, PAGE_SIZE)
    return await _tab_page(
        view,
        "auth/teams.html",
        title="Teams · Authentication Settings",
        teams=teams[offset : offset + PAGE_SIZE],
        total=len(teams),
        offset=offset,
        limit=PAGE_SIZE,
        status=status,
        **context,
    )


async def team_page(view: View) -> Response[Any]:
    """A team: members (users and applications), managers and resource grants."""
    team_id = view.params["id"]
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        action = form["action"]
        member = form["member"]  # "user:<id>" or "application:<id>"
        kind, _sep, member_id = member.partition(":")
        calls: dict[str, dict[str, Any]] = {
            "addTeamMember": {"id": team_id, f"{kind}Id": member_id},
            "removeTeamMember": {"id": team_id, f"{kind}Id": member_id},
            "addTeamManager": {"id": team_id, "userId": form["userId"]},
            "removeTeamManager": {"id": team_id, "userId": form["userId"]},
            "grantTeamAccess": {
                "teamId": team_id,
                "resourceType": form["resourceType"],
                "resourceId": form["resourceId"],
                "level": form["level"],
            },
            "revokeTeamAccess": {
                "teamId": team_id,
                "resourceType": form["resourceType"],
                "resourceId": form["resourceId"],
            },
        }
        if action not in calls:
            raise RpcError(f"Unknown action: {action}", code="BAD_REQUEST")
        try:
            await view.call("auth", action, calls[action])
        except RpcError as error:
            if error.code == "UNAUTHORIZED":
                raise
            context.update(error=error, errors=field_errors(error))
            status = error.status
        else:
            return view.redirect(f"{TEAMS}/{team_id}")
    team = await view.call("auth", "getTeam", {"id": team_id})
    candidates: list[dict[str, str]] = []
    users: list[dict[str, Any]] = []
    principal = await view.principal()
    if principal.holds("auth.users.read"):  # only to offer choices: the API decides
        users = (await view.call("auth", "getUsers"))["users"]
        candidates += [{"value": f"user:{u['id']}", "label": u["email"]} for u in users]
    if principal.holds("auth.applications.manage"):
        apps = (await view.call("auth", "getApplications"))["applications"]
        candidates += [
            {"value": f"application:{a['id']}", "label": f"{a['name']} (application)"} for a in apps
        ]
    # A team's members and grants come whole with getTeam; the page shows them 50 at a time,
    # each list with its own position (?offset= for members, ?grants= for grants).
    members_at = offset_of(view.query, PAGE_SIZE)
    grants_at = offset_of({"offset": view.query.get("grants", "0")}, PAGE_SIZE)
    return await _tab_page(
        view,
        "auth/team.html",
        title=f"Team {team['name']} · Authentication Settings",
        team=team,
        members=team["members"][members_at : members_at + PAGE_SIZE],
        members_at=members_at,
        grants=team["grants"][grants_at : grants_at + PAGE_SIZE],
        grants_at=grants_at,
        limit=PAGE_SIZE,
        candidates=candidates,
        users=users,
        status=status,
        **context,
    )


async def profile_page(view: View) -> Response[Any]:
    """One's own account: password change and sessions."""
    context: dict[str, Any] = {}
    status = 200
    if view.is_post:
        form = await view.form()
        try:
            if form["action"] == "revoke":
                await view.call("auth", "revokeSession", {"id": form["sessionId"]})
                context["notice"] = "The session was ended."
            else:
                await view.call(
                    "auth",
                    "changePassword",
                    {
                        "currentPassword": form["currentPassword"],
                        "newPassword": form["newPassword"],
                    },
                )
                context["notice"] = "Password changed; your other sessions were ended."
        except RpcError as error:
            if error.code == "UNAUTHORIZED" and form["action"] == "revoke":
                raise
            context.update(error=error, errors=field_errors(error))
            status = error.status
    data = await view.batch("auth", {"getCurrentUser": None, "getSessions": None})
    return await view.render(
        "auth/profile.html",
        title="Profile",
        user=data["getCurrentUser"],
        sessions=data["getSessions"]["sessions"],
        status=status,
        **context,
    )
