"""``kura serve``: the web UI over the same Assistant, ingest pipeline and store as the CLI.

The embedder and the LLM are loaded once per process and shared; one :class:`Assistant` per collection
is built on first use. Everything that belongs to one user (the conversation, its sources) lives in that
session's ``gr.State``, never in this object. Access is checked in every handler against the logged-in
user, because the Gradio API can call a handler with any collection name, whatever the dropdown showed.
"""

from __future__ import annotations

import functools
import inspect
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from html import escape
from pathlib import Path
from typing import Any

import gradio as gr

from ingest.collection import Collection, IngestReport, check_may_delete
from rag.answer import Assistant
from rag.config import Settings
from rag.errors import KuraError
from rag.models.embedder import Embedder
from rag.models.llm import ChatLLM, Stop
from rag.service import Caller, Service
from rag.urls import is_loopback
from rag.users import can_edit, load_users
from rag.wording import plural
from ui import export, render, saved_chat
from ui.api import ApiDoors
from ui.documents import list_documents, writer
from ui.guards import protect, warn_unmatched_rules
from ui.layout import layout
from ui.server import LOCAL_NAMES, create_app, run, serves_every_address
from ui.throttle import checked_auth
from ui.upload_cache import discard, expire_unsubmitted, prepare_upload_cache
from ui.uploads import stage_uploads
from ui.verify import Verifier
from ui.watching import WatchedFolders

