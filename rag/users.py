"""Web UI users: salted PBKDF2 password hashes, and which collections each user may see.

Hashes use only the standard library (``hashlib.pbkdf2_hmac``) so no extra dependency is needed, in the
self-describing form ``pbkdf2_sha256$ITERATIONS$SALT$HASH`` (base64): raising the iteration count later
keeps old hashes verifiable. Users come from ``ui.users`` in the config merged with ``ui.users_file``,
which ``kura users add`` writes; the file wins for a name in both, so re-adding a user changes the password.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from filelock import FileLock

from rag.config import Settings
from rag.errors import ConfigError, KuraError

ALGORITHM = "pbkdf2_sha256"
ITERATIONS = 600_000  # OWASP's 2023 figure for PBKDF2-SHA256; about 0.3 s per login here
MIN_ITERATIONS = 200_000
SALT_BYTES = 16
MIN_PASSWORD_CHARS = 8
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# Verified against when the name is unknown, so a login takes as long for a missing user as for a wrong password.
_DUMMY_HASH = f"{ALGORITHM}${ITERATIONS}${'A' * 24}${'A' * 44}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    """A new salted hash of ``password``; two calls never give the same string."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[int, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != ALGORITHM or not parts[1].isdigit():
        return None
    try:
        salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except ValueError:
        return None
    iterations = int(parts[1])
    if iterations < MIN_ITERATIONS or not salt or not digest:
        return None
    return iterations, salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison; a malformed hash never matches."""
    parsed = _parse(encoded)
    if parsed is None:
        return False
    iterations, salt, expected = parsed
    actual = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations, dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def users_path(settings: Settings) -> Path:
    return settings.resolve(settings.ui.users_file)


def _read_users_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"users file {path} cannot be read ({type(exc).__name__}); fix or remove it") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError(f"users file {path} must map user names to password hashes")
    return data


def _check_entries(users: dict[str, str], where: str) -> None:
    for name, encoded in users.items():
        if _parse(encoded) is None:
            raise ConfigError(
                f"{where}: the entry for '{name}' is not a {ALGORITHM} hash; set it with `kura users add {name}`"
            )


def load_users(settings: Settings) -> dict[str, str]:
    """Every user name with its hash: ``ui.users`` merged with the users file (the file wins)."""
    configured = dict(settings.ui.users)
    _check_entries(configured, "config key 'ui.users'")
    path = users_path(settings)
    stored = _read_users_file(path)
    _check_entries(stored, f"users file {path}")
    return {**configured, **stored}


def authenticate(settings: Settings, name: str, password: str) -> bool:
    """True when ``name`` exists and ``password`` is right; re-reads users so a new one works at once."""
    encoded = load_users(settings).get(name)
    matched = verify_password(password, encoded or _DUMMY_HASH)
    return encoded is not None and matched


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise KuraError(
            f"user name {name!r} is not allowed: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise KuraError(f"the password is too short: use at least {MIN_PASSWORD_CHARS} characters")
    return password


def write_atomically(path: Path, data: dict[str, Any]) -> None:
    """Temp file in the same folder, mode 0600 from the start, fsync, rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def add_user(settings: Settings, name: str, password: str) -> bool:
    """Add ``name`` to the users file, or change its password; True when the user is new."""
    check_name(name)
    check_password(password)
    path = users_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        stored = _read_users_file(path)
        created = name not in stored and name not in settings.ui.users
        write_atomically(path, {**stored, name: hash_password(password)})
    return created


def remove_user(settings: Settings, name: str) -> int:
    """Remove ``name`` from the users file; returns how many users are left (config and file together)."""
    path = users_path(settings)
    with FileLock(str(path.with_name(f".{path.name}.lock"))):
        stored = _read_users_file(path)
        if name not in stored:
            hint = ": it is set in the config key 'ui.users'; remove it there" if name in settings.ui.users else ""
            raise KuraError(f"no user named '{name}' in {path}{hint}")
        del stored[name]
        write_atomically(path, stored)
    return len({*settings.ui.users, *stored})


