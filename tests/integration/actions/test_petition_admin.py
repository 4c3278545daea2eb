"""Petitions in the admin: roles, validation, local images without metadata, audited export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from clarion.alerts import uploads
from clarion.db import utcnow
from clarion.models import AuditEvent, Petition, Signature
from tests.helpers import csrf_from, refresh
from tests.integration.alertkit import make_petition

FORM = {
    "title": "Free Ales",
    "slug": "free-ales",
    "target": "The Minister",
    "body_md": "Ales is **innocent**. <script>alert(1)</script>",
    "goal": "500",
    "deadline": "2031-05-01T18:00",
    "is_open": "on",
}


def post_form(client, url, **fields):
    data = {**FORM, **fields, "csrf_token": csrf_from(client.get(url).text)}
    return client.post(url, data=data, content_type="multipart/form-data")


def audit_actions(session) -> list[str]:
    refresh(session)
    return [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]


def test_an_editor_creates_a_petition_and_the_public_page_is_safe(client, session, login):
    login(client, "editor")
    response = post_form(client, "/admin/petitions/new")
    assert response.status_code == 302
    refresh(session)
    petition = session.scalar(select(Petition))
    assert (petition.slug, petition.goal, petition.target) == ("free-ales", 500, "The Minister")
    # Entered in the editor's zone (UTC here), stored as aware UTC.
    assert petition.deadline.isoformat() == "2031-05-01T18:00:00+00:00"
    assert petition.is_open and not petition.require_confirmation
    assert "petition.create" in audit_actions(session)
    page = client.get("/p/free-ales").text
    assert "<strong>innocent</strong>" in page and "<script>alert" not in page


def test_the_deadline_is_read_in_the_editor_s_time_zone(client, session, login):
    editor = login(client, "editor")
    refresh(session)
    session.get(type(editor), editor.id).timezone = "Europe/Minsk"
    session.commit()
    post_form(client, "/admin/petitions/new")
    refresh(session)
    assert session.scalar(select(Petition)).deadline.isoformat() == "2031-05-01T15:00:00+00:00"


def test_a_bad_form_names_each_problem_and_keeps_what_was_typed(client, session, login):
    login(client, "owner")
    make_petition(session, slug="taken")
    response = post_form(
        client, "/admin/petitions/new", slug="taken", goal="lots", deadline="soon", title=""
    )
    assert response.status_code == 422
    for field in ("slug", "goal", "deadline", "title"):
        assert f'id="{field}-error"' in response.text
    assert "Ales is **innocent**" in response.text and 'value="The Minister"' in response.text
    refresh(session)
    assert session.scalars(select(Petition.slug)).all() == ["taken"]


def test_a_viewer_can_look_but_not_write(client, session, login):
    login(client, "viewer")
    petition = make_petition(session)
    assert client.get("/admin/petitions").status_code == 200
    assert client.get(f"/admin/petitions/{petition.id}").status_code == 200
    assert client.get("/admin/petitions/new").status_code == 403
    token = csrf_from(client.get(f"/admin/petitions/{petition.id}").text)
    response = client.post(
        f"/admin/petitions/{petition.id}/edit", data={**FORM, "csrf_token": token}
    )
    assert response.status_code == 403
    refresh(session)
    assert session.get(Petition, petition.id).title == "Free them all"


def test_an_edit_is_audited_with_the_fields_it_changed(client, session, login):
    login(client, "editor")
    petition = make_petition(session, slug="free-ales")
    post_form(client, f"/admin/petitions/{petition.id}/edit", title="Free Ales now")
    refresh(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "petition.update"))
    assert "title" in event.detail["changed"] and "slug" not in event.detail["changed"]


def jpeg_with_location() -> bytes:
    image = Image.new("RGB", (2400, 1200), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (53.0, 54.0, 0.0)}  # GPS: where the photo was taken
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_an_uploaded_image_is_stored_here_shrunk_and_without_metadata(
    client, session, login, settings
):
    login(client, "editor")
    original = jpeg_with_location()
    assert Image.open(io.BytesIO(original)).getexif()  # the upload does carry metadata
    post_form(client, "/admin/petitions/new", image=(io.BytesIO(original), "photo.jpg"))
    refresh(session)
    url = session.scalar(select(Petition.image_url))
    assert url.startswith(f"{settings.base_url}/media/") and url.endswith(".jpg")
    served = client.get(url.removeprefix(settings.base_url))
    assert served.status_code == 200 and served.mimetype == "image/jpeg"
    stored = Image.open(io.BytesIO(served.data))
    assert max(stored.size) == uploads.MAX_SIDE
    assert not stored.getexif() and b"PhoneMaker" not in served.data
    assert f'src="{url}"' in client.get("/p/free-ales").text


def test_the_image_s_description_is_its_alt_text_and_can_be_changed(client, session, login):
    login(client, "editor")
    alt = "Ales at his desk, smiling"
    image = (io.BytesIO(jpeg_with_location()), "photo.jpg")
    post_form(client, "/admin/petitions/new", image=image, image_alt=alt)
    refresh(session)
    petition = session.scalar(select(Petition))
    assert petition.image_alt == alt
    page = client.get("/p/free-ales").text
    assert f'class="petition-image" src="{petition.image_url}" alt="{alt}"' in page
    edit = f"/admin/petitions/{petition.id}/edit"
    assert f'value="{alt}"' in client.get(edit).text
    response = post_form(client, edit, image_alt="x" * 301)
    assert response.status_code == 422 and 'id="image_alt-error"' in response.text
    post_form(client, edit, image_alt="")
    refresh(session)
    assert session.get(Petition, petition.id).image_alt == ""  # decorative: alt=""


def test_something_that_is_not_an_image_is_refused_and_nothing_is_saved(client, session, login):
    login(client, "editor")
    fake = io.BytesIO(b"<svg onload=alert(1)></svg>")
    response = post_form(client, "/admin/petitions/new", image=(fake, "x.jpg"))
    assert response.status_code == 422 and 'id="image-error"' in response.text
    refresh(session)
    assert session.scalar(select(Petition)) is None


@pytest.mark.parametrize("name", ["../secret_key", "x.svg", "abc.jpg"])
def test_media_serves_only_stored_images(client, settings, name):
    assert client.get(f"/media/{name}").status_code == 404


def test_owners_export_signatures_as_csv_and_it_is_audited(client, session, login):
    login(client, "owner")
    petition = make_petition(session)
    now = utcnow()
    session.add_all(
        [
            Signature(
                petition_id=petition.id,
                email="a@example.org",
                name='=HYPERLINK("http://evil")',
                source="x",
                created_at=now,
                confirmed_at=now,
            ),
            Signature(petition_id=petition.id, email="b@example.org", name="B", created_at=now),
        ]
    )
    session.commit()
    response = client.get(f"/admin/petitions/{petition.id}/signatures.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["email"] for r in rows] == ["a@example.org", "b@example.org"]
    assert rows[0]["name"].startswith("'=")  # a spreadsheet will not run it
    assert rows[1]["confirmed_at"] == ""
    refresh(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "petition.export"))
    assert event.detail == {"rows": 2} and event.target == f"petition:{petition.id}"


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_owners_may_export(client, session, login, role):
    login(client, role)
    petition = make_petition(session)
    assert client.get(f"/admin/petitions/{petition.id}/signatures.csv").status_code == 403
    assert "petition.export" not in audit_actions(session)


def test_deleting_needs_the_address_typed_and_is_audited(client, session, login):
    login(client, "editor")
    petition_id = make_petition(session).id
    url = f"/admin/petitions/{petition_id}"
    token = csrf_from(client.get(url).text)
    wrong = client.post(f"{url}/delete", data={"csrf_token": token, "confirm_slug": "nope"})
    assert wrong.status_code == 422
    refresh(session)
    assert session.get(Petition, petition_id) is not None
    right = client.post(f"{url}/delete", data={"csrf_token": token, "confirm_slug": "free-them"})
    assert right.status_code == 302
    refresh(session)
    assert session.get(Petition, petition_id) is None
    assert "petition.delete" in audit_actions(session)


def test_petition_stats_by_source_and_per_day(client, session, login):
    login(client, "viewer")
    petition = make_petition(session)
    now = utcnow()
    for i, source in enumerate(["share-x", "share-x", None, "email"]):
        session.add(
            Signature(
                petition_id=petition.id,
                email=f"s{i}@example.org",
                name="S",
                source=source,
                created_at=now,
                confirmed_at=now,
            )
        )
    session.add(Signature(petition_id=petition.id, email="u@example.org", name="U", source="tg"))
    session.commit()
    html = client.get(f"/admin/petitions/{petition.id}").text
    rows = {
        name: int(n) for name, n in re.findall(r"<code>([^<]+)</code></td><td>(\d+)</td>", html)
    }
    assert rows == {"share-x": 2, "(none)": 1, "email": 1}  # the unconfirmed one is not counted
    data = client.get(f"/admin/petitions/{petition.id}/stats.json").get_json()
    assert data["datasets"]["signatures"] == [4] and data["datasets"]["total"] == [4]
    assert data["labels"] == [now.strftime("%d %b %Y")]


def test_an_image_address_is_copied_once_and_served_from_here(
    client, session, login, settings, monkeypatch
):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from clarion.config import reset_settings

    png = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(png, "PNG")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(png.getvalue())))
            self.end_headers()
            self.wfile.write(png.getvalue())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("CLARION_ALLOW_PRIVATE_FETCH", "127.0.0.1/32")  # the operator allows it
    reset_settings()
    try:
        login(client, "editor")
        remote = f"http://127.0.0.1:{server.server_address[1]}/photo.png"
        post_form(client, "/admin/petitions/new", image_url=remote)
    finally:
        server.shutdown()
    refresh(session)
    url = session.scalar(select(Petition.image_url))
    assert url.startswith(f"{settings.base_url}/media/") and url.endswith(".png")
    assert client.get(url.removeprefix(settings.base_url)).data == png.getvalue()
    assert remote not in client.get("/p/free-ales").text
