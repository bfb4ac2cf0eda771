"""Loaders on real files built here: text and metadata per format, and a clear refusal for every bad file."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import docx
import pptx
import pytest
from fpdf import FPDF
from pptx.util import Inches
from pypdf import PdfWriter

from ingest.documents import Section, SkipFile
from ingest.loaders import decode_text, load_file, normalize
from tests.helpers import odt_bytes, xlsx_bytes

PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
MULTILINGUAL = "日本語のテキストです。\nGrüße aus Köln, Straße ß ÄÖÜ.\nEmoji: 📄🚀✅"


def write(folder: Path, name: str, data: bytes | str) -> Path:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def skip_reason(path: Path) -> str:
    with pytest.raises(SkipFile) as refused:
        load_file(path)
    return str(refused.value)


def make_pdf(pages: list[str]) -> bytes:
    """One page per string; an empty string makes a page with no text at all."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def encrypt_pdf(data: bytes, user_password: str, owner_password: str | None = None) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(data))
    writer.encrypt(user_password, owner_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- PDF ---------------------------------------------------------------------------------------------


def test_pdf_one_section_per_page_with_page_numbers_and_empty_pages_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "manual.pdf", make_pdf(["Alpha install guide", "", "Gamma troubleshooting"]))
    sections = load_file(path)
    assert [(s.page, s.heading) for s in sections] == [(1, None), (3, None)]
    assert "Alpha install guide" in sections[0].text
    assert "Gamma troubleshooting" in sections[1].text


def test_pdf_suffix_is_case_insensitive(tmp_path: Path) -> None:
    path = write(tmp_path, "SCAN.PDF", make_pdf(["Upper case suffix"]))
    assert "Upper case suffix" in load_file(path)[0].text


def test_pdf_without_text_is_refused_as_probably_scanned_when_ocr_is_off(tmp_path: Path) -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50, style="F")
    path = write(tmp_path, "scan.pdf", bytes(pdf.output()))
    assert skip_reason(path) == "no extractable text (a scanned PDF? OCR is off: ingest.ocr.enabled)"


def test_png_renamed_to_pdf_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "picture.pdf", PNG_BYTES)
    assert skip_reason(path) == "not a PDF file (no %PDF header)"


def test_pdf_header_followed_by_garbage_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "junk.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 4)
    assert skip_reason(path).startswith("not a valid PDF (")


def test_truncated_pdf_is_refused_or_partly_read_but_never_crashes(tmp_path: Path) -> None:
    data = make_pdf([f"Page {n} of the long report" for n in range(1, 7)])
    path = write(tmp_path, "cut.pdf", data[: len(data) // 2])
    try:
        sections = load_file(path)
    except SkipFile as refused:
        assert str(refused).strip()
    else:
        assert all("of the long report" in s.text for s in sections)


def test_encrypted_pdf_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "secret.pdf", encrypt_pdf(make_pdf(["Top secret numbers"]), "secret"))
    assert skip_reason(path) == "encrypted PDF (password protected)"


def test_pdf_encrypted_with_empty_user_password_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "restricted.pdf", encrypt_pdf(make_pdf(["Only printing is restricted"]), "", "owner"))
    assert "Only printing is restricted" in load_file(path)[0].text


# --- DOCX --------------------------------------------------------------------------------------------


def build_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_paragraph("Preface before any heading.")
    document.add_heading("Security Policy", level=0)
    document.add_paragraph("Applies to every employee.")
    document.add_heading("Passwords", level=1)
    document.add_paragraph("Before the table.")
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 1)).text = "Rule"
    table.cell(0, 2).text = "Value"
    for column, text in enumerate(["Minimum", "length", "14 characters"]):
        table.cell(1, column).text = text
    document.add_paragraph("After the table.")
    document.add_heading("Rotation", level=2)
    document.add_paragraph("Never force rotation. Ümläute bleiben 😀")
    document.add_heading("Network", level=1)
    document.add_paragraph("Use the VPN.")
    document.add_heading("", level=1)  # an empty heading is not a heading
    document.add_paragraph("Still under Network.")
    document.save(str(path))
    return path


def test_docx_sections_follow_the_heading_path(tmp_path: Path) -> None:
    sections = load_file(build_docx(tmp_path / "policy.docx"))
    assert [(s.heading, s.page) for s in sections] == [
        (None, None),
        ("Security Policy", None),
        ("Security Policy > Passwords", None),
        ("Security Policy > Passwords > Rotation", None),
        ("Security Policy > Network", None),
    ]
    assert sections[0].text == "Preface before any heading."
    assert sections[1].text == "Applies to every employee."
    assert sections[3].text == "Never force rotation. Ümläute bleiben 😀"
    assert sections[4].text == "Use the VPN.\nStill under Network."


