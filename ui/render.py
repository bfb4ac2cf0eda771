"""HTML for the web UI, built from escaped text only.

Document text, file names, questions and answers all come from users or their files, so every one of
them goes through :func:`html.escape` here, or through :mod:`ui.markdown` (answers, evidence, chunks),
which escapes the same way and adds only the markup Markdown asks for; the rest is Kura's own.
Citation buttons carry just two numbers (turn, source); the source they open is looked up on the server
in the session's own state, so a page cannot make the panel show anything it was not given.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from ingest.collection import IngestReport
from ingest.watch import FolderState
from rag.spans import locate, text_words
from rag.wording import plural
from ui import markdown

# A checked answer writes citations as "[1]" or "[1, 2]" (rag.citations); not after a word ("a[1]").
_CITATION = re.compile(r"(?<![\w\]])\[(\d+(?:, \d+)*)\]")

# Runs in the browser once per chat component: one delegated listener, so re-rendered answers need none.
CITATION_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('.kura-cite, .kura-ev');
  if (!button || !element.contains(button)) return;
  event.preventDefault();
  element.querySelectorAll('.kura-active').forEach((b) => b.classList.remove('kura-active'));
  button.classList.add('kura-active');
  const index = (name) => (button.dataset[name] === undefined ? -1 : Number(button.dataset[name]));
  trigger('click', {turn: Number(button.dataset.turn), n: Number(button.dataset.n), e: index('e'), s: index('s')});
});
"""

