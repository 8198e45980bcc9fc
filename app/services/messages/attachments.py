"""Photos and PDFs sent with a message.

What a file is, is read from its first bytes, never from its name or the type the browser
claims: a renamed program stays refused. Photos are decoded and encoded again with Pillow,
which keeps the picture and drops everything else a phone writes into it (the location in
EXIF GPS, the camera, the time). PDFs are kept as sent and only ever downloaded, never shown
inline. Files live under the data directory, outside the web root, named by a random key;
only the services in this package read them back, through the patient context or the
clinic's queue (docs/security.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import threading
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import NotFoundError
from app.services.private_files import PrivateFiles
from app.tables import MessageAttachment

MAX_FILES = 3
MAX_BYTES = 10 * 1024 * 1024
# A photo larger than this is a decompression bomb, not a phone's picture. A JPEG is decoded
# at a reduced scale (draft) so even the largest costs little memory; a PNG (screenshots) has
# no reduced decode, so its cap is lower: a small, flat PNG can hold a huge picture.
MAX_PIXELS = 50_000_000
MAX_PNG_PIXELS = 16_000_000
# Decoding a photo takes memory and a core: two at a time per process, whatever arrives.
_DECODING = threading.BoundedSemaphore(2)
# Photos are kept no larger than this on their longest side (still sharp on any screen).
MAX_SIDE = 3000
JPEG_QUALITY = 85

# Media types we keep, and whether a browser may show them inline.
IMAGE_TYPES = ("image/jpeg", "image/png")
PDF = "application/pdf"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", PDF: "pdf"}


class AttachmentError(ValueError):
    """A file we will not keep; `reason` says why, for the person who sent it."""

    def __init__(self, reason: str, filename: str = "") -> None:
        super().__init__(reason)
        self.reason = reason  # type | size | count | unreadable
        self.filename = filename


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it."""

    filename: str
    data: bytes


@dataclass(frozen=True)
class Prepared:
    """A file ready to store: checked, and for a photo re-encoded without its metadata."""

    media_type: str
    filename: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def sniff(data: bytes) -> str | None:
    """The media type the content itself shows, or None for anything we do not take."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"  # a photo some phones send: kept as JPEG
    if data.startswith(b"%PDF-"):
        return PDF
    return None


def safe_filename(name: str, media_type: str) -> str:
    """A name to show and download under: plain characters, the extension the content has
    (a photo named "report.exe" is saved as "report.jpg")."""
    stem = Path(name.replace("\\", "/")).name.rsplit(".", 1)[0]
    stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9 _-]+", "", stem).strip(" ._-")[:60] or "attachment"
    return f"{stem}.{EXTENSIONS[media_type]}"


def _reencode(data: bytes, media_type: str) -> tuple[str, bytes]:
    with _DECODING:
        return _reencode_one(data, media_type)


def _reencode_one(data: bytes, media_type: str) -> tuple[str, bytes]:
    """The picture alone, turned upright, in a new file: no EXIF, no GPS, no comments, no
    colour profile."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                cap = MAX_PNG_PIXELS if image.format == "PNG" else MAX_PIXELS
                if width * height > cap:
                    raise AttachmentError("size")
                if image.format == "JPEG":
                    # Decode at the smallest scale still at least MAX_SIDE on each side.
                    image.draft("RGB", (MAX_SIDE, MAX_SIDE))
                image.load()
                upright = ImageOps.exif_transpose(image)
    except AttachmentError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise AttachmentError("unreadable") from None
    except Image.DecompressionBombWarning:
        raise AttachmentError("size") from None
    upright.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if media_type == "image/png":
        # Screenshots stay PNG (sharp text); only the pixels are written.
        clean = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
        clean.info = {}  # no text chunks, no colour profile
        clean.save(out, format="PNG", optimize=True)
        return "image/png", out.getvalue()
    clean = upright.convert("RGB")
    clean.info = {}  # no comment, no colour profile
    clean.save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return "image/jpeg", out.getvalue()


def prepare_one(upload: Upload) -> Prepared:
    if len(upload.data) > MAX_BYTES:
        raise AttachmentError("size", upload.filename)
    if not upload.data:
        raise AttachmentError("unreadable", upload.filename)
    found = sniff(upload.data)
    if found is None:
        raise AttachmentError("type", upload.filename)
    if found == PDF:
        return Prepared(PDF, safe_filename(upload.filename, PDF), upload.data)
    try:
        media_type, data = _reencode(upload.data, found)
    except AttachmentError as error:
        raise AttachmentError(error.reason, upload.filename) from None
    return Prepared(media_type, safe_filename(upload.filename, media_type), data)


async def attachments_prepare(uploads: list[Upload]) -> list[Prepared]:
    """Check and clean every file, or refuse the lot with the first problem found. Decoding
    photos takes a while, so it runs beside the event loop."""
    uploads = [upload for upload in uploads if upload.data or upload.filename]
    if len(uploads) > MAX_FILES:
        raise AttachmentError("count")
    return [await asyncio.to_thread(prepare_one, upload) for upload in uploads]


_FILES = PrivateFiles("attachments")


def storage_dir() -> Path:
    return _FILES.directory


async def attachment_store(prepared: Prepared) -> str:
    """Write the file under a new random key (readable by the portal's user only); the key.
    Written before the rows that name it commit: a failed send leaves an unnamed file, never
    a row without its file."""
    return await _FILES.store(prepared.data)


async def attachment_read(key: str) -> bytes:
    return await _FILES.read(key)


async def attachment_in(conversation_id: int, attachment_id: str) -> dict[str, str]:
    """The storage key, media type and file name of an attachment of this conversation (else
    not found). Callers have already checked who may open the conversation."""
    found = (
        await MessageAttachment.select(
            MessageAttachment.storage_key,
            MessageAttachment.media_type,
            MessageAttachment.filename,
        )
        .where(
            MessageAttachment.public_id == attachment_id,
            MessageAttachment.conversation == conversation_id,
        )
        .first()
    )
    if found is None:
        raise NotFoundError(attachment_id)
    return found
