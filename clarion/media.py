"""Images stored by Clarion itself (never hot-linked), re-encoded so no metadata survives.

A photo straight from a phone can carry the GPS position where it was taken and the camera's
serial number; re-encoding with Pillow keeps the pixels only. It also turns whatever was
uploaded into a plain JPEG or PNG, so a file crafted to be read as something else is not served.
"""

from __future__ import annotations

import io
import re
import secrets
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from clarion.config import get_settings
from clarion.errors import ValidationError

ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # refuse decompression bombs long before they fill memory
MAX_SIDE = 1600
URL_PREFIX = "/media/"
NAME_RE = re.compile(r"[A-Za-z0-9_-]{22}\.(?:jpg|png)")


def media_dir() -> Path:
    """Where stored images live (inside the instance folder)."""
    return get_settings().instance_dir / "media"


def store_image(upload: BinaryIO, field: str = "image") -> str:
    """Check, shrink and re-encode an uploaded image; returns its path under /media/."""
    data = upload.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValidationError({field: f"The image is larger than {MAX_BYTES // 2**20} MB."})
    image = _open(data, field)
    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF data described
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    has_alpha = image.mode in {"RGBA", "LA"} or "transparency" in image.info
    out = io.BytesIO()
    if has_alpha:
        image.convert("RGBA").save(out, "PNG", optimize=True)
        ext = "png"
    else:
        image.convert("RGB").save(out, "JPEG", quality=85, optimize=True, progressive=True)
        ext = "jpg"
    name = f"{secrets.token_urlsafe(16)}.{ext}"
    directory = media_dir()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(out.getvalue())
    return URL_PREFIX + name


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


def stored_path(name: str) -> Path | None:
    """The file of a stored image by its name, or None when the name is not one of ours."""
    if not NAME_RE.fullmatch(name):
        return None
    path = media_dir() / name
    return path if path.is_file() else None


def delete_image(url: str) -> None:
    """Remove a stored image (when a petition's image is replaced or removed)."""
    if url.startswith(URL_PREFIX):
        path = stored_path(url[len(URL_PREFIX) :])
        if path is not None:
            path.unlink(missing_ok=True)
