"""Copy decoding: the model may only write the opening words of an evidence sentence, as many as it likes.

A 135M model copies facts badly when it writes freely, so a grammar (run by openvino-genai's XGrammar
structured output) restricts every token to a continuation of the evidence: it cannot invent, only
decide how much to quote. Measured on the Debian eval (69 answerable questions), freer grammars did
worse: spans starting at any word of the top 3 evidence sentences were right for 0.25 of the questions
(the model preferred the wrong sentence and cut off the defined term at a sentence's start), any span
of the best sentence 0.48, a prefix of the best sentence 0.57. Words end only at whitespace, so a number
or a name is never cut in half. The grammar has one rule per word, linear in the evidence's size.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.evidence import Evidence


def _literal(word: str) -> str:
    """An EBNF string literal; control characters as ``\\uXXXX`` since ``\\x`` would swallow following hex digits."""
    escaped = "".join(
        "\\" + c if c in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c for c in word
    )
    return f'"{escaped}"'


def _unique(evidence: Sequence[Evidence]) -> list[tuple[int, list[str]]]:
    """Each distinct sentence once, as words, with the number of the first (best) source holding it."""
    seen: set[tuple[str, ...]] = set()
    out: list[tuple[int, list[str]]] = []
    for item in evidence:
        words = item.text.split()
        if words and tuple(words) not in seen:
            seen.add(tuple(words))
            out.append((item.n, words))
    return out


def prefix_grammar(evidence: Sequence[Evidence]) -> str:
    """EBNF for "the first one or more words of one evidence sentence", joined by single spaces."""
    rules: list[str] = []
    starts: list[str] = []
    for j, (_, words) in enumerate(_unique(evidence)):
        starts.append(f"s{j}_0")
        for i, word in enumerate(words):
            rest = f' (" " s{j}_{i + 1})?' if i + 1 < len(words) else ""
            rules.append(f"s{j}_{i} ::= {_literal(word)}{rest}")
    if not starts:
        raise ValueError("copy decoding needs at least one evidence sentence with words")
    return "\n".join([f"root ::= {' | '.join(starts)}", *rules])


def source_of(quote: str, evidence: Sequence[Evidence]) -> int | None:
    """The source number of the best evidence sentence the quote opens; None when it opens none.

    None also catches text the decoder garbled: on non-ASCII words (German umlauts) openvino-genai
    2026.4 sometimes emitted other characters than the grammar allowed.
    """
    words = quote.split()
    if not words:
        return None
    return next((n for n, sentence in _unique(evidence) if sentence[: len(words)] == words), None)
