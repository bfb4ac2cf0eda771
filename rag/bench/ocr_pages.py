"""Pages to OCR made from known text: rendered clean, or "photographed" (rotated a few degrees, noise added).

The OCR benchmark (``scripts/bench_ocr.py``), the tests and the sample corpus (``scripts/make_sample.py``)
all read pages made here, so a character accuracy is always measured against the text that was drawn.
"""

from __future__ import annotations

import random
import unicodedata
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

# Debian's fonts: fonts-dejavu-core (Latin, umlauts) and fonts-ipafont-gothic (Japanese).
FONTS = {
    "latin": Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    "jpn": Path("/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"),
}
# An A4 page at 150 dpi, 12 pt text: what a typical office scan gives.
PAGE_SIZE = (1240, 1754)
MARGIN = 110
FONT_PX = 25

TEXTS = {
    "eng": (
        "Travel expense memo, March 2025. Staff who travel by train book second class unless the trip takes "
        "longer than four hours. Hotel costs are refunded up to 120 euros a night in Germany and 160 euros "
        "abroad. Receipts go to the finance team within 30 days of the trip; claims filed later need the "
        "approval of a department head. Taxi rides are refunded only between 22:00 and 06:00 or when no "
        "public transport runs. The daily meal allowance is 28 euros for a full day away from the office."
    ),
    "deu": (
        "Hausmitteilung zur Heizperiode 2025. Die Büros werden werktags von 7:00 bis 19:00 Uhr auf 21 Grad "
        "geheizt; am Wochenende schaltet die Anlage auf 16 Grad zurück. Fenster bleiben während der "
        "Heizzeit geschlossen, zum Lüften genügen fünf Minuten Stoßlüften. Störungen meldet ihr bitte dem "
        "Hausmeister Jürgen Weiß unter der Durchwahl 214. Heizlüfter und private Elektrogeräte sind aus "
        "Gründen des Brandschutzes nicht erlaubt. Übergrößen bei Möbeln klärt die Verwaltung."
    ),
    "jpn": (
        "東京オフィスの防災訓練のお知らせ。二〇二五年四月十日の午後三時から避難訓練を行います。"
        "非常ベルが鳴ったら、エレベーターを使わずに階段で一階の正面玄関まで移動してください。"
        "集合場所は隣の公園の噴水の前です。各部署の担当者は人数を確認し、総務部の田中さんに報告してください。"
        "訓練は約三十分で終わります。非常食と水は会議室Bの棚に保管されています。"
    ),
}


def _font(language: str, size: int = FONT_PX) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS["jpn" if language == "jpn" else "latin"]), size)


def wrap(text: str, language: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Lines no wider than ``width`` pixels: broken at spaces, or anywhere in Japanese (which has none)."""
    units = list(text) if language == "jpn" else text.split(" ")
    joiner = "" if language == "jpn" else " "
    lines: list[str] = []
    line = ""
    for unit in units:
        candidate = f"{line}{joiner}{unit}" if line else unit
        if font.getlength(candidate) > width and line:
            lines.append(line)
            line = unit
        else:
            line = candidate
    if line:
        lines.append(line)
    return lines


def render_page(text: str, language: str, size: tuple[int, int] = PAGE_SIZE) -> Image.Image:
    """A clean white page (grayscale) with ``text`` set in a plain font; each "\n" starts a paragraph."""
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    font = _font(language)
    y = MARGIN
    for paragraph in text.split("\n"):
        for line in wrap(paragraph, language, font, size[0] - 2 * MARGIN):
            draw.text((MARGIN, y), line, font=font, fill=0)
            y += int(FONT_PX * 1.6)
        y += FONT_PX
    return page


def photograph(page: Image.Image, seed: int = 7, angle: float = 2.5, noise: int = 40) -> Image.Image:
    """The page as a phone photo of it: rotated ``angle`` degrees, slightly blurred, grey background, noise."""
    rng = random.Random(seed)
    rotated = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=200)
    blurred = rotated.filter(ImageFilter.GaussianBlur(0.8))
    pixels = blurred.load()
    assert pixels is not None
    width, height = blurred.size
    for _ in range(width * height // 12):
        x, y = rng.randrange(width), rng.randrange(height)
        value = pixels[x, y]
        assert isinstance(value, int)
        pixels[x, y] = max(0, min(255, value + rng.randint(-noise, noise)))
    return blurred


def _comparable(text: str) -> str:
    """Text as compared: NFKC (full-width digits and letters as ASCII), every run of whitespace one space,
    none next to a CJK character (Japanese has no spaces; a line break there is layout, not text). Spaces
    between Latin words count: a recogniser that drops them ("Travelexpensememo") defeats word search."""
    words = " ".join(unicodedata.normalize("NFKC", text).split())
    return "".join(
        char
        for index, char in enumerate(words)
        if char != " " or not (_wide(words[index - 1]) or _wide(words[index + 1]))
    )


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def char_accuracy(reference: str, recognised: str) -> float:
    """1 - edit distance / reference length, on the texts as ``_comparable`` makes them; 0 at worst."""
    a, b = _comparable(reference), _comparable(recognised)
    if not a:
        return 1.0 if not b else 0.0
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, char_b in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
        previous = current
    return max(0.0, 1 - previous[-1] / len(a))
