"""Kura's own login sessions, in place of Gradio's ``App.tokens`` dict (which keeps every token until restart).

Gradio 6.31 uses ``app.tokens`` only as a mapping from a cookie's token to a user name: ``tokens[token] = user``
at login, ``tokens.get(token)`` on every request (``/user``, ``/token`` and the ``login_check`` dependency
of every route), ``in`` and ``del`` at logout, and ``list(tokens.keys())`` with ``tokens[token]`` to log a
user out everywhere. :class:`SessionStore` is such a mapping whose entries expire: after
``ui.session_idle_minutes`` without a request, ``ui.session_max_hours`` after the login, and as soon as the
user's password changes or the user is removed (the CLI does that in another process, so each lookup
compares the user's fingerprint taken at login with the current one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from rag.config import Settings
from rag.users import UserDirectory


@dataclass
class Session:
    user: str
    fingerprint: str | None
    started: float
    seen: float


class SessionStore(MutableMapping[str, str]):
    """token -> user name, for the sessions still valid; an expired or revoked one is dropped when looked up.

    ``fingerprint`` gives a user's current password fingerprint (None: no such user); ``clock`` is monotonic
    seconds, injectable for tests.
    """

    def __init__(
        self,
        idle_s: float,
        max_s: float,
        fingerprint: Callable[[str], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self._fingerprint = fingerprint
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _valid(self, session: Session, now: float) -> bool:
        return (
            now - session.seen <= self.idle_s
            and now - session.started <= self.max_s
            and session.fingerprint is not None
            and self._fingerprint(session.user) == session.fingerprint
        )

    def __getitem__(self, token: str) -> str:
        now = self._clock()
        with self._lock:
            session = self._sessions.get(token) if isinstance(token, str) else None
            if session is None:
                raise KeyError(token)
            if not self._valid(session, now):
                del self._sessions[token]
                raise KeyError(token)
            session.seen = now
            return session.user

    def __setitem__(self, token: str, user: str) -> None:
        """A login: the user's fingerprint now is what later lookups must still find."""
        now = self._clock()
        with self._lock:
            self._purge(now)
            self._sessions[token] = Session(user, self._fingerprint(user), now, now)

    def __delitem__(self, token: str) -> None:
        with self._lock:
            del self._sessions[token]

    def __iter__(self) -> Iterator[str]:
        """The valid tokens (a snapshot): Gradio's logout reads each one back right after listing them."""
        with self._lock:
            self._purge(self._clock())
            return iter(list(self._sessions))

    def __len__(self) -> int:
        with self._lock:
            self._purge(self._clock())
            return len(self._sessions)

    def _purge(self, now: float) -> None:
        """Drop every expired or revoked session, so tokens nobody presents again do not pile up."""
        for token in [t for t, s in self._sessions.items() if not self._valid(s, now)]:
            del self._sessions[token]


def session_store(settings: Settings) -> SessionStore:
    return SessionStore(
        idle_s=settings.ui.session_idle_minutes * 60,
        max_s=settings.ui.session_max_hours * 3600,
        fingerprint=UserDirectory(settings).fingerprint,
    )


def install_sessions(app: Any, settings: Settings) -> SessionStore:
    """Put a :class:`SessionStore` in place of the Gradio ``App``'s ``tokens``; call it after the app is
    configured (``launch`` or ``mount_gradio_app``), since configuring resets ``tokens`` to a plain dict."""
    store = session_store(settings)
    app.tokens = store
    return store
