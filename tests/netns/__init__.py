"""A network namespace with only loopback, a logging DNS server and a catch-all route (see ``inside.py``), and
the test's side of it: start a command inside, reach its port through a Unix socket, run more commands in the
same namespace, read what tried to leave.

Unlike tests/netguard (a hook on Python's ``socket``), this sees lookups and connections made by any code in
the process: libuv under uvloop, Chroma's Rust, C libraries. It needs root (``unshare``, ``mount``) and
/dev/net/tun, as the project's CI machines have; without them it fails rather than skips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

INSIDE = Path(__file__).with_name("inside.py")
SETTLE_S = 1.0  # the capture runs in its own threads: give a packet sent at the end of a step time to land


class Namespace:
    """One namespace and the command running in it (``kura serve``), for the whole test module."""

    def __init__(self, folder: Path, port: int, command: list[str], env: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.port = folder, port
        self.events_file = folder / "events.jsonl"
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--", sys.executable, str(INSIDE), str(folder), str(port), "--", *command],
            stdout=(folder / "inside.log").open("w"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        while not (folder / "ready").exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the namespace did not start:\n{self.output()}")
            time.sleep(0.05)
        self.pid = int((folder / "ready").read_text())

    def output(self) -> str:
        return "".join(
            (self.folder / name).read_text(errors="replace")
            for name in ("inside.log", "command.log")
            if (self.folder / name).exists()
        )

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client whose every connection goes to 127.0.0.1:``port`` inside the namespace."""
        transport = httpx.HTTPTransport(uds=str(self.folder / "relay.sock"))
        return httpx.Client(transport=transport, base_url=f"http://127.0.0.1:{self.port}", **kwargs)

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.events())

    def since(self, mark: int) -> list[dict[str, Any]]:
        """Every DNS query and outside packet after ``mark`` (after a short settle for the capture threads)."""
        time.sleep(SETTLE_S)
        return self.events()[mark:]

    def run(
        self, *command: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        """``command`` in the same network and mount namespaces (so with the same resolver and routes)."""
        enter = ["nsenter", f"--target={self.pid}", "--net", "--mount", "--"]
        return subprocess.run(
            [*enter, *command], capture_output=True, text=True, env=env or dict(os.environ), timeout=timeout
        )

    def wait_for_http(self, path: str = "/", timeout_s: float = 600) -> float:
        """Seconds until ``path`` answers 200 (``kura serve`` loads its models before that)."""
        started = time.monotonic()
        with self.client(timeout=5) as http:
            while True:
                try:
                    if http.get(path).status_code == 200:
                        return round(time.monotonic() - started, 2)
                except httpx.TransportError:
                    pass
                if self.proc.poll() is not None or time.monotonic() - started > timeout_s:
                    raise RuntimeError(f"the command in the namespace did not answer:\n{self.output()}")
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to the supervisor (it passes it on), then SIGKILL to its whole session if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