CSS = """
.kura-status { font-size: 0.85em; opacity: 0.8; }
.kura-empty { opacity: 0.7; padding: 1em 0; }
.kura-turn { border-bottom: 1px solid var(--border-color-primary); padding: 0.75em 0; }
.kura-q { font-weight: 600; margin-bottom: 0.4em; white-space: pre-wrap; }
.kura-a { line-height: 1.5; }
.kura-md p, .kura-md ul, .kura-md ol, .kura-md pre, .kura-md table { margin: 0.4em 0; }
.kura-md > :first-child { margin-top: 0; }
.kura-md > :last-child { margin-bottom: 0; }
.kura-md ul, .kura-md ol { padding-left: 1.5em; }
.kura-md h1, .kura-md h2, .kura-md h3, .kura-md h4, .kura-md h5, .kura-md h6 { font-size: 1em; margin: 0.6em 0 0.3em; }
.kura-md code { font-family: var(--font-mono, monospace); font-size: 0.9em; padding: 0 0.2em; border-radius: 3px;
  background: var(--background-fill-secondary); }
.kura-md pre { padding: 0.5em; border-radius: 6px; overflow-x: auto; background: var(--background-fill-secondary); }
.kura-md pre code { padding: 0; background: none; }
.kura-snippet.kura-md code, .kura-snippet.kura-md pre { background: var(--background-fill-primary); }
.kura-md th, .kura-md td { padding: 0.2em 0.5em; border: 1px solid var(--border-color-primary); }
.kura-a.kura-error { color: var(--error-text-color, #b91c1c); }
.dark .kura-a.kura-error { color: #f87171; }
.kura-cite { display: inline; border: 1px solid var(--color-accent); border-radius: 4px; padding: 0 0.25em;
  margin: 0 0.1em; font-size: 0.85em; cursor: pointer; background: var(--background-fill-secondary);
  color: var(--color-accent); }
.kura-cite:hover, .kura-cite.kura-active { background: var(--primary-700, #0f766e); color: #fff; }
.kura-sources { margin-top: 0.5em; font-size: 0.85em; display: flex; flex-wrap: wrap; gap: 0.3em; }
.kura-sources .kura-cite { font-size: 1em; }
.kura-reasoning { margin: 0.3em 0; font-size: 0.9em; opacity: 0.85; }
.kura-reasoning div { white-space: pre-wrap; }
.kura-footer { margin-top: 0.4em; font-size: 0.8em; opacity: 0.7; }
.kura-note { font-size: 0.8em; opacity: 0.7; }
.kura-panel dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.2em 0.8em; margin: 0.5em 0; }
.kura-panel dt { font-weight: 600; }
/* long paths wrap anywhere, words only when one alone is wider than the panel (issue 18: "support ed?") */
.kura-panel dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
.kura-snippet { font-size: 0.9em; max-height: 480px; overflow: auto; padding: 0.6em;
  border-radius: 6px; background: var(--background-fill-secondary); }
.kura-table { border-collapse: collapse; width: 100%; }
.kura-table th, .kura-table td { text-align: left; padding: 0.3em 0.6em;
  border-bottom: 1px solid var(--border-color-primary); }
.kura-table td.num { text-align: right; }
.kura-ev { cursor: pointer; border-radius: 4px; }
.kura-ev:hover, .kura-ev.kura-active { background: var(--background-fill-secondary); }
.kura-claim.kura-unsupported { text-decoration: underline wavy #dc2626; text-decoration-thickness: 1px;
  text-underline-offset: 3px; }
.kura-unsupported-flag { font-size: 0.7em; color: #b91c1c; border: 1px solid #fca5a5; border-radius: 3px;
  padding: 0 0.3em; margin-left: 0.3em; vertical-align: 0.15em; white-space: nowrap; }
.dark .kura-unsupported-flag { color: #fca5a5; }
.kura-cite.kura-check { border-color: #16a34a; color: #15803d; font-size: 0.7em; vertical-align: 0.15em; }
.kura-cite.kura-check:hover, .kura-cite.kura-check.kura-active { background: #16a34a; color: #fff; }
.kura-toolbar { display: flex; align-items: center; gap: 0.3em; flex-wrap: wrap; margin: 0.4em 0; font-size: 0.85em; }
.kura-toolbar button { border: 1px solid var(--border-color-primary); border-radius: 4px;
  min-width: 1.9em; padding: 0.05em 0.45em; background: var(--background-fill-secondary);
  color: var(--body-text-color); cursor: pointer; }
.kura-toolbar button:disabled { opacity: 0.4; cursor: default; }
.kura-pageno, .kura-zoom { min-width: 4.5em; text-align: center; font-variant-numeric: tabular-nums; }
.kura-download { margin-left: auto; color: var(--color-accent); }
.kura-pageview { max-height: 600px; overflow: auto; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: #9ca3af; }
.kura-page { position: relative; width: 100%; margin: 0 auto; }
.kura-page-img { display: block; width: 100%; height: auto; background: #fff; }
.kura-box { position: absolute; pointer-events: none; border-radius: 2px; }
.kura-box.kura-ctx { background: rgba(14, 165, 233, 0.10); }
.kura-box.kura-hl { background: rgba(250, 204, 21, 0.42); box-shadow: 0 0 0 1.5px rgba(202, 138, 4, 0.9); }
.kura-textview { max-height: 600px; overflow: auto; padding: 0.4em 0.8em; font-size: 0.9em;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
.kura-plain { white-space: pre-wrap; }
.kura-sec-head { font-weight: 600; margin: 0.8em 0 0.3em; opacity: 0.75; }
mark.kura-ctx { background: rgba(14, 165, 233, 0.12); color: inherit; }
mark.kura-hl { background: rgba(250, 204, 21, 0.5); color: inherit; box-shadow: 0 0 0 1px rgba(202, 138, 4, 0.7); }
.kura-panel details summary { font-size: 0.85em; opacity: 0.8; cursor: pointer; margin-top: 0.4em; }
#kura-confirm { align-items: center; gap: 0.75em; padding: 0.5em 0.75em; border-radius: 8px;
  border: 1px solid var(--error-border-color, #f87171); background: var(--background-fill-secondary); }
#kura-confirm button { flex: 0 0 auto; min-width: 6em; }
#kura-docs-notice:not(:has(.kura-a)) { display: none; }
.kura-foot { display: flex; justify-content: flex-end; padding: 0.5em 0; }
.kura-theme { display: inline-flex; align-items: center; gap: 0.4em; font-size: 0.85em; padding: 0.25em 0.7em;
  border-radius: 999px; border: 1px solid var(--border-color-primary); cursor: pointer;
  background: var(--background-fill-secondary); color: var(--body-text-color); }
.kura-theme svg { width: 1.1em; height: 1.1em; }
.dark .kura-theme .kura-moon, body:not(.dark) .kura-theme .kura-sun { display: none; }
#kura-source .kura-close { display: none; }
/* Narrow screens (a 400 px phone): the source is a drawer over the page, opened by a citation and closed by
   its x or Esc; the question and the collection picker take whole lines (issue 18: the input was tiny and the
   source opened below the fold). Gradio nests every rule in its container, so the drawer's open state is an
   attribute of the panel itself, and a form field's flex item is Gradio's .form around it. */
@media (max-width: 768px) {
  #kura-source { position: fixed !important; top: 0; right: 0; bottom: 0; z-index: 1000; width: min(100vw, 480px);
    max-height: none !important; overflow-y: auto; padding: 0.75em 1em; background: var(--background-fill-primary);
    box-shadow: -4px 0 16px rgba(0, 0, 0, 0.25); transform: translateX(100%); visibility: hidden;
    transition: transform 0.2s, visibility 0.2s; }
  #kura-source[data-kura-open] { transform: none; visibility: visible; }
  #kura-source .kura-snippet { max-height: none; }
  #kura-source .kura-close { display: block; float: right; position: sticky; top: 0; font-size: 1.6em;
    line-height: 1; padding: 0 0.3em; border: none; background: none; color: var(--body-text-color); cursor: pointer; }
  .form:has(> #kura-question), .form:has(> #kura-collection), #kura-collection, .form:has(> #kura-doc) {
    flex: 1 1 100% !important; min-width: 100% !important; }
}
"""

