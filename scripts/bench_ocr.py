"""Character accuracy and seconds per page of each OCR engine on English, German and Japanese pages.

    python scripts/bench_ocr.py [--repeat 2]

The pages are rendered here from known text (rag.bench.ocr_pages): clean, and "photographed" (rotated
2.5 degrees, blurred, noise). Accuracy is 1 - edit distance / length after NFKC, with each run of
whitespace one space (none beside Japanese characters). Tesseract reads each page with that language
alone; rapidocr has one model for all. Seconds are the median of ``--repeat`` reads after one warm-up
read; the engine's load is printed apart. ``ingest.ocr.engines`` and README's table come from here.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ingest.ocr import OcrEngine, RapidOcr, TesseractOcr, layout  # noqa: E402
from rag.bench.ocr_pages import TEXTS, char_accuracy, photograph, render_page  # noqa: E402
from rag.config import OcrSettings  # noqa: E402


def measure(engine: OcrEngine, language: str, repeat: int) -> dict[str, tuple[float, float]]:
    """Per condition: (accuracy, median seconds per page)."""
    clean = render_page(TEXTS[language], language)
    results = {}
    for condition, image in (("clean", clean), ("photo", photograph(clean))):
        text = layout(engine.read_lines(image), *image.size).text  # warm-up, and the text scored
        seconds = []
        for _ in range(repeat):
            started = time.perf_counter()
            engine.read_lines(image)
            seconds.append(time.perf_counter() - started)
        results[condition] = (char_accuracy(TEXTS[language], text), statistics.median(seconds))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    rapid = RapidOcr(OcrSettings())
    print(f"rapidocr: models compiled on {', '.join(rapid.devices)} in {time.perf_counter() - started:.1f} s")
    rows = []
    for language in TEXTS:
        engines: list[OcrEngine] = [rapid, TesseractOcr([language])]
        for engine in engines:
            result = measure(engine, language, args.repeat)
            rows.append((language, engine.backend, result))
    print()
    print("| language | engine | accuracy clean | accuracy photo | s/page clean | s/page photo |")
    print("|---|---|---:|---:|---:|---:|")
    for language, backend, result in rows:
        (clean_acc, clean_s), (photo_acc, photo_s) = result["clean"], result["photo"]
        print(f"| {language} | {backend} | {clean_acc:.3f} | {photo_acc:.3f} | {clean_s:.2f} | {photo_s:.2f} |")
    print()
    for language in TEXTS:
        mine = [(backend, result) for lang, backend, result in rows if lang == language]
        # Mean accuracy over both conditions; a tie within 0.005 goes to the faster engine.
        best = max(
            mine,
            key=lambda item: (
                round(statistics.mean(acc for acc, _ in item[1].values()) / 0.005),
                -statistics.mean(s for _, s in item[1].values()),
            ),
        )
        print(f"default for {language}: {best[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
