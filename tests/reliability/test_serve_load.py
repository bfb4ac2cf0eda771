"""Eight API users asking at once while one uploads, against a real ``kura serve`` with login on, under the
network guard: no errors, every answer complete, p95 latency and the server's RSS over time recorded.

The login page, a streamed answer in Chromium, the API's per-collection refusals and the browser's requests
are in tests/ui/test_browser.py; this module adds load, a concurrent upload, and a wrong password at the API.
"""

from __future__ import annotations

import re
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Server, start_server
from tests.reliability.helpers import private_config, save_figures

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

USER, PASSWORD = "carol", "carol-long-password"
CLIENTS = 8
LOAD_S = 60.0  # the whole load phase; each client also stops after MAX_PER_CLIENT questions
MAX_PER_CLIENT = 8
QUESTIONS = [
    "On which TCP port does the company VPN gateway accept connections?",
    "Which password manager does the company use?",
    "Within how many hours must a suspected security incident be reported?",
    "For how many days are laptop backups kept?",
    "What are the opening hours of the parking garage at the Leipzig office?",  # abstains without the model
    "Which internal phone extension reaches the IT Service Desk?",
]
ABSTAIN = "I couldn&#x27;t find this in your documents."
TURN = re.compile(r'<div class="kura-turn" data-turn="0">(.*)</div>', re.S)


@pytest.fixture(scope="module")
def server(sample_settings: Any, settings: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The session's sample collection (copied, so the upload cannot change other tests' store), one user."""
    from rag.config import load_settings
    from rag.users import add_user

    folder = tmp_path_factory.mktemp("serve-load")
    shutil.copytree(sample_settings.paths.store, folder / "store")
    config = private_config(folder, settings, vectorstore={"collection": "sample"})
    add_user(load_settings(config), USER, PASSWORD)
    started = start_server(config, folder, "serve-load")
    yield started
    started.stop()


def complete_answer(output: Any) -> str:
    """The one turn of a finished /ask: an answer with a footer, and sources unless it is the abstention."""
    html = next(part for part in (output if isinstance(output, tuple | list) else [output]) if isinstance(part, str))
    turn = TURN.search(html)
    assert turn, html[:500]
    body = turn.group(1)
    assert "kura-error" not in body and "kura-pending" not in body, body[:500]
    assert 'class="kura-footer"' in body, body[:500]
    if ABSTAIN in body:
        assert "model not called" in body
        return "abstained"
    assert 'class="kura-sources"' in body and 'class="kura-cite"' in body, body[:500]
    return "answered"


def test_eight_users_and_an_upload_at_once(server: Server, tmp_path: Path) -> None:
    import psutil
    from gradio_client import Client, handle_file

    with pytest.raises(Exception):  # noqa: B017 - a wrong password gets no session at all
        Client(server.url, auth=(USER, "not-the-password"), verbose=False)
    with pytest.raises(Exception):  # noqa: B017 - nor does no password
        Client(server.url, verbose=False).predict(api_name="/collections")

    warm = Client(server.url, auth=(USER, PASSWORD), verbose=False)
    for question in QUESTIONS[:2]:  # warm-up: first generations and caches before RSS is compared
        complete_answer(warm.predict(question, "sample", 3, 0.0, 48, False, api_name="/ask"))

    process = psutil.Process(server.proc.pid)
    rss: list[float] = []
    latencies: list[float] = []
    kinds: list[str] = []
    errors: list[str] = []
    upload: dict[str, Any] = {}
    stop = threading.Event()
    lock = threading.Lock()
    load_started = time.monotonic()

    def sample_rss() -> None:
        while not stop.is_set():
            rss.append(process.memory_info().rss / 1e6)
            stop.wait(1.0)

    def user(index: int) -> None:
        try:
            client = Client(server.url, auth=(USER, PASSWORD), verbose=False)
            for n in range(MAX_PER_CLIENT):
                if time.monotonic() - load_started > LOAD_S:
                    return
                question = QUESTIONS[(index + n) % len(QUESTIONS)]
                started = time.monotonic()
                output = client.predict(question, "sample", 3, 0.0, 48, False, api_name="/ask")
                seconds = time.monotonic() - started
                kind = complete_answer(output)
                with lock:
                    latencies.append(seconds)
                    kinds.append(kind)
        except Exception as exc:
            with lock:
                errors.append(f"user {index}: {type(exc).__name__}: {exc}")

    def uploader() -> None:
        try:
            time.sleep(5)
            note = tmp_path / "load-note.md"
            note.write_text("# Bike room\n\nThe bike room on level -1 opens with the green badge.\n")
            client = Client(server.url, auth=(USER, PASSWORD), verbose=False)
            started = time.monotonic()
            summary = client.predict([handle_file(str(note))], "sample", api_name="/upload")[0]
            upload["seconds"] = round(time.monotonic() - started, 1)
            upload["summary"] = re.sub(r"<[^>]+>", " ", summary)
            upload["table"] = client.predict("sample", api_name="/documents")[0]
        except Exception as exc:
            with lock:
                errors.append(f"upload: {type(exc).__name__}: {exc}")

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(CLIENTS)] + [threading.Thread(target=uploader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    stop.set()
    sampler.join()
    wall = time.monotonic() - load_started

    assert not errors, errors
    assert all(not thread.is_alive() for thread in threads)
    assert "added 1" in upload.get("summary", ""), upload
    assert "load-note.md" in upload["table"]
    assert len(latencies) >= CLIENTS and kinds.count("answered") >= 1 and kinds.count("abstained") >= 1
    third = max(len(rss) // 3, 1)
    first, last = max(rss[:third]), max(rss[-third:])
    # Bounded, not flat: the embedder's dynamic shapes (issue 20) compile kernels for each new batch shape the
    # load brings, a plateau of ~100 MB over a lower start (877 -> 1,007 MB, 1.15x, against 1,115 -> 1,168 MB
    # with static shapes). The LLM's KV cache is sized up front: scripts/bench_concurrency.py, 1.00-1.01x.
    assert last <= 1.25 * first, rss
    guard = server.guard_log.read_text() if server.guard_log.exists() else ""
    assert guard == "", guard

    ordered = sorted(latencies)
    figures = {
        "clients": CLIENTS,
        "requests_served": len(latencies),
        "answered": kinds.count("answered"),
        "abstained": kinds.count("abstained"),
        "errors": len(errors),
        "wall_s": round(wall, 1),
        "latency_median_s": round(statistics.median(ordered), 2),
        "latency_p95_s": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "latency_max_s": round(ordered[-1], 2),
        "upload_s": upload["seconds"],
        "rss_mb_first_third_max": round(first, 1),
        "rss_mb_last_third_max": round(last, 1),
        "rss_mb_samples": [round(x) for x in rss],
        "server_start_s": server.ready_s,
        "netguard_attempts": 0,
    }
    save_figures("serve_load", figures)
