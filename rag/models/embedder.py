"""OpenVINO sentence embedder, usable wherever LangChain expects ``Embeddings``.

The NPU compiles only fixed shapes, so there the encoder is compiled once per length bucket at a fixed
batch size: texts go to the smallest bucket that holds them, partial batches are padded with empty rows
that are dropped. The CPU and GPU run dynamic shapes well, so there (``shapes_mode: auto``) one model
takes any shape: the texts of a call are sorted by token length and cut into batches padded only to a
multiple of 8 tokens: on real ingest chunks (the large eval's, 64 per call as ingest embeds them) padding
fell from 38% of the executed tokens to 12% (4% at 1,024 per call), and embedding ran 2.1x faster.
Any text longer than ``max_length`` is truncated and counted, never silently.

Models trained with instructions (e5: "query: " / "passage: ") give poor vectors without them, so
queries and documents each get the prefix the model declares, unless the settings override it.
"""

from __future__ import annotations

import copy
import json
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import openvino as ov
from langchain_core.embeddings import Embeddings

from rag.config import EmbedderSettings
from rag.devices import DeviceChoice, device_chain, with_fallback
from rag.models.convert import pooling_mode
from rag.models.prepare import PreparedModel
from rag.models.tokens import DocumentTokens


@dataclass
class EmbedStats:
    """Running counters a caller can report (e.g. ``ingest`` says how many chunks were truncated)."""

    texts: int = 0
    truncated: int = 0
    padded_rows: int = 0
    tokens: int = 0  # real tokens embedded
    padded_tokens: int = 0  # positions executed beyond them (padding), so a caller can report its share


Kind = Literal["query", "document", "raw"]


class Embedder(Protocol):
    """What Kura needs from a sentence embedder: retrieval, evidence, chunking and the store call only this."""

    @property
    def max_length(self) -> int:
        """Tokens the encoder takes; a longer text is truncated and counted in ``stats``."""
        ...

    @property
    def stats(self) -> EmbedStats: ...

    @property
    def name(self) -> str: ...

    @property
    def device_choice(self) -> DeviceChoice: ...

    def embed(self, texts: list[str], kind: Kind = "raw") -> np.ndarray:
        """Unit-length vectors, one row per text; ``kind`` adds the model's query or document prefix."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the encoder as a document."""
        ...

    def token_counter(self) -> Callable[[str], int]:
        """``count_tokens`` as a picklable callable: chunking runs in parser processes."""
        ...

    def fingerprint(self) -> str:
        """The same fingerprint means comparable vectors; a collection records the one that built it."""
        ...


class RecentVectors:
    """An :class:`Embedder` that remembers the vectors of recent texts.

    Answering embeds the standalone question twice (retrieval, then evidence) and the sentences of every
    retrieved chunk, the same sentences again whenever a chunk is retrieved again; on data/sample the
    encoder was nearly all of an extracted answer's time (12 questions, cProfile).
    """

    def __init__(self, embedder: Embedder, size: int = 4096) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def max_length(self) -> int:
        return self.embedder.max_length

    @property
    def stats(self) -> EmbedStats:
        return self.embedder.stats

    @property
    def name(self) -> str:
        return self.embedder.name

    @property
    def device_choice(self) -> DeviceChoice:
        return self.embedder.device_choice

    def count_tokens(self, text: str) -> int:
        return self.embedder.count_tokens(text)

    def token_counter(self) -> Callable[[str], int]:
        return self.embedder.token_counter()

    def fingerprint(self) -> str:
        return self.embedder.fingerprint()

    def embed(self, texts: list[str], kind: Kind = "raw") -> np.ndarray:
        if not texts:
            return self.embedder.embed([], kind)
        with self._lock:
            known = {text: self._vectors[(kind, text)] for text in texts if (kind, text) in self._vectors}
        missing = [text for text in dict.fromkeys(texts) if text not in known]
        if missing:
            known.update(zip(missing, self.embedder.embed(missing, kind), strict=True))
        with self._lock:
            for text in texts:
                self._vectors[(kind, text)] = known[text]
                self._vectors.move_to_end((kind, text))
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return np.vstack([known[text] for text in texts])


