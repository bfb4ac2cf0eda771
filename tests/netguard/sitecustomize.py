"""Loaded into child processes by the tests: records (and refuses) every non-loopback connection.

Tests put this folder first on PYTHONPATH and read the log named by KURA_NETGUARD_LOG.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("KURA_NETGUARD_LOG")
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def _local(host: object) -> bool:
    if host in (None, "", "localhost") or not isinstance(host, str | bytes):
        return True
    text = host.decode() if isinstance(host, bytes) else host
    try:
        return ipaddress.ip_address(text.split("%")[0]).is_loopback
    except ValueError:
        return text.endswith(".localhost")


def _record(kind: str, target: object) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{kind} {target!r}\n")


def _guard(sock: socket.socket, address: object) -> None:
    inet = sock.family in (socket.AF_INET, socket.AF_INET6)
    if inet and isinstance(address, tuple) and not _local(address[0]):
        _record("connect", address)
        raise OSError(f"non-loopback connection refused by the test guard: {address!r}")


def connect(self: socket.socket, address: object) -> None:
    _guard(self, address)
    return _connect(self, address)


def connect_ex(self: socket.socket, address: object) -> int:
    _guard(self, address)
    return _connect_ex(self, address)


def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
    if not _local(host):
        _record("lookup", host)
        raise socket.gaierror(f"name lookup refused by the test guard: {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = getaddrinfo
