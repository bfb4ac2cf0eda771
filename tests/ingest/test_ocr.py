"""OCR: scanned PDF pages and images read by the real engines, the per-file report of pages without text, and
the word boxes a chunk carries. Pages are drawn from known text (rag.bench.ocr_pages), so accuracy is measured
against what was drawn; the engines' speed is scripts/bench_ocr.py's, not asserted here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from ingest.chunking import chunk_sections
from ingest.collection import Collection
from ingest.documents import Section, SkipFile
from ingest.loaders import load_document
from ingest.ocr import RapidOcr, Word, layout
from rag.bench.ocr_pages import TEXTS, char_accuracy, photograph, render_page
from rag.config import OcrSettings, load_settings
from rag.store import connect
from tests.conftest import write_config
from tests.fake_tokens import fake_document_tokens
from tests.fakes import HashEmbedder

# Measured with the default engine (tesseract) on the pages of rag.bench.ocr_pages photographed (2.5 degrees,
# blur, noise): eng 0.992, deu 1.000, jpn 0.596 (README OCR). The floors leave room for other Tesseract builds.
PHOTO_FLOOR = {"eng": 0.95, "deu": 0.95, "jpn": 0.5}
# One format per language, so each format and each language is read once: (suffix, Pillow format).
FORMATS = {"eng": (".pdf", "PDF"), "deu": (".png", "PNG"), "jpn": (".tiff", "TIFF")}


def _save(image: Image.Image, path: Path, kind: str) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, kind, **({"resolution": 150.0} if kind == "PDF" else {}))
    path.write_bytes(buffer.getvalue())
    return path


def _read(path: Path, language: str) -> list[Section]:
    return load_document(path, ocr=OcrSettings(languages=[language])).sections


@pytest.mark.slow
@pytest.mark.parametrize("language", list(FORMATS))
def test_a_clean_scan_reads_back_its_text(language: str, tmp_path: Path) -> None:
    suffix, kind = FORMATS[language]
    sections = _read(_save(render_page(TEXTS[language], language), tmp_path / f"scan{suffix}", kind), language)
    assert char_accuracy(TEXTS[language], "\n".join(s.text for s in sections)) >= 0.95
    assert [s.page for s in sections] == [1 if suffix == ".pdf" else None]
    assert all(s.boxes for s in sections)


@pytest.mark.slow
@pytest.mark.parametrize("language", list(FORMATS))
def test_a_photographed_page_reads_above_its_measured_floor(language: str, tmp_path: Path) -> None:
    image = photograph(render_page(TEXTS[language], language)).convert("RGB")
    sections = _read(_save(image, tmp_path / "photo.jpg", "JPEG"), language)
    assert char_accuracy(TEXTS[language], "\n".join(s.text for s in sections)) >= PHOTO_FLOOR[language]


@pytest.mark.slow
def test_rapidocr_runs_on_the_device_chain_and_reads_a_clean_english_page() -> None:
    engine = RapidOcr(OcrSettings(device="NPU", fallback=["GPU", "CPU"]))
    assert len(engine.devices) == 3 and set(engine.devices) <= {"NPU", "GPU", "CPU"}  # detection, angle, words
    page = render_page(TEXTS["eng"], "eng")
    text = layout(engine.read_lines(page), *page.size)
    assert char_accuracy(TEXTS["eng"], text.text) >= 0.95
    assert text.boxes and all(0 <= value <= 1000 for box in text.boxes for value in box[2:])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tesseract", "rapidocr"])
def test_pages_without_text_are_reported_per_file_and_chunks_keep_word_boxes(backend: str, tmp_path: Path) -> None:
    """Through the parser processes with their default 2 GB address-space limit, which rapidocr's OpenVINO
    exceeded before the processes kept glibc to two malloc arenas."""
    docs = tmp_path / "docs"
    docs.mkdir()
    memo = render_page(TEXTS["eng"], "eng")
    blank = Image.new("L", memo.size, 255)
    memo.save(docs / "scan.pdf", save_all=True, append_images=[blank, memo, blank], resolution=150.0)
    settings = load_settings(write_config(tmp_path, ingest={"ocr": {"backend": backend}}))
    assert settings.ingest.parse_memory_mb == 2048
    report = Collection(settings).ingest([docs], HashEmbedder())
    assert [(f.status, f.note, f.reason) for f in report.files] == [("added", "2 of 4 pages without text", None)]

    stored = [(text, meta) for _, text, meta in connect(settings).open(settings.vectorstore.collection).all_chunks()]
    assert {meta["page"] for _, meta in stored} == {1, 3}
    for text, meta in stored:
        boxes = json.loads(meta["ocr_boxes"])
        assert boxes and all(text[start : start + length].strip() for start, length, *_ in boxes)


def test_a_pdf_whose_pages_are_all_blank_is_refused_with_the_count(tmp_path: Path) -> None:
    blank = Image.new("L", (620, 877), 255)
    path = tmp_path / "blank.pdf"
    blank.save(path, save_all=True, append_images=[blank], resolution=75.0)
    with pytest.raises(SkipFile, match=r"^no text \(2 of 2 pages without text\)$"):
        load_document(path, ocr=OcrSettings())


def test_an_image_with_ocr_off_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("L", (50, 50), 0).save(path)
    with pytest.raises(SkipFile, match=r"^an image, and OCR is off \(ingest.ocr.enabled\)$"):
        load_document(path, ocr=OcrSettings(enabled=False))


def test_layout_spaces_latin_words_but_not_japanese_characters() -> None:
    lines = [
        [Word("Hello", (0, 0, 50, 10)), Word("world", (60, 0, 110, 10))],
        [Word("東", (0, 20, 10, 30)), Word("京", (10, 20, 20, 30)), Word("Tower", (30, 20, 80, 30))],
    ]
    text = layout(lines, 200, 100)
    assert text.text == "Hello world\n東京 Tower"
    assert [text.text[start:end] for start, end, *_ in text.boxes] == ["Hello", "world", "東", "京", "Tower"]
    assert text.boxes[1][2:] == (300, 0, 550, 100)  # thousandths of the page


def test_each_chunk_carries_the_boxes_of_its_own_words() -> None:
    words = [[Word(f"word{i}", (i * 10, 0, i * 10 + 8, 10))] for i in range(300)]
    page = layout(words, 3000, 100)
    sections = [Section(page.text, page=1, boxes=page.boxes)]
    chunks = chunk_sections(sections, fake_document_tokens, 40, 8, 256)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.boxes is not None
        boxes = json.loads(chunk.boxes)
        assert [chunk.text[start : start + length] for start, length, *_ in boxes] == chunk.text.split()


def test_auto_falls_back_to_rapidocr_without_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tesseract comes from the OS: a machine without it still reads scans, with the bundled engine."""
    import ingest.ocr as ocr

    def no_tesseract(languages: object) -> None:
        raise SkipFile("OCR backend tesseract needs the tesseract program (apt install tesseract-ocr)")

    bundled = object()
    monkeypatch.setattr(ocr, "TesseractOcr", no_tesseract)
    monkeypatch.setattr(ocr, "RapidOcr", lambda settings: bundled)
    monkeypatch.setattr(ocr, "_engines", {})
    assert ocr.open_ocr(OcrSettings()) is bundled
    monkeypatch.setattr(ocr, "_engines", {})
    with pytest.raises(SkipFile, match="apt install tesseract-ocr"):
        ocr.open_ocr(OcrSettings(backend="tesseract"))
