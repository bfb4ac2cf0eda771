"""Build Kura's real-document evaluation corpus from Debian documentation packages.

The corpus is a flat folder of 33 real manuals and manual chapters (English, German, Japanese) in the
formats Kura ingests: HTML, Markdown and plain text copied verbatim from the packages; chapters 1-7 of
a PDF as Debian ships it (the Debian FAQ, typeset with LaTeX); and a few HTML chapters converted here
to DOCX (python-docx, heading levels kept as Word "Heading N" styles) and to PDF (fpdf2, with the
DejaVu font from ``fonts-dejavu-core`` embedded so that German umlauts survive). Conversions are
deterministic: fixed timestamps, fixed metadata, no randomness.

Packages are fetched with ``apt-get download`` into ``data/eval/.cache/`` (reused on later runs) and
read with ``dpkg-deb --fsys-tarfile``; nothing is installed. All of them are in Debian ``main`` and so
DFSG-free: GPL-2 or GPL-2+ (Debian Reference, Developer's Reference, New Maintainers' Guide, Git
manual), the Debian FAQ's permissive verbatim-and-modified-copies licence, Expat/MIT (Node.js), the
PostgreSQL licence, and the Bitstream Vera licence of the embedded DejaVu fonts; see each package's
``/usr/share/doc/<package>/copyright``. Only this script and the question files are committed: the
downloads (~19 MB) and the corpus (~1.5 MB) are git-ignored and rebuilt on demand.

    .venv/bin/python data/eval/build.py --out data/eval/corpus            # full corpus
    .venv/bin/python data/eval/build.py --out data/eval/corpus --check    # build, then verify answers
    .venv/bin/python data/eval/build.py --subset ci --out data/eval/corpus-ci --check

``--check`` extracts the text of every corpus file (pypdf, python-docx, BeautifulSoup, plain read) and
verifies that each factoid answer occurs literally (case-insensitive, whitespace collapsed) in the text
of its source file, and that unanswerable questions carry no answers and no source.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docx
from bs4 import BeautifulSoup, Tag, XMLParsedAsHTMLWarning
from docx.shared import Pt
from fpdf import FPDF
from pypdf import PdfReader, PdfWriter

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
QUESTIONS = {"full": HERE / "questions.jsonl", "ci": HERE / "questions-ci.jsonl"}
FIXED_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FONT_DIR = "usr/share/fonts/truetype/dejavu"
FONT_PACKAGE = "fonts-dejavu-core"

REFERENCE = "usr/share/debian-reference"
FAQ = "usr/share/doc/debian/FAQ"
MAINT_EN = "usr/share/doc/maint-guide/html"
MAINT_JA = "usr/share/doc/maint-guide-ja/html"
PG = "usr/share/doc/postgresql-doc-15/html"
NODE = "usr/share/doc/nodejs/api"
GIT = "usr/share/doc/git-doc"
DEVREF = "usr/share/developers-reference/_sources"


@dataclass(frozen=True)
class Doc:
    """One corpus file: ``member`` of ``package``, written as ``name`` after ``convert``.

    ``convert`` is ``copy`` (verbatim), ``gunzip``, ``docx`` or ``pdf`` (from the HTML member); ``pages``
    keeps only that half-open range of a shipped PDF's pages.
    """

    name: str
    package: str
    member: str
    convert: str = "copy"
    ci: bool = False
    pages: tuple[int, int] | None = None


DOCS: tuple[Doc, ...] = (
    # Debian Reference 2.100 (GPL-2+): three English chapters, one German, one Japanese.
    Doc("debian-reference-ch03.en.html", "debian-reference-en", f"{REFERENCE}/ch03.en.html"),
    Doc("debian-reference-ch04.en.html", "debian-reference-en", f"{REFERENCE}/ch04.en.html"),
    Doc("debian-reference-ch05.en.html", "debian-reference-en", f"{REFERENCE}/ch05.en.html"),
    Doc("debian-reference-ch08.de.html", "debian-reference-de", f"{REFERENCE}/ch08.de.html"),
    Doc("debian-reference-ch07.ja.html", "debian-reference-ja", f"{REFERENCE}/ch07.ja.html"),
    # The Debian GNU/Linux FAQ (permissive licence): chapters 1-7 of the English PDF as shipped (LaTeX-typeset: pypdf
    # loses most inter-word spaces, a realistic hard case), chapters 8, 9, 11 and 12 in German.
    Doc("debian-faq-ch01-07.en.pdf", "debian-faq", f"{FAQ}/debian-faq.en.pdf.gz", "gunzip", pages=(0, 42)),
    Doc("debian-faq-pkgtools.de.html", "debian-faq-de", f"{FAQ}/de/pkgtools.de.html"),
    Doc("debian-faq-uptodate.de.html", "debian-faq-de", f"{FAQ}/de/uptodate.de.html", ci=True),
    Doc("debian-faq-support.de.docx", "debian-faq-de", f"{FAQ}/de/support.de.html", "docx"),
    Doc("debian-faq-customizing.de.pdf", "debian-faq-de", f"{FAQ}/de/customizing.de.html", "pdf"),
    # Debian New Maintainers' Guide (GPL-2+ or MIT): English chapters converted, Japanese ones as HTML/DOCX.
    Doc("maint-guide-checkit.en.docx", "maint-guide", f"{MAINT_EN}/checkit.en.html", "docx", ci=True),
    Doc("maint-guide-modify.en.docx", "maint-guide", f"{MAINT_EN}/modify.en.html", "docx"),
    Doc("maint-guide-update.en.docx", "maint-guide", f"{MAINT_EN}/update.en.html", "docx"),
    Doc("maint-guide-build.en.pdf", "maint-guide", f"{MAINT_EN}/build.en.html", "pdf", ci=True),
    Doc("maint-guide-dreq.ja.html", "maint-guide-ja", f"{MAINT_JA}/dreq.ja.html"),
    Doc("maint-guide-upload.ja.html", "maint-guide-ja", f"{MAINT_JA}/upload.ja.html", ci=True),
    Doc("maint-guide-start.ja.docx", "maint-guide-ja", f"{MAINT_JA}/start.ja.html", "docx"),
    # Debian Developer's Reference 12.18 (GPL-2): reStructuredText sources as plain text.
    Doc("developers-reference-new-maintainer.txt", "developers-reference", f"{DEVREF}/new-maintainer.rst.txt"),
    Doc("developers-reference-developer-duties.txt", "developers-reference", f"{DEVREF}/developer-duties.rst.txt"),
    Doc("developers-reference-l10n.txt", "developers-reference", f"{DEVREF}/l10n.rst.txt"),
    # PostgreSQL 15 manual (PostgreSQL licence): reference pages as HTML.
    Doc("postgresql-15-app-pg-isready.html", "postgresql-doc-15", f"{PG}/app-pg-isready.html", ci=True),
    Doc("postgresql-15-app-initdb.html", "postgresql-doc-15", f"{PG}/app-initdb.html"),
    Doc("postgresql-15-app-createdb.html", "postgresql-doc-15", f"{PG}/app-createdb.html"),
    Doc("postgresql-15-runtime-config-connection.html", "postgresql-doc-15", f"{PG}/runtime-config-connection.html"),
    # Node.js 18 API docs (Expat/MIT): Markdown sources.
    Doc("nodejs-18-corepack.md", "nodejs-doc", f"{NODE}/corepack.md.gz", "gunzip", ci=True),
    Doc("nodejs-18-debugger.md", "nodejs-doc", f"{NODE}/debugger.md.gz", "gunzip"),
    Doc("nodejs-18-cli.md", "nodejs-doc", f"{NODE}/cli.md.gz", "gunzip"),
    Doc("nodejs-18-cluster.md", "nodejs-doc", f"{NODE}/cluster.md.gz", "gunzip"),
    Doc("nodejs-18-single-executable-applications.md", "nodejs-doc", f"{NODE}/single-executable-applications.md.gz",
        "gunzip"),
    # Git 2.39 manual pages (GPL-2): AsciiDoc sources as plain text.
    Doc("git-bisect.txt", "git-doc", f"{GIT}/git-bisect.txt"),
    Doc("git-worktree.txt", "git-doc", f"{GIT}/git-worktree.txt", ci=True),
    Doc("git-stash.txt", "git-doc", f"{GIT}/git-stash.txt"),
    Doc("git-gc.txt", "git-doc", f"{GIT}/git-gc.txt"),
)  # fmt: skip

warnings.filterwarnings("ignore", category=XMLParsedAsHTMLWarning)  # DocBook writes XHTML; lxml's HTML parser copes

HEADINGS = {f"h{level}": level for level in range(1, 7)}
BLOCKS = (*HEADINGS, "p", "pre", "li", "dt", "dd", "td", "th")
DROPPED_CLASSES = ("navheader", "navfooter", "toc")


class BuildError(Exception):
    """A problem reported as one line, without a traceback."""


# --- fetching ------------------------------------------------------------------------------------


def fetch(package: str) -> tuple[Path, bool]:
    """The cached ``.deb`` of ``package``, downloading it first if needed; True if it was downloaded."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = sorted(CACHE.glob(f"{package}_*.deb"))
    if cached:
        return cached[-1], False
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found: this script needs a Debian-based system")
    result = subprocess.run(["apt-get", "download", package], cwd=CACHE, capture_output=True, text=True)
    cached = sorted(CACHE.glob(f"{package}_*.deb"))
    if result.returncode != 0 or not cached:
        errors = [line.removeprefix("E: ") for line in result.stderr.splitlines() if line.startswith("E:")]
        reason = (errors or [result.stderr.strip() or "apt-get download failed"])[-1]
        raise BuildError(f"cannot download {package}: {reason} (try: apt-get update)")
    return cached[-1], True


