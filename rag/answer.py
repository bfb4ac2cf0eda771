"""The answer chain: question -> (condensed with history) -> retrieval -> packed, numbered sources -> LLM
-> answer with checked [n] citations. The CLI, the eval and the web UI all call :class:`Assistant`.

:meth:`Assistant.ask` runs the stages in order, each a method a test can call on its own:
:meth:`~Assistant.condense`, :meth:`~Assistant.retrieve` (then :meth:`~Assistant.relevant` decides),
:meth:`~Assistant.pack`, :meth:`~Assistant.ground` (then :meth:`~Assistant.answerable` decides),
:meth:`~Assistant.generate` and :meth:`~Assistant.finish`.

Abstention happens before the LLM: when no retrieved chunk is similar enough to the question, or no
evidence sentence holds an answer, the small model never gets the chance to invent one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from rag.answer_types import AnswerType, answerable_by, expected_type
from rag.citations import check_citations
from rag.config import Settings
from rag.copying import prefix_grammar, source_of
from rag.entities import described, naming, rare_word
from rag.errors import KuraError
from rag.evidence import (
    Evidence,
    Support,
    is_loop,
    names_field,
    select_evidence,
    sentence_support,
    supported,
    units,
)
from rag.followup import carried_over, standalone
from rag.grounding import coverage
from rag.guard import AnswerGuard
from rag.models.embedder import Embedder, RecentVectors
from rag.models.factory import cache_dir
from rag.models.llm import ChatLLM, GenerationOptions, Message, Stop, complete
from rag.models.reranker import OpenVINOReranker
from rag.packing import pack_sources
from rag.passage import after_overlap, passage
from rag.prompt import PROMPT, Turn, condense_messages, fence, history_messages, messages
from rag.reasoning import ThinkSplitter
from rag.retrieval import HybridRetriever
from rag.store import ChromaStore, Hit

# In three copy-decoding eval runs, quotes under 5 words held the answer 4 times in 31, the best evidence
# sentence 13 times: a shorter quote is replaced by that sentence.
MIN_COPY_WORDS = 5
log = logging.getLogger("kura.answer")
BUDGET_EXHAUSTED = (
    "The model used its whole thinking budget before it answered. Raise llm.thinking_budget "
    "(or llm.max_new_tokens) and ask again."
)
Mode = Literal["auto", "generate", "extract", "copy"]
AnswerSource = Literal["generated", "copied", "extracted", "abstained", "budget", "stopped"]
# Why an answer says the documents do not hold one, for the web app's footer (issue 18): nothing close enough
# was retrieved ("retrieval"), no evidence sentence answered closely enough ("evidence"), the question asks for
# a date, version or quantity and no evidence holds one ("value"), no source names the product, version or
# identifier asked about ("name"); or the model itself replied with the abstain message ("model"; only then
# is ``Answer.abstained`` False, since the model was asked).
AbstainReason = Literal["retrieval", "evidence", "value", "name", "model"]
# Answers whose sentences are checked against the sources one by one; an abstention or the thinking-budget
# message states nothing from them.
CHECKED_SOURCES = ("generated", "copied", "extracted", "stopped")


def _label_path(meta: dict[str, Any]) -> str:
    """The file as the user named it (relative to the ingested folder), for citations and the eval alike."""
    return str(meta.get("source", meta.get("path", "?")))


@dataclass
class Source:
    n: int
    path: str
    page: int | None
    heading: str | None
    text: str
    score: float
    file: str
    id: str

    @classmethod
    def from_hit(cls, n: int, hit: Hit, text: str) -> Source:
        meta = hit.metadata
        return cls(
            n=n,
            path=_label_path(meta),
            page=meta.get("page"),
            heading=meta.get("heading"),
            text=text,
            score=round(hit.score, 4),
            file=str(meta.get("path", "")),
            id=hit.id,
        )

    def label(self) -> str:
        where = f", page {self.page}" if self.page is not None else ""
        heading = f" - {self.heading}" if self.heading else ""
        return f"{self.path}{where}{heading}"

    def fenced(self) -> str:
        return fence(self.n, self.label(), self.text)


@dataclass
class Timings:
    retrieve_ms: float = 0.0
    rerank_ms: float = 0.0
    ttft_ms: float | None = None
    decode_tokens_per_s: float | None = None
    total_ms: float = 0.0


@dataclass
class Answer:
    question: str
    standalone_question: str
    answer: str
    reasoning: str
    sources: list[Source]
    citation_warnings: list[str]
    timings: Timings
    model: str
    device: str
    abstained: bool = False
    abstain_reason: AbstainReason | None = None
    answer_source: AnswerSource = "generated"
    generated: str = ""
    evidence: list[Evidence] = field(default_factory=list)
    # The packed sources that an abstained answer's evidence [n] numbers name (its ``sources`` are empty),
    # so the web app can open them like citations.
    evidence_sources: list[Source] = field(default_factory=list)
    retrieval_score: float = 0.0
    coverage: float = 0.0
    budget_exhausted: bool = False
    sources_dropped: int = 0
    cited: list[int] = field(default_factory=list)
    retrieved: list[str] = field(default_factory=list)
    # Each retrieved chunk's text (in the order of ``retrieved``) and each packed source's text, also when
    # the evidence gate abstained after packing (``sources`` is then empty; None when Kura abstained before
    # packing): where the eval tells which stage lost an answer.
    retrieved_texts: list[str] = field(default_factory=list)
    packed_texts: list[str] | None = None
    # Each checkable sentence of the answer and the source sentence supporting it, or none (issue 17).
    support: list[Support] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    """One step of a streamed answer; ``done`` carries the final, citation-checked :class:`Answer`."""

    kind: Literal["reasoning", "answer", "done"]
    text: str = ""
    answer: Answer | None = None


@dataclass
class Found:
    """The retrieve stage's result: what the first gate decides on and every :class:`Answer` reports."""

    question: str
    standalone: str
    hits: list[Hit]
    best_score: float
    coverage: float
    started: float  # time.perf_counter() when the question arrived: every timing counts from it
    timings: Timings = field(default_factory=Timings)


