"""The page's components and how their events reach the app's handlers (:class:`ui.app.KuraApp` is the one ``Page``).

Element ids (``kura-…``) are part of the contract with the browser test, and handler ``api_name``s with
API clients: change them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Protocol

import gradio as gr

from rag.config import Settings
from ui import render, saved_chat
from ui.uploads import UPLOAD_SUFFIXES

WRITER = "kura-writer"  # uploads and deletes share one queue slot: one writer per store
Wrap = Callable[[Callable[..., Any]], Callable[..., Any]]
Handler = Callable[..., Any]


def local_files_only(files: gr.File) -> gr.File:
    """Gradio downloads an http(s) URL sent as a file's path in an API call: a name lookup and a connection
    that uploading documents never needs (issue 15). Refused here, the hook Gradio calls for each file; not by
    subclassing ``gr.File``, which makes Gradio write a ``.pyi`` stub next to this module."""
    move = files.async_move_resource_to_block_cache

    async def refuse_urls(url_or_file_path: str | Path | None) -> str | None:
        if isinstance(url_or_file_path, str) and url_or_file_path.lower().startswith(("http://", "https://")):
            raise gr.Error("send the file itself: Kura does not fetch URLs", print_exception=False)
        return await move(url_or_file_path)

    files.async_move_resource_to_block_cache = refuse_urls  # type: ignore[method-assign]
    return files


class Page(Protocol):
    """What the layout needs of the app: its settings, a status line and one handler per event.

    Declared here so the layout does not import the app that builds it.
    """

    settings: Settings

    def status(self) -> str: ...

    @property
    def on_load(self) -> Handler: ...

    @property
    def on_collection(self) -> Handler: ...

    @property
    def ask(self) -> Handler: ...

    @property
    def show_source(self) -> Handler: ...

    @property
    def start_answer(self) -> Handler: ...

    @property
    def stop_answer(self) -> Handler: ...

    @property
    def answer_done(self) -> Handler: ...

    @property
    def new_chat(self) -> Handler: ...

    @property
    def documents(self) -> Handler: ...

    @property
    def confirm_delete(self) -> Handler: ...

    @property
    def delete(self) -> Handler: ...

    @property
    def upload(self) -> Handler: ...

    @property
    def account(self) -> Handler: ...

    @property
    def cancel_upload(self) -> Handler: ...

    @property
    def watch_status(self) -> Handler: ...


def _settings_accordion(app: Page) -> tuple[Any, Any, Any, Any]:
    settings = app.settings
    with gr.Accordion("Settings", open=False, elem_id="kura-settings"):
        with gr.Row():
            k = gr.Slider(
                1, 20, value=settings.retrieval.top_k, step=1, label="Sources to retrieve (top-k)", elem_id="kura-k"
            )
            temperature = gr.Slider(
                0.0, 1.5, value=settings.llm.temperature, step=0.05, label="Temperature", elem_id="kura-temperature"
            )
            max_tokens = gr.Slider(
                16,
                2048,
                value=min(settings.llm.max_new_tokens, 2048),
                step=16,
                label="Max answer tokens",
                elem_id="kura-max-tokens",
            )
        show_reasoning = gr.Checkbox(
            value=True, label="Show the model's reasoning (collapsed)", elem_id="kura-show-reasoning"
        )
    return k, temperature, max_tokens, show_reasoning


@dataclass(frozen=True)
class ChatTab:
    chat: Any
    question: Any
    ask: Any
    stop: Any
    clear: Any
    export: Any
    panel: Any
    k: Any
    temperature: Any
    max_tokens: Any
    show_reasoning: Any


@dataclass(frozen=True)
class DocumentsTab:
    table: Any
    doc: Any
    delete: Any
    refresh: Any
    notice: Any
    confirm: Any
    question: Any
    yes: Any
    keep: Any
    pending: Any
    files: Any
    upload: Any
    cancel: Any
    summary: Any
    watch: Any
    timer: Any
    seen: Any


def _header(app: Page) -> tuple[Any, Any]:
    """The title, the status line, who is signed in and the collection picker; returns the last two."""
    with gr.Row(equal_height=True):
        with gr.Column():
            gr.HTML(f"<h2 style='margin:0'>Kura</h2><div class='kura-status'>{escape(app.status())}</div>")
            account = gr.HTML("", elem_id="kura-account", js_on_load=None)
        return account, gr.Dropdown(
            label="Collection",
            choices=[],
            allow_custom_value=True,
            elem_id="kura-collection",
            scale=0,
            min_width=260,
            info="type a new name to upload into a new collection",
        )


def _chat_tab(app: Page) -> ChatTab:
    with gr.Tab("Chat", id="chat"), gr.Row():
        with gr.Column(scale=3):
            chat = gr.HTML(
                render.conversation([], True, None),
                js_on_load=render.CITATION_JS,
                elem_id="kura-chat",
                autoscroll=True,
                min_height=360,
                max_height=640,
            )
            with gr.Row():
                question = gr.Textbox(
                    show_label=False,
                    placeholder="Ask about your documents…",
                    elem_id="kura-question",
                    scale=5,
                    lines=1,
                    max_lines=6,
                )
                ask = gr.Button("Ask", variant="primary", elem_id="kura-ask", scale=1)
                stop = gr.Button("Stop", variant="stop", elem_id="kura-stop", scale=1, visible=False)
                clear = gr.Button("New chat", elem_id="kura-clear", scale=1)
            with gr.Row():  # small and apart, so the question box keeps its width
                export = gr.DownloadButton(
                    "Export chat (Markdown)", elem_id="kura-export", size="sm", scale=0, interactive=False
                )
            k, temperature, max_tokens, show_reasoning = _settings_accordion(app)
        with gr.Column(scale=2):
            panel = gr.HTML(render.EMPTY_PANEL, elem_id="kura-source", js_on_load=render.PANEL_JS, max_height=860)
    return ChatTab(chat, question, ask, stop, clear, export, panel, k, temperature, max_tokens, show_reasoning)


def _documents_tab(app: Page) -> DocumentsTab:
    with gr.Tab("Documents", id="documents"):
        watch = gr.HTML("", elem_id="kura-watch", js_on_load=None)
        table = gr.HTML(render.documents_table([], None), elem_id="kura-docs", js_on_load=None)
        with gr.Row():
            doc = gr.Dropdown(label="Document", choices=[], elem_id="kura-doc", scale=3, allow_custom_value=True)
            delete = gr.Button("Delete from collection", variant="stop", elem_id="kura-delete", scale=1)
            refresh = gr.Button("Refresh", elem_id="kura-refresh", scale=1)
        with gr.Row(visible=False, elem_id="kura-confirm") as confirm:
            question = gr.HTML("", elem_id="kura-confirm-question", js_on_load=None)
            yes = gr.Button("Delete", variant="stop", size="sm", elem_id="kura-confirm-delete", scale=0)
            keep = gr.Button("Keep", size="sm", elem_id="kura-keep", scale=0)
        notice = gr.HTML("", elem_id="kura-docs-notice", js_on_load=None)
        files = local_files_only(
            gr.File(
                label=f"Add files or a .zip of a folder (up to {app.settings.ui.max_upload_mb} MB)",
                file_count="multiple",
                file_types=sorted(UPLOAD_SUFFIXES),
                elem_id="kura-files",
            )
        )
        with gr.Row():
            upload = gr.Button("Add to collection", variant="primary", elem_id="kura-upload", scale=3)
            cancel = gr.Button("Cancel upload", elem_id="kura-cancel-upload", scale=1)
        summary = gr.HTML("", elem_id="kura-summary", js_on_load=None)
    pending = gr.State(None)
    # The watched folders' states change in the background (ui.watching); a page looks every 2 s.
    timer, seen = gr.Timer(2.0, active=bool(app.settings.ingest.watch)), gr.State(None)
    return DocumentsTab(
        table,
        doc,
        delete,
        refresh,
        notice,
        confirm,
        question,
        yes,
        keep,
        pending,
        files,
        upload,
        cancel,
        summary,
        watch,
        timer,
        seen,
    )


def _wire_chat(app: Page, wrap: Wrap, collection: Any, turns: Any, saved: Any, tab: ChatTab) -> None:
    """Ask (or Enter) turns Ask into Stop, streams the answer, then saves the chat and turns Stop back.

    ``running`` holds the session's :class:`rag.models.llm.Stop` while an answer streams; the Stop button
    needs no queue slot, since the answer it stops holds one.
    """
    running = gr.State(None)
    ask_inputs = [tab.question, collection, turns, tab.k, tab.temperature, tab.max_tokens, tab.show_reasoning]
    outputs = [tab.chat, turns, tab.question]
    done_outputs = [running, tab.ask, tab.stop, saved, tab.export]
    for trigger, api in ((tab.ask.click, {"api_name": "ask"}), (tab.question.submit, {"api_visibility": "private"})):
        trigger(
            app.start_answer,
            running,
            [running, tab.ask, tab.stop],
            api_visibility="private",
            show_progress="hidden",
            concurrency_limit=None,
        ).success(wrap(app.ask), [*ask_inputs, running], outputs, show_progress="minimal", **api).then(
            wrap(app.answer_done), [turns, collection], done_outputs, api_visibility="private", show_progress="hidden"
        )
    tab.stop.click(app.stop_answer, running, None, api_visibility="private", concurrency_limit=None)
    tab.chat.click(app.show_source, [turns, collection], tab.panel, api_visibility="private", show_progress="hidden")
    tab.clear.click(
        wrap(app.new_chat), collection, [tab.chat, turns, tab.panel, saved, tab.export], api_visibility="private"
    )
    tab.show_reasoning.change(
        lambda t, s, c: render.conversation(t or [], s, c),
        [turns, tab.show_reasoning, collection],
        tab.chat,
        api_visibility="private",
        show_progress="hidden",
    )


def _closed() -> tuple[str, Any]:
    """No notice and no open question: what any next action in the Documents tab leaves."""
    return "", gr.Row(visible=False)


def _wire_documents(app: Page, wrap: Wrap, collection: Any, tab: DocumentsTab) -> None:
    """Uploads and deletes share one queue slot (``WRITER``): one writer per store. "Delete from collection"
    only asks (issue 18); the confirmation's Delete deletes the document it asked about."""
    tab.refresh.click(wrap(app.documents), collection, [tab.table, tab.doc], api_name="documents")
    tab.delete.click(
        app.confirm_delete,
        [collection, tab.doc],
        [tab.notice, tab.confirm, tab.question, tab.pending],
        api_visibility="private",
        show_progress="hidden",
    )
    tab.yes.click(_closed, None, [tab.notice, tab.confirm], api_visibility="private", show_progress="hidden").then(
        wrap(app.delete),
        [collection, tab.pending],
        [tab.summary, tab.table, tab.doc],
        api_name="delete_document",
        concurrency_limit=1,
        concurrency_id=WRITER,
    )
    gr.on(
        [tab.keep.click, tab.doc.focus, tab.doc.change, tab.refresh.click, tab.upload.click, collection.change],
        _closed,
        None,
        [tab.notice, tab.confirm],
        api_visibility="private",
        show_progress="hidden",
    )
    tab.upload.click(
        wrap(app.upload),
        [tab.files, collection],
        [tab.summary, tab.table, tab.doc, collection, tab.files],
        api_name="upload",
        concurrency_limit=1,
        concurrency_id=WRITER,
    )
    # Reads only: no queue slot, so it never waits behind answers or an upload.
    tab.timer.tick(
        wrap(app.watch_status),
        [collection, tab.seen],
        [tab.watch, tab.table, tab.seen],
        api_visibility="private",
        show_progress="hidden",
        concurrency_limit=None,
    )
    # Not in the writer's slot: it must run while the upload it stops holds that slot.
    tab.cancel.click(wrap(app.cancel_upload), None, tab.summary, api_visibility="private", concurrency_limit=None)


def layout(app: Page, wrap: Wrap) -> gr.Blocks:
    with gr.Blocks(title="Kura", analytics_enabled=False) as demo:
        turns = gr.State([])
        uploads = app.settings.resolve(app.settings.paths.uploads)
        saved = gr.BrowserState(None, storage_key=saved_chat.STORAGE_KEY, secret=saved_chat.secret(uploads))
        account, collection = _header(app)
        with gr.Tabs():
            chat = _chat_tab(app)
            documents = _documents_tab(app)
        demo.load(wrap(app.on_load), saved, collection, api_name="collections")
        demo.load(app.account, None, account, api_visibility="private", show_progress="hidden")
        collection.change(
            wrap(app.on_collection),
            [collection, saved],
            [chat.chat, turns, chat.panel, documents.table, documents.doc, saved, chat.export],
            api_name="select_collection",
        )
        _wire_chat(app, wrap, collection, turns, saved, chat)
        _wire_documents(app, wrap, collection, documents)
        gr.HTML(render.PAGE_FOOT, js_on_load=render.PAGE_JS, elem_id="kura-foot")  # dark mode; the drawer's keys
    return demo
