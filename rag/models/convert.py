"""Converters from each source kind to an OpenVINO IR folder. Slow, so only ``prepare`` calls them.

Heavy imports (torch, transformers, optimum) stay inside the functions: commands that only load
an already-converted model never pay for them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from rag.models.sources import ModelSource

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


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


def export_embedder(source: ModelSource, out: Path, precision: str) -> dict[str, Any]:
    """Export the transformer of a sentence-transformers model; Kura pools and normalizes itself."""
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
    for name in (*TOKENIZER_FILES, "vocab.txt"):
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