@dataclass
class Packed:
    """The pack stage's result: the numbered sources that fit the window, and the messages showing them."""

    sources: list[Source]
    messages: list[Message]
    dropped: int


@dataclass
class Generation:
    """The answer stage's result: what the model wrote, reasoning apart, and how fast."""

    reasoning: str
    answer: str
    unclosed: bool  # it stopped inside its <think> block: the thinking budget ran out
    finished: float  # time.perf_counter() when the stream ended
    ttft_ms: float | None = None
    decode_tokens_per_s: float | None = None
    stopped: bool = False  # the user's Stop (GenerationOptions.stop) ended it


def extracted(
    evidence: list[Evidence],
    sources: list[Source],
    passage_words: int,
    question: str = "",
    heading: bool = False,
    lead_ins: bool = False,
    asked: AnswerType | None = None,
    more: Callable[[], str | None] | None = None,
) -> str:
    """The best evidence sentence, cited, continued into a short passage: an answer that cannot be invented."""
    if passage_words == 0:
        return f"{evidence[0].text} [{evidence[0].n}]"
    return passage(evidence, sources, passage_words, question, heading, lead_ins, asked, more)


def _copied(quote: str, evidence: list[Evidence], fallback: str) -> tuple[str, Literal["copied", "extracted"]]:
    """The model's quote with the citation of the sentence it opens; too short a quote says too little."""
    n = source_of(quote, evidence)
    if n is None or len(quote.split()) < MIN_COPY_WORDS:
        return fallback, "extracted"
    return f"{quote} [{n}]", "copied"


def _final_text(
    produced: str, found: Found, packed: Packed, evidence: list[Evidence], mode: Mode, fallback: str
) -> tuple[str, AnswerSource]:
    """What the user is shown: the model's answer, its checked quote, or the extracted ``fallback``."""
    if mode == "copy":
        return _copied(produced, evidence, fallback)
    if not produced:  # nothing was left once an echo of the prompt or a loop was cut off
        return fallback, "extracted"
    if mode == "auto" and not supported(produced, [s.text for s in packed.sources], found.question):
        return fallback, "extracted"
    return produced, "generated"


