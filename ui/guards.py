"""The hooks ``kura serve`` applies to the Gradio app: Kura's sessions and login throttle, the upload cache's
sweep, and a warning for access rules that name no collection.

They take the Gradio ``App`` (or a FastAPI app that mounts one), so they work the same whether the app came
from ``demo.launch`` or from ``gr.mount_gradio_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rag.audit import AuditLog
from rag.config import Settings
from rag.store import connect
from rag.users import unmatched_rule_names
from ui.sessions import install_sessions
from ui.throttle import install_login_throttle


def gradio_app(app: Any) -> Any:
    """The Gradio ``App`` itself: ``app``, or the one it mounts."""
    from gradio.routes import App
    from starlette.routing import Mount

    if isinstance(app, App):
        return app
    for route in app.router.routes:
        if isinstance(route, Mount) and isinstance(route.app, App):
            return route.app
    raise TypeError("no Gradio app is mounted in this app")


def protect(app: Any, settings: Settings, login: bool, audit: AuditLog | None = None) -> None:
    """With users: sessions that expire and end with a password change, and throttled, audited logins."""
    if login:
        inner = gradio_app(app)
        install_sessions(inner, settings)
        install_login_throttle(inner, audit=audit)


def warn_unmatched_rules(settings: Settings, say: Callable[[str], None]) -> None:
    """Access rules fail closed, so a typo in a collection's name hides it: say so at start."""
    names = unmatched_rule_names(settings, connect(settings).names())
    if names:
        say(
            "warning: ui.collection_access or ui.collection_editors names collections that do not exist: "
            + ", ".join(names)
        )
