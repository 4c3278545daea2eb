"""Every state change of a send, what it writes and what it refuses, one behaviour a test.

The focused tests of `clarion/delivery/sending.py`: the state machine's moves and refusals, the
checks before a send, the freeze's sender, the pause/resume/cancel side effects on the ledger,
the send to those not yet reached, and the progress a terminal and the admin show.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select

import clarion.actions.petitions  # noqa: F401 (registers petitions' count for the freeze)
from clarion import outbox
from clarion.alerts import freeze, identity, kinds, segments, versions
from clarion.config import get_settings
from clarion.db import session_factory, utcnow
from clarion.delivery import rates, sending
from clarion.errors import InvalidTransition, NotFound, ValidationError
from clarion.models import (
    Alert,
    AlertKind,
    AlertRole,
    AlertStatus,
    AppSetting,
    AuditEvent,
    BatchState,
    Delivery,
    DeliveryBatch,
    DeliveryStatus,
    MailingList,
    Petition,
    Signature,
    Subscription,
    WebhookEndpoint,
    WebhookEvent,
)
from clarion.tracking import opens
from tests.sendkit import make_alert, make_audience, make_list

S = AlertStatus
BELARUSIAN = {
    "subject": "1000 дзён: напішыце Алесю",
    "fields": {"body_md": "Пішыце Алесю: https://blog.example.org/write?to=ales&lang=be."},
}
SERIES_STEP = "This alert is a step of a series: each reader gets it when the series reaches them."
REFUSED_WORDS = {
    "start": "Only a draft or a scheduled alert can be sent; this one is {}.",
    "pause": "Only an alert that is sending can be paused; this one is {}.",
    "resume": "Only a paused alert can be resumed; this one is {}.",
    "cancel": "Only a scheduled, sending or paused alert can be cancelled; this one is {}.",
    "finish": "Only an alert that is sending can finish; this one is {}.",
    "unschedule": "Only a scheduled alert can go back to draft; this one is {}.",
}
ALLOWED = {
    "start": ({S.DRAFT, S.SCHEDULED}, S.SENDING),
    "pause": ({S.SENDING}, S.PAUSED),
    "resume": ({S.PAUSED}, S.SENDING),
    "cancel": ({S.SCHEDULED, S.SENDING, S.PAUSED}, S.CANCELLED),
    "finish": ({S.SENDING}, S.SENT),
    "unschedule": ({S.SCHEDULED}, S.DRAFT),
}


# Its moves publish dispatch and webhook tasks: kept, not run (tests/integration/conftest.py).
pytestmark = pytest.mark.usefixtures("kept_tasks")


@pytest.fixture
def readers(session):
    """A list with three subscribed readers."""
    alerts = make_list(session)
    make_audience(session, alerts, 3)
    return alerts


def _alert_in(session, mailing_list, status: AlertStatus, **values) -> Alert:
    alert = make_alert(session, [mailing_list], **values)
    alert.status = status
    session.commit()
    return alert


def _audit(session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _stored_status(session, alert_id: int) -> AlertStatus:
    return session.scalar(select(Alert.status).where(Alert.id == alert_id))


# --- The state machine ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a, (sources, _) in ALLOWED.items() for s in S if s not in sources],
)
def test_a_move_from_a_state_it_does_not_start_from_is_refused_and_changes_nothing(
    session, readers, action, status
):
    alert = _alert_in(session, readers, status, status_reason="as it was")
    with pytest.raises(InvalidTransition) as refusal:
        sending.transition(session, alert, action, reason="new reason")
    assert str(refusal.value) == REFUSED_WORDS[action].format(status.value)
    session.commit()
    session.expire_all()
    assert (alert.status, alert.status_reason) == (status, "as it was")


@pytest.mark.parametrize(
    ("action", "status"),
    [(a, s) for a, (sources, _) in ALLOWED.items() for s in sorted(sources)],
)
def test_a_move_from_each_state_it_allows_reaches_its_state_with_the_reason(
    session, readers, action, status
):
    alert = _alert_in(session, readers, status)
    before = alert.updated_at
    sending.transition(session, alert, action, reason="because", recipients=7)
    session.commit()
    session.expire_all()
    target = ALLOWED[action][1]
    assert (alert.status, alert.status_reason, alert.recipients) == (target, "because", 7)
    assert alert.updated_at >= before


def test_a_move_without_a_reason_clears_the_one_before(session, readers):
    alert = _alert_in(session, readers, S.PAUSED, status_reason="Paused by the delivery engine.")
    sending.transition(session, alert, "resume")
    session.commit()
    session.expire_all()
    assert (alert.status, alert.status_reason) == (S.SENDING, "")


def test_two_editors_racing_get_one_move_and_one_refusal_naming_the_state(settings, readers):
    factory = session_factory(settings.database_url)
    # The second editor loaded the alert before the first paused it, and holds no lock since.
    first, second = factory(), factory(expire_on_commit=False)
    try:
        alert_id = _alert_in(first, readers, S.SENDING).id
        first.commit()
        theirs = second.get(Alert, alert_id)
        second.commit()
        assert theirs.status == S.SENDING  # the second editor's page still says "sending"
        mine = first.get(Alert, alert_id)
        sending.pause(first, mine)
        first.commit()
        with pytest.raises(InvalidTransition, match="can be paused; this one is paused"):
            sending.pause(second, theirs)
        second.rollback()
        assert _stored_status(second, alert_id) == S.PAUSED
    finally:
        first.close()
        second.close()


def test_webhooks_hear_of_a_send_starting_and_ending_but_not_of_an_unstarted_cancel(
    session, readers
):
    session.add(
        WebhookEndpoint(
            url="https://crm.example.org/hook",
            events=["alert.started", "alert.finished"],
            secret="whsec_test",
        )
    )
    session.commit()
    sent = make_alert(session, [readers])
    sending.start(session, sent)
    session.commit()
    sending.transition(session, sent, "finish")
    never_started = _alert_in(session, readers, S.SCHEDULED, name="Later")
    sending.cancel(session, never_started)
    cancelled = make_alert(session, [readers], name="Stopped")
    sending.start(session, cancelled)
    session.commit()
    sending.cancel(session, cancelled)
    session.commit()
    events = [
        (e.type, e.payload) for e in session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
    ]
    assert events == [
        ("alert.started", {"alert_id": sent.id, "uid": sent.uid, "status": "sending"}),
        ("alert.finished", {"alert_id": sent.id, "uid": sent.uid, "status": "sent"}),
        ("alert.started", {"alert_id": cancelled.id, "uid": cancelled.uid, "status": "sending"}),
        ("alert.finished", {"alert_id": cancelled.id, "uid": cancelled.uid, "status": "cancelled"}),
    ]


def test_a_pause_and_a_resume_tell_the_webhooks_nothing(session, readers):
    # An endpoint that wants every event: a pause or a resume must still tell it nothing.
    every = sorted(outbox.EVENTS)
    session.add(WebhookEndpoint(url="https://crm.example.org/hook", events=every, secret="whsec"))
    alert = _alert_in(session, readers, S.SENDING)
    sending.pause(session, alert)
    sending.resume(session, alert)
    session.commit()
    assert session.scalars(select(WebhookEvent)).all() == []


# --- Start ------------------------------------------------------------------------------------


def test_start_freezes_sets_the_clock_and_records_who_sent_it(session, readers, make_editor):
    editor = make_editor("editor")[0]
    alert = _alert_in(session, readers, S.SCHEDULED, finished_at=utcnow(), recipients=99)
    before = utcnow()
    sending.start(session, alert, editor, ip="192.0.2.7")
    session.commit()
    session.expire_all()
    assert alert.status == S.SENDING and alert.frozen_at is not None
    assert alert.started_at >= before - timedelta(seconds=1)
    assert (alert.finished_at, alert.recipients) == (None, 0)
    [event] = _audit(session, "alert.send")
    assert (event.editor_id, event.target, event.ip) == (
        editor.id,
        f"alert:{alert.id}",
        "192.0.2.7",
    )
    assert event.detail == {"subject": alert.subject}


@pytest.mark.parametrize("status", [S.SENDING, S.PAUSED, S.SENT, S.CANCELLED])
def test_start_refuses_an_alert_that_is_not_a_draft_or_scheduled_before_freezing(
    session, readers, status
):
    alert = _alert_in(session, readers, status)
    with pytest.raises(InvalidTransition) as refusal:
        sending.start(session, alert)
    assert str(refusal.value) == REFUSED_WORDS["start"].format(status.value)
    assert alert.frozen_at is None and _audit(session, "alert.send") == []


def test_start_refuses_a_series_step(session, readers):
    alert = make_alert(session, [readers], role=AlertRole.SERIES_STEP)
    with pytest.raises(InvalidTransition) as refusal:
        sending.start(session, alert)
    assert str(refusal.value) == SERIES_STEP
    assert alert.frozen_at is None and _stored_status(session, alert.id) == S.DRAFT


def test_a_scheduled_alert_that_cannot_be_sent_goes_back_to_draft_saying_when_and_why(
    session, readers
):
    when = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    alert = _alert_in(session, readers, S.SCHEDULED, subject="  ", scheduled_at=when)
    assert sending.start_scheduled(session, alert) is False
    session.commit()
    session.expire_all()
    assert (alert.status, alert.scheduled_at) == (S.DRAFT, None)
    assert alert.status_reason == (
        "The send scheduled for 2026-12-04 09:30 UTC did not start: "
        "subject: Write a subject before sending."
    )
    [event] = _audit(session, "alert.schedule_failed")
    assert event.editor_id is None and event.detail == {"reason": alert.status_reason}
    assert event.target == f"alert:{alert.id}"


def test_a_scheduled_alert_that_can_be_sent_starts(session, readers):
    alert = _alert_in(session, readers, S.SCHEDULED, scheduled_at=utcnow())
    assert sending.start_scheduled(session, alert) is True
    assert alert.status == S.SENDING and _audit(session, "alert.schedule_failed") == []


# --- What a send needs ----------------------------------------------------------------------


def test_every_problem_of_an_alert_is_named_at_once(session, readers):
    alert = make_alert(session, [readers], subject=" ", audience={"lists": []})
    with pytest.raises(ValidationError) as refused:
        sending.check_sendable(session, alert)
    assert refused.value.errors == {
        "subject": "Write a subject before sending.",
        "audience": "Choose at least one list to send to.",
    }


def test_a_list_nobody_is_subscribed_to_is_refused_as_having_no_one_to_send_to(session, readers):
    empty = make_list(session, "empty")
    alert = make_alert(session, [empty])
    with pytest.raises(ValidationError) as refused:
        sending.check_sendable(session, alert)
    assert refused.value.errors == {
        "audience": "Nobody in this audience is subscribed: there is no one to send to."
    }
    assert sending.audience_size(session, {"lists": [empty.id]}) == 0
    assert sending.audience_size(session, {"lists": [readers.id, empty.id]}) == 3


def test_an_audience_is_cleaned_into_sorted_distinct_ids_and_codes(session, readers):
    other = make_list(session, "other")
    raw = {
        "lists": [str(other.id), readers.id, other.id],
        "tags": ["4", 2, 4],
        "languages": ["ru", "be", "ru"],
        "skip_signers_of": "5",
    }
    assert sending.clean_audience(session, raw) == {
        "lists": sorted([readers.id, other.id]),
        "tags": [2, 4],
        "languages": ["be", "ru"],
        "skip_signers_of": 5,
    }
    assert sending.clean_audience(session, {"lists": [readers.id]}) == {
        "lists": [readers.id],
        "tags": [],
        "languages": [],
    }


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"lists": ["urgent"]}, "Lists and tags must be given by their ids."),
        ({"lists": [1], "tags": ["x"]}, "Lists and tags must be given by their ids."),
        ({"lists": [1], "skip_signers_of": "p"}, "Lists and tags must be given by their ids."),
        (None, "Choose at least one list to send to."),
        ({"lists": [987654]}, "One of the chosen lists no longer exists."),
    ],
)
def test_an_audience_that_cannot_be_sent_to_says_what_to_fix(session, readers, raw, words):
    with pytest.raises(ValidationError) as refused:
        sending.clean_audience(session, raw)
    assert refused.value.errors == {"audience": words}


def test_conditions_are_checked_and_each_saved_segment_is_frozen_as_it_is_now(session, readers):
    russian = segments.create(session, None, "Russian", {"type": "language", "languages": ["ru"]})
    raw = {
        "lists": [readers.id],
        "conditions": {
            "any": [{"type": "segment", "segment": russian.id}, {"type": "tag", "tags": [987]}]
        },
    }
    with pytest.raises(ValidationError) as refused:
        sending.clean_audience(session, raw)  # tag 987 does not exist
    assert list(refused.value.errors) == ["conditions.any[1].tags"]
    raw["conditions"]["any"][1] = {"type": "language", "languages": ["be"]}
    assert sending.clean_audience(session, raw)["conditions"] == {
        "any": [
            {"type": "language", "languages": ["ru"]},
            {"type": "language", "languages": ["be"]},
        ]
    }
    with pytest.raises(ValidationError) as refused:
        sending.clean_audience(session, {"lists": [readers.id], "conditions": {"type": "x"}})
    assert list(refused.value.errors) == ["conditions.type"]


def test_a_known_list_beside_a_deleted_one_is_still_refused(session, readers):
    gone = make_list(session, "gone")
    gone_id = gone.id
    session.execute(delete(MailingList).where(MailingList.id == gone_id))
    session.commit()
    with pytest.raises(ValidationError, match="no longer exists"):
        sending.clean_audience(session, {"lists": [readers.id, gone_id]})


# --- The freeze's sender --------------------------------------------------------------------


def test_the_sending_list_gives_from_reply_to_and_list_id(session, readers):
    campaign = make_list(
        session,
        "campaign",
        name="Campaign news",
        from_name="Free Ales",
        from_email="news@example.org",
        reply_to="team@example.org",
    )
    make_audience(session, campaign, 1, prefix="c")
    alert = make_alert(session, [readers, campaign], sender_list_id=campaign.id)
    sending.start(session, alert)
    meta = alert.frozen_meta
    assert meta["from"] == "Free Ales <news@example.org>"
    assert meta["reply_to"] == "team@example.org"
    assert meta["list"] == {"id": campaign.id, "slug": "campaign", "name": "Campaign news"}
    assert meta["audience"]["lists"] == sorted([readers.id, campaign.id])


def test_without_a_sending_list_the_first_list_names_the_mail_and_the_campaign_sends_it(
    session, readers
):
    alert = make_alert(session, [readers])
    sending.start(session, alert)
    meta = alert.frozen_meta
    assert meta["list"]["id"] == readers.id and meta["reply_to"] is None
    assert "<" in meta["from"] and "news@example.org" not in meta["from"]


def test_a_sending_list_without_a_name_of_its_own_borrows_the_campaigns(session, readers):
    named = make_list(session, "named", from_email="news@example.org")
    alert = make_alert(session, [readers], sender_list_id=named.id)
    sending.start(session, alert)
    campaign = identity.load(session)
    assert alert.frozen_meta["from"] == f"{campaign.sender_name} <news@example.org>"


def test_a_deleted_sending_list_leaves_the_first_list_of_the_audience_to_send(session, readers):
    doomed = make_list(session, "doomed", from_email="doomed@example.org")
    doomed_id = doomed.id
    alert = make_alert(session, [readers], sender_list_id=doomed_id)
    session.execute(delete(MailingList).where(MailingList.id == doomed_id))
    session.commit()
    session.expire_all()
    sending.start(session, alert)
    assert alert.frozen_meta["list"]["id"] == readers.id
    assert "doomed@example.org" not in alert.frozen_meta["from"]


def test_one_version_is_fingerprinted_by_its_own_hash_and_several_by_their_hashes_together(
    session, readers
):
    single = make_alert(session, [readers])
    sending.start(session, single)
    assert re.fullmatch(r"[0-9a-f]{64}", single.frozen_hash)
    twin = make_alert(session, [readers], name="Twin")
    sending.start(session, twin)
    assert twin.frozen_hash == single.frozen_hash  # the same content, the same fingerprint
    body = {"body_md": "Пішыце Алесю."}
    both = make_alert(
        session,
        [readers],
        name="Both",
        translations={"be": {"subject": "1000 дзён", "fields": body}},
    )
    sending.start(session, both)
    assert set(both.frozen_versions) == {"be"}
    assert both.frozen_hash not in {single.frozen_hash, hashlib.sha256(b"").hexdigest()}
    assert re.fullmatch(r"[0-9a-f]{64}", both.frozen_hash)


def _fingerprint(version: dict) -> str:
    """A version's hash as the freeze computes it: its subject, HTML, text and links."""
    parts = [version["subject"], version["html"], version["text"], version["links"]]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def test_the_fingerprint_is_the_one_versions_hash_or_that_of_every_version_together(
    session, readers
):
    single = make_alert(session, [readers])
    sending.start(session, single)
    primary = {
        "subject": single.frozen_subject,
        "html": single.frozen_html,
        "text": single.frozen_text,
        "links": single.frozen_links,
    }
    # As before alerts had versions: workers key their cached skeletons on it.
    assert single.frozen_hash == _fingerprint(primary)
    both = make_alert(session, [readers], name="Both", translations={"be": BELARUSIAN})
    sending.start(session, both)
    be = {**both.frozen_versions["be"], "links": both.frozen_links}
    together = f"en:{_fingerprint(primary)} be:{_fingerprint(be)}"
    assert both.frozen_hash == hashlib.sha256(together.encode()).hexdigest()


