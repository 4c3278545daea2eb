"""Images in Markdown fields (alerts' and petitions'): copied through the safe fetcher when
saved, or the save refused naming the image; uploaded from the editor (with or without our
script); each shown no wider than the column, as its stored copy says."""

from __future__ import annotations

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from clarion.models import Alert, Petition
from tests.helpers import csrf_from, refresh, tiny_png
from tests.integration.alerts.test_alerts import form_for, submit

WIDE = tiny_png((1200, 400))
MEDIA_RE = r"http://127\.0\.0\.1:\d+/media/[0-9a-f]{32}\.png"


@pytest.fixture
def wide_image_url(monkeypatch):
    """A 1200 px image on a loopback server, which the operator allows Clarion to fetch."""
    from clarion.config import reset_settings

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(WIDE)))
            self.end_headers()
            self.wfile.write(WIDE)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")
    reset_settings()
    yield f"http://127.0.0.1:{server.server_address[1]}/wide.png?size=big&v=2"
    server.shutdown()


def newsletter(body: str, lists) -> dict:
    return form_for("newsletter", {"body_md": body}, lists)


@pytest.mark.parametrize("kind, field", [("newsletter", "body_md"), ("petition", "why")])
def test_an_external_image_is_copied_at_save_and_fits_the_column(
    client, session, login, lists, wide_image_url, kind, field
):
    login(client, "editor")
    fields = {
        "newsletter": {},
        "petition": {"petition_url": "https://act.example.org/m", "petition_title": "Free Maria"},
    }[kind]
    fields[field] = f"# Big news\n\n![Maria at the court]({wide_image_url})\n\nText."
    response = submit(client, "/admin/alerts/new", form_for(kind, fields, lists))
    assert response.status_code == 302, response.get_data(as_text=True)
    refresh(session)
    saved = session.scalar(select(Alert)).fields[field]
    copied = re.search(rf"!\[Maria at the court\]\(({MEDIA_RE})\)", saved)
    assert copied and wide_image_url not in saved
    html = client.get(f"/admin/alerts/{session.scalar(select(Alert.id))}/preview.html").text
    (img,) = re.findall(r"<img\b[^>]*>", html)
    assert f'src="{copied.group(1)}"' in img and 'width="502"' in img
    assert "max-width:100%" in img and "<h1>Big news</h1>" in html
    served = client.get(urlsplit(copied.group(1)).path)
    assert served.data == WIDE


def test_an_image_that_cannot_be_copied_is_refused_naming_it(client, session, login, lists):
    login(client, "editor")
    body = "Intro.\n\n![Ales](http://127.0.0.1:9/ales.png)"
    response = submit(client, "/admin/alerts/new", newsletter(body, lists))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "body_md" in page and "http://127.0.0.1:9/ales.png" in page
    assert "could not be copied" in page
    assert "Intro.\n\n![Ales](http://127.0.0.1:9/ales.png)</textarea>" in page
    refresh(session)
    assert session.scalar(select(Alert)) is None


def test_an_image_without_a_web_address_is_refused_naming_it(client, session, login, lists):
    login(client, "editor")
    body = "![pixel](data:image/png;base64,iVBORw0KGgo=)"
    response = submit(client, "/admin/alerts/new", newsletter(body, lists))
    assert response.status_code == 422
    assert "The image data:image/png;base64,iVBORw0KGgo= cannot be used" in response.text


def test_the_upload_button_returns_markdown_for_a_stored_copy(client, login, settings):
    login(client, "editor")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/alerts/new").text)
    response = client.post(
        "/admin/media/markdown-image",
        data={"md_image": (io.BytesIO(WIDE), "Ales at [the] gate.png"), "csrf_token": token[1]},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    markdown = response.json["markdown"]
    found = re.fullmatch(
        r"!\[Ales at the gate\]\((http://[^)]+/media/([0-9a-f]{32})\.jpg)\)", markdown
    )
    assert found
    assert (settings.instance_dir / "media" / f"{found[2]}.jpg").exists()
    refused = client.post(
        "/admin/media/markdown-image",
        data={"md_image": (io.BytesIO(b"<svg/>"), "x.svg"), "csrf_token": token[1]},
        headers={"Accept": "application/json"},
    )
    assert refused.status_code == 422 and "JPEG, PNG" in refused.json["fields"]["image"]


def test_without_script_the_chosen_image_is_added_to_the_markdown(client, session, login, lists):
    login(client, "editor")
    form = client.get("/admin/alerts/new?kind=newsletter").text
    assert 'enctype="multipart/form-data"' in form and 'name="md_image"' in form
    data = newsletter("Words first.", lists)
    data["md_image"] = (io.BytesIO(WIDE), "court.png")
    response = submit(client, "/admin/alerts/new", data)
    assert response.status_code == 302, response.text
    refresh(session)
    body = session.scalar(select(Alert)).fields["body_md"]
    assert re.fullmatch(
        r"Words first\.\n\n!\[court\]\(http://[^)]+/media/[0-9a-f]{32}\.jpg\)", body
    )


def test_a_petitions_text_image_is_copied_or_refused_naming_it(
    client, session, login, wide_image_url
):
    login(client, "editor")
    form = {"title": "Free Ales", "slug": "free-ales", "goal": "500", "is_open": "on"}

    def post(body: str):
        token = csrf_from(client.get("/admin/petitions/new").text)
        data = {**form, "body_md": body, "csrf_token": token}
        return client.post("/admin/petitions/new", data=data, content_type="multipart/form-data")

    refused = post("Ales.\n\n![Ales](http://127.0.0.1:9/ales.png)")
    assert refused.status_code == 422 and "http://127.0.0.1:9/ales.png" in refused.text
    assert post(f"Ales.\n\n![Ales]({wide_image_url})").status_code == 302
    refresh(session)
    body = session.scalar(select(Petition)).body_md
    assert re.fullmatch(rf"Ales\.\n\n!\[Ales\]\({MEDIA_RE}\)", body.replace("\r\n", "\n"))
    page = client.get("/p/free-ales").text
    assert re.search(rf'<img src="{MEDIA_RE}" alt="Ales" width="502"', page)
