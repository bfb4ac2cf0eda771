"""Chat LLM adapters behind one small interface; the answer chain never sees a backend's own API."""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

import openvino as ov

if TYPE_CHECKING:
    import openvino_genai

from rag.config import LLMSettings
from rag.devices import DeviceChoice, device_chain, with_fallback
from rag.errors import short_reason
from rag.models.prepare import PreparedModel

Message = dict[str, str]
log = logging.getLogger("kura.llm")
Pipeline = TypeVar("Pipeline")  # an LLMPipeline or a ContinuousBatchingPipeline


class Stop(threading.Event):
    """A user's Stop, set from another thread (the web app's Stop button) while an answer is decoded.

    Each backend checks it at every token and ends the generation there; ``decoded_tokens`` counts the tokens
    the model still decoded after it was set, which the web app logs (issue 18: none after the click).
    """

    def __init__(self) -> None:
        super().__init__()
        self.decoded_tokens = 0

    def count(self, tokens: int) -> bool:
        """Count ``tokens`` just decoded if the stop is set; True when decoding should end now."""
        if not self.is_set():
            return False
        self.decoded_tokens += tokens
        return True


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 256
    temperature: float = 0.0
    # EBNF the output must match (rag.copying); only backends that constrain decoding honour it.
    grammar: str | None = None
    # Set by another thread to end the generation at the next token (the web app's Stop).
    stop: Stop | None = None


class ChatLLM(Protocol):
    """What Kura needs from a language model, whichever backend serves it."""

    @property
    def name(self) -> str: ...

    @property
    def device_choice(self) -> DeviceChoice: ...

    @property
    def context_window(self) -> int: ...

    @property
    def thinks(self) -> bool:
        """A reasoning model: it may write a <think> block first, so answers get ``llm.thinking_budget`` more."""
        ...

    @property
    def constrains(self) -> bool:
        """``GenerationOptions.grammar`` is enforced, which copy decoding (``llm.answer_mode: copy``) needs."""
        ...

    def starts_in_think(self, messages: list[Message]) -> bool:
        """The prompt itself opens the <think> block, so the reply starts inside it."""
        ...

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]: ...

    def count_tokens(self, text: str) -> int: ...


def complete(llm: ChatLLM, messages: list[Message], options: GenerationOptions) -> str:
    """The whole reply at once, for callers that do not stream."""
    return "".join(llm.stream(messages, options))


def _plain_backend(device: str) -> dict[str, str]:
    """The stateful (SDPA) pipeline on CPU where nothing needs PagedAttention: openvino-genai's CPU default,
    PagedAttention, never reads the compiled-model cache, and loading it took 3.0 s against 0.7 s for SDPA
    from the cache here (first answers as fast: 1.37 and 1.47 s for 30 tokens). Prompt lookup needs
    PagedAttention; other devices keep genai's own choice, unmeasured here."""
    return {"ATTENTION_BACKEND": "SDPA"} if device == "CPU" else {}


