"""The page renderer on the sample PDF: boxes where pdfium's own text search puts the sentence, PNGs cached
per file version, and one clear line for a page that is not there."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pypdfium2
import pytest

from rag.config import load_settings
from rag.errors import KuraError
from rag.pages import Box, FileVersions, line_boxes, load_pages, ocr_words
from tests.conftest import REPO, write_config

PDF = REPO / "data" / "sample" / "security-policy.pdf"
# Wraps over two lines of page 2 (data/sample/security-policy.pdf).
SENTENCE = (
    "4.2 Every suspected incident must be reported within 4 hours of discovery by email to "
    "security-incident@weidenholm.example."
)


def pdfium_box(path: Path, page: int, text: str) -> tuple[float, float, float, float]:
    """The first character's box of ``text`` by pdfium's own search, as fractions from the top-left."""
    document = pypdfium2.PdfDocument(str(path))
    textpage = document[page - 1].get_textpage()
    start, _ = textpage.search(text).get_next()
    left, bottom, right, top = textpage.get_charbox(start)
    width, height = document[page - 1].get_size()
    return left / width, 1 - top / height, right / width, 1 - bottom / height


def test_a_sentence_is_boxed_where_pdfium_finds_it_one_box_per_line(tmp_path: Path) -> None:
    pages = load_pages(load_settings(write_config(tmp_path)))
    version = FileVersions().of(PDF)
    assert pages.backend == "pdfium" and pages.page_count(version) == 3
    boxes = pages.highlight(version, 2, [SENTENCE, "No sentence like this is anywhere in the policy."])
    assert len(boxes[0]) == 2 and boxes[1] == []
    left, top, _, bottom = pdfium_box(PDF, 2, "4.2 Every suspected")
    first = boxes[0][0]
    assert abs(first.left - left) < 0.01 and first.top <= top and first.bottom >= bottom - 0.002
    assert boxes[0][1].top > first.bottom - 0.002  # the second line is below the first


def test_pages_are_cached_per_file_version_and_a_missing_page_is_one_line(tmp_path: Path) -> None:
    pages = load_pages(load_settings(write_config(tmp_path)))
    versions = FileVersions()
    copy = tmp_path / "policy.pdf"
    shutil.copyfile(PDF, copy)
    first = pages.render(versions.of(copy), 1)
    assert first.startswith(b"\x89PNG") and pages.render(versions.of(copy), 1) is first  # from the cache
    with copy.open("ab") as grown:
        grown.write(b"\n% another version\n")
    assert versions.of(copy).sha256 != versions.of(PDF).sha256
    assert pages.render(versions.of(copy), 1) is not first
    with pytest.raises(KuraError, match="no page 9: the document has 3"):
        pages.render(versions.of(copy), 9)


def test_a_scanned_pages_ocr_word_boxes_highlight_the_same_way() -> None:
    text = "Port: TCP 4443\nopen."  # a chunk read by OCR, its words' boxes in thousandths of the page (issue 16)
    boxes = "[[0,5,0,500,80,520],[6,3,100,500,180,520],[10,4,200,500,280,520],[15,5,0,600,50,620]]"
    words = ocr_words(text, boxes)
    assert [w.text for w in words] == ["Port:", "TCP", "4443", "open."]
    assert line_boxes("Port: TCP 4443 open", words) == [Box(0.0, 0.5, 0.28, 0.52), Box(0.0, 0.6, 0.05, 0.62)]
    assert ocr_words(text, "[[0, 5]]") == [] and ocr_words(text, "not json") == []


def test_an_unknown_backend_is_refused_in_one_line(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path))
    object.__setattr__(settings.verify, "backend", "poppler")
    with pytest.raises(KuraError, match=r"verify\.backend 'poppler' is not supported"):
        load_pages(settings)


def test_a_photo_or_scan_ingested_as_an_image_is_shown_frame_by_frame_upright(tmp_path: Path) -> None:
    from PIL import Image

    scan = tmp_path / "scan.tif"
    frames = [Image.new("L", (3000, 2000), 255), Image.new("L", (800, 600), 0)]
    frames[0].save(scan, save_all=True, append_images=frames[1:])
    pages, version = load_pages(load_settings(write_config(tmp_path))), FileVersions().of(scan)
    assert pages.page_count(version) == 2 and pages.words(version, 1) == []  # its words are the OCR's
    first = Image.open(io.BytesIO(pages.render(version, 1)))
    assert first.size == (1600, 1067) and first.mode == "RGB"
    with pytest.raises(KuraError, match="no page 3: the image has 2"):
        pages.render(version, 3)