def member_files(deb: Path, wanted: Callable[[str], bool]) -> dict[str, bytes]:
    """The bytes of every file member of ``deb`` (path without the leading ``./``) that ``wanted`` accepts."""
    process = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert process.stdout is not None
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
        for info in tar:
            name = info.name.removeprefix("./")
            if info.isfile() and wanted(name):
                extracted = tar.extractfile(info)
                assert extracted is not None
                found[name] = extracted.read()
    if process.wait() != 0:
        raise BuildError(f"dpkg-deb cannot read {deb.name}")
    return found


def read_members(deb: Path, members: set[str]) -> dict[str, bytes]:
    """The bytes of ``members`` from the data part of ``deb``; a missing one is an error."""
    found = member_files(deb, members.__contains__)
    missing = members - found.keys()
    if missing:
        raise BuildError(f"{deb.name} has no {sorted(missing)[0]}")
    return found


# --- conversion ----------------------------------------------------------------------------------


def html_blocks(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Title and (kind, text) blocks of an HTML chapter; kind is ``h1``-``h6``, ``p`` or ``pre``."""
    soup = BeautifulSoup(data, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "head"]):
        tag.decompose()
    for tag in soup.find_all(class_=list(DROPPED_CLASSES)):
        tag.decompose()
    blocks: list[tuple[str, str]] = []
    for tag in soup.find_all(BLOCKS):
        if any(isinstance(parent, Tag) and parent.name in BLOCKS for parent in tag.parents):
            continue
        if tag.name == "pre":
            text = tag.get_text().strip("\n")
            kind = "pre"
        else:
            text = collapse(tag.get_text())
            kind = tag.name if tag.name in HEADINGS else "p"
        if text.strip():
            blocks.append((kind, text))
    return title, blocks


def heading_level(kind: str, top: int) -> int:
    """Word/PDF heading level 1-4 for an ``hN`` tag, the chapter's topmost heading tag being level 1."""
    return min(HEADINGS[kind] - top + 1, 4)


def to_docx(data: bytes, source: str) -> bytes:
    """An HTML chapter as a Word document: headings as Heading N, code blocks in a monospace font."""
    title, blocks = html_blocks(data)
    top = min((HEADINGS[kind] for kind, _ in blocks if kind in HEADINGS), default=1)
    document = docx.Document()
    properties = document.core_properties
    properties.title, properties.author, properties.comments = title, "Debian", f"Converted from {source}"
    properties.created = properties.modified = FIXED_TIME.replace(tzinfo=None)
    properties.revision = 1
    for kind, text in blocks:
        if kind in HEADINGS:
            document.add_heading(text, heading_level(kind, top))
        elif kind == "pre":
            run = document.add_paragraph().add_run(text)
            run.font.name, run.font.size = "DejaVu Sans Mono", Pt(9)
        else:
            document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return fixed_zip_times(buffer.getvalue())


def fixed_zip_times(data: bytes) -> bytes:
    """The zip ``data`` rewritten with a fixed timestamp on every entry, so equal content is equal bytes."""
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            entry.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(entry, source.read(info))
    return output.getvalue()


def to_pdf(data: bytes, source: str, fonts: dict[str, Path]) -> bytes:
    """An HTML chapter as an A4 PDF set in DejaVu Sans (embedded), code blocks in DejaVu Sans Mono."""
    title, blocks = html_blocks(data)
    top = min((HEADINGS[kind] for kind, _ in blocks if kind in HEADINGS), default=1)
    pdf = FPDF(format="A4")
    pdf.set_creation_date(FIXED_TIME)
    pdf.set_title(title)
    pdf.set_author("Debian")
    pdf.set_subject(f"Converted from {source}")
    pdf.set_creator("Kura data/eval/build.py")
    for style, file in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf")):
        pdf.add_font("DejaVu", style, fname=fonts[file])
    pdf.add_font("DejaVuMono", "", fname=fonts["DejaVuSansMono.ttf"])
    pdf.set_margins(20, 20, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    for kind, text in blocks:
        if kind in HEADINGS:
            pdf.set_font("DejaVu", "B", (18, 14, 12, 11)[heading_level(kind, top) - 1])
            pdf.multi_cell(0, 8, text, new_x="LMARGIN", new_y="NEXT")
        elif kind == "pre":
            pdf.set_font("DejaVuMono", "", 8.5)
            pdf.multi_cell(0, 4.5, text.expandtabs(8), new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.set_font("DejaVu", "", 10)
            pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    return bytes(pdf.output())


def pdf_pages(data: bytes, start: int, stop: int) -> bytes:
    """Pages ``start`` to ``stop - 1`` of the PDF ``data`` (pypdf writes the same bytes for the same input)."""
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(data)), pages=(start, stop))
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def convert(doc: Doc, data: bytes, fonts: dict[str, Path]) -> bytes:
    """The corpus file's bytes for ``doc`` made from its package member ``data``."""
    source = f"Debian package {doc.package}, /{doc.member}"
    if doc.convert == "gunzip":
        data = gzip.decompress(data)
        return data if doc.pages is None else pdf_pages(data, *doc.pages)
    if doc.convert == "docx":
        return to_docx(data, source)
    if doc.convert == "pdf":
        return to_pdf(data, source, fonts)
    return data


# --- building ------------------------------------------------------------------------------------


def selected(subset: str) -> list[Doc]:
    return [doc for doc in DOCS if subset == "full" or doc.ci]


def load_fonts() -> dict[str, Path]:
    """The DejaVu TTF files from ``fonts-dejavu-core``, unpacked next to the cached package (fpdf2 wants files)."""
    deb, downloaded = fetch(FONT_PACKAGE)
    names = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")
    folder = CACHE / deb.stem
    if not all((folder / name).is_file() for name in names):
        found = read_members(deb, {f"{FONT_DIR}/{name}" for name in names})
        folder.mkdir(exist_ok=True)
        for name in names:
            write_if_changed(folder / name, found[f"{FONT_DIR}/{name}"])
    print(f"{deb.name}: {len(names)} font(s) for the PDF conversions ({'downloaded' if downloaded else 'cached'})")
    return {name: folder / name for name in names}


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless ``path`` already holds it (an unchanged file keeps its mtime); True if written."""
    if path.is_file() and path.read_bytes() == data:
        return False
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return True


def build(out: Path, subset: str) -> None:
    """Fetch each package once and write its documents into ``out``; one line per package."""
    docs = selected(subset)
    out.mkdir(parents=True, exist_ok=True)
    fonts = load_fonts() if any(doc.convert == "pdf" for doc in docs) else {}
    packages = list(dict.fromkeys(doc.package for doc in docs))
    for package in packages:
        mine = [doc for doc in docs if doc.package == package]
        deb, downloaded = fetch(package)
        members = read_members(deb, {doc.member for doc in mine})
        written = sum(write_if_changed(out / doc.name, convert(doc, members[doc.member], fonts)) for doc in mine)
        state = "downloaded" if downloaded else "cached"
        print(f"{deb.name}: {len(mine)} file(s), {written} written ({state})")
    expected = {doc.name for doc in docs}
    strays = sorted(path.name for path in out.iterdir() if path.is_file() and path.name not in expected)
    if strays:
        print(f"note: {out} also holds files this script does not make: {', '.join(strays[:5])}")


# --- checking ------------------------------------------------------------------------------------


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def extract_text(path: Path) -> str:
    """The text of a corpus file as an ingester sees it, whitespace collapsed."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        text = "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    elif suffix == ".docx":
        document = docx.Document(str(path))
        cells = (cell.text for table in document.tables for row in table.rows for cell in row.cells)
        text = "\n".join([*(paragraph.text for paragraph in document.paragraphs), *cells])
    elif suffix in {".html", ".htm"}:
        soup = BeautifulSoup(path.read_bytes(), "lxml")
        for tag in soup(["script", "style", "head"]):
            tag.decompose()
        text = soup.get_text()
    else:
        text = path.read_text(encoding="utf-8")
    return collapse(text)


def read_questions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def question_problems(question: dict, texts: dict[str, str]) -> list[str]:
    """What is wrong with one question line (empty when it is fine)."""
    qid, answers, source = question.get("id", "?"), question.get("answers"), question.get("source")
    if question.get("lang") not in {"en", "de", "ja"} or not question.get("question"):
        return [f"{qid}: missing question text or bad lang"]
    if question.get("kind") == "unanswerable":
        return [] if answers == [] and not source else [f"{qid}: unanswerable with answers or a source"]
    if question.get("kind") != "factoid" or not answers:
        return [f"{qid}: a factoid needs answers"]
    if source not in texts:
        return [f"{qid}: source {source!r} is not in the corpus"]
    if Path(source).suffix.lstrip(".") != question.get("format"):
        return [f"{qid}: format {question.get('format')!r} does not match {source}"]
    text = texts[source].lower()
    return [f"{qid}: {answer!r} not in {source}" for answer in answers if collapse(answer).lower() not in text]


def check(out: Path, subset: str) -> int:
    """Verify the questions of ``subset`` against the corpus in ``out``; 0 when every question is fine."""
    texts = {doc.name: extract_text(out / doc.name) for doc in selected(subset)}
    questions = read_questions(QUESTIONS[subset])
    problems = [problem for question in questions for problem in question_problems(question, texts)]
    duplicates = [qid for qid, count in Counter(question["id"] for question in questions).items() if count > 1]
    problems += [f"{qid}: duplicate id" for qid in duplicates]
    for problem in problems:
        print(f"check: {problem}")
    kinds = Counter(question["kind"] for question in questions)
    size = sum((out / doc.name).stat().st_size for doc in selected(subset))
    verdict = "FAILED" if problems else "ok"
    print(f"check {verdict}: {len(questions)} questions ({kinds['factoid']} factoid, {kinds['unanswerable']}"
          f" unanswerable) against {len(texts)} files, {size / 1e6:.1f} MB")  # fmt: skip
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "corpus", help="corpus folder (default: %(default)s)")
    parser.add_argument("--subset", choices=("full", "ci"), default="full", help="ci: the few files CI ingests")
    parser.add_argument("--check", action="store_true", help="after building, verify the question file's answers")
    args = parser.parse_args(argv)
    try:
        build(args.out, args.subset)
        return check(args.out, args.subset) if args.check else 0
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