def test_the_freeze_keeps_the_primary_language_and_each_version_in_its_own_words(session, readers):
    alert = make_alert(session, [readers], translations={"be": BELARUSIAN})
    sending.start(session, alert)
    assert alert.frozen_meta["language"] == "en"
    assert alert.frozen_subject == "1,000 days: write to Ales"
    be = alert.frozen_versions["be"]
    assert be["subject"] == "1000 дзён: напішыце Алесю"
    assert "Пішыце Алесю" in be["html"] and "Пішыце Алесю" not in alert.frozen_html


def test_a_versions_problem_is_named_with_its_language_and_the_primarys_is_not(session, readers):
    empty = {"subject": "1000 дзён", "fields": {"body_md": " "}}
    alert = make_alert(session, [readers], translations={"be": empty})
    with pytest.raises(ValidationError) as refused:
        sending.start(session, alert)
    with pytest.raises(ValidationError) as primary:
        kinds.validate_fields(AlertKind.NEWSLETTER, {"body_md": " "})
    [(field, words)] = primary.value.errors.items()
    assert refused.value.errors == {f"be.{field}": f"{versions.label('be')} version: {words}"}
    assert alert.frozen_at is None and _stored_status(session, alert.id) == S.DRAFT
    broken = make_alert(session, [readers], name="Broken", layout_mjml="<mjml><mj-body>")
    with pytest.raises(ValidationError) as refused:
        sending.start(session, broken)
    assert list(refused.value.errors) == ["layout"]


