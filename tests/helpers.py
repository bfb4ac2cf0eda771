"""Helpers the tests share: corpora and hostile folders on disk, free ports, a real ``kura serve``, store
snapshots, the devices this machine has. Test modules import these from here, never from one another."""

from __future__ import annotations

import io
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.collection import Collection
from rag.config import Settings, load_settings
from rag.devices import DeviceChoice
from tests.conftest import KURA, NETGUARD, write_config
from tests.fakes import HashEmbedder

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TOPICS = ["backups", "printers", "vpn", "badges", "canteen", "laptops", "wifi", "passwords"]


def write_corpus(folder: Path, files: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        topic = TOPICS[i % len(TOPICS)]
        body = "\n\n".join(
            f"Paragraph {p} about {topic}: the {topic} rule number {i}-{p} says the limit is {i * 10 + p} units."
            for p in range(12)
        )
        (folder / f"{i:02d}-{topic}.md").write_text(f"# {topic.title()}\n\n{body}\n", encoding="utf-8")
    return folder


def snapshot(config: Path) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """Chunk ids with their metadata, and the manifest rows (without timestamps)."""
    from ingest.manifest import manifest_path
    from rag.config import load_settings
    from rag.store import connect

    settings = load_settings(config)
    store = connect(settings).open(settings.vectorstore.collection)
    chunks = {chunk_id: meta for chunk_id, _, meta in store.all_chunks()}
    db = sqlite3.connect(manifest_path(settings))
    rows = db.execute(
        "SELECT key, rel, size, sha256, parser_version, embedder, chunks FROM files ORDER BY key"
    ).fetchall()
    pending = db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
    db.close()
    assert pending == 0
    return chunks, rows


def committed_files(config: Path) -> int:
    from ingest.manifest import manifest_path
    from rag.config import load_settings

    path = manifest_path(load_settings(config))
    if not path.exists():
        return 0
    try:
        db = sqlite3.connect(path, timeout=1)
        count = db.execute("SELECT COUNT(*) FROM files").fetchone()[0]
        db.close()
        return int(count)
    except sqlite3.Error:
        return 0


def pdf_bytes(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def build_hostile(root: Path, outside: Path) -> dict[str, str]:
    """Returns good file name -> a phrase that must be stored."""
    from pypdf import PdfReader, PdfWriter

    root.mkdir()
    good = {
        "good.md": "# Good\n\nThe vault door code is 4711.\n",
        "nested name with spaces 🙂.txt": "Emoji folders keep the coffee machine manual.",
        "-leading-dash.txt": "Leading dashes are fine for the archive index.",
        "utf16.txt": "UTF-16 text about the Zürich office.",
        "latin1.txt": "Latin-1 text about the Köln office.",
        "copy-a.txt": "Duplicate content under two names.",
        "copy-b.txt": "Duplicate content under two names.",
        "good.pdf": "Printable policy about shredders.",
    }
    for name, text in good.items():
        path = root / name
        if name == "utf16.txt":
            path.write_bytes(text.encode("utf-16"))
        elif name == "latin1.txt":
            path.write_bytes(text.encode("latin-1"))
        elif name.endswith(".pdf"):
            path.write_bytes(pdf_bytes(text))
        else:
            path.write_text(text, encoding="utf-8")
    deep = root
    for level in range(30):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "deep.md").write_text("The deepest file mentions the tape library.", encoding="utf-8")
    good["d0/" + "/".join(f"d{i}" for i in range(1, 30)) + "/deep.md"] = "tape library"

    (root / "zero.txt").write_bytes(b"")
    (root / "image.pdf").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(512))
    valid = pdf_bytes("Truncated in the middle of its bytes.")
    (root / "truncated.pdf").write_bytes(valid[: len(valid) // 2])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes("Secret plans."))))
    writer.encrypt("secret", algorithm="RC4-128")
    with (root / "encrypted.pdf").open("wb") as handle:
        writer.write(handle)
    (root / "random.txt").write_bytes(os.urandom(4096))
    (root / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "program.exe").write_bytes(b"MZ")
    (root / "line\nbreak.txt").write_text("A name with a newline still ingests.", encoding="utf-8")
    good["line\nbreak.txt"] = "newline still ingests"
    (root / "loop").symlink_to(root, target_is_directory=True)
    outside.write_text("This file is outside the ingested root.", encoding="utf-8")
    (root / "escape.txt").symlink_to(outside)
    (root / "big.txt").write_bytes(b"big words " * (1024 * 1024 // 5))  # 2 MB, over a 1 MB limit
    return good


def _docx_with(path: Path, parts: dict[str, bytes], edit: dict[str, tuple[bytes, bytes]] | None = None) -> Path:
    """python-docx's template with ``parts`` added or replaced and ``edit`` (part: old, new bytes) applied."""
    import zipfile

    import docx

    buffer = io.BytesIO()
    document = docx.Document()
    document.add_paragraph("A page of an ordinary report.")
    document.save(buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as template, zipfile.ZipFile(path, "w") as out:
        for info in template.infolist():
            if info.filename not in parts:
                data = template.read(info)
                if info.filename in (edit or {}):
                    data = data.replace(*(edit or {})[info.filename])
                out.writestr(info, data)
        for name, data in parts.items():
            out.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return path


def docx_zero_part(path: Path, megabytes: int, level: int = 9) -> Path:
    """A .docx linking a zero-filled "image" of ``megabytes`` (1 GB packs into about 1 MB); streamed, not held.

    ``level`` 1 deflates 3.5 times faster (and packs less tightly).
    """
    import zipfile

    link = (
        b'<Relationship Id="rIdZero" Target="media/image1.png" '
        b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"/></Relationships>'
    )
    png = b'<Default Extension="png" ContentType="image/png"/><Default Extension="xml"'
    _docx_with(
        path,
        {},
        {
            "word/_rels/document.xml.rels": (b"</Relationships>", link),
            "[Content_Types].xml": (b'<Default Extension="xml"', png),
        },
    )
    block = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as out,
        out.open("word/media/image1.png", "w", force_zip64=True) as part,
    ):
        for _ in range(megabytes):
            part.write(block)
    return path


def docx_empty_paragraphs(path: Path, count: int) -> Path:
    """A .docx whose body is ``count`` empty paragraphs (3 million pack into about 300 KB)."""
    body = b"<w:p/>" * count
    xml = (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
        + body
        + b"<w:p><w:r><w:t>The last paragraph.</w:t></w:r></w:p></w:body></w:document>"
    )
    return _docx_with(path, {"word/document.xml": xml})


def markdown_heading_bomb(spaces: int) -> str:
    """The input that made the old heading pattern backtrack quadratically, then a body line."""
    return "# a" + " " * spaces + "b\n\nThe body under the long heading.\n"


def csv_wide_header(columns: int, rows: int) -> str:
    """A header of ``columns`` names, then ``rows`` rows of one value each."""
    return ",".join(f"c{i}" for i in range(columns)) + "\n" + "".join(f"value {r}\n" for r in range(rows))


def pdf_one_stream(path: Path, stream_bytes: int, pages: int = 1) -> Path:
    """A small PDF whose pages share one content stream of about ``stream_bytes`` of text operators, deflated."""
    import zlib

    line = b"BT /F1 9 Tf 20 700 Td (kura) Tj ET\n"
    stream = zlib.compress(line * (stream_bytes // len(line)), 9)
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    font = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R " + font + b" >>"] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(bytes(out))
    return path


@dataclass
class Server:
    url: str
    port: int
    config: Path
    proc: subprocess.Popen
    log: Path
    guard_log: Path
    ready_s: float = 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_chroma(data: Path, port: int | None = None, timeout_s: float = 60) -> tuple[subprocess.Popen, str]:
    """A real ``chroma run`` on 127.0.0.1 over ``data``/db, answering its heartbeat; returns it and its URL.
    Given the ``port`` of one that was stopped, a new one over the same data takes its place."""
    import chromadb

    port = port or free_port()
    chroma = str(Path(sys.executable).with_name("chroma"))
    with (data / "server.log").open("a") as log:
        server = subprocess.Popen(
            [chroma, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            chromadb.HttpClient(host="127.0.0.1", port=port).heartbeat()
            return server, f"http://127.0.0.1:{port}"
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError(f"chroma run did not start: {(data / 'server.log').read_text()}") from None
            time.sleep(0.2)


def start_server(config: Path, folder: Path, name: str, timeout_s: float = 600) -> Server:
    """``kura serve`` as a user would start it; ready when the page answers (models load before that)."""
    port = free_port()
    log, guard_log = folder / f"{name}.log", folder / f"{name}-netguard.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(NETGUARD), os.environ.get("PYTHONPATH", "")]),
        "KURA_NETGUARD_LOG": str(guard_log),
        "GRADIO_TEMP_DIR": str(folder / "gradio-tmp"),
    }
    command = [KURA, "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config)]
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    server = Server(f"http://127.0.0.1:{port}/", port, config, proc, log, guard_log)
    while True:
        try:
            with _NO_PROXY.open(server.url, timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None or time.monotonic() - started > timeout_s:
            server.stop()
            raise RuntimeError(f"kura serve did not start:\n{server.output()}")
        time.sleep(0.1)
    server.ready_s = round(time.monotonic() - started, 2)
    return server


def usable(device: str, available: Sequence[str]) -> bool:
    """Whether this machine has ``device``: listed by OpenVINO, or ``GPU`` when it lists ``GPU.0`` (it accepts that)."""
    return device in available or ("." not in device and any(d.split(".")[0] == device for d in available))


def first_usable(chain: Sequence[str]) -> str:
    """The device a model configured with ``chain`` runs on here: the first one this machine has."""
    import openvino as ov

    available = ov.Core().available_devices
    return next(device for device in chain if usable(device, available))


def assert_follows_chain(choice: DeviceChoice, chain: Sequence[str]) -> None:
    """The chosen device is one the machine has, and every device before it in the chain was passed over for a
    reason: missing here, or present but unable to compile the model. Holds on a CPU-only host and an Intel
    host with a GPU or NPU alike."""
    import openvino as ov

    available = ov.Core().available_devices
    assert choice.device in chain and usable(choice.device, available), (choice, available)
    passed_over = list(chain[: list(chain).index(choice.device)])
    assert [device for device, _ in choice.skipped] == passed_over, (choice, chain)
    for device, reason in choice.skipped:
        assert reason and (not usable(device, available) or reason.startswith("compile failed")), (device, reason)


def fake_collection(folder: Path, docs: dict[str, str]) -> tuple[Settings, HashEmbedder]:
    """``docs`` (file name to text) ingested with the hashed embedder into a store under ``folder``."""
    source = folder / "docs"
    source.mkdir()
    for name, text in docs.items():
        (source / name).write_text(text, encoding="utf-8")
    settings = load_settings(write_config(folder))
    embedder = HashEmbedder()
    assert Collection(settings).ingest([source], embedder).counts()["added"] == len(docs)
    return settings, embedder


def extracted_from(answer: str, sentence: str, n: int = 1) -> bool:
    """An extracted answer: the evidence ``sentence`` marked as its key (after its section's heading when it opens
    the section, ``llm.passage_heading``), maybe continued, citing source ``n``."""
    key = answer.split("*: **", 1)[1] if "*: **" in answer and not answer.startswith("**") else answer.lstrip("*")
    return key.startswith(f"{sentence}**") and answer.endswith(f"[{n}]")


def png_bomb(path: Path, side: int) -> Path:
    """A white ``side`` x ``side`` grayscale PNG, written row by row: 144 megapixels (side 12,000) pack into
    about 140 KB, and nothing here ever holds the image."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * side
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def pdf_blank_pages(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` empty pages: no text layer and nothing to see."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    with path.open("wb") as handle:
        writer.write(handle)
    return path


def xlsx_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """A workbook with one sheet per entry, rows as given (the first one the header)."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"


def odt_bytes(body: str, mimetype: bytes = ODT_MIMETYPE) -> bytes:
    """An OpenDocument text whose office:text holds ``body`` (text: and table: elements)."""
    import zipfile

    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0">'
        f"<office:body><office:text>{body}</office:text></office:body></office:document-content>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("mimetype", mimetype)
        package.writestr("content.xml", content)
    return buffer.getvalue()


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 120.0) -> Any:
    """Poll ``condition`` until it returns something truthy (and return that): the watcher's tests wait for a
    state, never for a fixed time, so a slow machine takes longer instead of failing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
