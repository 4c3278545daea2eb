"""Petition alerts made from petitions: the picker fills the fields, the mail shows the image,
count and goal as they were when frozen, and readers who signed are left out unless included."""

from __future__ import annotations

import email
import email.policy
import re
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

import clarion.actions.petitions  # noqa: F401 (registers the petition's progress for the freeze)
from clarion import jobqueue
from clarion.alerts import campaigns
from clarion.config import get_settings, reset_settings
from clarion.db import utcnow
from clarion.delivery import dispatch, sending
from clarion.models import Alert, AlertStatus, Delivery, Petition, Signature, Subscriber
from tests.faultsmtp import FaultServer
from tests.helpers import csrf_from, refresh
from tests.sendkit import InlineQueue, make_audience, make_list

IMAGE = "/media/0123456789abcdef0123456789abcdef.png"
ALT = "Maria behind the bars of the courtroom"


class Parts(HTMLParser):
    """The images, the table cells and the text of frozen HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.cells: list[dict] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "td":
            self.cells.append(dict(attrs))

    def handle_data(self, data):
        if data.strip():
            self.text.append(" ".join(data.split()))


def make_petition(session, **values) -> Petition:
    base = get_settings().base_url
    petition = Petition(
        slug=values.pop("slug", "free-maria"),
        title=values.pop("title", "Free Maria Kalesnikava"),
        target=values.pop("target", "The Supreme Court"),
        body_md="She must be freed.",
        goal=values.pop("goal", 10),
        image_url=values.pop("image_url", base + IMAGE),
        image_alt=values.pop("image_alt", ALT),
        **values,
    )
    session.add(petition)
    session.commit()
    return petition


def sign(session, petition: Petition, email_: str, *, subscriber_id=None, confirmed=True):
    session.add(
        Signature(
            petition_id=petition.id,
            email=email_,
            name="Signer",
            subscriber_id=subscriber_id,
            confirmed_at=utcnow() if confirmed else None,
        )
    )
    session.commit()


def petition_draft(petition: Petition, list_ids: list[int], **extra) -> campaigns.Draft:
    return campaigns.Draft(
        kind="petition",
        subject="Sign for Maria",
        fields={"petition_id": str(petition.id), "why": "She has been held for **two years**."},
        lists=list_ids,
        **extra,
    )


def test_create_an_alert_from_a_petitions_page_fills_the_form(client, session, login, lists):
    login(client, "editor")
    petition = make_petition(session)
    page = client.get(f"/admin/petitions/{petition.id}").get_data(as_text=True)
    link = f"/admin/alerts/new?kind=petition&amp;petition={petition.id}"
    assert f'href="{link}" id="create-alert"' in page
    form = client.get(link.replace("&amp;", "&"))
    assert form.status_code == 200
    html = form.get_data(as_text=True)
    assert f'<option value="{petition.id}" selected>Free Maria Kalesnikava</option>' in html
    base = get_settings().base_url
    for name, value in {
        "subject": "Free Maria Kalesnikava",
        "petition_url": f"{base}/p/free-maria",
        "petition_title": "Free Maria Kalesnikava",
        "target": "The Supreme Court",
        "image_url": base + IMAGE,
        "image_alt": ALT,
    }.items():
        field = rf'<input id="{name}" name="{name}"[^>]* value="{re.escape(value)}"'
        assert re.search(field, html), name
    assert 'name="include_signers"' in html and 'id="skipped-count"' in html

    # Saved with only the pick and the text: what the petition gives is stored with it.
    token = csrf_from(html)
    response = client.post(
        "/admin/alerts/new",
        data={
            "csrf_token": token,
            "kind": "petition",
            "subject": "Sign for Maria",
            "petition_id": str(petition.id),
            "why": "Two years without a word.",
            "lists": [str(lists["alerts"].id)],
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    refresh(session)
    alert = session.scalar(select(Alert))
    assert alert.fields["petition_url"] == f"{base}/p/free-maria"
    assert alert.fields["petition_title"] == "Free Maria Kalesnikava"
    assert alert.fields["image_url"] == base + IMAGE and alert.fields["image_alt"] == ALT
    assert alert.audience["skip_signers_of"] == petition.id


def test_a_petition_that_does_not_exist_is_named(client, session, login, lists):
    login(client, "editor")
    response = client.get("/admin/alerts/new?kind=petition&petition=999")
    assert response.status_code == 404
    assert "The chosen petition no longer exists" in response.get_data(as_text=True)


def test_hand_written_petition_alerts_still_save_and_render(session, lists):
    draft = campaigns.Draft(
        kind="petition",
        subject="Sign",
        fields={
            "petition_url": "https://act.example.org/free-maria",
            "petition_title": "Free Maria",
            "why": "Because.",
        },
        lists=[lists["alerts"].id],
    )
    alert = campaigns.create_draft(session, None, draft)
    session.commit()
    assert "skip_signers_of" not in alert.audience
    mail = campaigns.render_preview(session, alert)
    assert "https://act.example.org/free-maria" in mail.html and "signatures of" not in mail.html


def test_the_frozen_mail_shows_image_count_and_goal_bar(session, lists, subscribed):
    petition = make_petition(session, goal=10)
    for i in range(3):
        sign(session, petition, f"signer{i}@example.org")
    sign(session, petition, "waiting@example.org", confirmed=False)  # not counted
    alert = campaigns.create_draft(session, None, petition_draft(petition, [lists["alerts"].id]))
    session.commit()
    sending.start(session, alert)
    session.commit()
    sign(session, petition, "later@example.org")  # after the freeze: the mail keeps 3
    refresh(session)
    alert = session.get(Alert, alert.id)
    parts = Parts(alert.frozen_html)
    image = next(i for i in parts.images if i.get("src", "").endswith(IMAGE))
    assert image["alt"] == ALT
    assert "3 signatures of 10" in parts.text
    bar = [c for c in parts.cells if c.get("height") == "12"]
    assert [(c["width"], c["bgcolor"]) for c in bar] == [("30%", "#b3261e"), ("70%", "#d9dde3")]
    assert "3 signatures of 10" in alert.frozen_text


def test_the_preview_shows_the_bar_in_the_readers_language(session, lists):
    petition = make_petition(session, goal=4)
    for i in range(4):
        sign(session, petition, f"s{i}@example.org")
    draft = petition_draft(petition, [lists["alerts"].id], language="ru")
    alert = campaigns.create_draft(session, None, draft)
    session.commit()
    parts = Parts(campaigns.render_preview(session, alert).html)
    assert "4 подписи из 4" in parts.text
    assert [c["width"] for c in parts.cells if c.get("height") == "12"] == ["100%"]


def readers_and_signatures(session, lists):
    """Five readers on the alerts list; two signed the petition (one by subscriber id under
    another address, one by address), one only started, one signed another petition."""
    ids = make_audience(session, lists["alerts"], 5)
    petition = make_petition(session)
    other = make_petition(session, slug="other", title="Another")
    sign(session, petition, "elsewhere@example.org", subscriber_id=ids[0])
    sign(session, petition, "r1@example.org")
    sign(session, petition, "r2@example.org", confirmed=False)
    sign(session, other, "r3@example.org", subscriber_id=ids[3])
    return ids, petition


def test_signers_are_left_out_and_counted(client, session, login, lists):
    ids, petition = readers_and_signatures(session, lists)
    alert = campaigns.create_draft(session, None, petition_draft(petition, [lists["alerts"].id]))
    session.commit()
    assert campaigns.audience_count(session, alert.audience) == 3
    assert campaigns.skipped_signers(session, alert.audience) == 2
    recipients = session.scalars(sending.audience_ids(session, alert.audience)).all()
    assert recipients == [ids[2], ids[3], ids[4]]

    login(client, "editor")
    page = client.get(f"/admin/alerts/{alert.id}").get_data(as_text=True)
    assert "2 readers who already signed the petition are left out." in page
    live = client.get(
        f"/admin/audience-count?lists={lists['alerts'].id}&petition_id={petition.id}"
    ).get_json()
    assert (live["count"], live["skipped"]) == (3, 2)
    included = client.get(
        f"/admin/audience-count?lists={lists['alerts'].id}&petition_id={petition.id}"
        "&include_signers=on"
    ).get_json()
    assert (included["count"], included["skipped"]) == (5, 0)


def test_the_editor_can_include_signers(client, session, login, lists):
    _ids, petition = readers_and_signatures(session, lists)
    draft = petition_draft(petition, [lists["alerts"].id], include_signers=True)
    alert = campaigns.create_draft(session, None, draft)
    session.commit()
    assert alert.audience.get("include_signers") is True
    assert "skip_signers_of" not in alert.audience
    assert campaigns.audience_count(session, alert.audience) == 5
    assert campaigns.Draft.from_alert(alert).include_signers is True

    login(client, "editor")
    form = client.get(f"/admin/alerts/{alert.id}/edit").get_data(as_text=True)
    assert 'name="include_signers" id="include_signers" checked' in form
    # Unticked and saved: the signers are left out again.
    data = {
        "csrf_token": csrf_from(form),
        "subject": "Sign for Maria",
        "petition_id": str(petition.id),
        "why": "Still held.",
        "lists": [str(lists["alerts"].id)],
    }
    assert client.post(f"/admin/alerts/{alert.id}/edit", data=data).status_code == 302
    refresh(session)
    assert session.get(Alert, alert.id).audience["skip_signers_of"] == petition.id


@pytest.fixture
def queue():
    q = InlineQueue()
    previous = jobqueue.set_backend(q)
    yield q
    jobqueue.set_backend(previous)


def test_a_real_send_reaches_no_signer(session, settings, queue, monkeypatch):
    alerts = make_list(session, "alerts", name="Urgent actions")
    ids = make_audience(session, alerts, 6)
    petition = make_petition(session)
    sign(session, petition, "elsewhere@example.org", subscriber_id=ids[0])
    sign(session, petition, "r1@example.org")
    alert = campaigns.create_draft(session, None, petition_draft(petition, [alerts.id]))
    session.commit()
    with FaultServer(keep=True) as server:
        monkeypatch.setenv("CLARION_SMTP_URL", server.url)
        reset_settings()
        sending.start(session, alert)
        session.commit()
        # Signed between the start and the ledger: left out too (the ledger is written later).
        sign(session, petition, "r2@example.org")
        dispatch.enqueue_dispatch(alert.id)
        queue.drain(timeout=60)
    refresh(session)
    alert = session.get(Alert, alert.id)
    assert alert.status == AlertStatus.SENT and alert.recipients == 3
    reached = set(server.handler.counts)
    assert reached == {"r3@example.org", "r4@example.org", "r5@example.org"}
    in_ledger = session.scalars(
        select(Subscriber.email).join(Delivery).where(Delivery.alert_id == alert.id)
    ).all()
    assert sorted(in_ledger) == ["r3@example.org", "r4@example.org", "r5@example.org"]
    _from, _rcpt, raw = server.handler.messages[0]
    html = email.message_from_bytes(raw, policy=email.policy.default).get_body(("html",))
    assert "2 signatures of 10" in " ".join(Parts(html.get_content()).text)


def test_a_version_shows_the_petitions_title_unless_it_writes_its_own(session, lists):
    petition = make_petition(session, goal=10)
    sign(session, petition, "s@example.org")
    draft = petition_draft(petition, [lists["alerts"].id])
    draft.translations = {
        "ru": {"subject": "Подпишите", "fields": {"why": "Два года без вестей."}},
        "be": {"subject": "Падпішыце", "fields": {"why": "Два гады.", "petition_title": "Волю!"}},
    }
    alert = campaigns.create_draft(session, None, draft)
    session.commit()
    ru, be = alert.translations["ru"]["fields"], alert.translations["be"]["fields"]
    assert ru["petition_title"] == "Free Maria Kalesnikava" and be["petition_title"] == "Волю!"
    # The pick, its address and image are the primary's: no version holds its own.
    assert not {"petition_id", "petition_url", "image_url"} & (set(ru) | set(be))
    base = get_settings().base_url
    parts = Parts(campaigns.render_preview(session, alert, "be").html)
    assert "Волю!" in parts.text and "1 подпіс з 10" in parts.text
    assert any(i.get("src") == base + IMAGE and i.get("alt") == ALT for i in parts.images)


def test_an_alert_whose_petition_was_deleted_is_not_sent_and_says_why(session, lists, subscribed):
    from clarion.errors import ValidationError

    petition = make_petition(session)
    alert = campaigns.create_draft(session, None, petition_draft(petition, [lists["alerts"].id]))
    session.commit()
    session.delete(petition)
    session.commit()
    with pytest.raises(ValidationError) as refused:
        sending.start(session, alert)
    assert "no longer exists" in refused.value.errors["petition_id"]
    session.rollback()
    assert session.get(Alert, alert.id).status == AlertStatus.DRAFT
