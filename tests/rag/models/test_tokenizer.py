"""Kura's tokenizer (``tokenizers`` alone) gives the ids and prompts transformers' AutoTokenizer gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.config import Settings
from rag.models.prepare import prepare
from rag.models.tokenizer import Tokenizer
from tests.conftest import SAMPLE

pytestmark = pytest.mark.slow

TEXTS = [
    "",
    "Grüße aus Köln – ÄÖÜ ß",
    "東京オフィスは何階ですか？",
    "query: what?  \n\n tabs\tand  spaces",
    "x" * 3000,
]


def sample_texts() -> list[str]:
    texts = list(TEXTS)
    for path in sorted(SAMPLE.iterdir()):
        if path.suffix in (".md", ".txt", ".html"):
            text = path.read_text(encoding="utf-8")
            texts += [text[start : start + 900] for start in range(0, len(text), 700)]
    return texts


@pytest.mark.parametrize("role", ["embedder", "llm"])
def test_ids_match_transformers(settings: Settings, role: str) -> None:
    from transformers import AutoTokenizer

    folder: Path = prepare(role, settings).path  # type: ignore[arg-type]
    reference, ours = AutoTokenizer.from_pretrained(folder), Tokenizer(folder)
    texts = sample_texts()
    assert ours.pad_token_id == reference.pad_token_id
    for text in texts:
        for special in (True, False):
            assert ours.encode(text, special) == reference(text, add_special_tokens=special)["input_ids"]
    truncated = reference(texts, truncation=True, max_length=257)["input_ids"]
    assert ours.encode_batch(texts, 257) == truncated
    for ids in truncated:
        assert ours.decode(ids) == reference.decode(ids, skip_special_tokens=True)


def test_chat_prompt_matches_transformers(settings: Settings) -> None:
    from transformers import AutoTokenizer

    folder = prepare("llm", settings).path
    reference, ours = AutoTokenizer.from_pretrained(folder), Tokenizer(folder)
    assert ours.chat_template == reference.chat_template
    conversations = [
        [{"role": "user", "content": "hi"}],
        [
            {"role": "system", "content": "Answer from the sources.\n[1] The port is 4443."},
            {"role": "user", "content": "Which port?"},
            {"role": "assistant", "content": "4443 [1]."},
            {"role": "user", "content": "Und auf Deutsch? 東京"},
        ],
    ]
    for messages in conversations:
        expected = reference.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert ours.apply_chat_template(messages) == expected


def test_loading_needs_no_torch(settings: Settings) -> None:
    """The point of this module: a fresh process tokenizes without importing transformers or torch."""
    import subprocess

    folder = prepare("llm", settings).path
    code = (
        "import sys; from pathlib import Path; from rag.models.tokenizer import Tokenizer; "
        f"Tokenizer(Path({str(folder)!r})).encode('hi'); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr
