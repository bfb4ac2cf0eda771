"""Scanned pages and photos become text with word boxes: one class per OCR engine, chosen in ``open_ocr``.

Engines (``ingest.ocr``):

- ``rapidocr``: PP-OCRv4 detection and recognition (the ONNX models in the ``rapidocr-openvino`` wheel) on
  OpenVINO, compiled on the first device of ``ingest.ocr.device`` and its fallbacks that takes them.
- ``tesseract``: Debian's ``tesseract-ocr`` (with ``-deu`` and ``-jpn``) through ``pytesseract``.

Each returns the lines of a page as words with pixel boxes; ``layout`` joins them into the page's text and
keeps each word's character span, so a chunk can carry the boxes of its own words (``chunk_boxes``).
Only parser processes import this module (through ``ingest.loaders``), and the engines load lazily there,
on the first page that needs them.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
import types
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ingest.documents import SkipFile

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

    from rag.config import OcrSettings

logger = logging.getLogger(__name__)

# Tesseract's names, which the settings use too.
TESSERACT_LANGS = {"eng": "eng", "deu": "deu", "jpn": "jpn"}
# Boxes are stored in thousandths of the page's width and height: resolution-free, and small in JSON.
BOX_SCALE = 1000


@dataclass(frozen=True)
class Word:
    """One recognised word (for Japanese, a run of characters) and its box in image pixels."""

    text: str
    box: tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class PageText:
    """A page's text and, per word, ``(start, end, left, top, right, bottom)``: its span in ``text`` and
    its box in thousandths of the page."""

    text: str
    boxes: tuple[tuple[int, int, int, int, int, int], ...]


class OcrEngine(Protocol):
    """What the loaders need from an OCR engine."""

    backend: str

    def read_lines(self, image: Image) -> list[list[Word]]:
        """The page's lines, top to bottom, each its words left to right."""
        ...


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def layout(lines: Sequence[Sequence[Word]], width: int, height: int) -> PageText:
    """Join words with spaces (none between two CJK characters) and lines with newlines, keeping spans."""
    parts: list[str] = []
    boxes: list[tuple[int, int, int, int, int, int]] = []
    position = 0
    for line in lines:
        words = [word for word in line if word.text.strip()]
        if not words:
            continue
        if parts:
            parts.append("\n")
            position += 1
        for index, word in enumerate(words):
            text = word.text.strip()
            if index and not (_is_cjk(parts[-1][-1]) and _is_cjk(text[0])):
                parts.append(" ")
                position += 1
            left, top, right, bottom = word.box
            boxes.append(
                (
                    position,
                    position + len(text),
                    left * BOX_SCALE // width,
                    top * BOX_SCALE // height,
                    right * BOX_SCALE // width,
                    bottom * BOX_SCALE // height,
                )
            )
            parts.append(text)
            position += len(text)
    return PageText("".join(parts), tuple(boxes))


def chunk_boxes(boxes: Sequence[tuple[int, ...]], start: int, end: int) -> str:
    """The boxes of the words inside ``[start, end)`` of a page's text, as the chunk metadata ``ocr_boxes``:
    JSON ``[[offset, length, left, top, right, bottom], ...]`` with offsets into the chunk's own text."""
    inside = [[s - start, e - s, *box] for s, e, *box in boxes if s >= start and e <= end]
    return json.dumps(inside, separators=(",", ":"))


