"""Images copied once into instance/media/ and served from Clarion's own address."""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
import threading
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from clarion.alerts import markup
from clarion.errors import FetchRefused, ValidationError
from clarion.fetch import FetchPolicy, fetch
from clarion.i18n import admin_gettext

MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Decoded, a 150 KB PNG of 40 megapixels takes 160 MB, in our memory when we re-encode it and
# in every reader's mail client when it is shown. 16 megapixels (4096 x 4096) is plenty for mail.
MAX_PIXELS = 16_000_000
# A copy asked for by an editor runs in a web thread: it must end soon (the worker's feed
# polling keeps the full CLARION_FETCH_TIMEOUT), and only a few may run at once per process,
# so that readers' requests always find a free thread.
INTERACTIVE_TIMEOUT = 4.0
_INTERACTIVE_SLOTS = threading.BoundedSemaphore(2)
NAME_RE = re.compile(r"[0-9a-f]{32}\.(?:png|jpg|gif|webp)")
# Recognised by their first bytes, never by what the server claims: SVG (which can carry
# script) and anything else is refused.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
)
MIME_TYPES = {"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def media_dir(instance_dir: Path) -> Path:
    """Where copied images live."""
    return instance_dir / "media"


def media_url(base_url: str, name: str) -> str:
    """The public address of a stored image."""
    return f"{base_url}/media/{name}"


def is_own_media(url: str, base_url: str) -> bool:
    """True when `url` already points at an image Clarion stores."""
    prefix = f"{base_url}/media/"
    return url.startswith(prefix) and bool(NAME_RE.fullmatch(url[len(prefix) :]))


# Stored images never change (their names are their content's hash): a width read once holds.
_WIDTHS: dict[Path, int] = {}


def stored_width(url: str, base_url: str, instance_dir: Path) -> int | None:
    """The pixel width of an image Clarion stores, read from its header; None if it is not ours
    or not there."""
    if not is_own_media(url, base_url):
        return None
    path = media_dir(instance_dir) / url.rsplit("/", 1)[1]
    if path not in _WIDTHS:
        try:
            with Image.open(path) as probe:
                _WIDTHS[path] = probe.size[0]
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return None
    return _WIDTHS[path]


def image_extension(data: bytes) -> str | None:
    """png, jpg, gif or webp from the file's signature, or None."""
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def size_problem(data: bytes, limit: int = MAX_PIXELS) -> str | None:
    """Why an image's size is refused, read from its header only (nothing is decoded), or None."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return admin_gettext("This file is damaged or is not a PNG, JPEG, GIF or WebP image.")
    if width * height > limit:
        return admin_gettext(
            "The image is %(width)s x %(height)s pixels; Clarion takes images of up to "
            "%(megapixels)s megapixels. Make it smaller and try again.",
            width=width,
            height=height,
            megapixels=limit // 1_000_000,
        )
    return None


def store_image(data: bytes, instance_dir: Path) -> str:
    """Save image bytes under a name derived from their content; returns the file name."""
    ext = image_extension(data)
    if ext is None:
        problem = admin_gettext("This is not a PNG, JPEG, GIF or WebP image.")
        raise ValidationError({"image_url": problem})
    problem = size_problem(data)
    if problem:
        raise ValidationError({"image_url": problem})
    name = f"{hashlib.sha256(data).hexdigest()[:32]}.{ext}"
    directory = media_dir(instance_dir)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if not target.exists():
        # Write then rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    return name


def copy_image(
    url: str,
    instance_dir: Path,
    base_url: str,
    policy: FetchPolicy | None = None,
    *,
    interactive: bool = True,
) -> str:
    """Fetch an image once and return its Clarion URL; ValidationError(image_url) says why not.

    `interactive` (an editor waits, in a web thread): a short timeout and few at once.
    """
    if is_own_media(url, base_url):
        return url
    base = policy or FetchPolicy.from_settings()
    timeout = min(base.timeout, INTERACTIVE_TIMEOUT) if interactive else base.timeout
    bounded = FetchPolicy(base.allow_networks, min(base.max_bytes, MAX_IMAGE_BYTES), timeout)
    if interactive and not _INTERACTIVE_SLOTS.acquire(blocking=False):
        raise ValidationError(
            {
                "image_url": admin_gettext(
                    "Other images are being copied right now; save again in a moment."
                )
            }
        )
    try:
        result = fetch(url, bounded, accept="image/png,image/jpeg,image/gif,image/webp")
    except FetchRefused as exc:
        problem = admin_gettext("The image could not be copied: %(error)s", error=exc)
        raise ValidationError({"image_url": problem}) from None
    finally:
        if interactive:
            _INTERACTIVE_SLOTS.release()
    return media_url(base_url, store_image(result.body, instance_dir))


def copy_markdown_images(
    source: str,
    field: str,
    instance_dir: Path,
    base_url: str,
    policy: FetchPolicy | None = None,
) -> str:
    """Markdown whose images from elsewhere are copied once to our media, like a new post's
    image; ValidationError(field) names the first image that cannot be, and says why."""
    for url in dict.fromkeys(markup.image_sources(source)):
        if is_own_media(url, base_url):
            continue
        shown = url or admin_gettext("(an image without an address)")
        if not url.lower().startswith(("http://", "https://")) or url not in source:
            problem = admin_gettext(
                "The image %(image)s cannot be used: give its full https:// address, or upload it.",
                image=shown,
            )
            raise ValidationError({field: problem})
        try:
            copied = copy_image(url, instance_dir, base_url, policy)
        except ValidationError as exc:
            raise ValidationError({field: f"{exc.errors['image_url']} ({shown})"}) from None
        source = source.replace(url, copied)
    return source