def test_docx_tables_are_rows_in_document_order_with_merged_cells_once(tmp_path: Path) -> None:
    passwords = load_file(build_docx(tmp_path / "policy.docx"))[2]
    assert passwords.text == "Before the table.\nRule | Value\nMinimum | length | 14 characters\nAfter the table."


def test_file_that_is_not_a_docx_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "fake.docx", "just some text, not a zip")
    assert skip_reason(path) == "not a valid Word document (File is not a zip file)"


def test_pptx_renamed_to_docx_is_refused(tmp_path: Path) -> None:
    pptx.Presentation().save(str(tmp_path / "deck.pptx"))
    path = write(tmp_path, "deck.docx", (tmp_path / "deck.pptx").read_bytes())
    assert skip_reason(path) == "not a Word document (another Office file type renamed .docx?)"


def test_docx_renamed_to_pptx_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "deck.pptx", build_docx(tmp_path / "policy.docx").read_bytes())
    assert skip_reason(path) == "not a PowerPoint presentation (another Office file type renamed .pptx?)"


# --- PPTX --------------------------------------------------------------------------------------------


def build_pptx(path: Path) -> Path:
    presentation = pptx.Presentation()
    first = presentation.slides.add_slide(presentation.slide_layouts[1])  # title and content
    first.shapes.title.text = "Quarterly Results"
    first.placeholders[1].text_frame.text = "Revenue grew\vby 12%\nCosts fell"
    rows = first.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1)).table
    for (row, column), text in {(0, 0): "Region", (0, 1): "Sales", (1, 0): "東京", (1, 1): "42"}.items():
        rows.cell(row, column).text = text
    first.notes_slide.notes_text_frame.text = "Mention the new office."
    presentation.slides.add_slide(presentation.slide_layouts[6])  # blank: no text at all
    third = presentation.slides.add_slide(presentation.slide_layouts[6])
    group = third.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(1), Inches(1), Inches(3), Inches(1)).text_frame.text = "Inside a group"
    presentation.save(str(path))
    return path


def test_pptx_one_section_per_slide_with_title_table_and_notes(tmp_path: Path) -> None:
    sections = load_file(build_pptx(tmp_path / "deck.pptx"))
    assert [(s.page, s.heading) for s in sections] == [(1, "Quarterly Results"), (3, None)]
    assert sections[0].text == "Revenue grew\nby 12%\nCosts fell\nRegion | Sales\n東京 | 42\nMention the new office."
    assert sections[1].text == "Inside a group"


def test_file_that_is_not_a_pptx_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "fake.pptx", PNG_BYTES)
    assert skip_reason(path).startswith("not a valid PowerPoint file (")


# --- HTML --------------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head><title>Page title</title><style>p {color: red}</style><script>var hidden = 1;</script></head>
<body>
<nav>Home | About</nav>
<p>Before   any
   heading.</p>
<h1>Security <em>Policy</em></h1>
<p>Intro <b>bold</b>word.</p><!-- a comment -->
<h2>Passwords</h2>
<p>Use   long passphrases.</p>
<table><tr><th>Rule</th><th>Value</th></tr><tr><td>Length</td><td>14</td></tr></table>
<pre>code  line 1
    indented</pre>
<noscript>Enable JavaScript</noscript><template><p>template text</p></template>
<ul><li>one</li><li>two</li></ul>
<h3>Rotation</h3><div>Never<br>force it.<script>also.hidden()</script></div>
<h2>Network</h2><p>Use the VPN. 日本語 😀</p>
</body></html>"""


def test_html_sections_split_at_headings_without_scripts_or_navigation(tmp_path: Path) -> None:
    sections = load_file(write(tmp_path, "policy.html", HTML))
    assert [s.heading for s in sections] == [
        None,
        "Security Policy",
        "Security Policy > Passwords",
        "Security Policy > Passwords > Rotation",
        "Security Policy > Network",
    ]
    assert [s.text for s in sections] == [
        "Before any heading.",
        "Intro boldword.",
        "Use long passphrases.\nRule | Value\nLength | 14\ncode  line 1\n    indented\none\ntwo",
        "Never\nforce it.",
        "Use the VPN. 日本語 😀",
    ]


def test_html_charset_comes_from_meta_tag(tmp_path: Path) -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>Größe café</p></body></html>'
    path = write(tmp_path, "legacy.HTM", page.encode("latin-1"))
    assert load_file(path) == [Section("Größe café")]


def test_html_utf16_with_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "wide.htm", "<p>Grüße 日本</p>".encode("utf-16"))
    assert load_file(path) == [Section("Grüße 日本")]


def test_html_without_visible_text_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.html", "<html><head><title>x</title></head><body><script>x()</script></body></html>")
    assert skip_reason(path) == "no text"


def test_binary_renamed_to_html_is_refused(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "image.html", PNG_BYTES)) == "binary data, not text"


# --- Markdown ----------------------------------------------------------------------------------------

MARKDOWN = """Intro line before headings.