def test_a_custom_layout_and_the_preview_text_reach_the_frozen_mail(session, readers):
    layout = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>OUR OWN LAYOUT {{ body_md_html | safe }}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    custom = make_alert(session, [readers], layout_mjml=layout, preheader="Ales needs letters")
    sending.start(session, custom)
    assert "OUR OWN LAYOUT" in custom.frozen_html
    plain = make_alert(session, [readers], name="Plain", preheader="Ales needs letters")
    sending.start(session, plain)
    assert "OUR OWN LAYOUT" not in plain.frozen_html
    # The hidden preview element, and none in a mail without preview text.
    at = plain.frozen_html.index("Ales needs letters")
    preview_tag = plain.frozen_html[plain.frozen_html.rindex("<", 0, at) : at]
    bare = make_alert(session, [readers], name="Bare")
    sending.start(session, bare)
    assert preview_tag.startswith("<div") and preview_tag not in bare.frozen_html


def test_the_open_pixel_is_frozen_in_only_when_an_owner_turned_tracking_on(session, readers):
    pixel = f"{get_settings().base_url}/o/{freeze.marker('token')}.gif"
    untracked = make_alert(session, [readers])
    sending.start(session, untracked)
    assert "/o/" not in untracked.frozen_html
    session.add(AppSetting(key=opens.SETTING, value=True))
    session.commit()
    tracked = make_alert(session, [readers], name="Tracked")
    sending.start(session, tracked)
    assert f'<img src="{pixel}" width="1" height="1"' in tracked.frozen_html


