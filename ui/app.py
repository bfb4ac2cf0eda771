"""``kura serve``: the web UI over the same Assistant, ingest pipeline and store as the CLI.

The embedder and the LLM are loaded once per process and shared; one :class:`Assistant` per collection
is built on first use. Everything that belongs to one user (the conversation, its sources) lives in that
session's ``gr.State``, never in this object. Access is checked in every handler against the logged-in
user, because the Gradio API can call a handler with any collection name, whatever the dropdown showed.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import ipaddress
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from rag.answer import Assistant, open_assistant
from rag.config import COLLECTION_NAME, Settings
from rag.errors import KuraError
from rag.models.embedder import Embedder, RecentVectors
from rag.models.llm import ChatLLM
from rag.models.reranker import load_reranker
from rag.store import connect
from rag.users import allowed_collections, authenticate, can_access, load_users
from rag.wording import plural
from ui import render
from ui.documents import list_documents, writer
from ui.layout import layout
from ui.uploads import stage_uploads

log = logging.getLogger("kura.ui")
STREAM_INTERVAL_S = 0.05  # at most ~20 page updates a second while an answer streams
PROGRESS = gr.Progress()  # a marker default: Gradio passes each upload its own tracker
THEME = gr.themes.Default(
    primary_hue="teal",
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "sans-serif"],  # system fonts: no font download
    font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
)


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def handler(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A KuraError becomes a one-line message on the page (and in the API), never a traceback.

    Streaming handlers stay generator functions, since Gradio decides how to call them by that.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except KuraError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        return stream

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KuraError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    return call


class KuraApp:
    """The handlers behind the page; shared by every session, holding only process-wide things."""

    def __init__(
        self, settings: Settings, embedder: Embedder, llm: ChatLLM, collection: str | None, login: bool
    ) -> None:
        self.settings = settings
        self.embedder = RecentVectors(embedder)  # one cache of recent vectors for every collection's answers
        self.llm = llm
        self.reranker = load_reranker(settings)
        self.login = login
        self.default_collection = collection or settings.vectorstore.collection
        self.uploads_root = settings.resolve(settings.paths.uploads)
        self._assistants: dict[str, Assistant] = {}
        self._lock = threading.Lock()

    # --- access -------------------------------------------------------------------------------------
    def user(self, request: gr.Request | None) -> str | None:
        return getattr(request, "username", None) if self.login else None

    def visible(self, request: gr.Request | None) -> list[str]:
        return allowed_collections(self.settings, self.user(request), connect(self.settings).names())

    def require(self, request: gr.Request | None, collection: str | None, must_exist: bool = True) -> str:
        """The collection name if this user may use it; the same refusal whether it is hidden or missing."""
        name = (collection or "").strip()
        if not re.match(COLLECTION_NAME, name):
            raise KuraError("choose a collection: 3-63 letters, digits, '.', '_' or '-'")
        exists = name in connect(self.settings).names()
        if not can_access(self.settings, self.user(request), name) or (must_exist and not exists):
            raise KuraError(f"no collection named '{name}' that you may use; pick one from the list")
        return name

    def assistant(self, name: str) -> Assistant:
        with self._lock:
            if name not in self._assistants:
                self._assistants[name] = open_assistant(
                    self.settings, name, embedder=self.embedder, llm=self.llm, reranker=self.reranker
                )
            return self._assistants[name]

    def status(self) -> str:
        llm, embedder = self.llm.device_choice, self.embedder.device_choice
        return (
            f"LLM {self.llm.name} on {llm.device} · embedder {self.embedder.name} on {embedder.device}"
            f" · answers generated at once: {self.settings.ui.concurrency_limit}"
        )

    # --- page load and collection choice ------------------------------------------------------------
    def on_load(self, request: gr.Request) -> Any:
        """The collections this user may see; choosing one fills the rest of the page (its change event)."""
        names = self.visible(request)
        value = self.default_collection if self.default_collection in names else (names[0] if names else None)
        return gr.Dropdown(choices=names, value=value)

    def on_collection(self, collection: str | None, request: gr.Request) -> tuple[Any, ...]:
        """A new collection starts a new conversation: its sources would not be this one's."""
        table, choices = self.documents(collection, request)
        return render.conversation([], True, collection), [], render.EMPTY_PANEL, table, choices

    # --- chat ---------------------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        collection: str,
        turns: list[dict[str, Any]] | None,
        k: float,
        temperature: float,
        max_tokens: float,
        show_reasoning: bool,
        request: gr.Request,
    ) -> Iterator[tuple[str, list[dict[str, Any]], str]]:
        """Stream the answer into the conversation; the last update carries the checked answer and footer."""
        question = (question or "").strip()
        name = self.require(request, collection)
        if not question:
            raise KuraError("type a question about your documents first")
        assistant = self.assistant(name)
        turns = list(turns or [])
        history = [(t["question"], t["final"]["answer"]) for t in turns if t.get("final")]
        turn: dict[str, Any] = {"question": question, "answer": "", "reasoning": "", "final": None, "error": None}
        turns.append(turn)
        yield render.conversation(turns, show_reasoning, name), turns, ""
        last = time.monotonic()
        try:
            for event in assistant.ask(question, history, **_clamped(k, temperature, max_tokens)):
                if event.answer is not None:
                    turn["final"] = event.answer.to_dict()
                    turn["reasoning"] = event.answer.reasoning
                else:
                    turn[event.kind] += event.text
                if time.monotonic() - last >= STREAM_INTERVAL_S:
                    last = time.monotonic()
                    yield render.conversation(turns, show_reasoning, name), turns, ""
        except KuraError as exc:
            turn["error"] = str(exc)
        except Exception as exc:  # the page must say something went wrong, not spin forever
            log.exception("answering failed")
            turn["error"] = f"answering failed ({type(exc).__name__}); see the server log"
        yield render.conversation(turns, show_reasoning, name), turns, ""

    def show_source(self, turns: list[dict[str, Any]] | None, evt: gr.EventData) -> str:
        """The clicked citation's source, looked up in this session's own answers by (turn, n)."""
        data = getattr(evt, "_data", None) or {}
        try:
            turn, n = int(data["turn"]), int(data["n"])
            sources = (turns or [])[turn]["final"]["sources"]
            return render.source_panel(sources[n - 1]) if 1 <= n <= len(sources) else render.EMPTY_PANEL
        except (KeyError, IndexError, TypeError, ValueError):
            return render.EMPTY_PANEL

    # --- documents ----------------------------------------------------------------------------------
    def documents(self, collection: str | None, request: gr.Request) -> tuple[str, Any]:
        if not collection:
            return render.documents_table([], None), gr.Dropdown(choices=[], value=None)
        name = self.require(request, collection, must_exist=False)
        rows = list_documents(self.settings, name)
        choices = [(f"{r['file']} ({r['origin']})", r["id"]) for r in rows]
        return render.documents_table(rows, name), gr.Dropdown(choices=choices, value=None)

    def delete(self, collection: str, doc_id: str | None, request: gr.Request) -> tuple[str, str, Any]:
        name = self.require(request, collection)
        if not doc_id:
            raise KuraError("choose a document to delete first")
        try:
            removed = writer(self.settings, name).delete_document(doc_id)
            message = f"<div>deleted {escape(removed)} from {escape(name)}</div>"
        except KuraError as exc:
            message = render.error_line(str(exc))
        return (message, *self.documents(name, request))

    def upload(
        self, files: list[str] | None, collection: str, request: gr.Request, progress: gr.Progress = PROGRESS
    ) -> tuple[Any, ...]:
        """Stage, then ingest with the very function ``kura ingest`` uses, and report the same counts."""
        name = self.require(request, collection, must_exist=False)
        if not files:
            raise KuraError("choose files or a .zip of a folder to upload first")
        pairs = [(Path(f), Path(f).name) for f in files]
        ui = self.settings.ui
        staged = stage_uploads(pairs, self.uploads_root, name, ui.max_upload_mb, self.settings.ingest.max_file_mb)
        for path, _ in pairs:
            with contextlib.suppress(OSError):
                path.unlink()  # Gradio's temporary copy; the staged one is what gets ingested

        def step(done: int, total: int, chunks: int) -> None:
            progress((done, total), desc=f"ingesting: {chunks} chunks", unit="files")

        target = writer(self.settings, name)
        try:
            report = target.ingest([staged.folder], self.embedder, progress=step)
        except KuraError:
            # Refused before writing (store busy, other embedder, bad name): leave no orphan copy behind.
            shutil.rmtree(staged.folder, ignore_errors=True)
            raise
        replaced = target.replace_earlier_uploads(report, staged.folder)
        summary = render.ingest_summary(report, staged.skipped, replaced)
        table, choices = self.documents(name, request)
        dropdown = gr.Dropdown(choices=self.visible(request), value=name)
        return summary, table, choices, dropdown, None


