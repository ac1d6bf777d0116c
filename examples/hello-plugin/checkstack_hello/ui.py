"""The hello plugin's page in the web UI: the greeting, and a form to change its template.

Everything shown comes from the plugin's own procedures, called as the signed-in user: a guest
sees the greeting (``hello.hello.read`` is public), and only a holder of ``hello.hello.manage``
can save a template; anyone else gets the API's ``Missing access`` message next to the form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from checkstack_core import RpcError, hookimpl


async def greeting_page(view: Any) -> Any:
    error = None
    if view.is_post:  # the form: a POST, checked against cross-site requests before this runs
        form = await view.form()
        try:
            await view.call("hello", "setGreeting", {"template": form["template"]})
        except RpcError as exc:
            error = exc  # e.g. "Missing access: hello.hello.manage", shown next to the field
        else:
            return view.redirect("/hello")
    name = view.query.get("name") or "world"
    greeting = await view.call("hello", "getGreeting", {"name": name})
    return await view.render(
        "hello/greeting.html",
        status=error.status if error else 200,
        title="Greeting",
        greeting=greeting,
        name=name,
        error=error,
    )


@hookimpl
def checkstack_register_ui(ui: Any) -> None:
    ui.templates("hello", Path(__file__).parent / "templates")
    ui.page("/hello", greeting_page)
    ui.nav("Greeting", "/hello", section="main")
