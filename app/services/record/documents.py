"""Visit documents (PDFs) kept under the data directory, outside the web root.

Named by a random key, readable by the portal's user only; only this package reads them back,
and only for a row found through the patient context (record_document_open). A small
after-visit summary PDF is written here without any PDF library: one page of text in the
standard Helvetica font is a few hundred bytes of plain PDF syntax.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from app.services.private_files import PrivateFiles

PDF = "application/pdf"


_FILES = PrivateFiles("record-documents")


def storage_dir() -> Path:
    return _FILES.directory


def document_store_sync(data: bytes) -> str:
    """Write the bytes under a new random key; the key (see app/services/private_files.py)."""
    return _FILES.store_sync(data)


async def document_store(data: bytes) -> str:
    return await _FILES.store(data)


async def document_read(key: str) -> bytes:
    return await _FILES.read(key)


def is_pdf(data: bytes) -> bool:
    return data.startswith(b"%PDF-")


def document_filename(title: str) -> str:
    """A download name from a title: plain ASCII letters and digits, never a path."""
    plain = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    stem = "".join(ch if ch.isalnum() else "-" for ch in plain).strip("-")[:60] or "document"
    return f"{stem}.pdf"


def _pdf_text(text: str) -> str:
    """A PDF string literal in WinAnsi (Latin-1 here); other characters become '?'."""
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return "(" + latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def simple_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page US Letter PDF: a title and lines of text (long lines are cut at 90)."""
    commands = ["BT", "/F1 16 Tf", "72 720 Td", f"{_pdf_text(title)} Tj", "/F1 11 Tf", "0 -28 Td"]
    for line in lines[:50]:
        commands += [f"{_pdf_text(line[:90])} Tj", "0 -15 Td"]
    commands.append("ET")
    stream = "\n".join(commands).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
