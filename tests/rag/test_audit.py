"""The audit log on its own: one JSON line per event, text only when configured, day files, retention, reading."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rag.audit import AuditLog, parse_since, read_events
from rag.config import Settings, load_settings
from rag.errors import KuraError
from tests.conftest import write_config

DAY = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


class Clock:
    def __init__(self, when: datetime) -> None:
        self.when = when

    def __call__(self) -> datetime:
        return self.when


def settings_with(folder: Path, **audit: object) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    return load_settings(write_config(folder, audit=audit))


def test_one_line_per_event_without_the_words_unless_configured(tmp_path: Path) -> None:
    log = AuditLog(settings_with(tmp_path), Clock(DAY))
    log.record("question", user="alice", via="api", collection="hr", question="salary of bob?", answer="none")
    log.record("login", user=None, via="web", ok=False)
    path = tmp_path / "data" / "audit" / "audit-2026-12-07.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"time": "2026-12-07T09:30:00.000Z", "event": "question", "user": "alice", "via": "api",
                        "collection": "hr"}  # fmt: skip
    assert lines[1] == {"time": "2026-12-07T09:30:00.000Z", "event": "login", "user": None, "via": "web", "ok": False}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    verbatim = AuditLog(settings_with(tmp_path / "text", include_text=True), Clock(DAY))
    line = verbatim.record("question", user="alice", question="salary of bob?", answer="none")
    assert line is not None and line["question"] == "salary of bob?" and line["answer"] == "none"


def test_off_writes_nothing(tmp_path: Path) -> None:
    assert AuditLog(settings_with(tmp_path, enabled=False)).record("login", user="a") is None
    assert not (tmp_path / "data" / "audit").exists()


def test_a_new_day_opens_a_new_file_and_drops_files_past_the_retention(tmp_path: Path) -> None:
    clock = Clock(DAY - timedelta(days=10))
    log = AuditLog(settings_with(tmp_path, retention_days=7), clock)
    log.record("login", user="old")
    clock.when = DAY - timedelta(days=3)
    log.record("login", user="recent")
    clock.when = DAY
    log.record("login", user="today")
    folder = tmp_path / "data" / "audit"
    assert sorted(p.name for p in folder.iterdir()) == ["audit-2026-12-04.jsonl", "audit-2026-12-07.jsonl"]


def test_reading_filters_by_user_and_time_and_skips_a_torn_line(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    clock = Clock(DAY - timedelta(days=2))
    log = AuditLog(settings, clock)
    log.record("question", user="alice", collection="a")
    clock.when = DAY
    log.record("question", user="bob", collection="b")
    log.record("question", user="alice", collection="c")
    with (tmp_path / "data" / "audit" / "audit-2026-12-07.jsonl").open("a") as out:
        out.write('{"time": "2026-12-07T10:00:00Z", "event": "quest')  # a disk that filled mid-line
    assert [e["collection"] for e in read_events(settings)] == ["a", "b", "c"]
    assert [e["collection"] for e in read_events(settings, user="alice")] == ["a", "c"]
    assert [e["collection"] for e in read_events(settings, since=DAY - timedelta(hours=1))] == ["b", "c"]


def test_since_takes_relative_times_dates_and_times() -> None:
    assert parse_since("12h", DAY) == DAY - timedelta(hours=12)
    assert parse_since("7d", DAY) == DAY - timedelta(days=7)
    assert parse_since("30m", DAY) == DAY - timedelta(minutes=30)
    assert parse_since("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_since("2026-12-01T09:00+01:00") == datetime(2026, 12, 1, 8, tzinfo=UTC)
    with pytest.raises(KuraError, match="--since 'yesterday'"):
        parse_since("yesterday")
