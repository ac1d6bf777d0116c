"""The core's own hook implementations: built-in features register like any plugin's.

Each is registered ``trylast`` where it is a default another plugin may replace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .auth import AuthBackend, PublicOnlyAuthBackend
from .hookspecs import EngineRegistrar, hookimpl

if TYPE_CHECKING:
    from .host import Host


@hookimpl(trylast=True)
def checkstack_auth_backend(host: Host) -> AuthBackend:
    """Without an auth plugin: everyone is anonymous and holds exactly the public rules."""
    return PublicOnlyAuthBackend(host.public_rules())


@hookimpl(tryfirst=True)
def checkstack_register_engines(register: EngineRegistrar) -> None:
    """The in-process event bus and job scheduler (``embedded``, the default).

    Registered first so a plugin that registers the same name is the one that fails.
    """
    from .events import EmbeddedEventBus
    from .jobs import EmbeddedJobScheduler

    register.events("embedded", lambda host: EmbeddedEventBus())
    register.jobs("embedded", lambda host: EmbeddedJobScheduler())
