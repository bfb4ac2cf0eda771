"""Kura's session store and login throttle: expiry and revocation with an injected clock, backoff per address
and per name, two password checks at a time, and both installed on a real Gradio app driven over HTTP."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fastapi.testclient import TestClient

from rag.config import load_settings
from rag.users import UserDirectory, add_user, remove_user
from tests.conftest import write_config
from ui import throttle
from ui.sessions import SessionStore, install_sessions
from ui.throttle import FREE_FAILURES, LoginThrottle, checked_auth, delay_s, install_login_throttle
from ui.upload_cache import discard, prepare_upload_cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_after_its_idle_time_and_its_absolute_time() -> None:
    clock = Clock()
    store = SessionStore(idle_s=60, max_s=300, fingerprint=lambda user: "fp", clock=clock)
    store["token"] = "alice"
    for _ in range(4):  # a request every 59 s keeps it alive...
        clock.now += 59
        assert store.get("token") == "alice" and "token" in store
    clock.now += 59 + 2  # ...until 5 minutes after the login, whatever the activity
    assert store.get("token") is None and "token" not in store and len(store) == 0
    store["idle"] = "alice"
    clock.now += 61
    assert store.get("idle") is None
    assert store.get(None) is None  # type: ignore[arg-type]  # Gradio looks up a missing cookie as None


def test_a_password_change_or_removal_revokes_every_session_of_that_user() -> None:
    prints = {"alice": "a1", "bob": "b1"}
    store = SessionStore(idle_s=60, max_s=300, fingerprint=prints.get, clock=Clock())
    store["a-laptop"], store["a-phone"], store["b"] = "alice", "alice", "bob"
    prints["alice"] = "a2"
    assert store.get("a-laptop") is None and store.get("a-phone") is None and store["b"] == "bob"
    store["a-new"] = "alice"
    assert store["a-new"] == "alice"
    del prints["bob"]
    assert store.get("b") is None and list(store) == ["a-new"]


def test_gradio_logout_of_every_session_works_on_the_store() -> None:
    """Gradio's /logout lists the tokens, reads each back and deletes the user's: the store must allow it."""
    store = SessionStore(idle_s=60, max_s=300, fingerprint=lambda user: "fp", clock=Clock())
    store["1"], store["2"], store["3"] = "alice", "bob", "alice"
    for token in list(store.keys()):
        if store[token] == "alice":
            del store[token]
    assert dict(store) == {"2": "bob"}


def test_the_user_directory_sees_the_cli_change_the_users_file(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    add_user(settings, "alice", "alice-password")
    store = SessionStore(idle_s=60, max_s=300, fingerprint=UserDirectory(settings).fingerprint)
    store["t"] = "alice"
    assert store["t"] == "alice"
    add_user(settings, "alice", "a-new-password")
    assert store.get("t") is None
    store["t"] = "alice"
    remove_user(settings, "alice")
    assert store.get("t") is None


def test_backoff_starts_after_the_free_failures_and_doubles_to_five_minutes() -> None:
    assert [delay_s(n) for n in range(FREE_FAILURES)] == [0.0] * FREE_FAILURES
    assert [delay_s(FREE_FAILURES + n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert delay_s(FREE_FAILURES + 9) == delay_s(10_000) == 300.0


def test_failures_throttle_the_address_and_the_name_each() -> None:
    clock = Clock()
    gate = LoginThrottle(clock)
    for _ in range(FREE_FAILURES):
        assert gate.admit("10.0.0.1", "alice") == 0
        gate.done("10.0.0.1", "alice", success=False)
    assert gate.admit("10.0.0.1", "bob") == 1.0  # the address is throttled, whatever the name
    assert gate.admit("10.0.0.2", "alice") == 1.0  # so is the name, from any address
    assert gate.admit("10.0.0.2", "bob") == 0  # others are not
    gate.done("10.0.0.2", "bob", success=True)
    clock.now += 1.0
    assert gate.admit("10.0.0.1", "alice") == 0
    assert gate.admit("10.0.0.1", "alice") == 1.0  # one check at a time once throttled
    gate.done("10.0.0.1", "alice", success=False)
    assert gate.admit("10.0.0.1", "alice") == 2.0  # doubled
    clock.now += 2.0
    assert gate.admit("10.0.0.1", "alice") == 0
    gate.done("10.0.0.1", "alice", success=True)  # the right password clears both
    assert gate.admit("10.0.0.1", "carol") == 0 and gate.admit("10.0.0.3", "alice") == 0


def test_after_a_failure_parallel_attempts_cannot_outrun_the_free_ones() -> None:
    gate = LoginThrottle(Clock())
    office = [gate.admit("10.0.0.1", f"user{i}") for i in range(8)]
    assert office == [0] * 8  # people behind one address logging in together, nothing failed yet
    for i in range(8):
        gate.done("10.0.0.1", f"user{i}", success=True)
    assert gate.admit("10.0.0.2", "alice") == 0
    gate.done("10.0.0.2", "alice", success=False)
    burst = [gate.admit("10.0.0.2", f"guess{i}") for i in range(60)]
    assert burst.count(0) == FREE_FAILURES - 1


def test_at_most_two_password_checks_run_at_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def slow_check(settings: Any, name: str, password: str) -> bool:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return password == "right"

    monkeypatch.setattr(throttle, "authenticate", slow_check)
    check = checked_auth(load_settings(write_config(tmp_path)))

    async def many() -> list[bool]:
        return await asyncio.gather(*(check("alice", "right" if i == 0 else "wrong") for i in range(8)))

    assert asyncio.run(many()) == [True] + [False] * 7
    assert peak[0] == 2


def gradio_app(tmp_path: Path, passwords: dict[str, str]) -> tuple[TestClient, Any, dict[str, str]]:
    """A real Gradio app with a password check, Kura's sessions and throttle installed as ``kura serve`` does."""
    settings = load_settings(write_config(tmp_path))
    for name, password in passwords.items():
        add_user(settings, name, password)
    with gr.Blocks() as demo:
        gr.Markdown("hello")
    demo.auth = checked_auth(settings)
    demo.auth_message = None
    app = gr.routes.App.create_app(demo)
    install_sessions(app, settings)
    install_login_throttle(app)
    return TestClient(app), settings, passwords


