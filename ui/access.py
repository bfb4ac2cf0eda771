"""Who may call the OpenAI-compatible API and the MCP server: API keys, the loopback rule, a rate limit.

The rule is the web page's: once any user exists every request needs a key (``Authorization: Bearer
kura-...``, from ``kura users key add USER``), and a request from another machine always does. A key acts as
its user, so ``ui.collection_access`` applies as on the page. Each key (or, without one, each address) may
make ``api.rate_limit_per_minute`` requests a minute; the next one gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rag.audit import AuditLog
from rag.config import Settings
from rag.keys import KeyDirectory
from rag.service import Caller, Door
from rag.urls import is_loopback
from rag.users import UserDirectory

API_PATHS = ("/v1/", "/mcp")  # the paths a Bearer key may be presented at (the guard lets those through)
MAX_TRACKED = 10_000


@dataclass
class Refusal(Exception):
    """A request the API turns down: HTTP status, one line for the caller, OpenAI's error type and code."""

    status: int
    message: str
    type: str
    code: str
    retry_after: int | None = None


class RateLimiter:
    """A token bucket per key: ``per_minute`` at once, refilled evenly over the minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the request may go ahead (it is counted), else the seconds until one may."""
        now = self._clock()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - when) * self.rate)
            if tokens >= 1:
                if len(self._buckets) >= MAX_TRACKED and key not in self._buckets:
                    self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.capacity - 1}
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, else None."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class ApiGate:
    """Checks one API or MCP request: its key, where it comes from, and its key's rate."""

    def __init__(self, settings: Settings, audit: AuditLog, clock: Callable[[], float] = time.monotonic) -> None:
        self.users = UserDirectory(settings)
        self.keys = KeyDirectory(settings, self.users)
        self.limiter = RateLimiter(settings.api.rate_limit_per_minute, clock)
        self.audit = audit

    def key_is_valid(self, authorization: str | None) -> bool:
        """Whether the header carries a current key of an existing user (the guard asks, for API paths)."""
        token = bearer(authorization)
        return token is not None and self.keys.user_of(token) is not None

    def check(self, authorization: str | None, address: str | None, door: Door) -> Caller:
        """The caller, or a :class:`Refusal` (401 without a valid key where one is needed, 429 over the rate).

        Without users, on this machine, a key is not looked at: clients that must send one (the ``openai``
        client does) may send anything, as no key can exist yet."""
        token = bearer(authorization)
        if not self.users.any() and is_loopback(address):
            caller = Caller(None, door, None, address)  # this machine only, nobody logs in: any key or none
        elif token is not None:
            found = self.keys.user_of(token)
            if found is None:
                self.audit.record("auth_failed", via=door, address=address, reason="invalid key")
                raise Refusal(
                    401, "invalid API key: it was removed, or its user was", "invalid_request_error", "invalid_api_key"
                )
            caller = Caller(found[1], door, found[0], address)
        else:
            self.audit.record("auth_failed", via=door, address=address, reason="no key")
            raise Refusal(
                401,
                "this server wants an API key: send 'Authorization: Bearer KEY' (`kura users key add USER` makes one)",
                "invalid_request_error",
                "missing_api_key",
            )
        wait = self.limiter.take(caller.key_id or f"address:{address}")
        if wait > 0:
            limit = int(self.limiter.capacity)
            seconds = math.ceil(wait)
            raise Refusal(
                429,
                f"rate limit: {limit} requests a minute per key (api.rate_limit_per_minute); try again in {seconds} s",
                "rate_limit_exceeded",
                "rate_limit_exceeded",
                retry_after=seconds,
            )
        return caller