def test_a_petition_alert_freezes_the_petitions_count_and_goal(session, readers):
    petition = Petition(slug="free-ales", title="Free Ales", body_md="Free him.", goal=40)
    session.add(petition)
    session.commit()
    session.add_all(
        Signature(petition_id=petition.id, email=f"s{i}@ex.org", name="S", confirmed_at=utcnow())
        for i in range(3)
    )
    session.commit()
    fields = {
        "petition_id": str(petition.id),
        "petition_url": "https://example.org/p/free-ales",
        "petition_title": "Free Ales",
        "why": "He has been held for years.",
    }
    alert = make_alert(session, [readers], kind=AlertKind.PETITION, fields=fields)
    sending.start(session, alert)
    text = " ".join(alert.frozen_text.split())
    assert re.search(r"\b3\b[^.\n]*\b40\b", text), text
    assert "petition_count" not in alert.frozen_html


def test_a_petition_alert_whose_petition_is_gone_is_not_sent_and_says_why(session, readers):
    fields = {
        "petition_id": "424242",
        "petition_url": "https://example.org/p/x",
        "petition_title": "Free Ales",
        "why": "Sign.",
    }
    alert = make_alert(session, [readers], kind=AlertKind.PETITION, fields=fields)
    with pytest.raises(ValidationError) as refused:
        sending.check_sendable(session, alert)
    assert refused.value.errors == {
        "petition_id": "The chosen petition no longer exists; pick another."
    }