# Runs once for the source panel: the page view's previous/next page and zoom, the text view fetched from its
# route, and each view scrolled to its highlight whenever the panel shows a new source.
PANEL_JS = """
const view = () => element.querySelector('.kura-pageview');
const scrollTo = (box, scroller) => {
  if (!box) return;
  const offset = box.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
  scroller.scrollTop += offset - scroller.clientHeight / 3;
  const left = box.getBoundingClientRect().left - scroller.getBoundingClientRect().left;
  if (left < 0 || left > scroller.clientWidth) scroller.scrollLeft += left - 16;
};
const show = (pages) => {
  const page = Number(pages.dataset.page), count = Number(pages.dataset.pages), zoom = pages.dataset.zoom;
  const panel = pages.closest('.kura-panel'), image = pages.querySelector('.kura-page-img');
  const src = pages.dataset.base + page + '.png';
  if (image.getAttribute('src') !== src) image.setAttribute('src', src);
  image.alt = image.alt.replace(/^page \\d+/, 'page ' + page);
  pages.querySelectorAll('.kura-box').forEach((box) => { box.hidden = Number(box.dataset.page) !== page; });
  pages.querySelector('.kura-page').style.width = zoom + '%';
  panel.querySelector('.kura-pageno').textContent = 'page ' + page + ' of ' + count;
  panel.querySelector('.kura-zoom').textContent = zoom + '%';
  panel.querySelector('.kura-prev').disabled = page <= 1;
  panel.querySelector('.kura-next').disabled = page >= count;
};
const reveal = (pages) => scrollTo(pages.querySelector('.kura-box.kura-hl:not([hidden])')
  || pages.querySelector('.kura-box:not([hidden])'), pages);
const prepare = () => {
  const pages = view();
  if (pages && !pages.dataset.ready) { pages.dataset.ready = '1'; show(pages); }
  const text = element.querySelector('.kura-textview[data-src]:not([data-ready])');
  if (!text) return;
  text.dataset.ready = '1';
  fetch(text.dataset.src, {credentials: 'same-origin'})
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      text.innerHTML = html;
      scrollTo(text.querySelector('mark.kura-hl') || text.querySelector('mark'), text);
    })
    .catch(() => { text.textContent = 'The document could not be loaded.'; });
};
new MutationObserver(prepare).observe(element, {childList: true, subtree: true});
prepare();
element.addEventListener('load', (event) => {
  const pages = view();
  if (pages && event.target.matches('.kura-page-img') && pages.dataset.page === pages.dataset.cited) reveal(pages);
}, true);
element.addEventListener('click', (event) => {
  const pages = view(), button = event.target.closest('.kura-toolbar button');
  if (!pages || !button) return;
  const page = Number(pages.dataset.page), count = Number(pages.dataset.pages);
  const zooms = pages.dataset.zooms.split(',').map(Number), at = zooms.indexOf(Number(pages.dataset.zoom));
  if (button.matches('.kura-prev')) pages.dataset.page = String(Math.max(1, page - 1));
  else if (button.matches('.kura-next')) pages.dataset.page = String(Math.min(count, page + 1));
  else if (button.matches('.kura-zoom-in')) pages.dataset.zoom = String(zooms[Math.min(zooms.length - 1, at + 1)]);
  else if (button.matches('.kura-zoom-out')) pages.dataset.zoom = String(zooms[Math.max(0, at - 1)]);
  show(pages);
  if (button.matches('.kura-zoom-in, .kura-zoom-out')) reveal(pages);
});
"""

