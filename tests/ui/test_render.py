"""The page's HTML from answers and documents: Markdown rendered, nothing of theirs run as markup."""

from __future__ import annotations

from typing import Any

from ui import render

SCRIPT = "<script>window.__kura_xss=1</script>"


def _turn(
    answer: str,
    n_sources: int = 2,
    evidence: list[dict[str, Any]] | None = None,
    support: list[dict[str, Any]] | None = None,
) -> str:
    sources = [{"n": n, "path": f"doc{n}.md", "page": None} for n in range(1, n_sources + 1)]
    final = {"answer": answer, "sources": sources, "evidence": evidence or [], "timings": {}, "support": support}
    return render.conversation([{"question": "q?", "final": final}], False, "kura")


def _panel(text: str) -> str:
    return render.source_panel({"n": 1, "path": "notes.md", "score": 0.5, "text": text})


def test_bold_lists_and_code_become_html() -> None:
    html = _turn("Use **Bitwarden** [1].\n\n- one\n- two\n\n1. first\n\nRun `kura ingest`:\n\n```\nkura serve\n```")
    assert "<strong>Bitwarden</strong>" in html and "**" not in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html and "<ol>\n<li>first</li>\n</ol>" in html
    assert "<code>kura ingest</code>" in html and "<pre><code>kura serve\n</code></pre>" in html


def test_citations_stay_buttons_for_the_listener() -> None:
    html = _turn("Kept for **35 days** [1, 2]. Not a citation: a[1], [3] or `[1]`.")
    assert html.count('class="kura-cite" data-turn="0" data-n="1"') == 2  # the answer's and the source chip's
    assert '<strong>35 days</strong> <button type="button" class="kura-cite" data-turn="0" data-n="1">[1]</button>' in (
        html
    )
    assert 'data-n="2">[2]</button>.' in html
    assert "a[1], [3] or <code>[1]</code>" in html


def test_raw_html_in_an_answer_or_a_document_is_text() -> None:
    for html in (_turn(f"Before {SCRIPT} **after**"), _panel(f"# Notes\n\n<b>raw</b> {SCRIPT}\n\n{SCRIPT}")):
        assert "<script" not in html and "<b>raw" not in html
        assert "&lt;script&gt;window.__kura_xss=1&lt;/script&gt;" in html
    assert "&lt;b&gt;raw&lt;/b&gt;" in _panel("<b>raw</b>")


def test_only_http_links_are_links_and_images_load_nothing() -> None:
    html = _turn(
        "[evil](javascript:alert(1)) [data](data:text/html,x) [site](https://example.org/a) "
        "<javascript:alert(2)> ![chart](https://example.org/c.png)"
    )
    assert "javascript:alert" in html and 'href="javascript' not in html and 'href="data' not in html
    assert '<a href="https://example.org/a" target="_blank" rel="noopener noreferrer nofollow">site</a>' in html
    assert "<img" not in html and "chart" in html


def test_evidence_and_the_source_panel_render_markdown_as_text_safe_html() -> None:
    evidence = [{"n": 1, "text": f"The default is **1 GB** (`max_size`). {SCRIPT}"}]
    html = _turn("Answer [1].", evidence=evidence)
    assert (
        '<button type="button" class="kura-cite" data-turn="0" data-n="1" data-e="0">[1]</button> The default is '
        in html
    )
    assert "<strong>1 GB</strong> (<code>max_size</code>)" in html and "&lt;script&gt;" in html
    panel = _panel("## Setup\n\n- **Ubuntu** 24.04\n- Windows 11\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert '<div class="kura-snippet kura-md"><h2>Setup</h2>' in panel
    assert "<li><strong>Ubuntu</strong> 24.04</li>" in panel and "<td>2</td>" in panel


def test_a_streaming_answer_renders_markdown_without_citation_buttons() -> None:
    html = render.conversation([{"question": "q?", "answer": "Use **Bitwarden** [1]", "final": None}], False, "kura")
    assert '<div class="kura-a kura-md kura-pending"><p>Use <strong>Bitwarden</strong> [1]</p>' in html


def test_each_abstention_says_why_and_a_stopped_answer_says_stopped() -> None:
    def footer(**final: Any) -> str:
        return render.footer({"timings": {}, **final})

    assert "nothing in this collection is close enough" in footer(abstained=True, abstain_reason="retrieval")
    assert "no sentence of the sources answers it closely enough" in footer(abstained=True, abstain_reason="evidence")
    assert "kind of value asked for" in footer(abstained=True, abstain_reason="value")
    assert "the model found no answer in the sources" in footer(abstained=False, abstain_reason="model")
    assert "no source close enough" in footer(abstained=True)  # a chat saved before the reasons were kept
    assert "model not called" not in footer(answer_source="generated")
    final = {"answer": "Backups are [1]", "answer_source": "stopped", "sources": [{"n": 1, "path": "a.md"}]}
    html = render.conversation([{"question": "q?", "final": {**final, "timings": {}}}], False, "kura")
    assert "<p>Stopped: Backups are <button" in html and "stopped · total" in html


def test_source_panel_values_wrap_only_where_a_word_is_too_long() -> None:
    rule = next(line for line in render.CSS.splitlines() if line.startswith(".kura-panel dd"))
    assert "overflow-wrap: anywhere" in rule and "break-all" not in render.CSS


def test_each_checked_sentence_of_an_answer_shows_at_a_glance_whether_a_source_supports_it() -> None:
    support = [
        {"text": "Use Bitwarden for passwords.", "n": 1, "span": "Use **Bitwarden** for passwords."},
        {"text": f"The port is 9999 {SCRIPT}.", "n": None, "span": None},
    ]
    html = _turn(f"Use **Bitwarden** for passwords [1]. The port is 9999 {SCRIPT}.", support=support)
    supported = '<span class="kura-claim kura-supported">Use </span><strong><span class="kura-claim kura-supported">'
    assert supported + "Bitwarden</span></strong>" in html  # the bold kept, the mark inside it
    assert 'class="kura-cite kura-check" data-turn="0" data-n="1" data-s="0"' in html
    assert '<span class="kura-claim kura-unsupported"' in html and ">unsupported</span>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html and "\ue000" not in html
