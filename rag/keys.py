"""API keys for the OpenAI-compatible API and the MCP server: one user's, shown once, stored hashed.

A key reads ``kura-<id>-<secret>``: the id (8 hex digits) finds the entry, the secret (32 random bytes) is
checked against its salted SHA-256. Passwords get 600,000 PBKDF2 rounds (rag.users) because people choose
guessable ones; a 256-bit random secret cannot be guessed, so stretching would add nothing but ~0.3 s of a
core to every API request. The keys file is written like the users file: mode 0600, atomically, under a
file lock. A key works only while its user exists: ``kura users remove`` ends that user's keys too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from rag.config import Settings
from rag.errors import ConfigError, KuraError
from rag.users import UserDirectory, file_signature, load_users, write_atomically

PREFIX = "kura"
ID_BYTES = 4
SECRET_BYTES = 32
ALGORITHM = "sha256"


def keys_path(settings: Settings) -> Path:
    return settings.resolve(settings.api.keys_file)


def _digest(secret: str, salt: bytes) -> str:
    return base64.b64encode(hashlib.sha256(salt + secret.encode("utf-8")).digest()).decode("ascii")


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    return f"{ALGORITHM}${base64.b64encode(salt).decode('ascii')}${_digest(secret, salt)}"


def secret_matches(secret: str, encoded: str) -> bool:
    parts = encoded.split("$")
    if len(parts) != 3 or parts[0] != ALGORITHM:
        return False
    try:
        salt = base64.b64decode(parts[1], validate=True)
    except ValueError:
        return False
    return hmac.compare_digest(_digest(secret, salt), parts[2])


def split_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    prefix, _, rest = key.partition("-")
    key_id, _, secret = rest.partition("-")
    if prefix != PREFIX or len(key_id) != 2 * ID_BYTES or not secret:
        return None
    return key_id, secret


def read_keys(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"keys file {path} cannot be read ({type(exc).__name__}); fix or remove it") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("user"), str) and isinstance(v.get("hash"), str) for v in data.values()
    ):
        raise ConfigError(f"keys file {path} must map key ids to {{user, hash, created}}")
    return data


def add_key(settings: Settings, user: str) -> tuple[str, str]:
    """A new key for ``user``: returns (id, the key). The key itself is never stored, so it is shown once."""
    if user not in load_users(settings):
        raise KuraError(f"no user named '{user}': add the user first with `kura users add {user}`")
    path = keys_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        stored = read_keys(path)
        key_id = secrets.token_hex(ID_BYTES)
        while key_id in stored:
            key_id = secrets.token_hex(ID_BYTES)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        stored[key_id] = {"user": user, "hash": hash_secret(secret), "created": created}
        write_atomically(path, stored)
    return key_id, f"{PREFIX}-{key_id}-{secret}"


def remove_keys(settings: Settings, target: str) -> list[tuple[str, str]]:
    """Remove the key with id ``target`` (or the whole key, or every key of the user ``target``);
    returns the (id, user) pairs removed."""
    path = keys_path(settings)
    parsed = split_key(target)
    key_id = parsed[0] if parsed else target
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        stored = read_keys(path)
        gone = [k for k, entry in stored.items() if k == key_id or entry["user"] == target]
        if not gone:
            raise KuraError(f"no API key with the id '{target}' and no user '{target}' with keys in {path}")
        write_atomically(path, {k: v for k, v in stored.items() if k not in gone})
    return [(k, stored[k]["user"]) for k in gone]


def key_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every key's id, user and creation time (never the hash): ``kura users key list``."""
    stored = read_keys(keys_path(settings))
    return [{"id": k, "user": v["user"], "created": v.get("created", "")} for k, v in sorted(stored.items())]


class KeyDirectory:
    """The current keys for a long-running server, re-read only when the keys file changes (a ``stat`` per
    request), so a key added or removed by the CLI works or stops at once."""

    def __init__(self, settings: Settings, users: UserDirectory | None = None) -> None:
        self.path = keys_path(settings)
        self.users = users or UserDirectory(settings)
        self._seen: tuple[int, int, int] | None = None
        self._keys: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def user_of(self, key: str) -> tuple[str, str] | None:
        """(key id, user) for a valid key of an existing user, else None."""
        parsed = split_key(key.strip())
        if parsed is None:
            return None
        entry = self._current().get(parsed[0])
        if entry is None or not secret_matches(parsed[1], entry["hash"]):
            return None
        if self.users.fingerprint(entry["user"]) is None:
            return None  # the user was removed: their keys end with them
        return parsed[0], entry["user"]

    def _current(self) -> dict[str, dict[str, str]]:
        seen = file_signature(self.path)
        with self._lock:
            if seen != self._seen:
                try:
                    self._keys = read_keys(self.path)
                except KuraError:
                    self._keys = {}  # unreadable keys file: fail closed
                self._seen = seen
            return self._keys
