"""The audit log: one JSON line per event (login, question, search, upload, delete, API key, refused key).

Security teams ask who asked what and which documents were shown. Each line has ``time`` (UTC, ISO 8601),
``event`` and the event's fields; a question's line names the user, the collection, the ids of the chunks
shown, how the answer was made, whether Kura abstained and how long it took. The words of questions and
answers are left out unless ``audit.include_text`` is true: they may be as confidential as the documents.

Files rotate by UTC day (``audit-YYYY-MM-DD.jsonl`` in ``audit.folder``), so several processes (``kura
serve``, ``kura mcp``, the CLI adding a key) append to the same file without coordinating: each line is one
``write`` to a file opened with ``O_APPEND``. Day files older than ``audit.retention_days`` are deleted when
a process first writes on a new day.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.errors import KuraError

TEXT_FIELDS = ("question", "answer")  # kept only with audit.include_text
FILE_NAME = re.compile(r"^audit-(\d{4}-\d{2}-\d{2})\.jsonl$")
RELATIVE = re.compile(r"^(\d+)\s*([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def now() -> datetime:
    return datetime.now(UTC)


def day_file(folder: Path, when: datetime) -> Path:
    return folder / f"audit-{when:%Y-%m-%d}.jsonl"


class AuditLog:
    """Appends events to today's file; ``clock`` gives the current UTC time (injectable for tests)."""

    def __init__(self, settings: Settings, clock: Any = now) -> None:
        self.enabled = settings.audit.enabled
        self.folder = settings.resolve(settings.audit.folder)
        self.retention = timedelta(days=settings.audit.retention_days)
        self.include_text = settings.audit.include_text
        self._clock = clock
        self._day: str | None = None
        self._lock = threading.Lock()

    def record(self, event: str, **fields: Any) -> dict[str, Any] | None:
        """Write one line; returns it (None when the audit log is off). Question and answer text go only
        when configured; a field that is None is left out, except ``user`` (null: nobody logs in here)."""
        if not self.enabled:
            return None
        when = self._clock()
        kept = {
            k: v
            for k, v in fields.items()
            if (v is not None or k == "user") and (self.include_text or k not in TEXT_FIELDS)
        }
        line = {"time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "event": event, **kept}
        data = (json.dumps(line, ensure_ascii=False, default=str) + "\n").encode("utf-8")
        with self._lock:
            self._rotate(when)
            handle = os.open(day_file(self.folder, when), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(handle, data)
            finally:
                os.close(handle)
        return line

    def _rotate(self, when: datetime) -> None:
        """On the first write of a day: the folder exists, and day files past the retention are gone."""
        day = f"{when:%Y-%m-%d}"
        if day == self._day:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        oldest = (when - self.retention).date()
        for path, file_day in _day_files(self.folder):
            if file_day < oldest:
                with contextlib.suppress(OSError):
                    path.unlink()
        self._day = day


def _day_files(folder: Path) -> list[tuple[Path, Any]]:
    """The audit day files in ``folder``, oldest first, with their dates."""
    found = []
    for path in folder.glob("audit-*.jsonl") if folder.is_dir() else []:
        match = FILE_NAME.match(path.name)
        if match:
            found.append((path, datetime.strptime(match[1], "%Y-%m-%d").replace(tzinfo=UTC).date()))
    return sorted(found, key=lambda pair: pair[1])


def parse_since(value: str, current: datetime | None = None) -> datetime:
    """``30m``, ``12h``, ``7d`` (ago), a date ``2026-12-01`` or a time ``2026-12-01T09:00`` (UTC unless given)."""
    text = value.strip()
    relative = RELATIVE.match(text)
    if relative:
        return (current or now()) - timedelta(**{UNITS[relative[2]]: int(relative[1])})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KuraError(
            f"--since {value!r}: use 30m, 12h, 7d, a date (2026-12-01) or a time (2026-12-01T09:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def read_events(settings: Settings, user: str | None = None, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """The events in time order, optionally only one user's and only those at or after ``since``.

    A line that is not JSON (a disk that filled mid-line) is skipped rather than ending the listing.
    """
    folder = settings.resolve(settings.audit.folder)
    for path, day in _day_files(folder):
        if since is not None and day < since.date():
            continue
        with path.open(encoding="utf-8", errors="replace") as lines:
            for raw in lines:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(event, dict) or (user is not None and event.get("user") != user):
                    continue
                if since is not None and _time(event) < since:
                    continue
                yield event


def _time(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
