"""Images uploaded by editors, re-encoded so that no metadata survives, then stored as media.

A photo straight from a phone can carry the GPS position where it was taken and the camera's
serial number; re-encoding with Pillow keeps the pixels only. It also turns whatever was
uploaded into a plain JPEG or PNG, so a file crafted to be read as something else is not served.
"""

from __future__ import annotations

import io
import re
from pathlib import Path, PurePath
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from clarion.alerts import media
from clarion.errors import ValidationError
from clarion.i18n import admin_gettext

ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
MAX_BYTES = 10 * 1024 * 1024
# Checked in the header, before anything is decoded. A JPEG is decoded at a reduced scale
# (its DCT allows 1/2, 1/4, 1/8), so a 48-megapixel phone photo costs about 12; other formats
# are decoded whole and keep the limit of stored images.
MAX_PIXELS = media.MAX_PIXELS
MAX_JPEG_PIXELS = 64_000_000
MAX_SIDE = 1600
# Characters that would end or bend the Markdown of `![alt](url)`; the alt text is plain words.
_NOT_ALT = re.compile(r"[\[\]()\\*_`<>!#|\s]+")


def store_upload(upload: BinaryIO, instance_dir: Path, field: str = "image") -> str:
    """Check, shrink and re-encode an uploaded image, store it; returns its media file name."""
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        too_big = admin_gettext("The image is larger than %(mb)s MB.", mb=MAX_BYTES // 2**20)
        raise ValidationError({field: too_big})
    image = ImageOps.exif_transpose(_open(data, field))  # keep the orientation EXIF described
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if image.mode in {"RGBA", "LA"} or "transparency" in image.info:
        image.convert("RGBA").save(out, "PNG", optimize=True)
    else:
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return media.store_image(out.getvalue(), instance_dir)


def markdown_image(
    upload: BinaryIO,
    filename: str,
    instance_dir: Path,
    base_url: str,
    field: str = "image",
    alt: str = "",
) -> str:
    """Store an uploaded image (as store_upload) and return the Markdown that shows it, with
    the description the editor gave as its alt text, else the file's name to improve."""
    name = store_upload(upload, instance_dir, field)
    alt = " ".join(_NOT_ALT.sub(" ", alt or PurePath(filename or "").stem).split())[:100]
    return f"![{alt or 'image'}]({media.media_url(base_url, name)})"


def _open(data: bytes, field: str) -> Image.Image:
    problem = {field: admin_gettext("Upload a JPEG, PNG, GIF or WebP image.")}
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ACCEPTED_FORMATS:
                raise ValidationError(problem)
            limit = MAX_JPEG_PIXELS if probe.format == "JPEG" else MAX_PIXELS
            too_big = media.size_problem(data, limit)
            if too_big:
                raise ValidationError({field: too_big})
            probe.verify()
        image = Image.open(io.BytesIO(data))
        if image.format == "JPEG":
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # decode at the smallest scale that fits
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(problem) from None
    return image
