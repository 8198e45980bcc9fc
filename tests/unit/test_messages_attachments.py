"""Attachments are what their bytes say, within limits, and photos lose what phones hide in
them (the location) before they are stored outside the web root."""

from __future__ import annotations

import io
import stat

import pytest
from PIL import ExifTags, Image

from app.services.messages.attachments import (
    MAX_BYTES,
    MAX_FILES,
    MAX_PNG_PIXELS,
    AttachmentError,
    Upload,
    attachment_read,
    attachments_prepare,
    prepare_one,
    safe_filename,
    storage_dir,
)
from app.services.messages.sending import Draft, message_send
from app.settings import get_settings
from app.tables import MessageAttachment
from tests.factories import EXECUTABLE, PDF_BYTES, make_person, photo_with_location


def test_the_test_photo_really_carries_a_location() -> None:
    with Image.open(io.BytesIO(photo_with_location())) as image:
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)


def test_a_renamed_executable_is_refused_with_a_clear_reason() -> None:
    with pytest.raises(AttachmentError) as refused:
        prepare_one(Upload(filename="holiday-photo.jpg", data=EXECUTABLE))
    assert refused.value.reason == "type"
    assert refused.value.filename == "holiday-photo.jpg"


def test_a_file_over_the_limit_is_refused_before_it_is_read_as_a_picture() -> None:
    oversized = photo_with_location()[:4] + b"\x00" * MAX_BYTES
    with pytest.raises(AttachmentError) as refused:
        prepare_one(Upload(filename="big.jpg", data=oversized))
    assert refused.value.reason == "size"


async def test_more_files_than_allowed_are_refused() -> None:
    photo = photo_with_location()
    uploads = [Upload(filename=f"p{n}.jpg", data=photo) for n in range(MAX_FILES + 1)]
    with pytest.raises(AttachmentError) as refused:
        await attachments_prepare(uploads)
    assert refused.value.reason == "count"


def test_a_picture_that_is_not_one_is_unreadable_not_an_error() -> None:
    with pytest.raises(AttachmentError) as refused:
        prepare_one(Upload(filename="broken.jpg", data=b"\xff\xd8\xff\xe0" + b"junk" * 10))
    assert refused.value.reason == "unreadable"


def test_a_picture_with_too_many_pixels_is_refused_as_too_large() -> None:
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")  # small file, 64 million pixels
    with pytest.raises(AttachmentError) as refused:
        prepare_one(Upload(filename="bomb.png", data=out.getvalue()))
    assert refused.value.reason == "size"


def test_a_flat_png_just_under_the_photo_cap_is_refused_before_it_is_decoded() -> None:
    """A few hundred KB of PNG can hold a picture that takes most of a gigabyte to decode."""
    side = int(MAX_PNG_PIXELS**0.5) + 1
    out = io.BytesIO()
    Image.new("RGBA", (side, side), (1, 2, 3, 255)).save(out, format="PNG")
    assert len(out.getvalue()) < 1_000_000
    with pytest.raises(AttachmentError) as refused:
        prepare_one(Upload(filename="flat.png", data=out.getvalue()))
    assert refused.value.reason == "size"


def test_a_large_jpeg_is_decoded_small_and_kept_no_larger_than_a_screen_needs() -> None:
    prepared = prepare_one(Upload(filename="big.jpg", data=photo_with_location((7000, 5000))))
    with Image.open(io.BytesIO(prepared.data)) as image:
        assert max(image.size) <= 3000


def test_comments_and_colour_profiles_are_not_kept() -> None:
    """Anything a phone or an app writes beside the pixels goes, not only EXIF."""
    profile = b"\x00\x00\x02\x0cfake colour profile naming 12 Elm St"
    jpeg, png = io.BytesIO(), io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(
        jpeg, format="JPEG", comment=b"Home: 12 Elm St", icc_profile=profile
    )
    Image.new("RGB", (40, 30), (9, 9, 9)).save(png, format="PNG", icc_profile=profile)
    assert b"Home: 12 Elm St" in jpeg.getvalue()
    for name, data in (("a.jpg", jpeg.getvalue()), ("b.png", png.getvalue())):
        with Image.open(io.BytesIO(data)) as sent:
            assert sent.info["icc_profile"] == profile
        kept = prepare_one(Upload(filename=name, data=data)).data
        assert b"12 Elm St" not in kept
        with Image.open(io.BytesIO(kept)) as image:
            assert "icc_profile" not in image.info
            assert "comment" not in image.info


def test_a_pdf_is_kept_as_sent_and_a_png_stays_a_png() -> None:
    kept = prepare_one(Upload(filename="letter.pdf", data=PDF_BYTES))
    assert (kept.media_type, kept.data, kept.filename) == (
        "application/pdf",
        PDF_BYTES,
        "letter.pdf",
    )
    out = io.BytesIO()
    Image.new("RGBA", (20, 10)).save(out, format="PNG")
    screenshot = prepare_one(Upload(filename="screen.png", data=out.getvalue()))
    assert screenshot.media_type == "image/png"


def test_a_file_is_named_for_what_it_is() -> None:
    assert safe_filename("../../etc/report.exe", "image/jpeg") == "report.jpg"
    assert safe_filename("Résumé de José.PDF", "application/pdf") == "Resume de Jose.pdf"
    assert safe_filename('"><script>.png', "image/png") == "script.png"
    assert safe_filename("", "application/pdf") == "attachment.pdf"


async def test_a_stored_photo_has_no_location_and_lives_outside_the_web_root() -> None:
    person = await make_person("Gia")
    sent = await message_send(
        await person.context(),
        draft=Draft(
            topic="question",
            body="Is this rash worse?",
            files=(Upload(filename="IMG_0001.JPG", data=photo_with_location()),),
        ),
    )
    row = (
        await MessageAttachment.objects()
        .where(MessageAttachment.conversation.public_id == sent.thread_id)
        .first()
    )
    assert row is not None
    assert (row.media_type, row.filename) == ("image/jpeg", "IMG_0001.jpg")
    stored = await attachment_read(row.storage_key)
    with Image.open(io.BytesIO(stored)) as image:
        assert image.size == (64, 48)
        exif = image.getexif()
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert ExifTags.Base.Make not in exif
    path = storage_dir() / row.storage_key[:2] / row.storage_key
    assert path.is_file()
    assert get_settings().data_dir in path.parents
    assert "static" not in path.parts
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert row.storage_key not in sent.thread_id