def test_a_sending_list_deleted_while_the_send_starts_is_named(session, readers):
    # Another editor deletes the list between the alert's loading and the freeze: this
    # session still holds the alert as it was (the same happens across two transactions).
    doomed = make_list(session, "doomed")
    alert = make_alert(session, [readers], sender_list_id=doomed.id)
    session.execute(delete(MailingList).where(MailingList.id == doomed.id))
    with pytest.raises(ValidationError) as refused:
        sending.start(session, alert)
    assert refused.value.errors == {"sender_list_id": "The sending list no longer exists."}


def test_a_stay_subscribed_mail_carries_its_tracked_button_in_every_version(session, readers):
    stay = make_alert(session, [readers], stay_days=14, translations={"be": BELARUSIAN})
    sending.start(session, stay)
    target = get_settings().base_url + "/stay"
    button = f"/r/{freeze.marker('token')}/{stay.frozen_links.index(target)}"
    assert button in stay.frozen_html and button in stay.frozen_versions["be"]["html"]


def test_a_stay_subscribed_mail_whose_layout_lost_the_button_is_refused(session, readers):
    layout = (
        "<mjml><mj-body><mj-section><mj-column><mj-text>{{ body_md_html | safe }}"
        "</mj-text></mj-column></mj-section></mj-body></mjml>"
    )
    alert = make_alert(session, [readers], stay_days=14, layout_mjml=layout)
    with pytest.raises(ValidationError) as refused:
        sending.start(session, alert)
    assert refused.value.errors == {
        "layout": 'This "stay subscribed?" mail has no "Yes, keep me" button: its layout must '
        f"link to {get_settings().base_url}/stay (the newsletter layout does)."
    }
    ordinary = make_alert(session, [readers], name="Ordinary", layout_mjml=layout)
    sending.start(session, ordinary)  # only a stay mail needs the button
    assert ordinary.status == S.SENDING


# --- Pause, resume, cancel ------------------------------------------------------------------


def test_a_pause_says_who_paused_or_that_the_engine_did(session, readers, make_editor):
    editor = make_editor("editor")[0]
    alert = _alert_in(session, readers, S.SENDING)
    sending.pause(session, alert, editor, ip="192.0.2.8")
    assert alert.status_reason == "Paused by editor@example.org."
    sending.resume(session, alert, editor)
    sending.pause(session, alert)
    assert alert.status_reason == "Paused by the delivery engine."
    sending.resume(session, alert)
    sending.pause(session, alert, reason="Paused: the relay refused us.")
    assert alert.status_reason == "Paused: the relay refused us."
    session.commit()
    pauses = _audit(session, "alert.pause")
    assert {e.target for e in pauses + _audit(session, "alert.resume")} == {f"alert:{alert.id}"}
    assert [(e.editor_id, e.ip, e.detail) for e in pauses] == [
        (editor.id, "192.0.2.8", {"reason": ""}),
        (None, None, {"reason": ""}),
        (None, None, {"reason": "Paused: the relay refused us."}),
    ]
    assert len(_audit(session, "alert.resume")) == 2