class TesseractOcr:
    """Tesseract 5 (LSTM) through pytesseract: word boxes from ``image_to_data``."""

    backend = "tesseract"

    def __init__(self, languages: Sequence[str]) -> None:
        try:
            import pytesseract
        except ImportError as error:
            raise SkipFile("OCR backend tesseract needs pytesseract (pip install pytesseract)") from error
        self._tesseract = pytesseract
        # Tesseract's OpenMP threads spin: one page took 1.0-1.1 s of CPU with them and 0.39 s with one
        # thread, in the same or less wall time (2 cores, each parser process reading its own page).
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.lang = "+".join(TESSERACT_LANGS[language] for language in languages)
        try:
            installed = set(pytesseract.get_languages())
        except (pytesseract.TesseractNotFoundError, OSError) as error:
            raise SkipFile("OCR backend tesseract needs the tesseract program (apt install tesseract-ocr)") from error
        missing = [language for language in languages if TESSERACT_LANGS[language] not in installed]
        if missing:
            raise SkipFile(
                f"OCR backend tesseract lacks language data {', '.join(missing)} "
                f"(apt install {' '.join('tesseract-ocr-' + m for m in missing)})"
            )

    def read_lines(self, image: Image) -> list[list[Word]]:
        data = self._tesseract.image_to_data(image, lang=self.lang, output_type=self._tesseract.Output.DICT)
        lines: dict[tuple[int, int, int], list[Word]] = {}
        for index, text in enumerate(data["text"]):
            if not text.strip() or float(data["conf"][index]) < 0:
                continue
            key = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
            left, top = data["left"][index], data["top"][index]
            box = (left, top, left + data["width"][index], top + data["height"][index])
            lines.setdefault(key, []).append(Word(text, box))
        return list(lines.values())


class _DeviceSession:
    """RapidOCR's inference session, compiled on a device of Kura's chain instead of the package's fixed CPU
    (whose own session imports ``openvino.runtime``, which OpenVINO 2026 removed)."""

    def __init__(self, compiled: Any) -> None:
        self._request = compiled.create_infer_request()

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        self._request.infer([inputs])
        result: np.ndarray = self._request.get_output_tensor().data
        return result


class RapidOcr:
    """PP-OCRv4 (Chinese and English models) on OpenVINO; one box per word from the recogniser's columns."""

    backend = "rapidocr"

    def __init__(self, settings: OcrSettings) -> None:
        import openvino as ov

        from rag.devices import device_chain, with_fallback

        core = ov.Core()
        chain = device_chain(settings.device, settings.fallback)
        self.devices: list[str] = []

        def session(config: dict[str, Any]) -> _DeviceSession:
            model = core.read_model(config["model_path"])
            compiled, choice = with_fallback("ocr", core, chain, lambda device: core.compile_model(model, device))
            self.devices.append(choice.device)
            return _DeviceSession(compiled)

        self._engine = _rapidocr_with(session)

    def read_lines(self, image: Image) -> list[list[Word]]:
        import numpy as np

        pixels = np.asarray(image.convert("RGB"))[:, :, ::-1]  # the package expects OpenCV's BGR order
        result, _ = self._engine(pixels, return_word_box=True)
        # Each line: its box, text, score, then one box per character (spaces included) and the characters.
        lines = [_rapid_words(line[1], line[0], line[3], line[4]) for line in result or []]
        return _reading_order(lines)


def _rapid_words(text: str, line_box: Any, char_boxes: Any, chars: Any) -> list[Word]:
    """Characters grouped into words at spaces, each CJK character a word of its own; the line's box stands
    for the whole line when the characters do not come with boxes."""
    if not char_boxes or len(char_boxes) != len(chars):
        return [Word(text, _bounds(line_box))]
    words: list[Word] = []
    run: list[tuple[str, Any]] = []

    def close() -> None:
        if run:
            words.append(Word("".join(c for c, _ in run), _bounds([p for _, box in run for p in box])))
            run.clear()

    for char, box in zip(chars, char_boxes, strict=True):
        if not char.strip():
            close()
        elif _is_cjk(char):
            close()
            run.append((char, box))
            close()
        else:
            run.append((char, box))
    close()
    return words


def _bounds(points: Any) -> tuple[int, int, int, int]:
    xs = [int(point[0]) for point in points]
    ys = [int(point[1]) for point in points]
    return min(xs), min(ys), max(xs), max(ys)


