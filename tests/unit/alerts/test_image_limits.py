"""Images small on disk but huge once decoded are refused before decoding, with a clear error."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from clarion.alerts import media, uploads
from clarion.errors import ValidationError
from clarion.fetch import FetchPolicy
from tests.helpers import tiny_png
from tests.unit.test_fetch import LOOPBACK


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """A 6000 x 6000 PNG: about 40 KB on disk, 36 megapixels (144 MB as RGBA) decoded."""
    data = tiny_png((6000, 6000), mode="1")
    assert len(data) < 200_000
    return data


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 40)).save(out, "JPEG", quality=50)
    return out.getvalue()


def test_an_uploaded_decompression_bomb_is_refused_before_decoding(tmp_path, bomb):
    with pytest.raises(ValidationError) as caught:
        uploads.store_upload(io.BytesIO(bomb), tmp_path)
    assert "6000 x 6000 pixels" in caught.value.errors["image"]
    assert "16 megapixels" in caught.value.errors["image"]
    assert not (tmp_path / "media").exists()


def test_a_big_phone_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    data = jpeg((6400, 4800))
    decoded = uploads._open(data, "image")
    assert decoded.size == (3200, 2400)  # the DCT decoded it at half scale: 1/4 of the memory
    name = uploads.store_upload(io.BytesIO(data), tmp_path)
    assert max(Image.open(tmp_path / "media" / name).size) == uploads.MAX_SIDE


class BombHandler(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def test_a_fetched_decompression_bomb_is_refused(tmp_path, bomb):
    BombHandler.body = bomb
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BombHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ValidationError) as caught:
            media.copy_image(
                f"http://127.0.0.1:{httpd.server_address[1]}/b.png",
                tmp_path,
                "https://a.example",
                LOOPBACK,
            )
    finally:
        httpd.shutdown()
    assert "6000 x 6000 pixels" in caught.value.errors["image_url"]


def test_a_damaged_image_is_not_stored(tmp_path):
    with pytest.raises(ValidationError, match="damaged"):
        media.store_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, tmp_path)


def test_an_editor_copy_gets_a_short_timeout_and_a_free_slot(tmp_path, monkeypatch):
    seen: list[float] = []
    monkeypatch.setattr(
        media, "fetch", lambda url, policy, accept: seen.append(policy.timeout) or 1 / 0
    )
    slow = FetchPolicy(LOOPBACK.allow_networks, timeout=10)
    for _ in range(2):
        assert media._INTERACTIVE_SLOTS.acquire(blocking=False)
    try:
        with pytest.raises(ValidationError, match="being copied"):
            media.copy_image("http://127.0.0.1:9/x.png", tmp_path, "https://a.example", slow)
    finally:
        media._INTERACTIVE_SLOTS.release()
        media._INTERACTIVE_SLOTS.release()
    with pytest.raises(ZeroDivisionError):
        media.copy_image("http://127.0.0.1:9/x.png", tmp_path, "https://a.example", slow)
    with pytest.raises(ZeroDivisionError):
        media.copy_image(
            "http://127.0.0.1:9/x.png", tmp_path, "https://a.example", slow, interactive=False
        )
    assert seen == [media.INTERACTIVE_TIMEOUT, 10]
    assert media._INTERACTIVE_SLOTS.acquire(blocking=False)  # the failed copy gave its slot back
    media._INTERACTIVE_SLOTS.release()