def _ledger(session, alert: Alert, statuses: list[DeliveryStatus]) -> list[Delivery]:
    ids = make_audience(
        session, make_list(session, f"l{alert.id}"), len(statuses), prefix=f"x{alert.id}-"
    )
    later = utcnow() + timedelta(hours=1)
    rows = [
        Delivery(alert_id=alert.id, subscriber_id=sid, status=status, next_attempt_at=later)
        for sid, status in zip(ids, statuses, strict=True)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def _batches(session, alert: Alert, states: list[BatchState]) -> list[DeliveryBatch]:
    later = utcnow() + timedelta(hours=1)
    rows = [
        DeliveryBatch(alert_id=alert.id, first_id=i, last_id=i, state=state, due_at=later)
        for i, state in enumerate(states)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def test_resume_retries_deferred_readers_now_and_hands_out_every_unfinished_batch(session, readers):
    alert = _alert_in(session, readers, S.PAUSED)
    deferred, queued = _ledger(session, alert, [DeliveryStatus.DEFERRED, DeliveryStatus.QUEUED])
    waiting, claimed, done = _batches(
        session, alert, [BatchState.PENDING, BatchState.ENQUEUED, BatchState.DONE]
    )
    before = utcnow()
    sending.resume(session, alert)
    session.commit()
    session.expire_all()
    assert before <= deferred.next_attempt_at <= utcnow()
    assert queued.next_attempt_at > utcnow() + timedelta(minutes=30)  # untouched
    for batch in (waiting, claimed):
        assert batch.state == BatchState.PENDING and batch.due_at <= utcnow()
    assert done.state == BatchState.DONE and done.due_at > utcnow()


def test_cancel_skips_who_was_not_reached_and_ends_every_batch(session, readers, make_editor):
    editor = make_editor("editor")[0]
    alert = _alert_in(session, readers, S.SENDING, started_at=utcnow())
    statuses = [
        DeliveryStatus.QUEUED,
        DeliveryStatus.DEFERRED,
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SENDING,
    ]
    rows = _ledger(session, alert, statuses)
    batches = _batches(session, alert, [BatchState.PENDING, BatchState.ENQUEUED])
    sending.cancel(session, alert, editor, ip="192.0.2.9")
    session.commit()
    session.expire_all()
    assert alert.status_reason == "Cancelled by editor@example.org."
    assert alert.finished_at is not None
    assert [r.status for r in rows] == [
        DeliveryStatus.SKIPPED,
        DeliveryStatus.SKIPPED,
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.SENDING,
    ]
    assert [r.last_reply for r in rows[:2]] == ["not sent: the alert was cancelled"] * 2
    assert rows[2].last_reply == ""
    assert {b.state for b in batches} == {BatchState.DONE}
    [event] = _audit(session, "alert.cancel")
    assert (event.editor_id, event.ip, event.target) == (
        editor.id,
        "192.0.2.9",
        f"alert:{alert.id}",
    )


def test_a_cancel_from_the_command_line_says_so(session, readers):
    alert = _alert_in(session, readers, S.PAUSED)
    other = _alert_in(session, readers, S.SENDING, name="Other")
    untouched = _ledger(session, other, [DeliveryStatus.QUEUED])[0]
    sending.cancel(session, alert)
    session.commit()
    session.expire_all()
    assert (alert.status, alert.status_reason) == (S.CANCELLED, "Cancelled by the command line.")
    assert untouched.status == DeliveryStatus.QUEUED  # another alert's ledger is its own


# --- To those not yet reached ---------------------------------------------------------------


def _reader_ids(session, mailing_list) -> list[int]:
    query = select(Subscription.subscriber_id).where(Subscription.list_id == mailing_list.id)
    return sorted(session.scalars(query))


def _sent(session, mailing_list, **values) -> Alert:
    alert = make_alert(session, [mailing_list], **values)
    sending.start(session, alert)
    sending.transition(session, alert, "finish", finished_at=utcnow())
    session.commit()
    return alert


def test_a_send_to_the_unreached_copies_the_frozen_alert_and_names_itself(
    session, readers, make_editor
):
    editor = make_editor("editor")[0]
    original = _sent(session, readers, name="", translations={"be": BELARUSIAN})
    follow_up = sending.send_to_unreached(session, original, editor, ip="192.0.2.10")
    session.commit()
    assert follow_up.name == f"{original.subject} (to those not yet reached)"
    assert (follow_up.parent_id, follow_up.role, follow_up.status) == (
        original.id,
        sending.UNREACHED_ROLE,
        S.SENDING,
    )
    assert follow_up.created_by_id == editor.id and follow_up.started_at is not None
    same = ("frozen_html", "frozen_text", "frozen_subject", "frozen_hash", "frozen_links")
    same += ("fields", "translations", "frozen_versions", "frozen_meta", "language", "kind")
    assert original.frozen_versions and original.translations  # there is something to copy
    assert all(getattr(follow_up, name) == getattr(original, name) for name in same)
    assert follow_up.audience == original.frozen_meta["audience"]
    [event] = _audit(session, "alert.send_unreached")
    assert event.target == f"alert:{follow_up.id}" and event.detail == {"original": original.id}
    assert sending.family_ids(session, follow_up) == [original.id, follow_up.id]
    assert sending.family_ids(session, original) == [original.id, follow_up.id]


def test_an_alert_with_a_parent_of_another_kind_is_a_family_of_its_own(session, readers):
    day = _alert_in(session, readers, S.SENT, name="The day")
    reminder = _alert_in(
        session, readers, S.SCHEDULED, name="Reminder", role=AlertRole.REMINDER, parent_id=day.id
    )
    assert sending.family_ids(session, reminder) == [reminder.id]


def test_the_first_page_of_recipients_starts_at_the_first_reader(session, readers):
    original = _sent(session, readers)
    follow_up = sending.send_to_unreached(session, original)
    everyone = _reader_ids(session, readers)
    assert everyone[0] == 1  # a fresh database: a page "after 1" would miss this reader
    assert list(session.scalars(sending.recipients_query(session, follow_up))) == everyone


def test_a_long_name_is_cut_to_what_the_column_holds(session, readers):
    original = _sent(session, readers, name="N" * 199)
    follow_up = sending.send_to_unreached(session, original)
    assert follow_up.name == ("N" * 199 + " (to those not yet reached)")[:200]


def test_a_follow_up_of_a_follow_up_belongs_to_the_original(session, readers):
    original = _sent(session, readers)
    first = sending.send_to_unreached(session, original)
    sending.transition(session, first, "cancel")
    session.commit()
    second = sending.send_to_unreached(session, first)
    session.commit()
    assert second.parent_id == original.id
    assert sending.family_ids(session, second) == [original.id, first.id, second.id]


def test_who_had_the_message_from_any_alert_of_the_family_is_not_sent_it_again(session, readers):
    original = _sent(session, readers)
    a, b, c = _reader_ids(session, readers)
    session.add_all(
        [
            Delivery(alert_id=original.id, subscriber_id=a, status=DeliveryStatus.SENT),
            Delivery(alert_id=original.id, subscriber_id=b, status=DeliveryStatus.FAILED),
        ]
    )
    session.commit()
    first = sending.send_to_unreached(session, original)
    session.add(Delivery(alert_id=first.id, subscriber_id=b, status=DeliveryStatus.SENT))
    sending.transition(session, first, "cancel")
    session.commit()
    second = sending.send_to_unreached(session, first)
    waiting = session.scalars(sending.recipients_query(session, second)).all()
    assert list(waiting) == [c]
    assert session.scalars(sending.recipients_query(session, second, after=c)).all() == []


def test_a_family_that_reached_everyone_has_no_one_left_to_send_to(session, readers):
    original = _sent(session, readers)
    session.add_all(
        Delivery(alert_id=original.id, subscriber_id=sid, status=DeliveryStatus.SENT)
        for sid in _reader_ids(session, readers)
    )
    session.commit()
    with pytest.raises(ValidationError) as refused:
        sending.send_to_unreached(session, original)
    assert refused.value.errors == {"audience": "Everyone in the audience has received this alert."}


@pytest.mark.parametrize("status", [S.DRAFT, S.SCHEDULED, S.SENDING, S.PAUSED])
def test_only_an_ended_send_goes_to_those_it_did_not_reach(session, readers, status):
    alert = make_alert(session, [readers])
    sending.start(session, alert)
    alert.status = status
    session.commit()
    with pytest.raises(InvalidTransition) as refused:
        sending.send_to_unreached(session, alert)
    assert str(refused.value) == (
        "Only an alert that has finished sending or was cancelled can be sent to those it did "
        f"not reach; this one is {status.value}."
    )


def test_a_cancelled_alert_never_frozen_has_nothing_to_send_again(session, readers):
    alert = _alert_in(session, readers, S.CANCELLED)
    with pytest.raises(InvalidTransition, match="this one is cancelled"):
        sending.send_to_unreached(session, alert)


@pytest.mark.parametrize(
    ("role", "words"),
    [
        (
            AlertRole.WELCOME,
            "A welcome mail goes to each reader as they confirm; it is not sent to the rest.$",
        ),
        (AlertRole.SERIES_STEP, re.escape(SERIES_STEP) + "$"),
    ],
)
def test_welcome_mails_and_series_steps_are_never_sent_to_the_rest(session, readers, role, words):
    alert = _alert_in(session, readers, S.SENT, role=role, frozen_at=utcnow())
    with pytest.raises(InvalidTransition, match=words):
        sending.send_to_unreached(session, alert)


# --- Progress ---------------------------------------------------------------------------------


def test_progress_counts_the_ledger_and_a_finished_send_shows_its_average_rate(session, readers):
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    alert = _alert_in(
        session,
        readers,
        S.SENT,
        started_at=start,
        finished_at=start + timedelta(seconds=4),
        recipients=9,
        possible_duplicates=2,
        dispatched_at=start,
    )
    statuses = [DeliveryStatus.SENT] * 6 + [DeliveryStatus.FAILED, DeliveryStatus.SKIPPED]
    _ledger(session, alert, statuses)
    report = sending.progress(session, alert.id)
    assert report.counts == {
        "queued": 0,
        "sending": 0,
        "sent": 6,
        "deferred": 0,
        "failed": 1,
        "skipped": 1,
    }
    assert (report.total, report.remaining, report.done) == (9, 0, True)
    assert report.rate == 1.5 and report.eta_seconds is None and report.stalled == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.status = "sending"  # a report is what was read, not a handle on the send
    shown = report.as_dict()
    assert shown["rate"] == 1.5 and shown["done"] is True and shown["remaining"] == 0
    assert (shown["started_at"], shown["finished_at"]) == (
        "2026-12-04T09:00:00+00:00",
        "2026-12-04T09:00:04+00:00",
    )
    assert (shown["total"], shown["possible_duplicates"], shown["dispatched"]) == (9, 2, True)
    assert report.line() == (
        "sent      sent       6  deferred     0  failed     1  skipped     1  remaining       0"
        "        2 msg/s  ETA —  possible duplicates 2"
    )


def test_progress_of_a_paused_send_counts_what_remains_and_promises_no_time(session, readers):
    alert = _alert_in(session, readers, S.PAUSED)
    statuses = [DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.DEFERRED]
    _ledger(session, alert, [*statuses, DeliveryStatus.SENT])
    report = sending.progress(session, alert.id)
    assert (report.total, report.remaining, report.done) == (4, 3, False)
    assert (report.rate, report.eta_seconds, report.dispatched) == (0.0, None, False)
    assert report.as_dict()["started_at"] is None and report.as_dict()["eta_seconds"] is None
    assert report.line().startswith("paused    sent       1  deferred     1")
    assert "remaining       3" in report.line() and "possible" not in report.line()


def test_a_stalled_send_says_what_stands_in_the_way_on_its_line_and_in_its_json():
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    counts = {"queued": 5, "sending": 2, "sent": 90, "deferred": 3, "failed": 0, "skipped": 0}
    report = sending.Progress(
        alert_id=7,
        status="sending",
        status_reason="",
        total=100,
        counts=counts,
        rate=12.345,
        eta_seconds=3725.4,
        dispatched=True,
        started_at=start,
        finished_at=None,
        possible_duplicates=0,
        stalled=["Redis is unreachable", "no worker takes bulk mail"],
    )
    assert report.line() == (
        "sending   sent      90  deferred     3  failed     0  skipped     0  remaining      10"
        "       12 msg/s  ETA 1:02:05  stalled: Redis is unreachable; no worker takes bulk mail"
    )
    assert report.as_dict() == {
        "alert_id": 7,
        "status": "sending",
        "status_reason": "",
        "total": 100,
        "counts": counts,
        "remaining": 10,
        "rate": 12.3,
        "eta_seconds": 3725,
        "dispatched": True,
        "done": False,
        "started_at": "2026-12-04T09:00:00+00:00",
        "finished_at": None,
        "possible_duplicates": 0,
        "stalled": ["Redis is unreachable", "no worker takes bulk mail"],
    }


def test_a_running_send_promises_the_time_its_remaining_readers_need_at_the_recent_rate(
    session, readers
):
    alert = _alert_in(session, readers, S.SENDING, started_at=utcnow() - timedelta(minutes=5))
    remaining = [DeliveryStatus.QUEUED] * 2 + [DeliveryStatus.SENDING, DeliveryStatus.DEFERRED]
    _ledger(session, alert, [*remaining, DeliveryStatus.SENT])
    assert sending.progress(session, alert.id).eta_seconds is None  # nothing sent lately
    rates.count_sent(alert.id, 10)  # what the workers report as they hand messages over
    report = sending.progress(session, alert.id)
    assert report.remaining == 4 and 0 < report.rate < 1
    assert report.eta_seconds == pytest.approx(4 / report.rate)


def test_only_a_send_still_waiting_for_work_asks_what_stands_in_its_way(session, readers):
    # No worker runs in this test: whenever the progress asks, "no worker" is the answer.
    waiting = _alert_in(session, readers, S.SENDING)  # its ledger not written yet
    assert any("no worker is running" in r for r in sending.progress(session, waiting.id).stalled)
    done = _alert_in(session, readers, S.SENDING, name="Done", dispatched_at=utcnow())
    _ledger(session, done, [DeliveryStatus.SENT])
    assert sending.progress(session, done.id).stalled == []  # written and nothing left
    paused = _alert_in(session, readers, S.PAUSED, name="Paused", dispatched_at=utcnow())
    _ledger(session, paused, [DeliveryStatus.QUEUED])
    assert sending.progress(session, paused.id).stalled == []  # it waits for an editor


def test_a_finished_send_without_a_clock_shows_no_rate(session, readers):
    alert = _alert_in(session, readers, S.CANCELLED)
    _ledger(session, alert, [DeliveryStatus.SENT])
    assert sending.progress(session, alert.id).rate == 0.0


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0:00:00"), (59.9, "0:00:59"), (61, "0:01:01"), (3725, "1:02:05")]
)
def test_durations_read_as_hours_minutes_seconds(seconds, shown):
    assert sending._duration(seconds) == shown


def test_progress_of_an_alert_that_does_not_exist_is_not_found(session):
    with pytest.raises(NotFound) as missing:
        sending.progress(session, 424242)
    assert str(missing.value) == "There is no such alert."
