"""Runs inside a fresh network and mount namespace (``unshare -n -m``) and records every way out of it.

The namespace has loopback, a logging DNS server on 127.0.0.1:53 (UDP and TCP, answers NXDOMAIN) that the
namespace's own /etc/resolv.conf points at (a bind mount, private to the mount namespace), and a TUN device
holding the default routes (IPv4 and IPv6): every packet to a non-loopback address lands here and is recorded,
whatever made it (Python's socket, libuv under uvloop, a Rust or C library). Events go to ``events.jsonl`` as
they happen. The test reaches the server through a Unix socket relayed to a loopback port inside the namespace
(a path in the file system is visible from both sides; a TCP port is not).

Why a TUN device and not a capture on a dummy interface, or strace: this kernel has no ``dummy`` module, a
capture would need AF_PACKET on an interface that does not exist, and ``strace -e connect`` misses datagrams
sent without ``connect`` and is one more package; a TUN device needs only /dev/net/tun and iproute2.

Usage: python inside.py DIR RELAY_PORT [-- COMMAND ...]; writes DIR/ready when everything listens, then runs
COMMAND (its output in DIR/command.log) until it exits or this process gets SIGTERM.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
TUN_NAME = "kura-out0"
NXDOMAIN = 3
# Host resolvers glibc asks through a Unix socket (a path, so shared with the namespace): nscd, systemd-resolved.
RESOLVER_SOCKETS = ("/run/nscd/socket", "/var/run/nscd/socket", "/run/systemd/resolve/io.systemd.Resolve")


class Events:
    """Appends one JSON line per event, flushed at once (the test reads the file while this runs)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def add(self, **event: Any) -> None:
        with self._lock:
            self._file.write(json.dumps(event) + "\n")
            self._file.flush()


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def question(query: bytes) -> tuple[str, int, int]:
    """The first question's name and type, and where the question section ends."""
    labels, at = [], 12
    while query[at]:
        length = query[at]
        labels.append(query[at + 1 : at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    qtype = struct.unpack("!H", query[at + 1 : at + 3])[0]
    return ".".join(labels), qtype, at + 5


def refuse(query: bytes, end: int) -> bytes:
    """NXDOMAIN for the question asked: a resolver stops there instead of trying another server."""
    flags = struct.unpack("!H", query[2:4])[0]
    answer_flags = 0x8000 | (flags & 0x7900) | 0x0080 | NXDOMAIN  # QR, opcode and RD kept, RA, rcode
    return query[:2] + struct.pack("!HHHHH", answer_flags, 1, 0, 0, 0) + query[12:end]


def dns_udp(events: Events, sock: socket.socket) -> None:
    while True:
        query, peer = sock.recvfrom(4096)
        try:
            name, qtype, end = question(query)
        except (IndexError, struct.error):
            events.add(kind="dns", proto="udp", name=None, raw=query.hex())
            continue
        events.add(kind="dns", proto="udp", name=name, qtype=qtype)
        sock.sendto(refuse(query, end), peer)


def dns_tcp_client(events: Events, conn: socket.socket) -> None:
    with conn:
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            query = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
            name, qtype, end = question(query)
            events.add(kind="dns", proto="tcp", name=name, qtype=qtype)
            reply = refuse(query, end)
            conn.sendall(struct.pack("!H", len(reply)) + reply)


def dns_tcp(events: Events, sock: socket.socket) -> None:
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=dns_tcp_client, args=(events, conn), daemon=True).start()


def open_tun() -> int:
    """A TUN device that lives as long as this process holds it; routes to it make every outside packet ours."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", TUN_NAME.encode(), IFF_TUN | IFF_NO_PI))
    sh("ip", "link", "set", TUN_NAME, "addrgenmode", "none")  # no link-local address: the kernel sends nothing
    sh("ip", "link", "set", TUN_NAME, "up")
    sh("ip", "addr", "add", "10.255.0.1/32", "dev", TUN_NAME)
    sh("ip", "route", "add", "default", "dev", TUN_NAME)
    sh("ip", "-6", "addr", "add", "fd00:6b75:7261::1/128", "dev", TUN_NAME, "nodad")
    sh("ip", "-6", "route", "add", "default", "dev", TUN_NAME)
    return fd


def describe(packet: bytes) -> dict[str, Any]:
    """Destination, protocol and destination port of one IPv4 or IPv6 packet."""
    version = packet[0] >> 4
    if version == 4:
        header, proto, dst = (packet[0] & 0x0F) * 4, packet[9], ipaddress.ip_address(packet[16:20])
    else:
        header, proto, dst = 40, packet[6], ipaddress.ip_address(packet[24:40])
    port = struct.unpack("!H", packet[header + 2 : header + 4])[0] if proto in (6, 17) else None
    names = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}
    return {"dst": str(dst), "proto": names.get(proto, str(proto)), "port": port}


def capture(events: Events, fd: int) -> None:
    while True:
        events.add(kind="packet", **describe(os.read(fd, 65535)))


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def relay(path: Path, port: int) -> None:
    """The test's way in: a Unix socket at ``path`` forwarded to 127.0.0.1:``port`` in this namespace."""

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_unix_server(forward, path=str(path))
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def main() -> int:
    folder, relay_port = Path(sys.argv[1]), int(sys.argv[2])
    command = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    sh("ip", "link", "set", "lo", "up")
    events = Events(folder / "events.jsonl")
    resolv = folder / "resolv.conf"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    sh("mount", "--bind", str(resolv), "/etc/resolv.conf")
    for daemon in RESOLVER_SOCKETS:  # a caching daemon outside would answer (and look up) for us: hide it
        if Path(daemon).exists():
            sh("mount", "--bind", "/dev/null", daemon)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.create_server(("127.0.0.1", 53))
    tun = open_tun()
    for target, args in (
        (dns_udp, (events, udp)),
        (dns_tcp, (events, tcp)),
        (capture, (events, tun)),
        (relay, (folder / "relay.sock", relay_port)),
    ):
        threading.Thread(target=target, args=args, daemon=True).start()
    while not (folder / "relay.sock").exists():
        threading.Event().wait(0.05)
    (folder / "ready").write_text(str(os.getpid()))
    if not command:
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        return 0
    with (folder / "command.log").open("w") as log:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    signal.signal(signal.SIGTERM, lambda *_: child.terminate())
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