class OpenVINOLLM:
    """openvino-genai's LLMPipeline: measured faster here than optimum-intel (trial-run notes)."""

    constrains = True  # XGrammar structured output: GenerationOptions.grammar is enforced

    def __init__(self, model: PreparedModel, settings: LLMSettings, core: ov.Core, cache_dir: str | None) -> None:
        import openvino_genai

        from rag.models.tokenizer import Tokenizer

        self._genai = openvino_genai
        self.model = model
        self.name = model.source.name
        self.tokenizer = Tokenizer(model.path)
        config = json.loads((model.path / "config.json").read_text(encoding="utf-8"))
        self.context_window = int(config.get("max_position_embeddings") or config.get("n_positions") or 2048)
        # One pipeline serves one generation at a time; concurrent callers queue here.
        self._lock = threading.Lock()
        self.settings = settings
        self.prompt_lookup = settings.prompt_lookup
        chain = device_chain(settings.device, settings.fallback)
        properties = {"CACHE_DIR": cache_dir} if cache_dir else {}
        self.pipeline, self.device_choice = with_fallback(
            "llm", core, chain, lambda device: self._pipeline(device, properties)
        )

    def _pipeline(self, device: str, properties: dict[str, str]) -> openvino_genai.LLMPipeline:
        path = str(self.model.path)
        return self._lookup_or_plain(
            device,
            lambda lookup: self._genai.LLMPipeline(
                path, device, **properties, **({"prompt_lookup": True} if lookup else _plain_backend(device))
            ),
        )

    def _lookup_or_plain(self, device: str, build: Callable[[bool], Pipeline]) -> Pipeline:
        """A prompt-lookup pipeline where the device supports one, else the plain one; decided per device."""
        if self.settings.prompt_lookup:
            try:
                pipeline = build(True)
                self.prompt_lookup = True
                return pipeline
            except Exception as exc:
                log.info(
                    "llm: prompt lookup is not available on %s (%s); decoding without it", device, short_reason(exc)
                )
        self.prompt_lookup = False
        return build(False)

    @property
    def device(self) -> str:
        return self.device_choice.device

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    @property
    def thinks(self) -> bool:
        """A reasoning model: its chat template knows <think> blocks."""
        return "<think>" in str(self.tokenizer.chat_template or "")

    def starts_in_think(self, messages: list[Message]) -> bool:
        """DeepSeek-R1 distills open the think block in the template; the output then starts inside it."""
        return self.render(messages).rstrip().endswith("<think>")

    def render(self, messages: list[Message]) -> str:
        """The prompt exactly as the model sees it, through the model's own chat template."""
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    def _config(self, options: GenerationOptions) -> object:
        config = self._genai.GenerationConfig()
        config.max_new_tokens = options.max_new_tokens
        config.apply_chat_template = False
        config.do_sample = options.temperature > 0
        if config.do_sample:
            config.temperature = options.temperature
        if self.prompt_lookup:
            config.num_assistant_tokens = self.settings.lookup_tokens
            config.max_ngram_size = self.settings.lookup_ngram
        if options.grammar:
            config.structured_output_config = self._genai.StructuredOutputConfig(grammar=options.grammar)
        return config

    def stream(self, messages: list[Message], options: GenerationOptions) -> Iterator[str]:
        """Yield text pieces as they are decoded; closing the iterator or setting ``options.stop`` cancels it."""
        prompt = self.render(messages)
        pieces: queue.Queue[str | BaseException | None] = queue.Queue()
        closed = threading.Event()

        def run() -> None:
            try:
                with self._lock:
                    streamer = self._streamer(pieces.put, closed, options.stop)
                    self.pipeline.generate(prompt, self._config(options), streamer)
            except BaseException as exc:
                pieces.put(exc)
            finally:
                pieces.put(None)

        worker = threading.Thread(target=run, name="kura-llm", daemon=True)
        worker.start()
        try:
            while (item := pieces.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            closed.set()
            worker.join()

    def _streamer(self, put: Callable[[str], None], closed: threading.Event, stop: Stop | None) -> object:
        """A token-level streamer: it sees every token the pipeline decodes (several per step with prompt
        lookup), so a Stop ends decoding at the next one and the tokens decoded after it are counted exactly."""
        genai = self._genai

        def on_text(piece: str) -> object:
            put(piece)
            return genai.StreamingStatus.RUNNING

        text = genai.TextStreamer(self.pipeline.get_tokenizer(), on_text)

        class Streamer(genai.StreamerBase):  # type: ignore[name-defined]
            def write(self, token: int | list[int]) -> object:
                tokens = len(token) if isinstance(token, list) else 1
                if (stop is not None and stop.count(tokens)) or closed.is_set():
                    return genai.StreamingStatus.CANCEL
                return text.write(token)

            def end(self) -> None:
                text.end()

        return Streamer()
