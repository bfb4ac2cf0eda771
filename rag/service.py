"""What every door into a running Kura shares: the web page, the OpenAI-compatible API and MCP.

One :class:`Service` per process holds the models (loaded once), one Assistant per collection (built by
``open_assistant`` on first use), the access rule (``rag.users.can_access``) and the audit log. Every
question and search, whichever door it came by, goes through :meth:`Service.ask` or :meth:`Service.search`,
so each is checked and audited once, the same way.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rag.answer import Answer, Assistant, Event
from rag.assistant import open_assistant
from rag.audit import AuditLog
from rag.config import COLLECTION_NAME, Settings
from rag.errors import KuraError
from rag.models.embedder import Embedder, RecentVectors
from rag.models.llm import ChatLLM, Stop
from rag.models.reranker import OpenVINOReranker, load_reranker
from rag.prompt import Turn
from rag.store import connect
from rag.users import allowed_collections, can_access

Door = Literal["web", "api", "mcp"]
SNIPPET_CHARS = 300  # a source's text in API and MCP results; the whole chunk is one `search` away


class AccessDenied(KuraError):
    """A collection this caller may not use, or that does not exist: the same refusal for both."""


@dataclass(frozen=True)
class Caller:
    """Who is asking and by which door: ``user`` is None when nobody logs in (this machine only)."""

    user: str | None
    door: Door
    key_id: str | None = None
    address: str | None = None

    def fields(self) -> dict[str, Any]:
        return {"user": self.user, "via": self.door, "key": self.key_id, "address": self.address}


class Service:
    """The models, the Assistants and the audit log of one ``kura serve`` or ``kura mcp`` process."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        llm: ChatLLM,
        reranker: OpenVINOReranker | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = RecentVectors(embedder)  # one cache of recent vectors for every collection's answers
        self.llm = llm
        self.reranker = reranker if reranker is not None else load_reranker(settings)
        self.audit = audit or AuditLog(settings)
        self._assistants: dict[str, Assistant] = {}
        self._lock = threading.Lock()

    # --- access -------------------------------------------------------------------------------------
    def collections(self, user: str | None) -> list[str]:
        """The collections ``user`` may use, by name."""
        return allowed_collections(self.settings, user, connect(self.settings).names())

    def require(self, user: str | None, collection: str | None, must_exist: bool = True) -> str:
        """The collection's name if ``user`` may use it; the same refusal whether it is hidden or missing."""
        name = (collection or "").strip()
        if not re.match(COLLECTION_NAME, name):
            raise AccessDenied("choose a collection: 3-63 letters, digits, '.', '_' or '-'")
        exists = name in connect(self.settings).names()
        if not can_access(self.settings, user, name) or (must_exist and not exists):
            raise AccessDenied(f"no collection named '{name}' that you may use; pick one from the list")
        return name

    def admit(self, caller: Caller, collection: str, event: str) -> str:
        """:meth:`require` for a question or search; a refusal is audited (``refused``) before it is raised."""
        try:
            return self.require(caller.user, collection)
        except AccessDenied as exc:
            self.audit.record(event, **caller.fields(), collection=collection, refused=str(exc))
            raise

    def assistant(self, name: str) -> Assistant:
        with self._lock:
            if name not in self._assistants:
                self._assistants[name] = open_assistant(
                    self.settings, name, embedder=self.embedder, llm=self.llm, reranker=self.reranker
                )
            return self._assistants[name]

    # --- questions and searches ---------------------------------------------------------------------
    def ask(
        self,
        caller: Caller,
        collection: str,
        question: str,
        history: Sequence[Turn] = (),
        stop: Stop | None = None,
        **options: Any,
    ) -> Iterator[Event]:
        """The Assistant's stream for a caller allowed to use ``collection``; audited once it ends.

        A refused collection is audited too (``refused``), then raised; an answer that fails midway is
        audited with its error.
        """
        started = time.perf_counter()
        name = self.admit(caller, collection, "question")
        answer: Answer | None = None
        error: str | None = None
        try:
            for event in self.assistant(name).ask(question, history, stop=stop, **options):
                answer = event.answer or answer
                yield event
        except Exception as exc:
            error = str(exc) if isinstance(exc, KuraError) else type(exc).__name__
            raise
        finally:
            self._audit_question(caller, name, question, answer, error, started, follow_up=bool(history))

    def _audit_question(
        self,
        caller: Caller,
        collection: str,
        question: str,
        answer: Answer | None,
        error: str | None,
        started: float,
        follow_up: bool,
    ) -> None:
        shown = (answer.sources or answer.evidence_sources) if answer else []
        self.audit.record(
            "question",
            **caller.fields(),
            collection=collection,
            follow_up=follow_up,
            chunks=[source.id for source in shown],
            answer_source=answer.answer_source if answer else None,
            abstained=answer.abstained if answer else None,
            abstain_reason=answer.abstain_reason if answer else None,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            error=error if error is not None else ("stopped" if answer is None else None),
            question=question,
            answer=answer.answer if answer else None,
        )

    def search(self, caller: Caller, collection: str, query: str, k: int | None = None) -> list[dict[str, Any]]:
        """The chunks retrieval ranks highest for ``query``, with their citation data; audited like a question."""
        started = time.perf_counter()
        name = self.admit(caller, collection, "search")
        if not query.strip():
            raise KuraError("the query is empty; say what to look for")
        found = self.assistant(name).retrieve(query.strip(), query.strip(), k)
        results = [hit_row(n, hit.id, hit.metadata, hit.text, hit.score) for n, hit in enumerate(found.hits, 1)]
        self.audit.record(
            "search",
            **caller.fields(),
            collection=name,
            chunks=[row["id"] for row in results],
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
            question=query,
        )
        return results


def hit_row(n: int, chunk_id: str, meta: dict[str, Any], text: str, score: float) -> dict[str, Any]:
    """A ranked chunk as the API and MCP show it: its number, file, page, heading, score and text."""
    return {
        "n": n,
        "id": chunk_id,
        "file": str(meta.get("source", meta.get("path", "?"))),
        "page": meta.get("page"),
        "heading": meta.get("heading"),
        "score": round(float(score), 4),
        "text": text,
    }


def source_rows(answer: Answer) -> list[dict[str, Any]]:
    """An answer's sources (or, abstained, the passages its evidence names) with their evidence sentences."""
    evidence: dict[int, list[dict[str, Any]]] = {}
    for item in answer.evidence:
        evidence.setdefault(item.n, []).append({"text": item.text, "score": round(item.score, 4)})
    return [
        {
            "n": source.n,
            "id": source.id,
            "file": source.path,
            "page": source.page,
            "heading": source.heading,
            "score": source.score,
            "snippet": _snippet(source.text),
            "evidence": evidence.get(source.n, []),
        }
        for source in (answer.sources or answer.evidence_sources)
    ]


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1].rstrip() + "…"