# Runs once in the page foot: the dark-mode choice (kept in this browser) and the narrow screens' source drawer.
PAGE_JS = """
const body = document.body, key = 'kura-theme';
const button = element.querySelector('.kura-theme'), label = element.querySelector('.kura-theme-label');
const show = () => {
  const dark = body.classList.contains('dark');
  button.setAttribute('aria-pressed', String(dark));
  label.textContent = dark ? 'Light mode' : 'Dark mode';
};
const apply = (mode) => { body.classList.toggle('dark', mode === 'dark'); show(); };
let saved = null;
try { saved = localStorage.getItem(key); } catch (error) {}
if (saved === 'dark' || saved === 'light') apply(saved); else show();
button.addEventListener('click', () => {
  const mode = body.classList.contains('dark') ? 'light' : 'dark';
  apply(mode);
  try { localStorage.setItem(key, mode); } catch (error) {}
});
if (!window.kuraDrawer) {
  window.kuraDrawer = true;
  const panel = () => document.getElementById('kura-source');
  const close = () => panel()?.removeAttribute('data-kura-open');
  document.addEventListener('click', (event) => {
    if (event.target.closest('#kura-chat .kura-cite, #kura-chat .kura-ev')) panel()?.setAttribute('data-kura-open', '');
    else if (event.target.closest('#kura-source .kura-close')) close();
  });
  document.addEventListener('keydown', (event) => { if (event.key === 'Escape') close(); });
}
"""

_MOON = '<path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z"/>'
_SUN = (
    '<circle cx="12" cy="12" r="4"/><path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2'
    'M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4"/>'
)
_ICON = (
    '<svg class="{}" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" aria-hidden="true">{}</svg>'
)
# Inline SVG icons: an icon font is a download, and one that fails leaves empty boxes (issue 18).
PAGE_FOOT = (
    '<div class="kura-foot"><button type="button" class="kura-theme" aria-pressed="false">'
    f"{_ICON.format('kura-moon', _MOON)}{_ICON.format('kura-sun', _SUN)}"
    '<span class="kura-theme-label">Dark mode</span></button></div>'
)


def _text(value: Any) -> str:
    return escape("" if value is None else str(value))


def _citation_linker(turn: int, n_sources: int) -> markdown.TextLinker:
    """Turns each valid ``[n]`` of an already-escaped answer into a button; anything else stays text."""

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in match.group(1).split(", ")]
        if not all(1 <= n <= n_sources for n in numbers):
            return match.group(0)
        return "".join(cite_button(turn, n) for n in numbers)

    return lambda escaped: _CITATION.sub(replace, escaped)


# The whole conversation is rendered again ~20 times a second while an answer streams; Markdown made that
# 22 ms for 20 turns of 1,500-character answers (1.8 ms as escaped text), so finished turns are cached.
@functools.lru_cache(maxsize=1024)
def _answer_html(answer: str, turn: int, n_sources: int, marks: tuple[markdown.Mark, ...] = ()) -> str:
    return markdown.block(answer, _citation_linker(turn, n_sources), marks)


def claim_marks(text: str, support: Sequence[dict[str, Any]], turn: int, n_sources: int) -> tuple[markdown.Mark, ...]:
    """Each checked sentence of an answer (``text``, already clean) marked supported, with a button opening the
    source span that supports it, or unsupported, so an unsupported sentence shows at a glance (issue 17)."""
    claims = tuple((str(claim.get("text", "")), claim.get("n")) for claim in support)
    return _claim_marks(text, claims, turn, n_sources)