def _clamped(k: float, temperature: float, max_tokens: float) -> dict[str, Any]:
    """The settings sliders' values within their ranges: the Gradio API accepts any number."""
    return {
        "k": min(max(int(k), 1), 100),
        "max_new_tokens": min(max(int(max_tokens), 1), 4096),
        "temperature": min(max(float(temperature), 0.0), 2.0),
    }


def build_app(
    settings: Settings, embedder: Embedder, llm: ChatLLM, collection: str | None = None, login: bool = False
) -> gr.Blocks:
    """The page: a Chat tab with a source panel, a Documents tab with upload and delete, a settings accordion."""
    return layout(KuraApp(settings, embedder, llm, collection, login), handler)


def _auth(settings: Settings) -> Callable[[str, str], Any]:
    async def check(name: str, password: str) -> bool:
        import anyio

        # PBKDF2 takes ~0.3 s: off the event loop, so one login does not stall every other session.
        return await anyio.to_thread.run_sync(authenticate, settings, name, password)

    return check


def serve(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    collection: str | None = None,
    say: Callable[[str], None] = print,
) -> None:
    """Check access first (cheap, before minutes of model loading can be wasted), then load and serve."""
    started = time.perf_counter()
    host = host or settings.ui.host
    port = port or settings.ui.port
    users = load_users(settings)
    if not users and not is_loopback(host):
        raise KuraError(f"refusing to serve on {host} without users: add one with `kura users add NAME`")
    from rag.models.factory import load_embedder, load_llm

    embedder = load_embedder(settings, say)
    llm = load_llm(settings, say, concurrent=True)
    demo = build_app(settings, embedder, llm, collection, login=bool(users))
    demo.queue(default_concurrency_limit=settings.ui.concurrency_limit)
    demo.launch(
        server_name=host,
        server_port=port,
        auth=_auth(settings) if users else None,
        auth_message="Kura: log in with an account made by `kura users add NAME`.",
        share=False,
        ssr_mode=False,
        quiet=True,
        prevent_thread_lock=True,
        footer_links=["api", "settings"],
        run_history=False,  # it would keep questions and answers in the browser, and offers syncing them to a hub
        enable_monitoring=False,
        mcp_server=False,
        max_file_size=f"{settings.ui.max_upload_mb}mb",
        theme=THEME,
        css=render.CSS,
    )
    shown = f"[{host}]" if ":" in host else host
    login = f"login required ({plural(len(users), 'user')})" if users else "no login (this machine only)"
    say(f"Kura is ready at http://{shown}:{port}/ - {login} - started in {time.perf_counter() - started:.1f} s")
    demo.block_thread()
