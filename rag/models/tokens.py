"""The encoder's token count as a picklable callable, for chunking in a parser process (ingest.workers).

A ``tokenizers.Tokenizer`` pickles as its JSON; unpickling it imports neither transformers nor torch,
which took 10 s in a fresh process here.
"""

from __future__ import annotations

import copy
from typing import Any


class DocumentTokens:
    """Tokens a text takes as a document: the model's document prefix and special tokens included."""

    def __init__(self, backend: Any, prefix: str) -> None:
        self.backend = copy.deepcopy(backend)
        # A tokenizer.json may pad every text to the model's length: a count must see the text alone.
        self.backend.no_padding()
        self.backend.no_truncation()
        self.prefix = prefix

    def __call__(self, text: str) -> int:
        return len(self.backend.encode(self.prefix + text, add_special_tokens=True).ids)
