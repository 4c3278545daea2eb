"""Images uploaded by editors, re-encoded so that no metadata survives, then stored as media.

A photo straight from a phone can carry the GPS position where it was taken and the camera's
serial number; re-encoding with Pillow keeps the pixels only. It also turns whatever was
uploaded into a plain JPEG or PNG, so a file crafted to be read as something else is not served.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from clarion.alerts import media
from clarion.errors import ValidationError

ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before they fill memory
MAX_SIDE = 1600


def store_upload(upload: BinaryIO, instance_dir: Path, field: str = "image") -> str:
    """Check, shrink and re-encode an uploaded image, store it; returns its media file name."""
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValidationError({field: f"The image is larger than {MAX_BYTES // 2**20} MB."})
    image = ImageOps.exif_transpose(_open(data, field))  # keep the orientation EXIF described
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if image.mode in {"RGBA", "LA"} or "transparency" in image.info:
        image.convert("RGBA").save(out, "PNG", optimize=True)
    else:
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return media.store_image(out.getvalue(), instance_dir)


def _open(data: bytes, field: str) -> Image.Image:
    problem = {field: "Upload a JPEG, PNG, GIF or WebP image."}
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in ACCEPTED_FORMATS:
                raise ValidationError(problem)
            if probe.width * probe.height > MAX_PIXELS:
                raise ValidationError({field: "The image has too many pixels; make it smaller."})
            probe.verify()
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError(problem) from None
    return image
