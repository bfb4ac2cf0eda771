"""Full int8 quantization of the embedder (nncf.quantize with calibration data), as a measured variant only.

The product's ``embedder.precision: int8`` compresses weights only (``nncf.compress_weights``):
activations stay float, so matmuls still run in float. Quantizing activations too lets the CPU use
int8 dot products (VNNI), at some cost in fidelity. Whether that trade is worth a product default
is decided from the numbers ``kura bench embed`` reports; this module never touches the product's
converter. The result is cached under ``paths.models/bench/`` with a manifest, like ``prepare`` does.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.models.prepare import PreparedModel, Say, prepare

MANIFEST = "kura-bench-manifest.json"
# The feed-forward down-projection of every layer (BERT's ``layer.N.output.dense``): its input is the GELU
# output, whose long tail int8 cannot hold. Kept in float, top-1 agreement with fp32 went from 94.9% to
# 97.3% (256 queries over 2,000 chunks) and cos min 0.978 -> 0.9975, at 1.56x fp32's speed against 1.66x
# (dynamic shapes, interleaved, load average 17-23 on 2 cores). Fragile: one query over the floor; also
# keeping layer 5 in float gave 96.9% at 1.26x, and calibrating on 300 real large-eval chunks 94.1%.
FFN_OUTPUT = r".*layer\.\d+\.output\.dense/.*"
COPIED = ("1_Pooling", "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def _calibration_items(folder: Path, texts: list[str], max_length: int) -> list[dict[str, Any]]:
    """One unpadded batch-1 sample per text: statistics come from real token distributions, not padding."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    items = []
    for text in texts:
        encoded = tokenizer(text, truncation=True, max_length=max_length, return_tensors="np")
        item = {"input_ids": encoded["input_ids"].astype(np.int64)}
        item["attention_mask"] = encoded["attention_mask"].astype(np.int64)
        item["token_type_ids"] = np.zeros_like(item["input_ids"])
        items.append(item)
    return items


def full_int8_embedder(
    settings: Settings, calibration: list[str], say: Say = lambda _: None, keep_ffn_output: bool = False
) -> PreparedModel:
    """The fp32 embedder quantized to int8 weights and activations, calibrated on ``calibration`` texts;
    ``keep_ffn_output`` leaves each layer's feed-forward output projection in float (see ``FFN_OUTPUT``)."""
    import nncf
    import openvino as ov

    fp32 = settings.model_copy(deep=True)
    fp32.embedder.precision = "fp32"
    base = prepare("embedder", fp32, say)
    wanted = {
        "base": base.path.name,
        "fingerprint": base.source.fingerprint(),
        "calibration_texts": len(calibration),
        "max_length": settings.embedder.max_length,
        "nncf": nncf.__version__,
        "model_type": "transformer",
        "ignored": [FFN_OUTPUT] if keep_ffn_output else [],
    }
    suffix = "-int8-full-ffn-float" if keep_ffn_output else "-int8-full"
    target = settings.models_dir / "bench" / f"{base.path.name}{suffix}"
    options = {"precision": "int8-full"}
    manifest = target / MANIFEST
    if manifest.is_file() and json.loads(manifest.read_text()) == wanted:
        return PreparedModel("embedder", base.source, target, options)
    say(f"embedder: full int8 quantization (nncf, {len(calibration)} calibration chunks), once; about a minute")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model = ov.Core().read_model(base.path / "openvino_model.xml")
        names = {port.get_any_name() for port in model.inputs}
        items = [
            {k: v for k, v in item.items() if k in names}
            for item in _calibration_items(base.path, calibration, settings.embedder.max_length)
        ]
        quantized = nncf.quantize(
            model,
            nncf.Dataset(items),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(items),
            ignored_scope=nncf.IgnoredScope(patterns=wanted["ignored"]),
        )
        ov.save_model(quantized, work / "openvino_model.xml")
        for name in COPIED:
            source = base.path / name
            if source.is_dir():
                shutil.copytree(source, work / name)
            elif source.is_file():
                shutil.copy2(source, work / name)
        (work / MANIFEST).write_text(json.dumps(wanted, indent=2))
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PreparedModel("embedder", base.source, target, options, converted=True)
