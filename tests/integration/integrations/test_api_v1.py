"""/api/v1 over real HTTP requests: each resource, scopes and roles, idempotent retries,
ETags, and problem+json naming each field."""

from __future__ import annotations

from sqlalchemy import func, select

from clarion.models import (
    Alert,
    AlertStatus,
    ConsentRecord,
    IdempotentRequest,
    Petition,
    Signature,
    Subscriber,
    Suppression,
    SuppressionReason,
)
from tests.helpers import refresh
from tests.integration.integrations.conftest import bearer

DRAFT = {
    "kind": "newsletter",
    "subject": "Free them all",
    "name": "Weekly",
    "fields": {"body_md": "Hello **readers**."},
    "audience": {"lists": ["alerts"]},
}


def count(session, model) -> int:
    refresh(session)
    return session.scalar(select(func.count()).select_from(model))


def test_a_reader_added_by_the_api_gets_the_same_double_opt_in_as_the_form(
    client, session, lists, make_token, smtp_sink
):
    secret = make_token("editor", ("read", "write"))
    body = {"email": "Anna@Example.org", "name": "Anna", "lists": [lists["alerts"].id]}
    response = client.post("/api/v1/subscribers", json=body, headers=bearer(secret))
    assert response.status_code == 202, response.json
    assert response.json["status"] == "pending"
    assert response.json["subscriber"]["lists"] == [
        {"list_id": lists["alerts"].id, "slug": "alerts", "status": "pending"}
    ]
    refresh(session)
    consent = session.scalar(select(ConsentRecord))
    assert consent.form == "api" and consent.confirmed_at is None


def test_confirmed_needs_the_import_scope_and_a_consent_statement(
    client, session, lists, make_token
):
    plain = make_token("owner", ("read", "write"))
    importer = make_token("owner", ("write", "import"), email="importer@example.org")
    body = {"email": "b@example.org", "lists": [lists["staff"].id], "confirmed": True}
    missing = client.post("/api/v1/subscribers", json=body, headers=bearer(importer))
    assert missing.status_code == 422
    assert missing.mimetype == "application/problem+json"
    assert [e["field"] for e in missing.json["errors"]] == ["consent"]
    body["consent"] = {"statement": "I agree to receive the staff list by email."}
    assert client.post("/api/v1/subscribers", json=body, headers=bearer(plain)).status_code == 403
    made = client.post("/api/v1/subscribers", json=body, headers=bearer(importer))
    assert made.status_code == 201, made.json
    assert made.json["subscriber"]["lists"][0]["status"] == "subscribed"
    refresh(session)
    consent = session.scalar(select(ConsentRecord))
    assert consent.consent_text == "I agree to receive the staff list by email."
    assert consent.confirmed_at is not None and "importer@example.org" in consent.details["editor"]


def test_problem_json_names_every_field_to_fix(client, lists, make_token):
    secret = make_token("editor", ("read", "write"))
    body = {"email": "not an address", "lists": [lists["alerts"].id], "language": "xx"}
    response = client.post("/api/v1/subscribers", json=body, headers=bearer(secret))
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert {e["field"] for e in response.json["errors"]} == {"email", "language"}
    assert response.json["status"] == 422 and response.json["title"]
    typo = client.post("/api/v1/subscribers", json={**body, "emial": "x"}, headers=bearer(secret))
    assert "emial" in {e["field"] for e in typo.json["errors"]}
    junk = client.post(
        "/api/v1/subscribers", data="{", content_type="application/json", headers=bearer(secret)
    )
    assert junk.status_code == 400 and junk.mimetype == "application/problem+json"


def test_the_api_answers_in_english_whatever_language_the_request_asks_for(
    client, lists, make_token
):
    # Written for programs: a script's error handling must not change with the machine's locale.
    secret = make_token("editor", ("read", "write"))
    body = {"email": "not an address", "lists": [lists["alerts"].id], "language": "xx"}
    plain = client.post("/api/v1/subscribers", json=body, headers=bearer(secret)).json
    for asked in ({"Accept-Language": "be"}, {"Accept-Language": "ru, be;q=0.5"}):
        answer = client.post("/api/v1/subscribers", json=body, headers={**bearer(secret), **asked})
        assert answer.json["errors"] == plain["errors"], asked
    by_query = client.post("/api/v1/subscribers?lang=be", json=body, headers=bearer(secret))
    assert by_query.json["errors"] == plain["errors"]
    assert "email" in {e["field"] for e in plain["errors"]}


def test_keyset_pages_are_read_after_and_before_an_id_given_in_the_query(
    client, session, lists, make_token
):
    session.add_all(Subscriber(email=f"p{i}@example.org") for i in range(5))
    session.commit()
    secret = make_token("viewer")
    first = client.get("/api/v1/subscribers", headers=bearer(secret)).json
    ids = {s["email"]: s["id"] for s in first["items"]}
    middle = ids["p2@example.org"]
    older = client.get(f"/api/v1/subscribers?after={middle}", headers=bearer(secret))
    assert older.status_code == 200, older.json
    assert [s["email"] for s in older.json["items"]] == ["p1@example.org", "p0@example.org"]
    newer = client.get(f"/api/v1/subscribers?before={middle}", headers=bearer(secret))
    assert [s["email"] for s in newer.json["items"]] == ["p4@example.org", "p3@example.org"]
    listed = client.get(
        f"/api/v1/subscribers?list={lists['alerts'].id}&status=pending", headers=bearer(secret)
    )
    assert listed.status_code == 200 and listed.json["items"] == []
    alerts = client.get(f"/api/v1/alerts?after={middle}", headers=bearer(secret))
    assert alerts.status_code == 200 and alerts.json["items"] == []


