"""The one assembly of an :class:`~rag.answer.Assistant`: the collection, its store and the models.

Kept apart from ``rag.answer`` so the language model starts loading before the answer chain is imported
(LangChain and the evidence stages: 0.9 s of ``kura ask``'s start here), not after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.config import Settings
from rag.errors import KuraError

if TYPE_CHECKING:
    from rag.answer import Assistant
    from rag.models.embedder import Embedder
    from rag.models.llm import ChatLLM
    from rag.models.reranker import OpenVINOReranker


def open_assistant(
    settings: Settings,
    collection: str | None = None,
    say: Callable[[str], None] = lambda _: None,
    *,
    embedder: Embedder | None = None,
    llm: ChatLLM | None = None,
    reranker: OpenVINOReranker | None = None,
) -> Assistant:
    """An Assistant over the collection named (or configured), with the models it is given or loads.

    ``kura serve`` passes the embedder, LLM and reranker it loaded once, and so shares them between
    every collection's Assistant; the CLI lets this load them, the LLM in the background (``PendingLLM``).
    """
    from rag.models.factory import PendingLLM, load_embedder, load_llm
    from rag.store import connect, open_store

    name = collection or settings.vectorstore.collection
    if name not in connect(settings).names():
        raise KuraError(f"no collection named '{name}' yet; add documents first with `kura ingest FOLDER`")
    if llm is None:
        llm = PendingLLM(lambda: load_llm(settings, say))
    from rag.answer import Assistant
    from rag.models.reranker import load_reranker

    if embedder is None:
        embedder = load_embedder(settings, say)
    store = open_store(settings, embedder, name)
    store.check_embedder()
    if reranker is None:
        reranker = load_reranker(settings, say)
    return Assistant(settings, embedder, llm, store, reranker)
