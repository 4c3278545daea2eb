"""The campaign's identity: edited by owners (audited), shown by public pages and every mail."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import select

from clarion.alerts import identity, media
from clarion.audience import notices, subscribers
from clarion.audience.subscribers import SubscribeRequest
from clarion.delivery import sending
from clarion.models import AuditEvent, ConsentRecord
from tests.helpers import csrf_from, refresh
from tests.sendkit import make_alert, make_audience, make_list

FORM = {
    "name": "Justice for Ales",
    "accent": "#0b5394",
    "blog_url": "https://blog.example.org/",
    "privacy_url": "https://blog.example.org/privacy",
    "postal": "PO Box 17, 01001 Vilnius",
    "sender_name": "Justice for Ales",
    "sender_email": "news@free.example.org",
}


def gps_jpeg() -> bytes:
    """A photo whose EXIF says where it was taken."""
    exif = Image.Exif()
    exif[0x8825] = {2: (54.0, 41.0, 0.0)}  # GPSInfo: latitude
    out = io.BytesIO()
    Image.new("RGB", (400, 120), (11, 83, 148)).save(out, "JPEG", exif=exif)
    assert b"Exif" in out.getvalue()
    return out.getvalue()


@pytest.fixture
def campaign(session, make_editor):
    """The identity of FORM saved by an owner."""
    owner, _ = make_editor("owner", "boss@example.org")
    saved = identity.save(session, owner, FORM, io.BytesIO(gps_jpeg()))
    session.commit()
    return saved


def test_owners_set_the_identity_audited_and_a_refused_form_keeps_what_was_typed(
    client, session, login, settings
):
    login(client, "owner")
    page = client.get("/admin/settings/identity").get_data(as_text=True)
    # CLARION_SITE_NAME and CLARION_FROM are the first defaults.
    assert f'value="{settings.site_name}"' in page and 'name="logo"' in page
    typed = {**FORM, "csrf_token": csrf_from(page), "accent": "#999999", "blog_url": "blog"}
    refused = client.post("/admin/settings/identity", data=typed)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "2.84:1" in html and "4.5:1" in html  # the ratio, and what is needed
    assert 'value="#999999"' in html and 'value="PO Box 17, 01001 Vilnius"' in html
    assert 'value="blog"' in html and "https://" in html
    refresh(session)
    assert identity.load(session).name == settings.site_name
    good = {**typed, **FORM, "logo": (io.BytesIO(gps_jpeg()), "me.jpg")}
    saved = client.post("/admin/settings/identity", data=good, content_type="multipart/form-data")
    assert saved.status_code == 302
    refresh(session)
    now = identity.load(session)
    assert (now.name, now.accent, now.postal) == ("Justice for Ales", "#0b5394", FORM["postal"])
    stored = (media.media_dir(settings.instance_dir) / now.logo).read_bytes()
    assert b"Exif" not in stored  # re-encoded: no position survives
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.identity"))
    assert event.detail["old"]["name"] == settings.site_name
    assert event.detail["new"]["privacy_url"] == FORM["privacy_url"]
    assert event.detail["new"]["logo"] == now.logo


def test_a_bad_logo_is_refused_and_the_rest_kept(client, session, login):
    login(client, "owner")
    page = client.get("/admin/settings/identity").get_data(as_text=True)
    form = {**FORM, "csrf_token": csrf_from(page), "logo": (io.BytesIO(b"%PDF-1.4"), "x.pdf")}
    refused = client.post("/admin/settings/identity", data=form, content_type="multipart/form-data")
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "JPEG, PNG, GIF or WebP" in html and 'value="Justice for Ales"' in html
    refresh(session)
    assert identity.load(session).logo == ""


def test_editors_may_not_change_the_identity(client, login):
    login(client, "editor")
    assert client.get("/admin/settings/identity").status_code == 403


def test_public_pages_show_the_logo_and_name_linking_to_the_blog_and_the_privacy_link(
    client, campaign
):
    html = client.get("/subscribe").get_data(as_text=True)
    assert '<a class="site-brand" href="https://blog.example.org/">' in html
    assert f'src="/media/{campaign.logo}"' in html
    assert "Subscribe to Justice for Ales" in html and "Subscribe to Free Them All" not in html
    assert '<a href="https://blog.example.org/privacy">Privacy policy</a>' in html
    assert "PO Box 17, 01001 Vilnius" in html
    feed = client.get("/archive.rss").get_data(as_text=True)
    assert "<title>Justice for Ales: archive</title>" in feed
    css = client.get("/identity.css?v=0b5394").get_data(as_text=True)
    assert "--pico-primary-background:#0b5394;" in css


def test_the_confirmation_comes_from_the_default_sender_and_names_the_campaign(
    session, lists, campaign, smtp_sink
):
    outcome = subscribers.subscribe(
        session, SubscribeRequest("ana@example.org", [lists["alerts"].id])
    )
    session.commit()
    smtp_sink.clear()
    assert notices.send_confirmation(session, outcome.consent_id, None)
    session.commit()
    [mail] = smtp_sink.wait_for(1)
    assert mail.message["From"] == "Justice for Ales <news@free.example.org>"
    assert mail.subject == "Please confirm your subscription to Justice for Ales"
    assert "PO Box 17, 01001 Vilnius" in mail.text and FORM["privacy_url"] in mail.text
    assert f'href="{FORM["privacy_url"]}"' in mail.html
    assert f"/media/{campaign.logo}" in mail.html  # the logo header
    assert "#0b5394" in mail.html  # the button in the accent colour
    assert "localhost" not in mail.message["From"]
    assert session.get(ConsentRecord, outcome.consent_id) is not None


def test_a_frozen_alert_carries_the_identity_and_the_default_sender(session, campaign):
    alerts_list = make_list(session, "urgent", name="Urgent alerts")
    make_audience(session, alerts_list, 1)
    alert = make_alert(session, [alerts_list])
    sending.freeze_alert(session, alert, sending.check_sendable(session, alert))
    assert alert.frozen_meta["from"] == "Justice for Ales <news@free.example.org>"
    assert "You receive this from Justice for Ales (Urgent alerts)" in alert.frozen_text
    assert "Free Them All" not in alert.frozen_text  # CLARION_SITE_NAME is only a default
    assert "PO Box 17, 01001 Vilnius" in alert.frozen_text
    # Who reads the privacy policy is nobody's business: its link is left direct.
    assert FORM["privacy_url"] not in alert.frozen_links
    assert f'href="{FORM["privacy_url"]}"' in alert.frozen_html
    assert "color: #0b5394" in alert.frozen_html  # links in the accent
    assert f"/media/{campaign.logo}" in alert.frozen_html
