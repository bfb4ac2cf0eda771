"""Server URLs from the settings (``llm.base_url``, ``vectorstore.url``), as shown to people and as trusted
with a secret.

A URL may carry a user and password (``https://kura:hunter2@models.example/v1``); every place that shows one
(the page header and answer footers, ``kura doctor``, error lines, logs) shows ``redact(url)`` instead.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` without its user information: ``https://kura:hunter2@models.example/v1`` ->
    ``https://models.example/v1``. Anything that does not parse as a URL is shown as ``<unparsable URL>``
    rather than risk showing a secret in it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    shown = f"[{host}]" if host and ":" in host else (host or "")
    netloc = f"{shown}:{port}" if port is not None else shown
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine: ``localhost``, a ``.localhost`` name or a loopback address."""
    if not host:
        return False
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


def sends_in_clear(url: str) -> bool:
    """Whether a secret sent to ``url`` would cross a network unencrypted: plain ``http`` to another machine."""
    parts = urlsplit(url)
    return parts.scheme.lower() == "http" and not is_loopback(parts.hostname)


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (sent as HTTP basic authentication)."""
    return urlsplit(url).password is not None


def transport_reason(exc: BaseException) -> str:
    """Why a connection to a server failed, in a few words (``connection refused``), for a one-line error.
    A library's own error raised while handling httpx's (Chroma's ``ValueError: Could not connect``) is
    looked through to the transport error behind it."""
    import httpx

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, httpx.TransportError):
        cause = cause.__cause__ or cause.__context__
    exc = cause or exc
    text = str(exc).lower()
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "name resolution" in text:
            return "host name not found"
        if "unreachable" in text:
            return "network unreachable"
        return "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "connection lost"
    return type(exc).__name__