# Cached like the answers' HTML: the conversation is rendered again ~20 times a second while an answer streams.
@functools.lru_cache(maxsize=1024)
def _claim_marks(
    text: str, claims: tuple[tuple[str, Any], ...], turn: int, n_sources: int
) -> tuple[markdown.Mark, ...]:
    words = text_words(text)
    marks = []
    for index, (claim, n) in enumerate(claims):
        span = locate(claim, words)
        if span is None:
            continue
        start, end = words[span[0]].start, words[span[1]].end
        if isinstance(n, int) and 1 <= n <= n_sources:
            title = f"supported by source [{n}]: show the sentence that says so"
            check = (
                f'<button type="button" class="kura-cite kura-check" data-turn="{turn}" data-n="{n}" '
                f'data-s="{index}" title="{_text(title)}" aria-label="{_text(title)}">✓</button>'
            )
            marks.append(markdown.Mark(start, end, '<span class="kura-claim kura-supported">', "</span>", check))
        else:
            title = "no sentence of the sources supports this"
            flag = f'<span class="kura-unsupported-flag" title="{title}">unsupported</span>'
            opening = f'<span class="kura-claim kura-unsupported" title="{title}">'
            marks.append(markdown.Mark(start, end, opening, "</span>", flag))
    return tuple(marks)


@functools.lru_cache(maxsize=1024)
def _evidence_html(sentence: str) -> str:
    return markdown.inline(sentence)


def cite_button(turn: int, n: int, label: str | None = None, evidence: int | None = None) -> str:
    """A citation: opens source ``n`` of answer ``turn``, with evidence sentence ``evidence`` highlighted."""
    text = f"[{n}]" if label is None else f"[{n}] {label}"
    chosen = "" if evidence is None else f' data-e="{int(evidence)}"'
    return f'<button type="button" class="kura-cite" data-turn="{turn}" data-n="{n}"{chosen}>{_text(text)}</button>'


def _source_label(source: dict[str, Any]) -> str:
    page = f", p. {source['page']}" if source.get("page") is not None else ""
    return f"{source['path']}{page}"


STOPPED = "Stopped: "
# Why an answer is an abstention, by the stage that decided (rag.answer.AbstainReason); saved chats from
# before the reasons were recorded have none and get the old wording.
ABSTAIN_REASONS = {
    "retrieval": "nothing in this collection is close enough to the question: model not called",
    "evidence": "no sentence of the sources answers it closely enough: model not called",
    "value": "no source holds the kind of value asked for (a date or time, a number, a version): model not called",
    "name": "no source names the product, version or identifier asked about: model not called",
    "model": "the model found no answer in the sources",
}
UNKNOWN_ABSTENTION = "no source close enough: model not called"


def _abstention(answer: dict[str, Any]) -> str | None:
    reason = answer.get("abstain_reason")
    if reason in ABSTAIN_REASONS:
        return ABSTAIN_REASONS[reason]
    return UNKNOWN_ABSTENTION if answer.get("abstained") else None


def footer(answer: dict[str, Any]) -> str:
    """Retrieve time, time to first token, decode speed and device: the numbers a user asks about."""
    timings = answer.get("timings") or {}
    parts = [f"retrieve {timings.get('retrieve_ms', 0):.0f} ms"]
    if timings.get("ttft_ms") is not None:
        parts.append(f"first token {timings['ttft_ms']:.0f} ms")
    if timings.get("decode_tokens_per_s"):
        parts.append(f"{timings['decode_tokens_per_s']:.1f} tokens/s")
    if answer.get("answer_source") == "stopped":
        parts.append("stopped")
    elif reason := _abstention(answer):
        parts.append(reason)
    parts.append(f"total {timings.get('total_ms', 0) / 1000:.1f} s")
    parts.append(f"{answer.get('model', '?')} on {answer.get('device', '?')}")
    return " · ".join(_text(p) for p in parts)