def _held_back(stream: Generator[Event, None, Generation]) -> Generator[Event, None, Generation]:
    """The stream's reasoning as it comes, its answer pieces not at all: the caller shows the final text."""
    while True:
        try:
            event = next(stream)
        except StopIteration as stop:
            return stop.value
        if event.kind != "answer":
            yield event


def _bare(text: str) -> str:
    """Text without citations, punctuation and case: "I couldn't find this [1]." ~ "i couldnt find this"."""
    return " ".join(re.sub(r"\[[\d, ]+\]|[^\w\s]", "", text).lower().split())


def _elapsed_ms(since: float, until: float | None = None) -> float:
    return round(((until if until is not None else time.perf_counter()) - since) * 1000, 1)


class NextChunk:
    """The chunk after the key sentence's source in its file, read at most once and only when the passage runs
    past that source's end; the source then grows by it, so the source panel and the ✓ marks cover the answer."""

    def __init__(self, read: Callable[[], str | None]) -> None:
        self._read = read
        self._text: str | None = None
        self._asked = False

    def __call__(self) -> str | None:
        if not self._asked:
            self._text, self._asked = self._read(), True
        return self._text

    def grown(self, sources: list[Source], n: int, answer: str, lead_ins: bool) -> list[Source]:
        """``sources`` with source ``n`` followed by the next chunk's new text if ``answer`` quotes it."""
        source = next(source for source in sources if source.n == n)
        added = after_overlap(source.text, self._text or "")
        if not any(unit in answer for unit in units(added, lead_ins)[:1]):
            return sources
        return [replace(s, text=f"{s.text}\n\n{added}") if s.n == n else s for s in sources]


