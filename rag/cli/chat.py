"""Terminal rendering of streamed answers for ``kura ask`` and ``kura chat``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import typer

from rag.answer import Answer, Assistant, Event, Turn
from rag.errors import KuraError


def _sources(answer: Answer) -> None:
    for source in answer.sources:
        mark = "*" if source.n in answer.cited else " "
        typer.echo(f" {mark}[{source.n}] {source.label()}  (score {source.score:.2f})")
    for warning in answer.citation_warnings:
        typer.echo(f"  note: {warning}", err=True)


def stream_answer(events: Iterator[Event], show_reasoning: bool) -> Answer:
    """Print pieces as they arrive; then the checked answer's citations and timing.

    An interrupt (Ctrl-C) closes ``events`` on the way out, which closes the model's stream: decoding stops.
    """
    in_reasoning = False
    final: Answer | None = None
    try:
        for event in events:
            if event.kind == "reasoning" and show_reasoning:
                if not in_reasoning:
                    typer.secho("reasoning: ", dim=True, nl=False)
                    in_reasoning = True
                typer.secho(event.text, dim=True, nl=False)
            elif event.kind == "answer":
                if in_reasoning:
                    typer.echo("\n")
                    in_reasoning = False
                typer.echo(event.text, nl=False)
            elif event.answer is not None:
                final = event.answer
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if final is None:
        raise KuraError("the answer stream ended without a result")
    typer.echo("")
    if final.answer_source == "extracted" and final.generated:
        typer.secho("(the model's own answer was not supported by the sources: this is the best evidence)", dim=True)
    elif final.citation_warnings or final.budget_exhausted:
        typer.echo(f"(checked answer) {final.answer}")
    for evidence in final.evidence:
        typer.secho(f"  evidence [{evidence.n}] {evidence.text}", dim=True)
    _sources(final)
    t = final.timings
    speed = f", {t.decode_tokens_per_s:.0f} tok/s" if t.decode_tokens_per_s else ""
    first = f", first token {t.ttft_ms:.0f} ms" if t.ttft_ms is not None else ""
    typer.secho(f"[retrieve {t.retrieve_ms:.0f} ms{first}{speed}, {final.model} on {final.device}]", dim=True)
    return final


PROMPT_HINT = "Ask about your documents. Ctrl-C stops an answer; 'exit', 'quit' or Ctrl-D ends the chat."
QUIT_WORDS = ("exit", "quit")


def chat_loop(assistant: Assistant, k: int | None, show_reasoning: bool, read: Callable[[str], str] = input) -> None:
    """Ask until 'exit', 'quit' or end of input; Ctrl-C stops the answer being written and keeps the history."""
    history: list[Turn] = []
    typer.echo(PROMPT_HINT)
    while True:
        try:
            question = read("> ").strip()
        except EOFError:
            typer.echo("")
            return
        except KeyboardInterrupt:
            typer.echo("\n(type 'exit' or press Ctrl-D to end the chat)")
            continue
        if question.lower() in QUIT_WORDS:
            return
        if not question:
            continue
        try:
            answer = stream_answer(assistant.ask(question, history, k=k), show_reasoning)
        except KeyboardInterrupt:
            typer.echo("\n(stopped; this answer is left out of the conversation)")
            continue
        history.append((question, answer.answer))