def _turn(index: int, turn: dict[str, Any], show_reasoning: bool) -> str:
    parts = [f'<div class="kura-turn" data-turn="{index}">', f'<div class="kura-q">{_text(turn["question"])}</div>']
    if show_reasoning and turn.get("reasoning"):
        parts.append(
            '<details class="kura-reasoning"><summary>Reasoning</summary>'
            f"<div>{_text(turn['reasoning'])}</div></details>"
        )
    if turn.get("error"):
        parts.append(f'<div class="kura-a kura-error">{_text(turn["error"])}</div>')
    elif turn.get("final"):
        final = turn["final"]
        sources = final["sources"]
        text = final["answer"]
        if final.get("answer_source") == "stopped":
            text = STOPPED + (text or "…")
        text = markdown.clean(text)
        marks = claim_marks(text, final.get("support") or [], index, len(sources))
        parts.append(f'<div class="kura-a kura-md">{_answer_html(text, index, len(sources), marks)}</div>')
        if sources:
            chips = "".join(cite_button(index, s["n"], _source_label(s)) for s in sources)
            parts.append(f'<div class="kura-sources"><span>Sources:</span>{chips}</div>')
        if final.get("answer_source") == "extracted" and final.get("generated"):
            parts.append(
                '<div class="kura-note">The sources did not support the model\'s own answer, so this is the '
                "passage from them that best answers the question.</div>"
            )
        elif final.get("answer_source") == "extracted":
            parts.append('<div class="kura-note">The passage of the sources that best answers the question.</div>')
        for warning in final.get("citation_warnings", []):
            parts.append(f'<div class="kura-note">note: {_text(warning)}</div>')
        evidence = final.get("evidence") or []
        if evidence:
            items = "".join(
                f'<li class="kura-ev" data-turn="{index}" data-n="{int(e["n"])}" data-e="{i}" '
                f'title="Show this sentence in its document">{cite_button(index, e["n"], evidence=i)} '
                f"{_evidence_html(e['text'])}</li>"
                for i, e in enumerate(evidence)
            )
            parts.append(f'<details class="kura-evidence"><summary>Evidence</summary><ul>{items}</ul></details>')
        parts.append(f'<div class="kura-footer">{footer(final)}</div>')
    else:
        parts.append(f'<div class="kura-a kura-md kura-pending">{markdown.block(turn.get("answer") or "…")}</div>')
    parts.append("</div>")
    return "".join(parts)


def conversation(turns: Sequence[dict[str, Any]], show_reasoning: bool, collection: str | None) -> str:
    if not turns:
        where = f" in <b>{_text(collection)}</b>" if collection else ""
        return f'<div class="kura-empty">Ask a question about the documents{where}.</div>'
    return "".join(_turn(i, turn, show_reasoning) for i, turn in enumerate(turns))


CLOSE = '<button type="button" class="kura-close" aria-label="Close the source" title="Close (Esc)">×</button>'
EMPTY_PANEL = f'<div class="kura-panel kura-empty">{CLOSE}Click a citation such as [1] to see its source here.</div>'


def source_head(source: dict[str, Any]) -> str:
    """A source panel's opening and its details (file, page, heading, score); the caller closes its div."""
    rows = [("File", source["path"]), ("Page", source.get("page")), ("Heading", source.get("heading"))]
    rows.append(("Score", f"{source['score']:.3f}"))
    details = "".join(f"<dt>{name}</dt><dd>{_text(value)}</dd>" for name, value in rows if value not in (None, ""))
    n = int(source["n"])
    return f'<div class="kura-panel" data-n="{n}">{CLOSE}<h3>Source [{n}]</h3><dl>{details}</dl>'


def snippet(source: dict[str, Any]) -> str:
    """The chunk's own text, as the answer saw it."""
    return f'<div class="kura-snippet kura-md">{markdown.block(source["text"])}</div>'


def source_panel(source: dict[str, Any]) -> str:
    """A source without its document: the chunk's text (the verify view shows the page when it can)."""
    return f"{source_head(source)}{snippet(source)}</div>"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else ""


def _origin(row: dict[str, Any]) -> str:
    return f"{row['origin']} by {row['uploader']}" if row.get("uploader") else str(row["origin"])


