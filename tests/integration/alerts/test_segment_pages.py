"""The segments admin pages: list in words with users and faults, create, edit, delete (refused
while an unsent alert uses the segment), export of its readers, and who may do what."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import pytest
from markupsafe import escape as html_escape
from sqlalchemy import select

from clarion.alerts import segments
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    AuditEvent,
    Job,
    MailingList,
    Petition,
    Segment,
    Signature,
    Subscriber,
    Subscription,
    SubscriptionStatus,
)
from tests.helpers import csrf_from, refresh, wait_for_job


@dataclass
class World:
    audience: int
    petition: int
    sent: int


@pytest.fixture
def world(session) -> World:
    """Three readers on a list; ana signed the petition; alert "Sent" went out."""
    audience = MailingList(slug="alerts", name="Alerts")
    petition = Petition(slug="p1", title="Free Ales")
    session.add_all([audience, petition])
    session.flush()
    for name, language in (("ana", "ru"), ("ben", "en"), ("cat", "en")):
        reader = Subscriber(uid=f"u-{name}", email=f"{name}@example.org", language=language)
        session.add(reader)
        session.flush()
        session.add(
            Subscription(
                subscriber_id=reader.id, list_id=audience.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
        if name == "ana":
            session.add(
                Signature(
                    uid="s-ana", petition_id=petition.id, email=reader.email, name="Ana",
                    subscriber_id=reader.id, confirmed_at=reader.created_at,
                )
            )  # fmt: skip
    sent = Alert(kind=AlertKind.NEWSLETTER, name="Sent", subject="Sent", fields={}, audience={},
                 status=AlertStatus.SENT)  # fmt: skip
    session.add(sent)
    session.commit()
    return World(audience.id, petition.id, sent.id)


def post_form(client, url, data):
    page = client.get("/admin/account").get_data(as_text=True)
    return client.post(url, data={**data, "csrf_token": csrf_from(page)})


def draft_using(session, world: World, segment_id: int, name: str = "Uses it") -> Alert:
    alert = Alert(
        kind=AlertKind.NEWSLETTER, name=name, subject=name, fields={"body_md": "x"},
        audience={"lists": [world.audience], "conditions": {"all": [
            {"type": "segment", "segment": segment_id}]}},
    )  # fmt: skip
    session.add(alert)
    session.commit()
    return alert


def test_an_editor_creates_lists_edits_and_deletes_a_segment(client, session, login, world):
    login(client, "editor")
    assert client.get("/admin/segments/new").status_code == 200
    typed = json.dumps({"not": {"type": "signed", "petition": world.petition}})
    form = {"name": " Not  signers ", "conditions": typed}
    response = post_form(client, "/admin/segments/new", form)
    assert response.status_code == 302
    refresh(session)
    segment = session.scalar(select(Segment))
    assert (segment.name, segment.conditions) == (
        "Not signers",
        {"not": {"type": "signed", "petition": world.petition}},
    )

    listing = client.get("/admin/segments").get_data(as_text=True)
    assert "Not signers" in listing
    assert html_escape("not (signed “Free Ales”)") in listing
    assert 'data-count-src="/admin/audience-count?' in listing
    # The count the list fills in: readers on any list who meet it (ben and cat).
    src = listing.split('data-count-src="')[1].split('"')[0].replace("&amp;", "&")
    assert client.get(src).get_json()["count"] == 2

    page = client.get(f"/admin/segments/{segment.id}").get_data(as_text=True)
    assert 'id="segment-editor"' in page and 'id="segment-choices"' in page
    assert "No unsent alert uses it." in page

    changed = json.dumps({"type": "signed", "petition": world.petition})
    response = post_form(
        client, f"/admin/segments/{segment.id}", {"name": "Signers", "conditions": changed}
    )
    assert response.status_code == 302
    refresh(session)
    assert session.get(Segment, segment.id).name == "Signers"

    response = post_form(client, f"/admin/segments/{segment.id}/delete", {})
    assert response.status_code == 302
    refresh(session)
    assert session.scalar(select(Segment)) is None
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.action.like("segment.%"))
    ).all()
    assert sorted(actions) == ["segment.create", "segment.delete", "segment.update"]


def test_bad_input_is_named_by_path_and_kept_as_typed(client, session, login, world):
    login(client, "editor")
    typed = '{"all": [{"type": "received"}, {"type": "segment", "segment": 1}]}'
    response = post_form(client, "/admin/segments/new", {"name": "", "conditions": typed})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Give the segment a name" in html
    assert "<code>conditions.all[0].alert</code>: Required." in html
    assert html_escape(typed) in html
    assert session.scalar(select(Segment)) is None


def test_delete_is_refused_while_an_unsent_alert_uses_it_and_says_which(
    client, session, login, world
):
    segment = segments.create(session, None, "Signers", {"type": "signed"})
    session.commit()
    segment_id = segment.id
    alert = draft_using(session, world, segment_id, "Second ask")
    login(client, "editor")
    listing = client.get("/admin/segments").get_data(as_text=True)
    assert f'href="/admin/alerts/{alert.id}">Second ask</a>' in listing

    response = post_form(client, f"/admin/segments/{segment_id}/delete", {})
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert html_escape(f"Unsent alerts use this segment: “Second ask” (#{alert.id})") in page
    refresh(session)
    assert session.get(Segment, segment_id) is not None

    # Once the alert has gone out (its conditions were inlined), the segment may go.
    session.get(Alert, alert.id).status = AlertStatus.SENT
    session.commit()
    assert post_form(client, f"/admin/segments/{segment_id}/delete", {}).status_code == 302
    refresh(session)
    assert session.get(Segment, segment_id) is None


def test_a_broken_segment_is_marked_naming_what_is_missing(client, session, login, world):
    tree = {"any": [{"type": "signed"}, {"type": "received", "alert": world.sent}]}
    segment = segments.create(session, None, "Clicked", tree)
    session.commit()
    session.delete(session.get(Alert, world.sent))
    session.commit()
    login(client, "viewer")
    listing = client.get("/admin/segments").get_data(as_text=True)
    assert 'class="field-error segment-broken"' in listing
    assert (
        f"<code>conditions.any[1].alert</code>: Nothing with id {world.sent}: it may have been "
        "deleted." in listing
    )
    assert html_escape(f"received #{world.sent} (missing)") in listing
    page = client.get(f"/admin/segments/{segment.id}").get_data(as_text=True)
    assert "<code>conditions.any[1].alert</code>" in page


def test_a_viewer_reads_but_cannot_change(client, session, login, world):
    segment = segments.create(session, None, "Signers", {"type": "signed"})
    session.commit()
    login(client, "viewer")
    assert client.get("/admin/segments").status_code == 200
    page = client.get(f"/admin/segments/{segment.id}").get_data(as_text=True)
    assert "<fieldset disabled>" in page and "Save segment" not in page
    assert client.get("/admin/segments/new").status_code == 403
    assert post_form(client, f"/admin/segments/{segment.id}/delete", {}).status_code == 403
    assert post_form(client, f"/admin/segments/{segment.id}/export", {}).status_code == 403


def test_an_owner_exports_a_segments_readers(client, session, login, world, worker):
    segment = segments.create(
        session, None, "Not signers", {"not": {"type": "signed", "petition": world.petition}}
    )
    session.commit()
    login(client, "owner")
    response = post_form(client, f"/admin/segments/{segment.id}/export", {})
    assert response.status_code == 302
    uid = response.headers["Location"].rsplit("/", 1)[1]
    # The worker writes the file (running it here as well would race it for the write lock).
    progress = wait_for_job(client, uid, timeout=60)
    assert progress["status"] == "done", (progress, worker.log.read_text()[-2000:])
    refresh(session)
    job = session.scalar(select(Job).where(Job.uid == uid))
    with open(job.result_path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    assert sorted(r[0] for r in rows[1:]) == ["ben@example.org", "cat@example.org"]
    action = session.scalar(select(AuditEvent.action).where(AuditEvent.action == "segment.export"))
    assert action == "segment.export"


def test_the_live_count_gives_each_language(client, login, world):
    login(client, "viewer")
    answer = client.get("/admin/audience-count", query_string={"lists": world.audience}).get_json()
    assert answer["count"] == 3
    assert answer["languages"] == [["en", "English", 2], ["ru", "Русский", 1]]