def _model_prompts(model: PreparedModel) -> dict[str, str]:
    """The model's own prompts; a folder converted before Kura copied this file has it only in the source."""
    for folder in (model.path, model.source.path):
        config = folder / "config_sentence_transformers.json"
        if config.is_file():
            prompts = json.loads(config.read_text(encoding="utf-8")).get("prompts") or {}
            return {name: text for name, text in prompts.items() if isinstance(text, str)}
    return {}


def _prefixes(model: PreparedModel, settings: EmbedderSettings) -> dict[Kind, str]:
    prompts = _model_prompts(model)
    query = settings.query_prefix
    document = settings.document_prefix
    return {
        "query": query if query is not None else prompts.get("query", ""),
        "document": document if document is not None else prompts.get("document") or prompts.get("passage", ""),
        "raw": "",
    }


def fingerprint(model: PreparedModel, settings: EmbedderSettings) -> str:
    """An embedder's fingerprint from its files and settings alone, so deciding that nothing needs embedding
    (an unchanged ingest, a dry run) does not compile the encoder.

    It names the configured static shapes but not ``shapes_mode`` nor ``throughput``: padding is masked out
    of attention and pooling, so static buckets, dynamic batches and the batch a text lands in give the same
    vector up to float rounding (cosine >= 0.99999 between static and dynamic on real chunks, against 0.99996
    between Kura and PyTorch), and collections embedded either way stay comparable without a re-embed."""
    shapes = "/".join(str(s) for s in settings.shapes())
    name = f"{model.source.name}:{model.source.fingerprint()}:{settings.precision}:{pooling_mode(model.path)}"
    # Only when there are prefixes: collections built by a prefix-less model need no re-embed.
    prefixes = _prefixes(model, settings)
    query, document = prefixes["query"], prefixes["document"]
    return f"{name}:{settings.batch_size}x{shapes}" + (f":q={query!r}:d={document!r}" if query or document else "")


SHORT_LENGTH = 64
# Dynamic batches: rows x padded length. On 256 real chunks embedded 64 per call, interleaved (load average
# 20 on 2 cores): 2,048 tokens padded to x8 ran 2.11x static shapes, 4,096 padded to x16 1.89x, 2,048 on
# one LATENCY request 1.32x; a multiple of 16 gave the static vectors bit for bit, exact lengths cos 0.99999.
PAD_MULTIPLE = 8
BATCH_TOKENS = 2048
MAX_ROWS = 64


def length_batches(lengths: list[int], max_tokens: int, max_rows: int, multiple: int) -> list[tuple[int, list[int]]]:
    """Indices of texts cut into batches of similar length: ``(padded length, indices)`` per batch.

    Sorted by length (ties keep their order), each batch padded to its longest text rounded up to
    ``multiple``; a batch grows while rows x padded length stays within ``max_tokens`` and ``max_rows``,
    so short texts run in wide batches and long ones in narrow ones. Nothing is padded to a bucket.
    """
    order = sorted(range(len(lengths)), key=lambda index: lengths[index])
    batches: list[tuple[int, list[int]]] = []
    for index in order:
        padded = -(-max(lengths[index], 1) // multiple) * multiple
        if batches:
            _, rows = batches[-1]
            # sorted ascending, so this text is the longest of the batch and sets its padded length
            if len(rows) < max_rows and (len(rows) + 1) * padded <= max_tokens:
                rows.append(index)
                batches[-1] = (padded, rows)
                continue
        batches.append((padded, [index]))
    return batches


def _pooled(hidden: np.ndarray, mask: np.ndarray, pooling: str) -> np.ndarray:
    """Unit vectors from the encoder's last hidden state: the CLS token or the mean over real tokens."""
    if pooling == "cls":
        pooled = hidden[:, 0]
    else:
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)


@dataclass
class _Compiled:
    """The encoder as compiled for one device: static shapes, or dynamic ones for a lone batch and for bulk."""

    static: dict[tuple[int, int], ov.CompiledModel]
    latency: ov.CompiledModel | None = None  # dynamic shapes, LATENCY hint: one request on every core
    throughput: ov.CompiledModel | None = None  # dynamic shapes, THROUGHPUT hint: parallel requests