class Assistant:
    """Answers questions over one collection with one LLM; safe to share between UI sessions."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        llm: ChatLLM,
        store: ChromaStore,
        reranker: OpenVINOReranker | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder if isinstance(embedder, RecentVectors) else RecentVectors(embedder)
        self.llm = llm
        self.store = store
        self.retriever = HybridRetriever(store, self.embedder, settings.retrieval, reranker, cache_dir(settings))
        if settings.llm.answer_mode == "copy" and not self._can_copy():
            log.warning(
                "llm.answer_mode copy needs a backend that constrains decoding to a grammar (openvino) and a "
                "model without a thinking block; %s answers in auto mode",
                llm.name,
            )

    @property
    def context_window(self) -> int:
        return min(self.settings.llm.context_window or self.llm.context_window, self.llm.context_window)

    def _can_copy(self) -> bool:
        """A grammar would forbid a <think> block, and a backend that cannot enforce one would not copy."""
        return self.llm.constrains and not self.llm.thinks

    def mode(self) -> Mode:
        """``llm.answer_mode``, except that copy falls back to auto where it cannot work."""
        mode = self.settings.llm.answer_mode
        return "auto" if mode == "copy" and not self._can_copy() else mode

    def options(self, max_new_tokens: int | None = None, temperature: float | None = None) -> GenerationOptions:
        """The answer's token budget (plus the thinking budget for a reasoning model) and temperature."""
        llm = self.settings.llm
        budget = (max_new_tokens or llm.max_new_tokens) + (llm.thinking_budget if self.llm.thinks else 0)
        return GenerationOptions(
            max_new_tokens=budget, temperature=llm.temperature if temperature is None else temperature
        )

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        stop: Stop | None = None,
    ) -> Iterator[Event]:
        """Stream reasoning and answer pieces, then one ``done`` event with the checked answer.

        Setting ``stop`` (from another thread) ends the model's generation at its next token; the ``done``
        answer is then what it wrote so far, ``answer_source`` "stopped".
        """
        started = time.perf_counter()
        question = question.strip()
        if not question:
            raise KuraError("the question is empty; type a question about your documents")
        found = self.retrieve(question, self.condense(question, history), k, started)
        if not self.relevant(found):
            yield from self._abstain(found, "retrieval")
            return
        options = replace(self.options(max_new_tokens, temperature), stop=stop)
        packed = self.pack(question, history, found.hits, options)
        # A follow-up's own names only: the earlier question's were checked when it was answered, and its
        # numbers ("Port 80 and 8000") need not recur in the passage answering "and with one port only?".
        naming = self.naming(question if history else found.standalone, packed.sources)
        if not naming:
            yield from self._abstain(found, "name", packed=packed)
            return
        evidence = self.ground(found.standalone, naming, found.question if history else None)
        if reason := self.unanswerable_because(found.standalone, evidence, follow_up=bool(history)):
            yield from self._abstain(found, reason, evidence, packed)
            return
        mode = self.mode()
        if mode == "extract":
            yield from self._extract(found, packed, evidence)
            return
        if mode == "copy":  # only the best sentence: letting the model pick among three halved accuracy
            options = replace(options, grammar=prefix_grammar(evidence[:1]))
        if mode == "generate":
            generation = yield from self.generate(packed.messages, options)
            yield Event("done", answer=self.finish(found, packed, evidence, generation, mode))
            return
        # auto and copy may still replace what the model wrote, so its text is shown once it is final
        generation = yield from _held_back(self.generate(packed.messages, options))
        answer = self.finish(found, packed, evidence, generation, mode)
        yield Event("answer", answer.answer)
        yield Event("done", answer=answer)

    # --- the stages, in the order ask runs them ------------------------------------------------------
    def condense(self, question: str, history: Sequence[Turn]) -> str:
        """A follow-up like "and on Sundays?" becomes a question retrieval can use on its own."""
        if not history:
            return question
        if not self.settings.llm.condense_with_model:
            return carried_over(question, history)
        reply = complete(self.llm, condense_messages(question, history), GenerationOptions(max_new_tokens=48))
        return standalone(question, history, reply)

    def retrieve(self, question: str, standalone: str, k: int | None = None, started: float | None = None) -> Found:
        """The chunks closest to the standalone question, and how much of its content they cover.

        ``retrieve_ms`` counts from ``started`` (when the question arrived, so condensing is included).
        """
        started = time.perf_counter() if started is None else started
        retrieved = self.retriever.retrieve(standalone, k)
        retrieve_ms = round((time.perf_counter() - started) * 1000 - retrieved.rerank_ms, 1)
        timings = Timings(retrieve_ms=retrieve_ms, rerank_ms=retrieved.rerank_ms)
        covered = coverage(standalone, [f"{h.metadata.get('heading', '')} {h.text}" for h in retrieved.hits])
        return Found(question, standalone, retrieved.hits, retrieved.best_score, covered, started, timings)

    def relevant(self, found: Found) -> bool:
        """The first gate: something was found, similar enough, covering enough of the question's words."""
        limits = self.settings.retrieval
        return bool(found.hits) and found.best_score >= limits.min_score and found.coverage >= limits.min_coverage

    def pack(self, question: str, history: Sequence[Turn], hits: list[Hit], options: GenerationOptions) -> Packed:
        """Number and fence the hits that fit the context window beside the prompt and the answer budget."""
        values = {"abstain": self.settings.retrieval.abstain_message, "history": history_messages(history)}
        skeleton = messages(PROMPT, **values, sources="", question=question)
        fixed = sum(self.llm.count_tokens(m["content"]) + 8 for m in skeleton)
        # Each source costs its fence (file, page, heading) besides its text: count the longest one.
        fence_tokens = max(self.llm.count_tokens(Source.from_hit(99, hit, "").fenced()) for hit in hits)
        packed = pack_sources(
            hits,
            lambda hit: hit.text,
            self.llm.count_tokens,
            self.context_window,
            options.max_new_tokens,
            fixed,
            per_source_overhead=fence_tokens + 2,
        )
        kept = zip(packed.chunks, packed.texts, strict=True)
        sources = [Source.from_hit(n, hit, text) for n, (hit, text) in enumerate(kept, 1)]
        fenced = "\n\n".join(source.fenced() for source in sources)
        return Packed(sources, messages(PROMPT, **values, sources=fenced, question=question), packed.dropped)

    def naming(self, standalone: str, sources: list[Source]) -> list[Source]:
        """The packed sources that name every product, version and identifier the question names
        (all of them with ``retrieval.name_check`` off): only they may answer it."""
        if not self.settings.retrieval.name_check:
            return sources
        described_ = [described(source.path, source.heading, source.text) for source in sources]
        keywords = self.retriever.keywords
        documents = [keywords.document_words(source.file) for source in sources]
        held = naming(standalone, described_, documents, self._unknown())
        return [source for source, ok in zip(sources, held, strict=True) if ok]

    def _unknown(self) -> Callable[[str, bool], bool] | None:
        """``retrieval.rare_name_share``: whether a lower-case word is a name the collection rarely uses (None:
        off, or no keyword index built yet, as in vector-only retrieval)."""
        keywords = self.retriever.keywords
        share, stem_share = keywords.document_share(), keywords.document_share(stems=True)
        at_most = self.settings.retrieval.rare_name_share
        # Below 1 / at_most documents "rare" can only mean "absent", and absence from a small collection says
        # little: on data/eval (33 files) and data/sample (11) it made 3 answered questions abstain
        # ("unfragmented", "erreicht"), and no unanswerable question there needed it.
        if at_most is None or share is None or stem_share is None or at_most * keywords.document_count() < 1:
            return None
        blank = self.llm.count_tokens("")  # a word's pieces as the LLM's BPE cuts it after a space, mid-sentence
        return rare_word(share, stem_share, lambda word: self.llm.count_tokens(f" {word}") - blank, at_most)

    def ground(self, standalone: str, sources: list[Source], follow_up: str | None = None) -> list[Evidence]:
        """The sentences of the packed sources that best answer the question, best first (a ``follow_up``
        by ``retrieval.follow_up_evidence``)."""
        limits = self.settings.retrieval
        by = limits.follow_up_evidence if follow_up is not None else "standalone"
        return select_evidence(
            follow_up if by == "question" and follow_up is not None else standalone,
            sources,
            self.embedder,
            self.settings.llm.evidence_sentences,
            limits.evidence_value_weight,
            limits.evidence_heading_terms,
            limits.evidence_form_weight,
            limits.evidence_lead_ins,
            limits.evidence_file_terms,
            also=follow_up if by == "both" else None,
            identifiers=limits.evidence_identifiers,
        )

    def answerable(self, standalone: str, evidence: list[Evidence], follow_up: bool = False) -> bool:
        """The second gate: the best evidence is close enough and holds the kind of value asked for."""
        return self.unanswerable_because(standalone, evidence, follow_up) is None

    def unanswerable_because(
        self, standalone: str, evidence: list[Evidence], follow_up: bool = False
    ) -> AbstainReason | None:
        """Why the second gate abstains ("evidence" or "value"), or None when the evidence may answer."""
        limits = self.settings.retrieval
        # The evidence threshold was measured on standalone questions; a follow-up's condensed question
        # mixes two turns and scores lower against any one sentence, so there only retrieval decides.
        if not evidence or (not follow_up and not self._close_enough(standalone, evidence[0])):
            return "evidence"
        # Nor is a follow-up's answer type clear: its standalone question takes the previous one's ("When was 4.1.3
        # released? Which security fix did it include?" asked for a date), and its own misleads ("When is that value
        # expanded?" is answered "for each incoming connection": large eval dev, one follow-up lost).
        if limits.answer_type_check and not follow_up and not answerable_by(standalone, [e.text for e in evidence]):
            return "value"
        return None

    def _close_enough(self, standalone: str, best: Evidence) -> bool:
        limits = self.settings.retrieval
        if best.score >= limits.min_evidence:
            return True
        field = limits.min_evidence_field
        return field is not None and best.score >= field and names_field(standalone, best.text)

    def generate(self, messages: list[Message], options: GenerationOptions) -> Generator[Event, None, Generation]:
        """Stream the model's reasoning and answer pieces; stop at the thinking budget, an echo or a loop.

        The answer streams through an :class:`AnswerGuard`: an echo of the prompt or a loop never reaches
        the user, and the streamed answer pieces add up to the generation's answer.
        """
        splitter = ThinkSplitter(starts_in_think=self.llm.starts_in_think(messages))
        guard = AnswerGuard()
        started = time.perf_counter()
        first_piece: float | None = None
        reasoning_pieces = 0
        stream = self.llm.stream(messages, options)
        try:
            for piece in stream:
                if options.stop is not None and options.stop.is_set():
                    break  # pieces decoded before the Stop but read after it are not shown
                if first_piece is None:
                    first_piece = time.perf_counter()
                for part in splitter.feed(piece):
                    reasoning_pieces += part.kind == "reasoning"
                    if part.kind == "reasoning":
                        yield Event("reasoning", part.text)
                if shown := guard.update(splitter.answer):
                    yield Event("answer", shown)
                if splitter.in_think and reasoning_pieces > self.settings.llm.thinking_budget:
                    break
                if guard.stopped or (
                    not splitter.in_think and piece.endswith(("\n", ".")) and is_loop(splitter.answer)
                ):
                    break  # the rest would only echo the prompt or repeat itself
        finally:
            stream.close()  # type: ignore[attr-defined]
        yield from (Event("reasoning", part.text) for part in splitter.finish() if part.kind == "reasoning")
        if shown := guard.finish(splitter.answer):
            yield Event("answer", shown)
        generation = self._timed(splitter, guard.text, started, first_piece, time.perf_counter())
        generation.stopped = options.stop is not None and options.stop.is_set()
        return generation

    def _timed(
        self, splitter: ThinkSplitter, answer: str, started: float, first: float | None, finished: float
    ) -> Generation:
        generation = Generation(splitter.reasoning, answer, splitter.unclosed, finished)
        if first is not None:
            tokens = self.llm.count_tokens(splitter.reasoning + splitter.answer)
            generation.ttft_ms = _elapsed_ms(started, first)
            if finished > first and tokens > 1:
                generation.decode_tokens_per_s = round((tokens - 1) / (finished - first), 1)
        return generation

    def finish(
        self, found: Found, packed: Packed, evidence: list[Evidence], generation: Generation, mode: Mode
    ) -> Answer:
        """The answer's text by mode (the model's, its quote, or the best evidence), its citations checked."""
        produced = generation.answer.strip()
        fallback, grown = self._extracted(found, packed, evidence)
        text, answer_source = (
            (produced, "stopped")  # what the model wrote before the Stop, unchecked against the sources
            if generation.stopped
            else (BUDGET_EXHAUSTED, "budget")
            if generation.unclosed
            else _final_text(produced, found, packed, evidence, mode, fallback)
        )
        checked = check_citations(text, len(packed.sources))
        timings = replace(
            found.timings,
            ttft_ms=generation.ttft_ms,
            decode_tokens_per_s=generation.decode_tokens_per_s,
            total_ms=_elapsed_ms(found.started, generation.finished),
        )
        return self._answer(
            found,
            timings,
            answer=checked.text,
            reasoning=generation.reasoning.strip(),
            sources=grown if answer_source == "extracted" else packed.sources,
            citation_warnings=checked.warnings,
            budget_exhausted=generation.unclosed,
            sources_dropped=packed.dropped,
            cited=checked.cited,
            answer_source=answer_source,
            abstain_reason="model" if answer_source == "generated" and self._declined(checked.text) else None,
            generated=produced,
            evidence=evidence,
            packed_texts=[source.text for source in packed.sources],
        )

    def _extracted(self, found: Found, packed: Packed, evidence: list[Evidence]) -> tuple[str, list[Source]]:
        """The extracted passage as ``llm`` settings shape it (its length, clip and heading), and the sources,
        the key sentence's grown by the next chunk when the passage goes on into it."""
        llm = self.settings.llm
        lead_ins = self.settings.retrieval.evidence_lead_ins
        asked = expected_type(found.standalone) if llm.passage_value_before else None
        more = self._next_chunk(found, packed.sources, evidence[0].n)
        text = extracted(
            evidence,
            packed.sources,
            llm.passage_words,
            self._clip_for(found),
            llm.passage_heading,
            lead_ins,
            asked,
            more,
        )
        return text, packed.sources if more is None else more.grown(packed.sources, evidence[0].n, text, lead_ins)

    def _next_chunk(self, found: Found, sources: list[Source], n: int) -> NextChunk | None:
        if not self.settings.llm.passage_next_chunk:
            return None
        source = next(source for source in sources if source.n == n)
        metadata = next((hit.metadata for hit in found.hits if hit.id == source.id), {})
        return NextChunk(lambda: self.store.chunk_after(metadata))

    def _clip_for(self, found: Found) -> str:
        """The question an over-long key sentence is cut around (``llm.passage_clip``), or "" to keep it whole."""
        return found.standalone if self.settings.llm.passage_clip else ""

    def _declined(self, text: str) -> bool:
        """The model replied with the abstain message the prompt gives it (citations and case aside)."""
        message = self.settings.retrieval.abstain_message
        return _bare(text) == _bare(message)

    # --- answers without the model -----------------------------------------------------------------
    def _extract(self, found: Found, packed: Packed, evidence: list[Evidence]) -> Iterator[Event]:
        """``answer_mode: extract``: the best evidence sentence is the answer; the model is never asked."""
        text, sources = self._extracted(found, packed, evidence)
        timings = replace(found.timings, total_ms=_elapsed_ms(found.started))
        yield Event("answer", text)
        answer = self._answer(
            found,
            timings,
            answer=text,
            sources=sources,
            sources_dropped=packed.dropped,
            cited=[evidence[0].n],
            answer_source="extracted",
            evidence=evidence,
            packed_texts=[source.text for source in packed.sources],
        )
        yield Event("done", answer=answer)

    def _abstain(
        self, found: Found, reason: AbstainReason, evidence: Sequence[Evidence] = (), packed: Packed | None = None
    ) -> Iterator[Event]:
        """The honest answer when the documents do not hold one; the LLM is never asked."""
        message = self.settings.retrieval.abstain_message
        timings = replace(found.timings, total_ms=_elapsed_ms(found.started))
        yield Event("answer", message)
        answer = self._answer(
            found,
            timings,
            answer=message,
            abstained=True,
            abstain_reason=reason,
            answer_source="abstained",
            evidence=list(evidence),
            evidence_sources=[] if packed is None else packed.sources,
            packed_texts=None if packed is None else [source.text for source in packed.sources],
        )
        yield Event("done", answer=answer)

    def _answer(self, found: Found, timings: Timings, **fields: Any) -> Answer:
        """An :class:`Answer` with what every answer reports, abstained or not."""
        # An answer the model did not write has no reasoning, and one that abstained has no sources.
        without_model: dict[str, Any] = {"reasoning": "", "sources": [], "citation_warnings": []}
        answer = Answer(
            question=found.question,
            standalone_question=found.standalone,
            model=self.llm.name,
            device=self.llm.device_choice.device,
            retrieval_score=round(found.best_score, 4),
            coverage=round(found.coverage, 3),
            # What retrieval found, in rank order, even when Kura then abstains: the eval's hit@k.
            retrieved=[_label_path(h.metadata) for h in found.hits],
            retrieved_texts=[h.text for h in found.hits],
            timings=timings,
            **(without_model | fields),
        )
        if answer.answer_source in CHECKED_SOURCES and answer.abstain_reason is None:
            answer.support = sentence_support(answer.answer, answer.sources)
        return answer

    def answer(self, question: str, history: Sequence[Turn] = (), **kwargs: Any) -> Answer:
        """The final answer without streaming."""
        for event in self.ask(question, history, **kwargs):
            if event.answer is not None:
                return event.answer
        raise RuntimeError("the answer stream ended without a result")