def test_subscribers_are_found_by_id_email_and_keyset_pages_and_updated(
    client, session, lists, subscribed, make_token
):
    secret = make_token("editor", ("read", "write"))
    for i in range(3):
        session.add(Subscriber(email=f"r{i}@example.org", name=f"R{i}"))
    session.commit()
    by_email = client.get("/api/v1/subscribers?email=READER@example.org", headers=bearer(secret))
    assert [s["id"] for s in by_email.json["items"]] == [subscribed.id]
    first = client.get("/api/v1/subscribers?q=example", headers=bearer(secret)).json
    assert len(first["items"]) == 4 and first["after"] is None
    one = client.get(f"/api/v1/subscribers/{subscribed.id}", headers=bearer(secret))
    assert one.json["tags"] == [] and one.headers["ETag"]
    stale = client.patch(
        f"/api/v1/subscribers/{subscribed.id}",
        json={"name": "Renamed"},
        headers=bearer(secret, **{"If-Match": '"not-it"'}),
    )
    assert stale.status_code == 412
    changed = client.patch(
        f"/api/v1/subscribers/{subscribed.id}",
        json={"name": "Renamed", "tags": ["minsk"], "lists": [lists["alerts"].id]},
        headers=bearer(secret, **{"If-Match": one.headers["ETag"]}),
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["name"] == "Renamed" and changed.json["tags"] == ["minsk"]
    statuses = {m["slug"]: m["status"] for m in changed.json["lists"]}
    assert statuses == {"alerts": "subscribed", "news": "unsubscribed"}
    assert changed.headers["ETag"] != one.headers["ETag"]


def test_erasing_needs_an_owner(client, session, subscribed, make_token):
    editor = make_token("editor", ("write",))
    owner = make_token("owner", ("write",))
    path = f"/api/v1/subscribers/{subscribed.id}"
    assert client.delete(path, headers=bearer(editor)).status_code == 403
    assert client.delete(path, headers=bearer(owner)).json == {"erased": True}
    assert count(session, Subscriber) == 0


def test_a_create_retried_with_the_same_key_creates_once(client, session, make_token):
    secret = make_token("editor", ("write",))
    headers = bearer(secret, **{"Idempotency-Key": "tag-42"})
    first = client.post("/api/v1/tags", json={"name": "kyiv"}, headers=headers)
    again = client.post("/api/v1/tags", json={"name": "kyiv"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json == again.json and again.headers["Idempotent-Replay"] == "true"
    other = client.post("/api/v1/tags", json={"name": "lviv"}, headers=headers)
    assert other.status_code == 422
    assert [e["field"] for e in other.json["errors"]] == ["Idempotency-Key"]
    assert count(session, IdempotentRequest) == 1


def test_a_send_retried_with_the_same_key_sends_once(
    client, session, lists, subscribed, make_token, published
):
    secret = make_token("editor", ("read", "write", "send"))
    made = client.post("/api/v1/alerts", json=DRAFT, headers=bearer(secret))
    assert made.status_code == 201, made.json
    path = f"/api/v1/alerts/{made.json['id']}/send"
    headers = bearer(secret, **{"Idempotency-Key": "send-once"})
    first = client.post(path, headers=headers)
    again = client.post(path, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json and first.json["status"] == "sending"
    without_key = client.post(path, headers=bearer(secret))
    assert without_key.status_code == 409  # the state machine refuses a second start
    refresh(session)
    sends = session.scalars(
        select(func.count()).select_from(Alert).where(Alert.status == AlertStatus.SENDING)
    ).one()
    assert sends == 1
    from clarion.models import AuditEvent

    assert (
        session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "alert.send")
        )
        == 1
    )


def test_alerts_are_drafted_previewed_updated_scheduled_and_controlled(
    client, session, lists, subscribed, make_token
):
    writer = make_token("editor", ("read", "write"))
    sender = make_token("owner", ("read", "send"))
    assert client.post("/api/v1/alerts", json=DRAFT, headers=bearer(sender)).status_code == 403
    made = client.post("/api/v1/alerts", json=DRAFT, headers=bearer(writer)).json
    assert made["audience"]["lists"] == [lists["alerts"].id]
    bad = client.post(
        "/api/v1/alerts", json={**DRAFT, "audience": {"lists": ["nope"]}}, headers=bearer(writer)
    )
    assert bad.status_code == 422 and "lists" in {e["field"] for e in bad.json["errors"]}
    preview = client.get(f"/api/v1/alerts/{made['id']}/preview", headers=bearer(writer)).json
    assert "<strong>readers</strong>" in preview["html"] and "readers" in preview["text"]
    updated = client.patch(
        f"/api/v1/alerts/{made['id']}", json={"subject": "Now"}, headers=bearer(writer)
    ).json
    assert updated["subject"] == "Now" and updated["fields"] == DRAFT["fields"]
    later = client.post(
        f"/api/v1/alerts/{made['id']}/schedule",
        json={"at": "2099-01-01T09:00"},
        headers=bearer(sender),
    )
    assert later.json["status"] == "scheduled"
    sent = client.post(f"/api/v1/alerts/{made['id']}/send", headers=bearer(sender)).json
    assert sent["status"] == "sending"
    paused = client.post(f"/api/v1/alerts/{made['id']}/pause", headers=bearer(sender)).json
    assert paused["status"] == "paused"
    progress = client.get(f"/api/v1/alerts/{made['id']}/progress", headers=bearer(sender)).json
    assert progress["status"] == "paused" and "queued" in progress["counts"]
    cancelled = client.post(f"/api/v1/alerts/{made['id']}/cancel", headers=bearer(sender)).json
    assert cancelled["status"] == "cancelled"
    stats = client.get(f"/api/v1/alerts/{made['id']}/stats", headers=bearer(sender)).json
    assert stats["recipients"] >= 0 and "links" in stats
    page = client.get("/api/v1/alerts?status=cancelled", headers=bearer(writer)).json
    assert [a["id"] for a in page["items"]] == [made["id"]]


def test_petitions_with_live_count_signatures_pages_csv_and_signing(
    client, session, lists, make_token
):
    owner = make_token("owner", ("read", "write"))
    editor = make_token("editor", ("read", "write"), email="e@example.org")
    body = {"title": "Free them", "slug": "free-them", "goal": 10, "deadline": "2099-01-01T00:00"}
    made = client.post("/api/v1/petitions", json=body, headers=bearer(editor))
    assert made.status_code == 201, made.json
    pid = made.json["id"]
    taken = client.post("/api/v1/petitions", json=body, headers=bearer(editor))
    assert taken.status_code == 422 and taken.json["errors"][0]["field"] == "slug"
    sign = {"name": "Ola", "email": "ola@example.org", "country": "PL", "source": "blog"}
    signed = client.post(f"/api/v1/petitions/{pid}/signatures", json=sign, headers=bearer(editor))
    assert signed.status_code == 202 and signed.json["status"] == "signed"
    twice = client.post(f"/api/v1/petitions/{pid}/signatures", json=sign, headers=bearer(editor))
    assert twice.status_code == 202
    assert count(session, Signature) == 1  # one signature per address, as on the page
    got = client.get(f"/api/v1/petitions/{pid}", headers=bearer(editor))
    assert got.json["count"] == 1
    assert (
        client.get(f"/api/v1/petitions/{pid}/signatures", headers=bearer(editor)).status_code == 403
    )
    page = client.get(f"/api/v1/petitions/{pid}/signatures", headers=bearer(owner)).json
    assert [s["email"] for s in page["items"]] == ["ola@example.org"]
    csv = client.get(f"/api/v1/petitions/{pid}/signatures.csv", headers=bearer(owner))
    assert csv.mimetype == "text/csv" and "ola@example.org" in csv.text
    change = {"require_confirmation": True}
    # Read before the signature: the count has changed since, so the version is stale.
    stale = client.patch(
        f"/api/v1/petitions/{pid}",
        json=change,
        headers=bearer(editor, **{"If-Match": made.headers["ETag"]}),
    )
    assert stale.status_code == 412 and stale.mimetype == "application/problem+json"
    confirm = client.patch(
        f"/api/v1/petitions/{pid}",
        json=change,
        headers=bearer(editor, **{"If-Match": got.headers["ETag"]}),
    )
    assert confirm.status_code == 200 and confirm.json["require_confirmation"] is True
    assert confirm.json["deadline"].startswith("2099-01-01T00:00")  # kept as it was
    other = {**sign, "email": "new@example.org"}
    pending = client.post(f"/api/v1/petitions/{pid}/signatures", json=other, headers=bearer(editor))
    assert pending.json["status"] == "check_inbox"


def test_suppressions_are_listed_and_lifted_by_owners_only(client, session, make_token):
    session.add(Suppression(email="gone@example.org", reason=SuppressionReason.HARD_BOUNCE))
    session.commit()
    editor = make_token("editor", ("read", "write"))
    owner = make_token("owner", ("read", "write"))
    assert client.get("/api/v1/suppressions", headers=bearer(editor)).status_code == 403
    listed = client.get("/api/v1/suppressions", headers=bearer(owner)).json
    assert [(s["email"], s["reason"]) for s in listed["items"]] == [
        ("gone@example.org", "hard_bounce")
    ]
    lift = {"email": "gone@example.org"}
    assert (
        client.post("/api/v1/suppressions/lift", json=lift, headers=bearer(editor)).status_code
        == 403
    )
    assert client.post("/api/v1/suppressions/lift", json=lift, headers=bearer(owner)).json == {
        "lifted": True
    }
    assert count(session, Suppression) == 0


def test_bounces_are_listed_for_owners(client, session, make_token):
    from clarion.models import Bounce, BounceClass

    session.add(Bounce(source="smtp", email="x@example.org", classification=BounceClass.HARD))
    session.commit()
    assert client.get("/api/v1/bounces", headers=bearer(make_token("editor"))).status_code == 403
    page = client.get("/api/v1/bounces", headers=bearer(make_token("owner"))).json
    assert [(b["email"], b["classification"]) for b in page["items"]] == [("x@example.org", "hard")]


def test_lists_and_tags(client, lists, make_token):
    secret = make_token("editor", ("read", "write"))
    index = client.get("/api/v1/lists", headers=bearer(secret)).json
    assert {ml["slug"] for ml in index["items"]} == {"alerts", "news", "staff"}
    made = client.post(
        "/api/v1/lists", json={"name": "Kyiv", "slug": "kyiv"}, headers=bearer(secret)
    )
    assert made.status_code == 201 and made.json["is_public"] is True
    renamed = client.patch(
        f"/api/v1/lists/{made.json['id']}", json={"name": "Kyiv news"}, headers=bearer(secret)
    )
    assert renamed.json["name"] == "Kyiv news" and renamed.json["slug"] == "kyiv"
    tag = client.post("/api/v1/tags", json={"name": "donor"}, headers=bearer(secret)).json
    assert client.delete(f"/api/v1/tags/{tag['id']}", headers=bearer(secret)).json == {
        "deleted": True
    }


def test_a_read_token_changes_nothing(client, session, lists, make_token):
    secret = make_token("owner", ("read",))
    response = client.post("/api/v1/tags", json={"name": "x"}, headers=bearer(secret))
    assert response.status_code == 403 and "write scope" in response.json["detail"]


def test_openapi_document_and_docs_page_are_served_locally(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"] == "3.1.0"
    assert "/api/v1/subscribers/{subscriber_id}" in spec["paths"]
    assert spec["paths"]["/api/v1/alerts/{alert_id}/send"]["post"]["security"] == [
        {"token": ["send"]}
    ]
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and "alert_send" in page.text
    assert "http" not in page.text.split("<main>")[0].replace("http-equiv", "")


def test_kept_answers_go_after_a_day_with_the_retention_sweep(client, session, make_token):
    from datetime import timedelta

    from clarion import retention
    from clarion.db import session_scope, utcnow

    secret = make_token("editor", ("write",))
    for key in ("old", "new"):
        headers = bearer(secret, **{"Idempotency-Key": key})
        client.post("/api/v1/tags", json={"name": key}, headers=headers)
    refresh(session)
    old = session.scalar(select(IdempotentRequest).where(IdempotentRequest.key == "old"))
    old.created_at = utcnow() - timedelta(hours=25)
    session.commit()
    with session_scope() as s:
        assert retention.run(s)["api_answers_purged"] == 1
    refresh(session)
    assert session.scalars(select(IdempotentRequest.key)).all() == ["new"]


def test_two_sends_racing_with_one_key_send_once_and_answer_alike(
    app, client, session, lists, subscribed, make_token
):
    import threading

    from clarion.models import AuditEvent

    secret = make_token("editor", ("write", "send"))
    made = client.post("/api/v1/alerts", json=DRAFT, headers=bearer(secret)).json
    headers = bearer(secret, **{"Idempotency-Key": "race"})
    start = threading.Barrier(2)
    answers: list = []

    def send() -> None:
        own = app.test_client()
        start.wait()
        answers.append(own.post(f"/api/v1/alerts/{made['id']}/send", headers=headers))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json == answers[1].json
    refresh(session)
    sent = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "alert.send")
    assert session.scalar(sent) == 1


def test_a_page_says_who_is_suppressed_by_address_or_by_keyed_hash(client, session, make_token):
    from clarion import throttle

    for email in ("plain@example.org", "blocked@example.org", "hashed@example.org"):
        session.add(Subscriber(email=email))
    session.add(Suppression(email="blocked@example.org", reason=SuppressionReason.COMPLAINT))
    session.add(
        Suppression(
            email_hash=throttle.address_key("hashed@example.org"), reason=SuppressionReason.MANUAL
        )
    )
    session.commit()
    page = client.get("/api/v1/subscribers", headers=bearer(make_token("viewer"))).json
    assert {s["email"]: s["suppressed"] for s in page["items"]} == {
        "plain@example.org": False,
        "blocked@example.org": True,
        "hashed@example.org": True,
    }


def test_a_sign_up_answers_with_the_reader_as_they_are_suppressed_or_not(
    client, session, subscribed, lists, make_token
):
    # The answer takes the reader subscribe() found (no second lookup) when it got that far,
    # and looks the address up itself when subscribe() stopped early (suppressed).
    session.add(Subscriber(email="blocked@example.org"))
    session.add(Suppression(email="blocked@example.org", reason=SuppressionReason.COMPLAINT))
    session.commit()
    secret = make_token("editor", ("read", "write"))
    on = "subscribed"
    for email, suppressed, memberships in (
        ("blocked@example.org", True, {}),
        (subscribed.email, False, {"alerts": on, "news": on}),
        ("fresh@example.org", False, {"alerts": "pending"}),
    ):
        body = {"email": email, "lists": [lists["alerts"].id], "tags": ["api"]}
        answer = client.post("/api/v1/subscribers", json=body, headers=bearer(secret))
        assert answer.status_code == 202, answer.json
        reader = answer.json["subscriber"]
        assert (reader["email"], reader["suppressed"]) == (email, suppressed)
        assert reader["tags"] == ["api"]
        assert {m["slug"]: m["status"] for m in reader["lists"]} == memberships
    assert count(session, ConsentRecord) == 1  # the new reader's alone


def test_a_new_reader_is_answered_as_a_read_of_them_shows_them(client, lists, make_token):
    # A new reader's answer is built from what subscribe() wrote, without reading it back:
    # it must be what reading them back shows, lists in the same order.
    secret = make_token("editor", ("read", "write"))
    body = {
        "email": "two@example.org",
        "name": "Two",
        "lists": [lists["news"].id, lists["alerts"].id],
    }
    made = client.post("/api/v1/subscribers", json=body, headers=bearer(secret)).json["subscriber"]
    read = client.get(f"/api/v1/subscribers/{made['id']}", headers=bearer(secret)).json
    assert made == read
    assert [m["slug"] for m in made["lists"]] == ["alerts", "news"]
    assert {m["status"] for m in made["lists"]} == {"pending"} and made["tags"] == []


def test_the_api_picks_a_petition_and_may_include_signers(client, session, lists, make_token):
    petition = Petition(slug="free-maria", title="Free Maria Kalesnikava", body_md="Free her.")
    session.add(petition)
    session.commit()
    secret = make_token("editor", ("read", "write"))
    draft = {
        "kind": "petition",
        "subject": "Sign for Maria",
        "fields": {"petition_id": str(petition.id), "why": "Two years."},
        "audience": {"lists": ["alerts"]},
    }
    made = client.post("/api/v1/alerts", json=draft, headers=bearer(secret))
    assert made.status_code == 201, made.json
    assert made.json["audience"]["skip_signers_of"] == petition.id
    assert made.json["fields"]["petition_title"] == "Free Maria Kalesnikava"
    draft["audience"]["include_signers"] = True
    included = client.post("/api/v1/alerts", json=draft, headers=bearer(secret)).json
    assert included["audience"]["include_signers"] is True
    assert "skip_signers_of" not in included["audience"]


def test_the_api_takes_conditions_and_names_a_bad_one_by_its_path(
    client, session, lists, make_token
):
    petition = Petition(slug="free-ales", title="Free Ales", body_md="Free him.")
    session.add(petition)
    session.commit()
    secret = make_token("editor", ("read", "write"))
    draft = {
        "kind": "newsletter",
        "subject": "Thank you",
        "fields": {"body_md": "Text."},
        "audience": {
            "lists": ["alerts"],
            "conditions": {"not": {"type": "signed", "petition": petition.id}},
        },
    }
    made = client.post("/api/v1/alerts", json=draft, headers=bearer(secret))
    assert made.status_code == 201, made.json
    assert made.json["audience"]["conditions"] == {
        "not": {"type": "signed", "petition": petition.id}
    }
    draft["audience"]["conditions"] = {"all": [{"type": "signed", "petition": 0}]}
    refused = client.post("/api/v1/alerts", json=draft, headers=bearer(secret))
    assert refused.status_code == 422
    assert "audience.conditions.all[0].petition" in str(refused.json)