def file_signature(path: Path) -> tuple[int, int, int]:
    """mtime, size and inode: a file replaced or rewritten (even within one mtime tick) reads differently, so a
    per-request ``stat`` is enough to know whether to read it again; (0, 0, 0) when it is missing."""
    try:
        info = path.stat()
    except OSError:
        return (0, 0, 0)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def fingerprint(encoded: str) -> str:
    """A short digest of a user's hash entry: a session remembers it, and a new password changes it."""
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:16]


class UserDirectory:
    """The current users for a long-running server, re-read only when the users file changes.

    A password change or removal by the CLI (another process) must end that user's sessions at their next
    request, so every session lookup asks for the user's fingerprint; a ``stat`` per request keeps that cheap.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = users_path(settings)
        self._seen: tuple[int, int, int] | None = None
        self._prints: dict[str, str] = {}
        self._broken = False
        self._lock = threading.Lock()

    def fingerprint(self, name: str) -> str | None:
        """The user's current fingerprint, or None when there is no such user (or the file cannot be read)."""
        return self._current().get(name)

    def any(self) -> bool:
        """Whether any user exists now: the API then wants a key on every request."""
        return bool(self._current()) or self._broken  # an unreadable users file closes the API too

    def _current(self) -> dict[str, str]:
        seen = file_signature(self.path)
        with self._lock:
            if seen != self._seen:
                try:
                    users, self._broken = load_users(self.settings), False
                except KuraError:
                    users, self._broken = {}, True  # unreadable users file: fail closed, every session ends
                self._prints = {user: fingerprint(encoded) for user, encoded in users.items()}
                self._seen = seen
            return self._prints


WILDCARD = "*"  # in ui.collection_access and ui.collection_editors: every collection not listed by name


def _listed(rules: dict[str, list[str]], collection: str) -> list[str] | None:
    return rules.get(collection, rules.get(WILDCARD))


def can_access(settings: Settings, user: str | None, collection: str) -> bool:
    """Without ``ui.collection_access`` every collection is open to every user. With it, access fails closed: a
    collection is for the users listed under its name, or under ``*`` when its name is not listed (nobody else).

    ``user`` is None when nobody logged in (local use without users, one person at this machine): then only
    the collections not named in the rules are shown, as before accounts existed.
    """
    rules = settings.ui.collection_access
    if not rules:
        return True
    if user is None:
        return collection not in rules
    return user in (_listed(rules, collection) or [])


def can_edit(settings: Settings, user: str | None, collection: str) -> bool:
    """Whether ``user`` may delete or replace documents in ``collection`` that they did not upload themselves.

    Editors are listed per collection (or under ``*``) in ``ui.collection_editors``; with nobody logged in
    (local use without users) the one person at the machine may do anything.
    """
    return user is None or user in (_listed(settings.ui.collection_editors, collection) or [])


def unmatched_rule_names(settings: Settings, collections: Iterable[str]) -> list[str]:
    """Names in the access and editor rules that match no collection: most likely typos, which fail closed."""
    existing = set(collections)
    named = {*settings.ui.collection_access, *settings.ui.collection_editors} - {WILDCARD}
    return sorted(named - existing)


def allowed_collections(settings: Settings, user: str | None, names: Iterable[str]) -> list[str]:
    return [name for name in names if can_access(settings, user, name)]


def _rules_naming(rules: dict[str, list[str]], user: str) -> list[str]:
    """The collection names (and ``*``) whose rule lists ``user``, named ones first."""
    return sorted((name for name, users in rules.items() if user in users), key=lambda name: (name == WILDCARD, name))


def user_rows(settings: Settings) -> list[dict[str, object]]:
    """Every user with where they are stored and what the rules let them do: ``kura users list``.

    Never the hash: the rows go to a terminal or a script. ``stored_in`` is ``users_file`` (``kura users
    add`` wrote it) or ``config`` (the key ``ui.users``; the file wins for a name in both). With no
    ``ui.collection_access`` every collection is open to every user, which is what ``["*"]`` says in ``may_use``.
    """
    stored = _read_users_file(users_path(settings))
    access, editors = settings.ui.collection_access, settings.ui.collection_editors
    return [
        {
            "name": name,
            "stored_in": "users_file" if name in stored else "config",
            "may_use": _rules_naming(access, name) if access else [WILDCARD],
            "may_edit": _rules_naming(editors, name),
        }
        for name in sorted(load_users(settings))
    ]