def documents_table(rows: Iterable[dict[str, Any]], collection: str | None) -> str:
    rows = list(rows)
    if not collection:
        return '<div class="kura-empty">No collection selected.</div>'
    if not rows:
        return f'<div class="kura-empty">No documents in <b>{_text(collection)}</b> yet: upload some below.</div>'
    body = "".join(
        f"<tr><td>{_text(r['file'])}</td><td class='num'>{int(r['chunks'])}</td>"
        f"<td>{_text(_when(r['ingested_at']))}</td><td>{_text(_origin(r))}</td></tr>"
        for r in rows
    )
    head = "<tr><th>File</th><th>Chunks</th><th>Ingested</th><th>From</th></tr>"
    total = sum(int(r["chunks"]) for r in rows)
    caption = f"<caption>{plural(len(rows), 'file')}, {plural(total, 'chunk')} in {_text(collection)}</caption>"
    return f'<table class="kura-table">{caption}<thead>{head}</thead><tbody>{body}</tbody></table>'


def watch_table(states: Sequence[FolderState]) -> str:
    """Each watched folder: files indexed, pending, failed with each reason, and the last change."""
    if not states:
        return ""
    rows = "".join(_watch_row(state) for state in states)
    head = "<tr><th>Watched folder</th><th>Indexed</th><th>Pending</th><th>Failed</th><th>Last change</th></tr>"
    caption = "<caption>Folders kept in sync (ingest.watch)</caption>"
    return f'<table class="kura-table kura-watch">{caption}<thead>{head}</thead><tbody>{rows}</tbody></table>'


def _watch_row(state: FolderState) -> str:
    if state.error:
        last = f'<span class="kura-error">{_text(state.error)}</span>'
    elif state.last_change is not None:
        last = _text(state.last_change.line())
    elif state.synced_at is not None:
        last = _text(f"in sync since {time.strftime('%H:%M:%S', time.localtime(state.synced_at))}")
    else:
        last = "first pass running"
    failed = "".join(f"<li>{_text(rel)}: {_text(reason)}</li>" for rel, reason in sorted(state.failed.values()))
    failures = f"{len(state.failed)}<ul>{failed}</ul>" if failed else "0"
    return (
        f"<tr><td>{_text(state.root.name)}</td><td class='num'>{state.indexed}</td>"
        f"<td class='num'>{state.pending}</td><td>{failures}</td><td>{last}</td></tr>"
    )


def ingest_summary(report: IngestReport, staged_skips: Sequence[tuple[str, str]], replaced: Sequence[str]) -> str:
    """The same counts ``kura ingest`` prints, with every skipped file and its reason."""
    counts = report.counts()
    skipped = counts["skipped"] + len(staged_skips)
    line = (
        f"collection <b>{_text(report.collection)}</b>: added {counts['added']} · updated {counts['updated']} · "
        f"unchanged {counts['unchanged']} · skipped {skipped} · {plural(report.chunks_written, 'chunk')} in "
        f"{report.seconds:.1f} s"
    )
    items = [(o.rel, o.reason or "") for o in report.files if o.status == "skipped"] + list(staged_skips)
    details = "".join(f"<li>skipped {_text(rel)}: {_text(reason)}</li>" for rel, reason in items)
    details += "".join(f"<li>{o.status} {_text(o.rel)}: {_text(o.note)}</li>" for o in report.files if o.note)
    details += "".join(f"<li>replaced the earlier upload of {_text(rel)}</li>" for rel in replaced)
    if report.truncated:
        details += f"<li>{report.truncated} chunks were longer than the encoder's limit and were cut</li>"
    return f'<div class="kura-summary"><div>{line}</div><ul>{details}</ul></div>'


def notice_line(message: str) -> str:
    return f'<div class="kura-a kura-notice">{_text(message)}</div>'


def error_line(message: str) -> str:
    return f'<div class="kura-a kura-error">{_text(message)}</div>'


def delete_question(file: str, chunks: int, collection: str) -> str:
    """What the Documents tab asks before a delete: the file, what goes with it, and from where."""
    return (
        f'<div class="kura-confirm-text">Delete <b>{_text(file)}</b> ({plural(chunks, "chunk")}) '
        f"from <b>{_text(collection)}</b>?</div>"
    )