log = logging.getLogger("kura.ui")
STREAM_INTERVAL_S = 0.05  # at most ~20 page updates a second while an answer streams
PROGRESS = gr.Progress()  # a marker default: Gradio passes each upload its own tracker


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
        self,
        settings: Settings,
        embedder: Embedder,
        llm: ChatLLM,
        collection: str | None,
        login: bool,
        service: Service | None = None,
        verifier: Verifier | None = None,
    ) -> None:
        self.settings = settings
        self.service = service or Service(settings, embedder, llm)
        self.verifier = verifier or Verifier(settings, login)
        self.embedder = self.service.embedder
        self.llm = llm
        self.login = login
        self.default_collection = collection or settings.vectorstore.collection
        self.uploads_root = settings.resolve(settings.paths.uploads)
        # The running upload's cancel switch per browser session (issue 15: a running ingest is cancellable);
        # an entry lives only while its upload runs.
        self._ingests: dict[str, threading.Event] = {}
        self.watched = WatchedFolders(settings, self.embedder)  # started by build_app(watch=True)

    # --- access -------------------------------------------------------------------------------------
    def user(self, request: gr.Request | None) -> str | None:
        return getattr(request, "username", None) if self.login else None

    def caller(self, request: gr.Request | None) -> Caller:
        address = getattr(getattr(request, "client", None), "host", None)
        return Caller(self.user(request), "web", address=address)

    def visible(self, request: gr.Request | None) -> list[str]:
        return self.service.collections(self.user(request))

    def require(self, request: gr.Request | None, collection: str | None, must_exist: bool = True) -> str:
        """The collection name if this user may use it; the same refusal whether it is hidden or missing."""
        return self.service.require(self.user(request), collection, must_exist)

    def assistant(self, name: str) -> Assistant:
        return self.service.assistant(name)

    def status(self) -> str:
        llm, embedder = self.llm.device_choice, self.embedder.device_choice
        return (
            f"LLM {self.llm.name} on {llm.device} · embedder {self.embedder.name} on {embedder.device}"
            f" · answers generated at once: {self.settings.ui.concurrency_limit}"
        )

    # --- page load and collection choice ------------------------------------------------------------
    def on_load(self, saved: Any = None, request: gr.Request | None = None) -> Any:
        """The collections this user may see, the one of the chat saved in this browser first if it still
        may; choosing one fills the rest of the page (its change event). ``saved`` defaults to None so that
        API clients need not send a browser's state."""
        names = self.visible(request)
        kept = saved.get("collection") if isinstance(saved, dict) and saved.get("user") == self.user(request) else None
        value = next((name for name in (kept, self.default_collection) if name in names), names[0] if names else None)
        return gr.Dropdown(choices=names, value=value)

    def account(self, request: gr.Request) -> str:
        """Who is signed in, and the way out; nothing when this machine's one user needs no login."""
        user = self.user(request)
        if user is None:
            return ""
        return f'<div class="kura-account">signed in as <b>{escape(user)}</b> · <a href="/logout">Log out</a></div>'

    def on_collection(
        self, collection: str | None, saved: Any = None, request: gr.Request | None = None
    ) -> tuple[Any, ...]:
        """A new collection starts a new conversation (its sources would not be this one's), unless this
        browser saved one in that collection for this user, who may still open it: a reload keeps the chat."""
        table, choices = self.documents(collection, request)
        turns = saved_chat.restored(saved, collection, self.user(request)) if collection else []
        chat = render.conversation(turns, True, collection)
        return (chat, turns, render.EMPTY_PANEL, table, choices, *self.chat_saved(turns, collection, request))

    # --- the chat kept in the browser, and its export ------------------------------------------------
    def chat_saved(
        self, turns: list[dict[str, Any]] | None, collection: str | None, request: gr.Request | None
    ) -> tuple[dict[str, Any], Any]:
        """The browser's copy of the chat and the "Export chat" button's file, after each change of the chat."""
        turns = turns or []
        snapshot = saved_chat.snapshot(turns, collection, self.user(request))
        if not snapshot["turns"]:
            return snapshot, gr.DownloadButton(value=None, interactive=False)
        path = export.write(export.to_markdown(snapshot["turns"], collection), collection, self.uploads_root)
        return snapshot, gr.DownloadButton(value=str(path), interactive=True)

    def new_chat(self, collection: str | None, request: gr.Request) -> tuple[Any, ...]:
        return (
            render.conversation([], True, collection),
            [],
            render.EMPTY_PANEL,
            *self.chat_saved([], collection, request),
        )

    # --- Stop ---------------------------------------------------------------------------------------
    def start_answer(self, running: Stop | None) -> tuple[Stop, Any, Any]:
        """The session's Stop for the answer about to stream, and Ask turned into Stop.

        A second question while one streams (Enter in the question box) is refused without a message: the
        invisible error ends its event chain before the answer step, so only one answer streams per page.
        """
        if running is not None:
            raise gr.Error("an answer is being written", visible=False, print_exception=False)
        return Stop(), gr.Button(visible=False), gr.Button(visible=True)

    def stop_answer(self, running: Stop | None) -> None:
        """The Stop button: the model stops at its next token (``GenerationOptions.stop``)."""
        if running is not None:
            running.set()

    def answer_done(
        self, turns: list[dict[str, Any]] | None, collection: str | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Stop back to Ask, and the finished chat saved in the browser and ready to export."""
        return (None, gr.Button(visible=True), gr.Button(visible=False), *self.chat_saved(turns, collection, request))

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
        stop: Stop | None,
        request: gr.Request,
    ) -> Iterator[tuple[str, list[dict[str, Any]], Any]]:
        """Stream the answer into the conversation; the last update carries the checked answer and footer.

        ``stop`` is this session's Stop (``start_answer``): once set the model stops at its next token and
        the turn keeps what it wrote so far.
        """
        question = (question or "").strip()
        name = self.require(request, collection)
        if not question:
            raise KuraError("type a question about your documents first")
        turns = list(turns or [])
        # A stopped answer is not one to build a follow-up on (as in `kura chat`).
        history = [(t["question"], t["final"]["answer"]) for t in turns if _answered(t)]
        turn: dict[str, Any] = {"question": question, "answer": "", "reasoning": "", "final": None, "error": None}
        turns.append(turn)
        yield render.conversation(turns, show_reasoning, name), turns, ""
        typing = gr.skip()  # from here on the question box is the user's: the next question may be typed
        last = time.monotonic()
        try:
            options = _clamped(k, temperature, max_tokens)
            for event in self.service.ask(self.caller(request), name, question, history, stop=stop, **options):
                if event.answer is not None:
                    turn["final"] = saved_chat.shown(event.answer.to_dict())
                    turn["reasoning"] = event.answer.reasoning
                else:
                    turn[event.kind] += event.text
                if time.monotonic() - last >= STREAM_INTERVAL_S:
                    last = time.monotonic()
                    yield render.conversation(turns, show_reasoning, name), turns, typing
        except KuraError as exc:
            turn["error"] = str(exc)
        except Exception as exc:  # the page must say something went wrong, not spin forever
            log.exception("answering failed")
            turn["error"] = f"answering failed ({type(exc).__name__}); see the server log"
        if stop is not None and stop.is_set():
            log.info("answer stopped: the model decoded %s after the click", plural(stop.decoded_tokens, "token"))
        yield render.conversation(turns, show_reasoning, name), turns, typing

    def show_source(
        self, turns: list[dict[str, Any]] | None, collection: str | None, evt: gr.EventData, request: gr.Request
    ) -> str:
        """The clicked citation's source on its page, looked up in this session's own answers by (turn, n), with
        the sentences it was cited for highlighted: the clicked evidence sentence (``e``), the span supporting
        the clicked answer sentence (``s``), or for a plain [n] every evidence and supporting sentence of n."""
        data = getattr(evt, "_data", None) or {}
        try:
            turn, n = int(data["turn"]), int(data["n"])
            final = (turns or [])[turn]["final"]
            # An abstained answer has no sources, but its evidence [n] name the passages it weighed.
            sources = final["sources"] or final.get("evidence_sources") or []
            if not 1 <= n <= len(sources):
                return render.EMPTY_PANEL
            strong = _cited_sentences(final, n, int(data.get("e", -1)), int(data.get("s", -1)))
        except (KeyError, IndexError, TypeError, ValueError):
            return render.EMPTY_PANEL
        try:
            name = self.require(request, collection)
        except KuraError as exc:
            return render.error_line(str(exc))
        return self.verifier.panel(self.user(request), name, sources[n - 1], strong)

    # --- documents ----------------------------------------------------------------------------------
    def documents(self, collection: str | None, request: gr.Request | None) -> tuple[str, Any]:
        if not collection:
            return render.documents_table([], None), gr.Dropdown(choices=[], value=None)
        name = self.require(request, collection, must_exist=False)
        rows = list_documents(self.settings, name)
        choices = [(f"{r['file']} ({r['origin']})", r["id"]) for r in rows]
        return render.documents_table(rows, name), gr.Dropdown(choices=choices, value=None)

    def watch_status(self, collection: str | None, seen: int | None, request: gr.Request) -> tuple[Any, Any, int]:
        """The watched folders' states (a timer asks), and the file list again once they changed it."""
        try:
            name = self.require(request, collection)
        except KuraError:
            return "", gr.skip(), self.watched.version
        panel = render.watch_table(self.watched.states(name))
        if seen == self.watched.version:
            return panel, gr.skip(), self.watched.version
        return panel, self.documents(name, request)[0], self.watched.version

    def confirm_delete(self, collection: str, doc_id: str | None, request: gr.Request) -> tuple[str, Any, str, Any]:
        """The question before a delete (the file, its chunks, the collection) and the document it is about.

        A user's mistake here is one line in the tab (issue 18): a raised ``gr.Error`` left a toast and
        "Error" pills over the document picker for 12 s. Returns the notice, the confirmation row, its text
        and the pending document, which the Delete button then acts on whatever the picker shows by then.
        """
        try:
            name, row = self._deletable(collection, doc_id, request)
        except KuraError as exc:
            return render.error_line(str(exc)), gr.Row(visible=False), "", None
        return "", gr.Row(visible=True), render.delete_question(row["file"], row["chunks"], name), row["id"]

    def _deletable(self, collection: str, doc_id: str | None, request: gr.Request) -> tuple[str, dict[str, Any]]:
        """The collection and the row of a document this user may delete; the same checks as the delete's."""
        name = self.require(request, collection)
        if not doc_id:
            raise KuraError("choose a document to delete first")
        row = next((r for r in list_documents(self.settings, name) if r["id"] == doc_id), None)
        if row is None:
            raise KuraError(f"that document is no longer in '{name}'; click Refresh")
        user = self.user(request)
        check_may_delete(name, row["file"], row["uploader"], user, can_edit(self.settings, user, name))
        return name, row

    def delete(self, collection: str, doc_id: str | None, request: gr.Request) -> tuple[str, str, Any]:
        name = self.require(request, collection)
        if not doc_id:
            raise KuraError("choose a document to delete first")
        try:
            user = self.user(request)
            removed = writer(self.settings, name).delete_document(doc_id, user, can_edit(self.settings, user, name))
            self.service.audit.record("delete", **self.caller(request).fields(), collection=name, file=removed)
            message = f"<div>deleted {escape(removed)} from {escape(name)}</div>"
        except KuraError as exc:
            message = render.error_line(str(exc))
        return (message, *self.documents(name, request))

    def upload(
        self, files: list[str] | None, collection: str, request: gr.Request, progress: gr.Progress = PROGRESS
    ) -> tuple[Any, ...]:
        """Stage, then ingest with the very function ``kura ingest`` uses, and report the same counts.

        Gradio's cached copies go in every case, refused or not: the staged copy is what gets ingested.
        """
        try:
            return self._upload(files, collection, request, progress)
        finally:
            discard(files or [])

    def _upload(
        self, files: list[str] | None, collection: str, request: gr.Request, progress: gr.Progress
    ) -> tuple[Any, ...]:
        name = self.require(request, collection, must_exist=False)
        if not files:
            raise KuraError("choose files or a .zip of a folder to upload first")
        pairs = [(Path(f), Path(f).name) for f in files]
        ui, user = self.settings.ui, self.user(request)
        staged = stage_uploads(pairs, self.uploads_root, name, ui.max_upload_mb, self.settings.ingest.max_file_mb)

        def step(done: int, total: int, chunks: int) -> None:
            progress((done, total), desc=f"ingesting: {chunks} chunks", unit="files")

        target = writer(self.settings, name)
        editor = can_edit(self.settings, user, name)
        session, cancel = _session(request), threading.Event()
        self._ingests[session] = cancel
        try:
            check_upload(target, staged.folder, user, editor, ui.upload_quota_mb)
            report = target.ingest([staged.folder], self.embedder, progress=step, cancel=cancel)
        except Exception:
            # Refused before writing (quota, another's upload, store busy, other embedder, bad name) or failed
            # midway (the Chroma server gone): no orphan copy left; files committed before a failure stay listed.
            shutil.rmtree(staged.folder, ignore_errors=True)
            raise
        finally:
            self._ingests.pop(session, None)
        if report.cancelled:
            _drop_unwritten(staged.folder, report)
        replaced = target.finish_upload(report, staged.folder, user, editor)
        self._audit_upload(request, name, report)
        summary = render.ingest_summary(report, staged.skipped, replaced)
        if report.cancelled:
            written = report.counts()["added"] + report.counts()["updated"]
            done = f"cancelled: {written} of {report.planned} files added; upload the rest again"
            summary = render.notice_line(done) + summary
        table, choices = self.documents(name, request)
        dropdown = gr.Dropdown(choices=self.visible(request), value=name)
        return summary, table, choices, dropdown, None

    def _audit_upload(self, request: gr.Request, name: str, report: IngestReport) -> None:
        """The files an upload wrote (by name, as the Documents tab lists them) and what it did with them."""
        files = [o.rel for o in report.files if o.status in ("added", "updated")]
        self.service.audit.record(
            "upload", **self.caller(request).fields(), collection=name, files=files, cancelled=report.cancelled or None
        )

    def cancel_upload(self, request: gr.Request) -> str:
        """Stop this session's running upload between writes: the files written stay whole, the rest are dropped."""
        cancel = self._ingests.get(_session(request))
        if cancel is None:
            return render.error_line("no upload is running in this window")
        cancel.set()
        return render.notice_line("cancelling the upload: the file being written finishes first")


def check_upload(target: Collection, staged: Path, user: str | None, editor: bool, quota_mb: int) -> None:
    """Refuse, before anything is written, an upload over the user's quota or replacing another's upload."""
    if user is None:
        return  # local use without users: the one person at this machine
    files = [path for path in staged.rglob("*") if path.is_file()]
    used = target.uploaded_bytes(user) + sum(path.stat().st_size for path in files)
    if used > quota_mb * 1024 * 1024:
        raise KuraError(
            f"this upload would bring your uploads to {used / 2**20:.1f} MB, over your quota of {quota_mb} MB "
            "(ui.upload_quota_mb); delete some first"
        )
    others = [] if editor else target.uploads_of_others({str(p.relative_to(staged)) for p in files}, user)
    if others:
        raise KuraError(
            f"{others[0]} was uploaded by someone else: replacing it needs an editor of '{target.name}' "
            "(ui.collection_editors); rename your file"
        )


def _cited_sentences(final: dict[str, Any], n: int, evidence: int, support: int) -> list[str]:
    """The sentences of source ``n`` to highlight: one chosen evidence sentence or supporting span, or all."""
    found = final.get("evidence") or []
    spans = final.get("support") or []
    if 0 <= evidence < len(found) and found[evidence]["n"] == n:
        return [found[evidence]["text"]]
    if 0 <= support < len(spans) and spans[support].get("n") == n:
        return [spans[support]["span"]]
    chosen = [e["text"] for e in found if e["n"] == n] + [s["span"] for s in spans if s.get("n") == n]
    return list(dict.fromkeys(chosen))


def _answered(turn: dict[str, Any]) -> bool:
    final = turn.get("final") or {}
    return bool(final) and final.get("answer_source") != "stopped"


def _session(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


def _drop_unwritten(folder: Path, report: IngestReport) -> None:
    """A cancelled upload's staged files that were not written: nothing in the collection refers to them."""
    written = {Path(o.path).resolve() for o in report.files if o.status in ("added", "updated", "unchanged")}
    for path in [p for p in folder.rglob("*") if p.is_file()]:
        if path.resolve() not in written:
            path.unlink()
    if not written:
        shutil.rmtree(folder, ignore_errors=True)


def _clamped(k: float, temperature: float, max_tokens: float) -> dict[str, Any]:
    """The settings sliders' values within their ranges: the Gradio API accepts any number."""
    return {
        "k": min(max(int(k), 1), 100),
        "max_new_tokens": min(max(int(max_tokens), 1), 4096),
        "temperature": min(max(float(temperature), 0.0), 2.0),
    }


def build_app(
    settings: Settings,
    embedder: Embedder,
    llm: ChatLLM,
    collection: str | None = None,
    login: bool = False,
    service: Service | None = None,
    verifier: Verifier | None = None,
    watch: bool = False,
) -> gr.Blocks:
    """The page: a Chat tab with a source panel, a Documents tab with upload and delete, a settings accordion.

    ``verifier`` is shared with the routes that serve the documents' pages (``kura serve`` passes one). With
    ``watch`` the folders of ``ingest.watch`` start syncing in the background.
    """
    app = KuraApp(settings, embedder, llm, collection, login, service, verifier)
    if watch:
        app.watched.start()
    return layout(app, handler)


def _auth(settings: Settings) -> Callable[[str, str], Any]:
    # PBKDF2 takes ~0.3 s: off the event loop and at most two at a time, so logins do not stall answers.
    return checked_auth(settings)


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
    warn_unmatched_rules(settings, say)
    prepare_upload_cache(settings)
    service = Service(settings, embedder, llm)
    verifier = Verifier(settings, login=bool(users), audit=service.audit)
    demo = build_app(
        settings, embedder, llm, collection, login=bool(users), service=service, verifier=verifier, watch=True
    )
    expire_unsubmitted(demo)
    demo.queue(default_concurrency_limit=settings.ui.concurrency_limit)
    doors = ApiDoors(service)
    auth = _auth(settings) if users else None
    web = create_app(settings, demo, host, port, auth=auth, doors=doors, routers=[verifier.router()])
    if serves_every_address(host) and not settings.ui.allowed_hosts:
        say(f"note: browsers must open Kura as {', '.join(LOCAL_NAMES)}: list other names in ui.allowed_hosts")
    protect(web, settings, login=bool(users), audit=service.audit)
    shown = f"[{host}]" if ":" in host else host
    login = f"login required ({plural(len(users), 'user')})" if users else "no login (this machine only)"
    run(
        web,
        demo,
        host,
        port,
        on_ready=lambda: say(
            f"Kura is ready at http://{shown}:{port}/ - {login} - OpenAI-compatible API at /v1, MCP at /mcp"
            f" - started in {time.perf_counter() - started:.1f} s"
        ),
    )
