"""Password hashes, the users file, access rules, and the two CLI refusals; no models needed."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from rag.config import load_settings
from rag.errors import ConfigError, KuraError
from rag.users import (
    ITERATIONS,
    UserDirectory,
    add_user,
    allowed_collections,
    authenticate,
    can_access,
    can_edit,
    hash_password,
    load_users,
    remove_user,
    unmatched_rule_names,
    verify_password,
)
from tests.conftest import KURA, write_config
from tests.helpers import free_port


def test_hash_is_salted_self_describing_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second
    algorithm, iterations, salt, digest = first.split("$")
    assert (algorithm, int(iterations)) == ("pbkdf2_sha256", ITERATIONS) and ITERATIONS >= 200_000
    assert len(base64.b64decode(salt)) == 16 and digest
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horse!", first)


@pytest.mark.parametrize("bad", ["", "plain", "pbkdf2_sha256$1000$AAAA$AAAA", "md5$1$a$b", "pbkdf2_sha256$x$y$z"])
def test_malformed_or_weak_hash_never_matches(bad: str) -> None:
    assert not verify_password("", bad) and not verify_password("plain", bad)


def test_add_user_writes_0600_atomically_and_merges_with_config(tmp_path: Path) -> None:
    configured = {"carol": hash_password("carol-password")}
    settings = load_settings(write_config(tmp_path, ui={"users": configured}))
    assert add_user(settings, "alice", "alice-password") is True
    assert add_user(settings, "alice", "new-password") is False  # a password change, not a second user
    path = tmp_path / "data" / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.startswith("users.json.")] == []  # no temp left
    assert set(json.loads(path.read_text())) == {"alice"}
    assert set(load_users(settings)) == {"alice", "carol"}
    assert authenticate(settings, "alice", "new-password")
    assert not authenticate(settings, "alice", "alice-password")
    assert authenticate(settings, "carol", "carol-password")
    assert not authenticate(settings, "nobody", "new-password")


def test_bad_names_short_passwords_and_bad_entries_are_refused(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    with pytest.raises(KuraError, match="user name"):
        add_user(settings, "../evil", "long enough password")
    with pytest.raises(KuraError, match="too short"):
        add_user(settings, "dave", "short")
    broken = load_settings(write_config(tmp_path, ui={"users": {"eve": "not-a-hash"}}))
    with pytest.raises(ConfigError, match="'eve' is not a pbkdf2_sha256 hash"):
        load_users(broken)


def test_listed_collections_are_for_their_users_only_and_the_rest_for_the_wildcard(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, ui={"collection_access": {"hr": ["alice"], "none": []}}))
    names = ["hr", "none", "public"]
    assert allowed_collections(settings, "alice", names) == ["hr"]  # fails closed: 'public' is listed nowhere
    assert allowed_collections(settings, "bob", names) == []
    assert allowed_collections(settings, None, names) == ["public"]  # nobody logged in: listed ones stay hidden
    assert not can_access(settings, "bob", "new-collection")
    wildcard = load_settings(write_config(tmp_path, ui={"collection_access": {"hr": ["alice"], "*": ["bob"]}}))
    assert allowed_collections(wildcard, "alice", names) == ["hr"]
    assert allowed_collections(wildcard, "bob", names) == ["none", "public"]
    assert can_access(wildcard, "bob", "new-collection")
    open_to_all = load_settings(write_config(tmp_path))
    assert allowed_collections(open_to_all, "bob", names) == allowed_collections(open_to_all, None, names) == names


def test_editors_per_collection_and_rule_names_matching_no_collection(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(
            tmp_path,
            ui={"collection_access": {"hr": ["alice"], "typo": ["bob"]}, "collection_editors": {"hr": ["alice"]}},
        )
    )
    assert can_edit(settings, "alice", "hr") and not can_edit(settings, "bob", "hr")
    assert not can_edit(settings, "alice", "public") and can_edit(settings, None, "public")
    assert unmatched_rule_names(settings, ["hr", "public"]) == ["typo"]


def test_remove_user_and_the_fingerprint_a_session_checks(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, ui={"users": {"carol": hash_password("carol-password")}}))
    add_user(settings, "alice", "alice-password")
    directory = UserDirectory(settings)
    first = directory.fingerprint("alice")
    assert first is not None and directory.fingerprint("nobody") is None
    add_user(settings, "alice", "another-password")
    assert directory.fingerprint("alice") not in (None, first)
    with pytest.raises(KuraError, match=r"it is set in the config key 'ui\.users'; remove it there"):
        remove_user(settings, "carol")
    with pytest.raises(KuraError, match="no user named 'dave' in"):
        remove_user(settings, "dave")
    assert remove_user(settings, "alice") == 1
    assert directory.fingerprint("alice") is None and not authenticate(settings, "alice", "another-password")


def _kura(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([KURA, *args], input=stdin, capture_output=True, text=True, timeout=120)


def test_users_add_reads_the_password_from_stdin(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = _kura("users", "add", "alice", "--password-stdin", "--config", str(config), stdin="s3cret-words\n")
    assert result.returncode == 0, result.stderr
    assert "added user alice" in result.stdout
    stored = json.loads((tmp_path / "data" / "users.json").read_text())
    assert "s3cret-words" not in json.dumps(stored) and verify_password("s3cret-words", stored["alice"])
    short = _kura("users", "add", "bob", "--password-stdin", "--config", str(config), stdin="abc\n")
    assert (short.returncode, short.stderr.strip().count("\n")) == (1, 0)
    assert short.stderr.startswith("error: the password is too short")
    removed = _kura("users", "remove", "alice", "--config", str(config))
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == [
        f"removed user alice from {tmp_path / 'data' / 'users.json'}",
        "no users are left: the next `kura serve` serves only this machine, without a login",
    ]
    again = _kura("users", "remove", "alice", "--config", str(config))
    users_file = tmp_path / "data" / "users.json"
    assert (again.returncode, again.stderr) == (1, f"error: no user named 'alice' in {users_file}\n")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20"])
def test_serving_beyond_this_machine_without_users_is_refused(tmp_path: Path, host: str) -> None:
    config = write_config(tmp_path)
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("KURA_")}
    result = subprocess.run(
        [KURA, "serve", "--host", host, "--port", str(free_port()), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env_free,
    )
    assert result.returncode == 1
    assert result.stderr == f"error: refusing to serve on {host} without users: add one with `kura users add NAME`\n"
