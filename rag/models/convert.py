"""Converters from each source kind to an OpenVINO IR folder. Slow, so only ``prepare`` calls them.

Heavy imports (torch, transformers, optimum) stay inside the functions: commands that only load
an already-converted model never pay for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rag.errors import KuraError
from rag.models.sources import ModelSource

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
SENTENCE_FILES = ("config_sentence_transformers.json", "modules.json")
EMBEDDER_MODULES = ("Transformer", "Pooling", "Normalize")
# sentence-transformers before v6 saved one flag per pooling mode; v6 saves a single "pooling_mode".
LEGACY_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _group_size(config: Any) -> int:
    """Largest int4 group size dividing the weight rows (SmolLM2's 576 hidden size breaks 128)."""
    dims = [getattr(config, "hidden_size", 0), getattr(config, "intermediate_size", 0)]
    for size in (128, 64, 32):
        if all(d % size == 0 for d in dims if d):
            return size
    return -1


def _gguf_tokenizer(gguf: Path) -> Any:
    """The GGUF's tokenizer as a fast tokenizer that survives save/reload.

    transformers rebuilds byte-level BPE GGUF tokenizers under a Llama class whose pre-tokenizer
    breaks on reload, adds a BOS the file says not to, and picks the wrong EOS; rebuilding from the
    tokenizer object and the GGUF's own metadata avoids all three.
    """
    from gguf import GGUFReader
    from tokenizers import decoders, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    loaded = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    fields = GGUFReader(gguf).fields

    def meta(key: str) -> Any:
        return fields[key].contents() if key in fields else None

    backend = loaded.backend_tokenizer
    if meta("tokenizer.ggml.model") == "gpt2":
        backend.decoder = decoders.ByteLevel()
        backend.normalizer = None
        if not meta("tokenizer.ggml.add_bos_token"):
            backend.post_processor = processors.ByteLevel(trim_offsets=False)
    vocab = {index: token for token, index in backend.get_vocab().items()}

    def token(key: str) -> str | None:
        index = meta(key)
        return vocab.get(index) if index is not None else None

    rebuilt = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=token("tokenizer.ggml.bos_token_id"),
        eos_token=token("tokenizer.ggml.eos_token_id"),
        unk_token=token("tokenizer.ggml.unknown_token_id"),
        pad_token=token("tokenizer.ggml.padding_token_id") or token("tokenizer.ggml.eos_token_id"),
    )
    rebuilt.chat_template = meta("tokenizer.chat_template") or loaded.chat_template
    return rebuilt


def gguf_to_hf(source: ModelSource, out: Path) -> Path:
    """Dequantize a GGUF into a Hugging Face folder so any weight format can be exported from it."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(source.path.parent, gguf_file=source.path.name)
    model.save_pretrained(out)
    _gguf_tokenizer(source.path).save_pretrained(out)
    return out


def export_llm(hf_dir: Path, out: Path, weight_format: str) -> dict[str, Any]:
    """Export a causal LM with weight compression, plus OpenVINO tokenizer/detokenizer for genai."""
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from optimum.intel import OVModelForCausalLM, OVWeightQuantizationConfig
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(hf_dir)
    details: dict[str, Any] = {"weight_format": weight_format}
    kwargs: dict[str, Any] = {"export": True, "compile": False}
    if weight_format == "int4":
        group = _group_size(config)
        details["group_size"] = group
        kwargs["quantization_config"] = OVWeightQuantizationConfig(bits=4, sym=False, group_size=group)
    elif weight_format == "int8":
        kwargs["quantization_config"] = OVWeightQuantizationConfig(bits=8, sym=False)
    else:
        kwargs["load_in_8bit"] = False
    model = OVModelForCausalLM.from_pretrained(hf_dir, **kwargs)
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    tokenizer.save_pretrained(out)
    ov_tokenizer, ov_detokenizer = convert_tokenizer(tokenizer, with_detokenizer=True)
    ov.save_model(ov_tokenizer, out / "openvino_tokenizer.xml")
    ov.save_model(ov_detokenizer, out / "openvino_detokenizer.xml")
    return details


def pooling_mode(folder: Path) -> str:
    """CLS or mean, the two Kura implements; any other would give vectors unlike the model's own."""
    config = folder / "1_Pooling" / "config.json"
    if not config.is_file():
        return "mean"
    data = json.loads(config.read_text(encoding="utf-8"))
    modes = data.get("pooling_mode") or [mode for flag, mode in LEGACY_POOLING_FLAGS.items() if data.get(flag)]
    modes = [modes] if isinstance(modes, str) else list(modes) or ["mean"]
    if modes not in (["cls"], ["mean"]):
        raise KuraError(
            f"embedder: pooling {'+'.join(modes)} in {config} is not supported; Kura pools by CLS token or mean"
        )
    return modes[0]


def _check_embedder(source: ModelSource) -> None:
    """Kura runs only the transformer, then pools and normalizes itself: a model with any other module
    (LaBSE's Dense projection) or pooling would give vectors unlike the model's own, so it is refused
    before the export, not after minutes of it."""
    pooling_mode(source.path)
    modules = source.path / "modules.json"
    if not modules.is_file():
        return
    for module in json.loads(modules.read_text(encoding="utf-8")):
        name = str(module.get("type", "")).rsplit(".", 1)[-1]
        if name not in EMBEDDER_MODULES:
            raise KuraError(
                f"embedder.source {source.spec}: its modules.json has a {name} module, which Kura does not run; "
                "use a sentence-transformers model made of Transformer, Pooling and Normalize modules only "
                "(e.g. multilingual-e5-small, paraphrase-multilingual-MiniLM-L12-v2, bge-m3)"
            )


def export_embedder(source: ModelSource, out: Path, precision: str) -> dict[str, Any]:
    """Export the transformer of a sentence-transformers model; Kura pools and normalizes itself."""
    _check_embedder(source)
    import openvino as ov
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    main_export(
        str(source.path),
        out,
        task="feature-extraction",
        library_name="transformers",
        ov_config=OVConfig(dtype="fp32"),
    )
    pooling = source.path / "1_Pooling" / "config.json"
    if pooling.is_file():
        (out / "1_Pooling").mkdir(exist_ok=True)
        shutil.copy2(pooling, out / "1_Pooling" / "config.json")
    for name in (*TOKENIZER_FILES, "vocab.txt", *SENTENCE_FILES):
        if (source.path / name).is_file() and not (out / name).exists():
            shutil.copy2(source.path / name, out / name)
    if precision == "int8":
        import nncf

        xml = out / "openvino_model.xml"
        model = ov.Core().read_model(xml)
        compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
        tmp = out / "int8.xml"
        ov.save_model(compressed, tmp)
        xml.unlink()
        (out / "openvino_model.bin").unlink()
        tmp.rename(xml)
        (out / "int8.bin").rename(out / "openvino_model.bin")
    return {"precision": precision}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")


def export_reranker(source: ModelSource, out: Path) -> dict[str, Any]:
    """Export a cross-encoder (sequence classification, one relevance logit per question/passage pair)."""
    from optimum.exporters.openvino import main_export
    from optimum.intel import OVConfig

    main_export(
        str(source.path), out, task="text-classification", library_name="transformers", ov_config=OVConfig(dtype="fp32")
    )
    for name in (*TOKENIZER_FILES, "vocab.txt"):
        if (source.path / name).is_file() and not (out / name).exists():
            shutil.copy2(source.path / name, out / name)
    return {"task": "text-classification"}
