"""Office files (.docx, .pptx) are zips: their sizes are checked before a parser reads any part.

python-docx and python-pptx read every part whole, so ``ingest.max_file_mb`` (a compressed size) bounds
nothing: a 1.0 MB .docx holding a 1 GB zero-filled part peaked at 2.15 GB in the parser, and a 298 KB one
with 3 million empty paragraphs ran past 120 s at 1.86 GB (issue 15). The sizes checked are the ones the
zip declares; Python's zipfile never returns more than the declared size of a member.
"""

from __future__ import annotations

import io
import zipfile

from ingest.documents import SkipFile

MIB = 1024 * 1024
# The parser peaked at about 2.15x the unpacked size (2.15 GB for 1 GB): 256 MB stays near 550 MB, well
# inside ingest.parse_memory_mb; a 32 MB .docx of photos (which do not compress) unpacks to about 32 MB.
MAX_UNPACKED_BYTES = 256 * MIB
# The most compressed part of python-docx's and python-pptx's templates and of data/sample's .docx is
# styles XML at 32:1; zero-filled or endlessly repeated content reaches deflate's limit near 1000:1.
MAX_RATIO = 200
# Only parts this large are judged by their ratio: a small part that compresses well is harmless.
RATIO_FLOOR_BYTES = 1 * MIB
# A slide or a picture is a few parts each; 10,000 is a deck of several thousand slides.
MAX_MEMBERS = 10_000


def check_office_zip(data: bytes) -> None:
    """Refuse, with one line, an Office file whose parts would unpack too large or too many."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip at all: the loader says so in its own words
    if len(members) > MAX_MEMBERS:
        raise SkipFile(f"holds {len(members):,} parts, more than {MAX_MEMBERS:,} (a zip bomb?)")
    unpacked = sum(member.file_size for member in members)
    if unpacked > MAX_UNPACKED_BYTES:
        raise SkipFile(f"unpacks to {unpacked // MIB:,} MB, more than {MAX_UNPACKED_BYTES // MIB} MB (a zip bomb?)")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= RATIO_FLOOR_BYTES and ratio > MAX_RATIO:
            raise SkipFile(
                f"part {member.filename!r} unpacks {ratio:,.0f} times its packed size, more than {MAX_RATIO} "
                "(a zip bomb?)"
            )
