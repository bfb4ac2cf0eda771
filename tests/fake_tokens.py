"""The fakes' tokenizer, alone in a module: a parser process unpickles ``fake_document_tokens`` from here,
and importing tests.fakes (OpenVINO, numpy, LangChain) cost each parser process about 2.4 s."""

from __future__ import annotations

import re

TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def fake_tokens(text: str) -> list[str]:
    """Words and punctuation marks: a tokenizer simple enough that a test can count by eye."""
    return TOKEN.findall(text)


def fake_document_tokens(text: str) -> int:
    """``HashEmbedder.count_tokens``: the words and punctuation, plus two special tokens."""
    return len(fake_tokens(text)) + 2
