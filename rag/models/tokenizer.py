"""A model folder's tokenizer and chat template, read with the ``tokenizers`` library alone.

transformers' ``AutoTokenizer`` imports torch, which Kura otherwise never runs: on this 2-core machine the
import took 5-18 s of every ``kura ask`` and ``kura ingest`` (``python -X importtime``; importing
``tokenizers`` takes 0.04 s). The folders Kura converts keep ``tokenizer.json``, its special tokens and
the chat template, which is rendered the way transformers renders it (the same Jinja sandbox, filters and
variables), so prompts and token counts stay the same (``tests/rag/models/test_tokenizer.py`` compares).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def _content(token: Any) -> str | None:
    """A special token as tokenizer_config.json writes it: a string or ``{"content": ...}``."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


@cache
def _template(source: str) -> Any:
    """transformers' environment: trimmed blocks, loop controls, its ``tojson``, ``raise_exception``,
    ``strftime_now``, and the ``{% generation %}`` tag (rendered as its body)."""
    import jinja2
    from jinja2 import nodes
    from jinja2.ext import Extension, loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(Extension):
        tags = {"generation"}  # noqa: RUF012 (jinja2 declares it so)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, sort_keys: bool = False
    ) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


class Tokenizer:
    """Token ids, special tokens and the chat template of the model in ``folder``."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer as Backend

        self._backend = Backend.from_file(str(folder / "tokenizer.json"))
        self._backend.no_truncation()
        self._backend.no_padding()
        self._truncating: dict[int, Any] = {}
        config = _read_json(folder / "tokenizer_config.json")
        special_map = _read_json(folder / "special_tokens_map.json")
        self.special_tokens = {
            name: token for name in SPECIAL_TOKENS if (token := _content(config.get(name) or special_map.get(name)))
        }
        template_file = folder / "chat_template.jinja"
        template = template_file.read_text(encoding="utf-8") if template_file.is_file() else config.get("chat_template")
        if isinstance(template, list):  # named templates: the default one
            template = next((t.get("template") for t in template if t.get("name") == "default"), None)
        self.chat_template: str | None = template if isinstance(template, str) else None
        pad = self.special_tokens.get("pad_token")
        self.pad_token_id: int | None = self._backend.token_to_id(pad) if pad else None

    @property
    def backend(self) -> Any:
        """The ``tokenizers`` object itself: picklable, so parser processes can count tokens with it."""
        return self._backend

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(self._backend.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return str(self._backend.decode(ids, skip_special_tokens=skip_special_tokens))

    def encode_batch(self, texts: list[str], max_length: int) -> list[list[int]]:
        """Each text's ids with special tokens, cut to ``max_length`` the way ``truncation=True`` cuts."""
        backend = self._truncating.get(max_length)
        if backend is None:
            from tokenizers import Tokenizer as Backend

            backend = Backend.from_str(self._backend.to_str())
            backend.enable_truncation(max_length=max_length)
            self._truncating[max_length] = backend
        return [list(encoding.ids) for encoding in backend.encode_batch(texts, add_special_tokens=True)]

    def apply_chat_template(self, messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        if self.chat_template is None:
            raise ValueError("the model folder has no chat template (chat_template.jinja or tokenizer_config.json)")
        return str(
            _template(self.chat_template).render(
                messages=messages,
                tools=None,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **self.special_tokens,
            )
        )