def _reading_order(lines: list[list[Word]]) -> list[list[Word]]:
    """Top to bottom; two pieces side by side at the same height are one line (PP-OCR may split a line at a
    wide gap). Pieces that overlap horizontally stay apart: on a page photographed 2.5 degrees askew, lines
    overlap vertically, and merging them interleaved their words (accuracy 0.778 against 0.995 kept apart)."""
    merged: list[list[Word]] = []
    for line in sorted((line for line in lines if line), key=lambda line: line[0].box[1]):
        top, bottom = line[0].box[1], line[0].box[3]
        if merged:
            last = merged[-1]
            last_top, last_bottom = last[0].box[1], last[0].box[3]
            overlap = min(bottom, last_bottom) - max(top, last_top)
            beside = line[0].box[0] >= last[-1].box[2] or line[-1].box[2] <= last[0].box[0]
            if beside and overlap > 0.5 * min(bottom - top, last_bottom - last_top):
                merged[-1] = sorted(last + line, key=lambda word: word.box[0])
                continue
        merged.append(line)
    return merged


def _rapidocr_with(session: Any) -> Any:
    """RapidOCR with ``session`` building each model's inference session.

    The package's modules import ``openvino.runtime`` at import time; OpenVINO 2026 has no such module, so a
    stand-in naming the same ``Core`` is registered first. Its own session class is then replaced by
    ``session`` in the three modules that build one, before any model is compiled.
    """
    import openvino as ov

    if importlib.util.find_spec("openvino.runtime") is None:  # older OpenVINO still has it
        shim = types.ModuleType("openvino.runtime")
        shim.Core = ov.Core  # type: ignore[attr-defined]
        sys.modules["openvino.runtime"] = shim
    try:
        import rapidocr_openvino
        from rapidocr_openvino.ch_ppocr_cls import text_cls
        from rapidocr_openvino.ch_ppocr_det import text_detect
        from rapidocr_openvino.ch_ppocr_rec import text_recognize
    except ImportError as error:
        raise SkipFile(
            f"OCR backend rapidocr needs rapidocr-openvino and opencv ({error.name} missing; "
            "pip install --no-deps rapidocr-openvino==1.4.4 opencv-python-headless pyclipper shapely)"
        ) from error
    for module in (text_cls, text_detect, text_recognize):
        module.OpenVINOInferSession = session
    return rapidocr_openvino.RapidOCR(print_verbose=False)


_engines: dict[tuple[str, tuple[str, ...]], OcrEngine] = {}


def open_ocr(settings: OcrSettings) -> OcrEngine:
    """The engine of ``ingest.ocr.backend``; with auto, the measured best for the first of
    ``ingest.ocr.languages`` (README OCR). Built once per parser process, on the first page that needs it."""
    backend = settings.backend if settings.backend != "auto" else settings.engines[settings.languages[0]]
    languages = tuple(settings.languages) if backend == "tesseract" else ()
    key = (backend, languages)
    if key not in _engines:
        auto = settings.backend == "auto"
        _engines[key] = _auto_fallback(settings, languages) if auto else _build(backend, settings, languages)
    return _engines[key]


def _build(backend: str, settings: OcrSettings, languages: tuple[str, ...]) -> OcrEngine:
    return RapidOcr(settings) if backend == "rapidocr" else TesseractOcr(languages)


def _auto_fallback(settings: OcrSettings, languages: tuple[str, ...]) -> OcrEngine:
    """Auto's choice, or the bundled rapidocr when that choice is Tesseract and this machine lacks it: Tesseract
    comes from the OS, not from Kura's install, and a scan read less accurately beats a scan left unread."""
    if not languages:
        return RapidOcr(settings)
    try:
        return TesseractOcr(languages)
    except SkipFile as error:
        logger.warning("%s; OCR falls back to the bundled rapidocr (less accurate, README OCR)", error)
        return RapidOcr(settings)