# Guide

Welcome. #hashtag is not a heading.

## Install ##

Run the installer.

```sh
# this is a shell comment, not a heading
make install
```

~~~
## still code
~~~

### Details
Deep text.

## Usage
Use it.
"""


def test_markdown_splits_at_atx_headings_but_not_inside_code_fences(tmp_path: Path) -> None:
    sections = load_file(write(tmp_path, "README.md", MARKDOWN))
    assert [s.heading for s in sections] == [
        None,
        "Guide",
        "Guide > Install",
        "Guide > Install > Details",
        "Guide > Usage",
    ]
    assert sections[1].text == "Welcome. #hashtag is not a heading."
    install = sections[2].text
    assert "# this is a shell comment, not a heading" in install
    assert "## still code" in install
    assert install.startswith("Run the installer.") and install.endswith("~~~")
    assert sections[4].text == "Use it."


def test_markdown_suffix_variant_and_unicode(tmp_path: Path) -> None:
    sections = load_file(write(tmp_path, "notes.markdown", f"# Überblick 🚀\n{MULTILINGUAL}\n"))
    assert sections == [Section(MULTILINGUAL, heading="Überblick 🚀")]


# --- Plain text, encodings, normalization ------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (MULTILINGUAL.encode("utf-8"), MULTILINGUAL),
        (MULTILINGUAL.encode("utf-8-sig"), MULTILINGUAL),
        (MULTILINGUAL.encode("utf-16"), MULTILINGUAL),
        (codecs.BOM_UTF16_BE + MULTILINGUAL.encode("utf-16-be"), MULTILINGUAL),
        (MULTILINGUAL.encode("utf-32"), MULTILINGUAL),
        ("Grüße, Straße, café, naïve".encode("latin-1"), "Grüße, Straße, café, naïve"),
        ("“Smart quotes” cost 5 €".encode("cp1252"), "“Smart quotes” cost 5 €"),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-bom", "utf-16-be-bom", "utf-32-bom", "latin-1", "cp1252"],
)
def test_text_encodings_are_decoded(tmp_path: Path, encoded: bytes, expected: str) -> None:
    assert decode_text(encoded) == expected
    assert load_file(write(tmp_path, "doc.txt", encoded)) == [Section(expected)]


def test_binary_data_named_txt_is_refused(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "image.txt", PNG_BYTES)) == "binary data, not text"


def test_control_characters_without_nul_are_refused_as_binary(tmp_path: Path) -> None:
    data = bytes([0x01, 0x02, 0x1B, 0x7F]) * 50 + b"some text"
    assert skip_reason(write(tmp_path, "weird.rst", data)) == "binary data, not text"


def test_a_few_control_characters_in_text_are_tolerated(tmp_path: Path) -> None:
    data = b"\x1b[1mBold\x1b[0m log line with plenty of ordinary words around it\n" * 3
    assert "log line" in load_file(write(tmp_path, "log.txt", data))[0].text


def test_utf16_without_bom_may_be_refused_as_binary() -> None:
    with pytest.raises(SkipFile, match="binary data, not text"):
        decode_text("plain ascii".encode("utf-16-le"))


def test_empty_file_is_refused(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "empty.txt", b"")) == "empty file"


def test_whitespace_only_file_is_refused(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "blank.md", " \n\t\r\n   \n")) == "no text"


def test_very_long_single_line_comes_back_whole(tmp_path: Path) -> None:
    line = "word " * 39_999 + "end"
    sections = load_file(write(tmp_path, "long.txt", line))
    assert sections == [Section(line)]
    assert len(sections[0].text) == 199_998


def test_normalization_of_newlines_trailing_space_blank_runs_and_nul() -> None:
    raw = "a \t\r\nb\rc\x00d\n\n\n\n\ne  \n\nf\n\n"
    assert normalize(raw) == "a\nb\ncd\n\ne\n\nf"


def test_windows_newlines_in_a_text_file_are_normalized(tmp_path: Path) -> None:
    path = write(tmp_path, "dos.txt", b"first  \r\nsecond\r\n\r\n\r\n\r\nthird\r\n")
    assert load_file(path) == [Section("first\nsecond\n\nthird")]


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_rows_carry_their_column_names(tmp_path: Path) -> None:
    data = 'name,city,note\nAnna,Köln,"likes ""quotes"", commas"\nBen,東京,\n,,\nCara,Wien,"two\nlines",extra\n'
    sections = load_file(write(tmp_path, "people.csv", data))
    assert sections == [
        Section(
            'name: Anna; city: Köln; note: likes "quotes", commas\n'
            "name: Ben; city: 東京\n"
            "name: Cara; city: Wien; note: two lines; column 4: extra"
        )
    ]


def test_semicolon_csv_from_a_european_spreadsheet(tmp_path: Path) -> None:
    data = "Artikel;Preis\nKäse;3,50\n".encode("cp1252")
    assert load_file(write(tmp_path, "preise.csv", data)) == [Section("Artikel: Käse; Preis: 3,50")]


def test_csv_with_only_a_header_has_no_text(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "header.csv", "a,b,c\n")) == "no text"


# --- Spreadsheets and OpenDocument -------------------------------------------------------------------


def test_xlsx_rows_keep_their_header_and_each_sheet_is_a_heading(tmp_path: Path) -> None:
    data = xlsx_bytes(
        {
            "Budgets": [
                ["Team", "Budget", "Owner"],
                ["Platform", 412000, "Ines"],
                [None, None, None],
                ["Sales", 2.5, None],
            ],
            "Empty": [],
            "Rooms": [["Room", None], ["A-1", "Elbe"]],
        }
    )
    assert load_file(write(tmp_path, "plan.xlsx", data)) == [
        Section("Team: Platform; Budget: 412000; Owner: Ines\nTeam: Sales; Budget: 2.5", heading="Budgets"),
        Section("Room: A-1; column 2: Elbe", heading="Rooms"),
    ]


def test_a_docx_renamed_xlsx_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "table.xlsx", build_docx(tmp_path / "policy.docx").read_bytes())
    assert skip_reason(path) == "not an Excel workbook (another file type renamed .xlsx?)"


def test_odt_headings_paragraphs_and_table_rows_in_order(tmp_path: Path) -> None:
    body = (
        '<text:h text:outline-level="1">Travel</text:h><text:p>Trains are booked in second class.</text:p>'
        '<text:h text:outline-level="2">Hotels</text:h><text:p>At most <text:span>135 euros</text:span>.</text:p>'
        "<table:table><table:table-row><table:table-cell><text:p>City</text:p></table:table-cell>"
        "<table:table-cell><text:p>Limit</text:p></table:table-cell></table:table-row>"
        "<table:table-row><table:table-cell><text:p>Paris</text:p></table:table-cell>"
        "<table:table-cell><text:p>185</text:p></table:table-cell></table:table-row></table:table>"
    )
    assert load_file(write(tmp_path, "travel.odt", odt_bytes(body))) == [
        Section("Trains are booked in second class.", heading="Travel"),
        Section("At most 135 euros.\nCity | Limit\nParis | 185", heading="Travel > Hotels"),
    ]


def test_another_opendocument_type_renamed_odt_is_refused(tmp_path: Path) -> None:
    data = odt_bytes("<text:p>cells</text:p>", mimetype=b"application/vnd.oasis.opendocument.spreadsheet")
    assert (
        skip_reason(write(tmp_path, "sheet.odt", data)) == "not an OpenDocument text (another file type renamed .odt?)"
    )


# --- Dispatch ----------------------------------------------------------------------------------------


def test_unsupported_suffix_is_refused(tmp_path: Path) -> None:
    assert skip_reason(write(tmp_path, "archive.XYZ", b"data")) == "unsupported type .xyz"


def test_a_file_without_suffix_is_read_as_text_by_its_content(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "README", "Kura notes\nThe spare key is in safe 3.\n")) == [
        Section("Kura notes\nThe spare key is in safe 3.")
    ]
    assert load_file(write(tmp_path, "NOTES", codecs.BOM_UTF16_LE + "Grüße".encode("utf-16-le"))) == [Section("Grüße")]


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x7fELF\x02\x01\x01" + bytes(64), "an ELF executable"),
        (b"PK\x03\x04" + bytes(64), "a zip archive"),
        (b"\x00\x01\x02\x03" * 100, "binary data, not text"),
    ],
)
def test_a_file_without_suffix_and_not_text_is_refused_with_its_type(tmp_path: Path, data: bytes, kind: str) -> None:
    assert skip_reason(write(tmp_path, "LICENSE", data)) == f"unsupported type (no file extension; {kind})"


def test_rst_is_one_section(tmp_path: Path) -> None:
    text = "Title\n=====\n\nBody paragraph.\n\n.. note:: Kept as is."
    assert load_file(write(tmp_path, "index.rst", text)) == [Section(text)]


def test_unreadable_path_is_refused(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    assert skip_reason(tmp_path / "folder.txt").startswith("cannot read file (")
