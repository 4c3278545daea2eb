"""Each action a role may not take answers 403 and changes nothing; forms without CSRF fail."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import text

from clarion import jobs
from clarion.db import utcnow
from clarion.models import (
    Alert,
    AlertKind,
    AlertStatus,
    Job,
    Subscriber,
    Suppression,
    SuppressionReason,
    Tag,
)
from tests.helpers import csrf_from, refresh

TABLES = {
    "editors": "id, role, is_active, totp_secret, locked_until, session_version",
    "alerts": "id, status, subject, scheduled_at, name",
    "subscribers": "id, email, name",
    "subscriptions": "subscriber_id, list_id, status",
    "subscriber_tags": "subscriber_id, tag_id",
    "tags": "id, name",
    "lists": "id, name, from_email, is_public",
    "suppressions": "id, email",
    "jobs": "id, status, options",
    "audit_log": "id, action",
}


def snapshot(session) -> dict[str, list]:
    refresh(session)
    return {
        t: [tuple(r) for r in session.execute(text(f"SELECT {c} FROM {t} ORDER BY 1, 2"))]
        for t, c in TABLES.items()
    }


@pytest.fixture
def world(session, lists, make_editor):
    """One of each thing an action could touch."""
    other, _ = make_editor("editor", "other@example.org")
    reader = Subscriber(email="reader@example.org", name="Reader")
    session.add_all(
        [
            reader,
            Tag(name="minsk"),
            Suppression(email="reader@example.org", reason=SuppressionReason.HARD_BOUNCE),
        ]
    )
    draft = Alert(
        kind=AlertKind.NEWSLETTER,
        name="Draft",
        subject="Draft",
        fields={"body_md": "Hi"},
        audience={"lists": [lists["alerts"].id]},
    )
    scheduled = Alert(
        kind=AlertKind.NEWSLETTER,
        name="Later",
        subject="Later",
        fields={"body_md": "Hi"},
        audience={"lists": [lists["alerts"].id]},
        status=AlertStatus.SCHEDULED,
        scheduled_at=utcnow().replace(year=2100),
    )
    mapping = Job(kind="import", status=jobs.MAPPING, options={"file_name": "a.csv"})
    export = Job(kind="export", status=jobs.DONE, result_path="/nonexistent.csv")
    session.add_all([draft, scheduled, mapping, export])
    session.commit()
    return {
        "editor": other.id,
        "subscriber": reader.id,
        "tag": session.query(Tag).one().id,
        "list": lists["alerts"].id,
        "draft": draft.id,
        "scheduled": scheduled.id,
        "mapping": mapping.uid,
        "export": export.uid,
    }


COMPOSE = [
    ("POST", "/admin/alerts/new", {"kind": "newsletter", "subject": "S", "body_md": "x"}),
    ("POST", "/admin/alerts/{draft}/edit", {"subject": "Changed", "body_md": "x"}),
    ("POST", "/admin/alerts/{draft}/duplicate", {}),
    ("POST", "/admin/alerts/{draft}/delete", {}),
    ("POST", "/admin/alerts/{draft}/test", {"test_to": "me@example.org"}),
    ("GET", "/admin/alerts/new?kind=petition", None),
    ("GET", "/admin/alerts/{draft}/edit", None),
]
SEND = [
    ("POST", "/admin/alerts/{draft}/schedule", {"scheduled_at": "2099-01-01T10:00"}),
    ("POST", "/admin/alerts/{scheduled}/unschedule", {}),
]
MANAGE_SUBSCRIBERS = [
    ("POST", "/admin/subscribers/tag", {"tag_name": "new", "operation": "attach"}),
    ("POST", "/admin/lists/new", {"name": "X", "slug": "x"}),
    ("POST", "/admin/lists/{list}", {"name": "Renamed", "slug": "alerts"}),
    ("POST", "/admin/tags", {"name": "fresh"}),
    ("POST", "/admin/tags/{tag}/delete", {}),
    ("POST", "/admin/imports", "upload"),
    ("POST", "/admin/imports/{mapping}/map", {"col-0": "email", "lists": "{list}"}),
    ("GET", "/admin/lists/new", None),
]
OWNER_ONLY = [
    ("POST", "/admin/exports", {}),
    ("GET", "/admin/exports/{export}/download", None),
    ("GET", "/admin/jobs/{export}", None),
    ("POST", "/admin/subscribers/{subscriber}/delete", {}),
    ("POST", "/admin/subscribers/{subscriber}/lift-suppression", {}),
    ("GET", "/admin/editors", None),
    ("POST", "/admin/editors", {"email": "new@example.org", "role": "owner"}),
    ("POST", "/admin/editors/{editor}/role", {"role": "owner"}),
    ("POST", "/admin/editors/{editor}/deactivate", {}),
    ("POST", "/admin/editors/{editor}/unlock", {}),
    ("POST", "/admin/editors/{editor}/reset-password", {}),
    ("POST", "/admin/editors/{editor}/reset-2fa", {}),
    ("GET", "/admin/audit", None),
]
FORBIDDEN = [("viewer", a) for a in COMPOSE + SEND + MANAGE_SUBSCRIBERS + OWNER_ONLY] + [
    ("editor", a) for a in OWNER_ONLY
]


def _request(client, method, path, data, world, token):
    url = path.format(**world)
    if method == "GET":
        return client.get(url)
    if data == "upload":
        payload = {"file": (io.BytesIO(b"email\na@example.org\n"), "a.csv"), "csrf_token": token}
        return client.post(url, data=payload, content_type="multipart/form-data")
    values = {k: v.format(**world) for k, v in data.items()}
    return client.post(url, data={**values, "csrf_token": token})


@pytest.mark.parametrize(
    ("role", "action"), FORBIDDEN, ids=[f"{r}:{a[0]} {a[1]}" for r, a in FORBIDDEN]
)
def test_forbidden_action_is_403_and_changes_nothing(client, session, login, world, role, action):
    login(client, role)
    token = csrf_from(client.get("/admin/account").get_data(as_text=True))
    before = snapshot(session)
    method, path, data = action
    response = _request(client, method, path, data, world, token)
    assert response.status_code == 403, response.get_data(as_text=True)[:500]
    assert "does not allow" in response.get_data(as_text=True)
    assert snapshot(session) == before


def test_the_same_actions_are_allowed_to_owners(client, session, login, world):
    """A control: the table above is about roles, not about broken requests."""
    login(client, "owner")
    token = csrf_from(client.get("/admin/account").get_data(as_text=True))
    for method, path, data in COMPOSE[:3] + SEND[:1] + MANAGE_SUBSCRIBERS[:5] + OWNER_ONLY[5:7]:
        response = _request(client, method, path, data, world, token)
        assert response.status_code in {200, 302}, (path, response.status_code)


def test_anonymous_visitors_are_sent_to_login(client, world):
    response = client.get("/admin/subscribers")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


CSRF_FORMS = [
    ("/admin/editors", {"email": "new@example.org", "role": "owner"}),
    ("/admin/editors/{editor}/role", {"role": "owner"}),
    ("/admin/alerts/new", {"kind": "newsletter", "subject": "S", "body_md": "x"}),
    ("/admin/alerts/{draft}/schedule", {"scheduled_at": "2099-01-01T10:00"}),
    ("/admin/alerts/{draft}/test", {"test_to": "me@example.org"}),
    ("/admin/subscribers/{subscriber}/delete", {}),
    ("/admin/subscribers/tag", {"tag_name": "new"}),
    ("/admin/exports", {}),
    ("/admin/account/2fa/start", {}),
    ("/admin/logout", {}),
]


@pytest.mark.parametrize(("path", "data"), CSRF_FORMS, ids=[p for p, _ in CSRF_FORMS])
def test_post_without_or_with_a_wrong_csrf_token_is_refused(
    client, session, login, world, path, data
):
    login(client, "owner")
    before = snapshot(session)
    url = path.format(**world)
    for token in (None, "forged-token"):
        payload = dict(data, **({"csrf_token": token} if token else {}))
        response = client.post(url, data=payload)
        assert response.status_code == 400
        assert "The form expired" in response.get_data(as_text=True)
    assert snapshot(session) == before
    # Still logged in: the refused logout did not log out.
    assert client.get("/admin/").status_code == 200


def test_every_admin_form_carries_a_csrf_token(client, login, world):
    login(client, "owner")
    pages = [
        "/admin/",
        "/admin/editors",
        "/admin/account",
        "/admin/alerts/new?kind=hashtag_day",
        "/admin/alerts/{draft}",
        "/admin/alerts/{draft}/edit",
        "/admin/subscribers",
        "/admin/subscribers/{subscriber}",
        "/admin/lists/new",
        "/admin/tags",
        "/admin/jobs",
    ]
    for page in pages:
        html = client.get(page.format(**world)).get_data(as_text=True)
        forms = html.count('method="post"')
        assert forms > 0, page
        assert html.count('name="csrf_token"') == forms, page
