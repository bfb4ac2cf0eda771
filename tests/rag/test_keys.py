"""API keys on their own: shown once and stored hashed, checked, removed, and ended with their user."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from rag.config import Settings, load_settings
from rag.errors import KuraError
from rag.keys import KeyDirectory, add_key, key_rows, keys_path, remove_keys, split_key
from rag.users import add_user, remove_user
from tests.conftest import write_config


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(write_config(tmp_path))
    add_user(settings, "alice", "alice-long-password")
    add_user(settings, "bob", "bob-long-password")
    return settings


def test_a_key_is_stored_only_as_a_salted_hash_in_a_private_file(settings: Settings) -> None:
    key_id, key = add_key(settings, "alice")
    path = keys_path(settings)
    text = path.read_text()
    assert key.startswith(f"kura-{key_id}-") and len(key) > 40
    assert key not in text and key.split("-", 2)[2] not in text
    entry = json.loads(text)[key_id]
    assert entry["user"] == "alice" and entry["hash"].startswith("sha256$")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert key_rows(settings) == [{"id": key_id, "user": "alice", "created": entry["created"]}]


def test_the_directory_knows_a_key_until_it_or_its_user_is_removed(settings: Settings) -> None:
    keys = KeyDirectory(settings)
    alice_id, alice = add_key(settings, "alice")
    bob_id, bob = add_key(settings, "bob")
    assert keys.user_of(alice) == (alice_id, "alice") and keys.user_of(f" {bob} ") == (bob_id, "bob")
    assert keys.user_of(alice[:-1] + ("A" if alice[-1] != "A" else "B")) is None  # one character changed
    assert keys.user_of(f"kura-{bob_id}-{alice.split('-', 2)[2]}") is None  # alice's secret under bob's id
    assert keys.user_of("sk-not-a-kura-key") is None and keys.user_of("") is None

    assert remove_keys(settings, alice_id) == [(alice_id, "alice")]
    assert keys.user_of(alice) is None
    remove_user(settings, "bob")
    assert keys.user_of(bob) is None  # the key is still in the file, but its user is gone


def test_removing_by_user_or_by_the_whole_key(settings: Settings) -> None:
    first, _ = add_key(settings, "alice")
    second, _ = add_key(settings, "alice")
    bob_id, bob = add_key(settings, "bob")
    assert sorted(remove_keys(settings, "alice")) == sorted([(first, "alice"), (second, "alice")])
    assert remove_keys(settings, bob) == [(bob_id, "bob")]
    with pytest.raises(KuraError, match="no API key with the id 'nobody'"):
        remove_keys(settings, "nobody")


def test_a_key_needs_an_existing_user(settings: Settings) -> None:
    with pytest.raises(KuraError, match="no user named 'carol'"):
        add_key(settings, "carol")
    assert not keys_path(settings).exists()


def test_split_key() -> None:
    assert split_key("kura-0a1b2c3d-s3cr-et_") == ("0a1b2c3d", "s3cr-et_")
    assert split_key("kura-0a1b-secret") is None and split_key("Bearer x") is None