class OpenVINOEmbedder(Embeddings):
    """Embeddings from an OpenVINO encoder: static shapes ``batch_size x bucket`` on the NPU, dynamic elsewhere."""

    def __init__(self, model: PreparedModel, settings: EmbedderSettings, core: ov.Core) -> None:
        from rag.models.tokenizer import Tokenizer

        self.model = model
        self.settings = settings
        self.batch_size = settings.batch_size
        self.shapes = settings.shapes()
        self.max_length = self.shapes[-1]
        self.pooling = pooling_mode(model.path)
        self.prefixes = _prefixes(model, settings)
        self.tokenizer = Tokenizer(model.path)
        self.stats = EmbedStats()
        self._lock = threading.Lock()
        self._local = threading.local()
        network = core.read_model(model.path / "openvino_model.xml")
        self._input_names = [port.get_any_name() for port in network.inputs]
        # Besides the configured buckets: a short one for sentences and a one-row shape for a lone query,
        # which answering embeds on every question (evidence sentences are mostly under 64 tokens; a query
        # padded to 8 rows cost 8 rows of compute). Padding does not change a vector, so stored vectors
        # stay comparable and the fingerprint names only the configured shapes.
        self._lengths = sorted({*self.shapes, min(SHORT_LENGTH, self.shapes[0])})
        self._shapes = [(self.batch_size, length) for length in self._lengths] + [(1, self._lengths[0])]
        chain = device_chain(settings.device, settings.fallback)
        self._compiled, self.choice = with_fallback(
            "embedder", core, chain, lambda device: self._compile(core, network, device)
        )
        self._models = self._compiled.static
        self.compiled = {length: self._models[(self.batch_size, length)] for length in self.shapes if self._models}
        self._queue: ov.AsyncInferQueue | None = None
        if self._compiled.throughput is not None:
            requests = int(self._compiled.throughput.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
            self._queue = ov.AsyncInferQueue(self._compiled.throughput, max(requests, 1))
            self._queue.set_callback(self._pool_request)

    def _dynamic_on(self, device: str) -> bool:
        mode = self.settings.shapes_mode
        return mode == "dynamic" or (mode == "auto" and not device.upper().startswith("NPU"))

    def _compile(self, core: ov.Core, network: ov.Model, device: str) -> _Compiled:
        if self._dynamic_on(device):
            dynamic = network.clone()
            dynamic.reshape({name: ov.PartialShape([-1, -1]) for name in self._input_names})
            latency = core.compile_model(dynamic, device, {"PERFORMANCE_HINT": "LATENCY"})
            throughput = None
            if self.settings.throughput:
                throughput = core.compile_model(dynamic, device, {"PERFORMANCE_HINT": "THROUGHPUT"})
            return _Compiled({}, latency, throughput)
        compiled = {}
        for batch, length in self._shapes:
            static = network.clone()
            static.reshape({name: ov.PartialShape([batch, length]) for name in self._input_names})
            compiled[(batch, length)] = core.compile_model(static, device)
        return _Compiled(compiled)

    @property
    def dynamic(self) -> bool:
        return self._compiled.latency is not None

    @property
    def primary(self) -> ov.CompiledModel:
        """The compiled model bulk embedding runs on (its properties say how it executes)."""
        return self._compiled.throughput or self._compiled.latency or self._models[(self.batch_size, self.shapes[0])]

    @property
    def shapes_label(self) -> str:
        if not self.dynamic:
            return "static " + ", ".join(f"{self.batch_size}x{length}" for length in self.shapes)
        requests = f", {len(self._queue)} parallel requests" if self._queue is not None else ""
        return f"dynamic (length-sorted, padded to x{PAD_MULTIPLE}, {BATCH_TOKENS} tokens per batch{requests})"

    @property
    def name(self) -> str:
        return self.model.source.name

    @property
    def device(self) -> str:
        return self.choice.device

    @property
    def device_choice(self) -> DeviceChoice:
        return self.choice

    @property
    def dimension(self) -> int:
        return int(self.primary.outputs[0].get_partial_shape()[-1].get_length())

    def fingerprint(self) -> str:
        """Identifies the vectors this embedder makes: the same fingerprint means comparable vectors."""
        return fingerprint(self.model, self.settings)

    def _thread_tokenizer(self) -> Any:
        """A fast tokenizer is not re-entrant ("Already borrowed"): parser threads count with their own copy."""
        tokenizer = getattr(self._local, "tokenizer", None)
        if tokenizer is None:
            tokenizer = self._local.tokenizer = copy.deepcopy(self.tokenizer)
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the encoder as a document, prefix and special tokens included: chunking
        measures chunks with this, so no chunk is cut by the encoder's limit."""
        tokenizer = self._thread_tokenizer()
        return len(tokenizer.encode(self.prefixes["document"] + text, add_special_tokens=True))

    def token_counter(self) -> Callable[[str], int]:
        return DocumentTokens(self.tokenizer.backend, self.prefixes["document"])

    def _token_ids(self, texts: list[str]) -> tuple[list[list[int]], int]:
        # One token past the limit is enough to know a text was cut.
        encoded = self._thread_tokenizer().encode_batch(texts, max_length=self.max_length + 1)
        truncated = 0
        ids_list = []
        for ids in encoded:
            if len(ids) > self.max_length:
                truncated += 1
                ids = ids[: self.max_length - 1] + ids[-1:]
            ids_list.append(ids)
        return ids_list, truncated

    def _bucket(self, length: int) -> int:
        return next(shape for shape in self._lengths if shape >= length)

    def _feeds(self, rows: list[list[int]], size: int, length: int) -> tuple[dict[str, Any], np.ndarray]:
        batch = np.full((size, length), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((size, length), dtype=np.int64)
        for row, ids in enumerate(rows):
            batch[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        feeds: dict[str, Any] = {"input_ids": batch, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(batch)
        return feeds, mask

    def _run(self, length: int, rows: list[list[int]]) -> np.ndarray:
        size = 1 if len(rows) == 1 and (1, length) in self._models else self.batch_size
        feeds, mask = self._feeds(rows, size, length)
        hidden = self._models[(size, length)](feeds)[0][: len(rows)]
        self.stats.padded_rows += size - len(rows)
        self.stats.padded_tokens += size * length - int(mask.sum())
        return _pooled(hidden, mask[: len(rows)], self.pooling)

    def _embed_static(self, ids_list: list[list[int]], out: np.ndarray) -> None:
        groups: dict[int, list[int]] = defaultdict(list)
        for index, ids in enumerate(ids_list):
            groups[self._bucket(len(ids))].append(index)
        for length, indices in sorted(groups.items()):
            for start in range(0, len(indices), self.batch_size):
                part = indices[start : start + self.batch_size]
                out[part] = self._run(length, [ids_list[i] for i in part])

    def _pool_request(self, request: ov.InferRequest, userdata: tuple[np.ndarray, list[int], np.ndarray]) -> None:
        """A finished request of the queue: its output buffer is reused by the next batch, so pool it now."""
        out, part, mask = userdata
        out[part] = _pooled(request.get_output_tensor(0).data, mask, self.pooling)

    def _embed_dynamic(self, ids_list: list[list[int]], out: np.ndarray) -> None:
        """Length-sorted batches; several of them run as parallel requests, a lone one (a query) on LATENCY."""
        batches = length_batches([len(ids) for ids in ids_list], BATCH_TOKENS, MAX_ROWS, PAD_MULTIPLE)
        latency = self._compiled.latency
        assert latency is not None
        for length, part in batches:
            feeds, mask = self._feeds([ids_list[i] for i in part], len(part), length)
            self.stats.padded_tokens += len(part) * length - int(mask.sum())
            if self._queue is None or len(batches) == 1:
                out[part] = _pooled(latency(feeds)[0], mask, self.pooling)
            else:
                self._queue.start_async(feeds, (out, part, mask))
        if self._queue is not None:
            self._queue.wait_all()

    def embed(self, texts: list[str], kind: Kind = "raw") -> np.ndarray:
        """Unit-length vectors, one row per text, in the order given.

        ``kind`` adds the model's query or document prefix; ``raw`` embeds the texts exactly as given
        (for timing, and for comparing with other runtimes).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prefix = self.prefixes[kind]
        ids_list, truncated = self._token_ids([prefix + text for text in texts] if prefix else texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with self._lock:
            if self.dynamic:
                self._embed_dynamic(ids_list, out)
            else:
                self._embed_static(ids_list, out)
            self.stats.texts += len(texts)
            self.stats.truncated += truncated
            self.stats.tokens += sum(len(ids) for ids in ids_list)
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed(list(texts), kind="document").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text], kind="query")[0].tolist()
