"""Login throttling: exponential backoff per client address and per user name, and at most two password
checks at once.

Each PBKDF2 check costs ~0.3 s of a core (600k iterations); the review ran 60 wrong passwords in parallel at
4 a second and slowed an authenticated call from 0.02 s to 2.9 s. So a refused attempt never reaches PBKDF2:
after ``FREE_FAILURES`` failures an address or a name waits 1 s, doubling with each further failure up to
5 minutes, and then only one attempt at a time is checked. Gradio's auth callable sees only (name,
password), so the address is taken in a route placed in front of Gradio's own ``POST /login``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request
from fastapi.routing import APIRoute
from fastapi.security import OAuth2PasswordRequestForm

from rag.audit import AuditLog
from rag.config import Settings
from rag.users import authenticate

log = logging.getLogger("kura.auth")
FREE_FAILURES = 5
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 300.0
FORGET_S = 900.0  # a name or address with no failure for this long starts again from zero
MAX_CHECKS = 2  # PBKDF2 checks at once: one core stays free for answers on a 2-core machine
MAX_TRACKED = 10_000  # names and addresses remembered; old ones are forgotten first


@dataclass
class _Record:
    failures: int = 0
    in_flight: int = 0
    last: float = 0.0


def delay_s(failures: int) -> float:
    """The wait after ``failures`` failures in a row: none for the first few, then 1 s doubling to 5 min."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(FIRST_DELAY_S * 2 ** min(failures - FREE_FAILURES, 32), MAX_DELAY_S)


class LoginThrottle:
    """Failures per key ("address" and "name" keys); ``clock`` is monotonic seconds, injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[tuple[str, str], _Record] = {}
        self._lock = threading.Lock()

    def _wait(self, record: _Record, now: float) -> float:
        if record.failures and record.in_flight and record.failures + record.in_flight >= FREE_FAILURES:
            # Once something failed, attempts checked at once count against the free ones: a burst sent in
            # parallel cannot get more checks than one sent in turn. Without a failure (many people behind
            # one address logging in together) none is held back.
            return FIRST_DELAY_S
        return max(record.last + delay_s(record.failures) - now, 0.0)

    def admit(self, address: str, name: str) -> float:
        """0 when the attempt may be checked (it is then in flight until :meth:`done`), else seconds to wait."""
        now = self._clock()
        keys = [("address", address), ("name", name)]
        with self._lock:
            records = [self._record(key, now) for key in keys]
            wait = max(self._wait(record, now) for record in records)
            if wait <= 0:
                for record in records:
                    record.in_flight += 1
            return wait

    def done(self, address: str, name: str, success: bool) -> None:
        now = self._clock()
        with self._lock:
            for key in (("address", address), ("name", name)):
                record = self._record(key, now)
                record.in_flight = max(record.in_flight - 1, 0)
                if success:
                    record.failures = 0
                else:
                    record.failures += 1
                    record.last = now

    def _record(self, key: tuple[str, str], now: float) -> _Record:
        record = self._records.get(key)
        if record is not None and not record.in_flight and now - record.last > FORGET_S + delay_s(record.failures):
            record = None
        if record is None:
            if len(self._records) >= MAX_TRACKED:
                self._forget(now)
            record = self._records[key] = _Record()
        return record

    def _forget(self, now: float) -> None:
        idle = [k for k, r in self._records.items() if not r.in_flight and now - r.last > delay_s(r.failures)]
        for key in idle or sorted(self._records, key=lambda k: self._records[k].last)[: MAX_TRACKED // 10]:
            del self._records[key]


def checked_auth(settings: Settings, checks: int = MAX_CHECKS) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio's auth callable: the PBKDF2 check off the event loop, at most ``checks`` at a time."""
    import anyio

    gate = asyncio.Semaphore(checks)

    async def check(name: str, password: str) -> bool:
        async with gate:
            return await anyio.to_thread.run_sync(authenticate, settings, name, password)

    return check


def _shown(name: str) -> str:
    return repr(name[:64])  # quoted and escaped: a name with a line break cannot forge a log line


def install_login_throttle(
    app: Any, throttle: LoginThrottle | None = None, audit: AuditLog | None = None
) -> LoginThrottle:
    """Route ``POST /login`` of the Gradio ``App`` through ``throttle`` before Gradio's own login runs; each
    attempt is also an audit event (``login``, ``ok`` true or false, or ``refused`` when throttled)."""
    throttle = throttle or LoginThrottle()
    record = audit.record if audit is not None else lambda event, **fields: None
    original = next(
        route.endpoint
        for route in app.router.routes
        if isinstance(route, APIRoute) and route.path == "/login" and "POST" in (route.methods or ())
    )

    async def login(request: Request, form_data: OAuth2PasswordRequestForm = Depends()) -> Any:  # noqa: B008
        address = request.client.host if request.client else "unknown"
        name = form_data.username.strip()
        wait = throttle.admit(address, name)
        if wait > 0:
            log.warning("login refused for %s from %s: too many failures, %.0f s to wait", _shown(name), address, wait)
            record("login", user=name[:64], via="web", address=address, ok=False, refused="throttled")
            raise HTTPException(status_code=429, detail=f"Too many failed logins: try again in {math.ceil(wait)} s.")
        try:
            response = await original(request, form_data)
        except BaseException:
            throttle.done(address, name, success=False)
            log.warning("login failed for %s from %s", _shown(name), address)
            record("login", user=name[:64], via="web", address=address, ok=False)
            raise
        throttle.done(address, name, success=True)
        log.info("login of %s from %s", _shown(name), address)
        record("login", user=name[:64], via="web", address=address, ok=True)
        return response

    for path in ("/login/", "/login"):
        app.router.routes.insert(0, APIRoute(path, login, methods=["POST"]))
    return throttle