def test_login_over_http_throttles_logs_and_revokes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client, settings, _ = gradio_app(tmp_path, {"alice": "alice-password"})
    caplog.set_level(logging.INFO, logger="kura.auth")
    assert client.get("/config").status_code == 401
    assert client.post("/login", data={"username": "alice", "password": "alice-password"}).status_code == 200
    assert client.get("/config").status_code == 200 and client.get("/gradio_api/user").json() == "alice"
    statuses = [
        client.post("/login", data={"username": "mallory", "password": "guess-password"}).status_code
        for _ in range(FREE_FAILURES + 1)
    ]
    assert statuses == [400] * FREE_FAILURES + [429]
    refused = client.post("/login", data={"username": "mallory", "password": "guess-password"})
    assert refused.status_code == 429 and "Too many failed logins" in refused.json()["detail"]
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == ["login failed for 'mallory' from testclient"] * FREE_FAILURES
    assert not any("guess-password" in r.getMessage() for r in caplog.records)
    assert client.get("/config").status_code == 200  # a session made before keeps working
    add_user(settings, "alice", "a-new-password")
    assert client.get("/config").status_code == 401 and client.get("/gradio_api/user").json() is None


def test_the_upload_cache_is_private_emptied_on_start_and_after_each_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings(write_config(tmp_path))
    cache = prepare_upload_cache(settings)
    assert cache == tmp_path / "up" / ".gradio" and (cache.stat().st_mode & 0o777) == 0o700
    leftover = cache / "abc123" / "never-submitted.md"
    leftover.parent.mkdir()
    leftover.write_text("left from the last run")
    outside = tmp_path / "mine.md"
    outside.write_text("not Gradio's")
    orphan = cache / "tmp-left-by-gr-file"
    orphan.write_bytes(b"")
    with (cache / "tmp-upload-in-progress").open("wb") as receiving:
        discard([leftover, outside])
        assert list(cache.iterdir()) == [cache / "tmp-upload-in-progress"] and outside.exists()
        receiving.write(b"still arriving")
    (cache / "old").mkdir()
    assert prepare_upload_cache(settings) == cache and list(cache.iterdir()) == []
