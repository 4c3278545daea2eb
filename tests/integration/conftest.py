"""Helpers for integration tests: lists, subscribers and editors made the way the app makes them."""

from __future__ import annotations

import pytest

from clarion.models import MailingList, Role, Subscriber, Subscription, SubscriptionStatus
from tests.helpers import csrf_from


@pytest.fixture
def lists(session):
    """Two public lists and one private list."""
    made = {
        "alerts": MailingList(slug="alerts", name="Urgent alerts", is_public=True),
        "news": MailingList(slug="news", name="Newsletter", is_public=True),
        "staff": MailingList(slug="staff", name="Staff only", is_public=False),
    }
    session.add_all(made.values())
    session.commit()
    return made


@pytest.fixture
def subscribed(session, lists):
    """A confirmed reader on the alerts and news lists."""
    reader = Subscriber(email="reader@example.org", name="Reader", language="en")
    session.add(reader)
    session.flush()
    for ml in (lists["alerts"], lists["news"]):
        session.add(
            Subscription(
                subscriber_id=reader.id, list_id=ml.id, status=SubscriptionStatus.SUBSCRIBED
            )
        )
    session.commit()
    return reader


@pytest.fixture
def make_editor(session):
    """Create an editor with a known password."""
    from clarion.editors import create_editor

    def make(role: str = "owner", email: str | None = None):
        from sqlalchemy.exc import OperationalError

        # The test's session reads without locking (SQLite: a deferred transaction); a worker
        # that committed since (a confirmation mail's record) makes its first write fail at
        # once, so start from a fresh snapshot, and once more if a worker wrote in between.
        for attempt in range(3):
            session.commit()  # what the test added so far, and a fresh snapshot after it
            try:
                editor, password = create_editor(
                    session,
                    email or f"{role}@example.org",
                    Role(role),
                    "correct horse battery staple",
                )
                session.commit()
                return editor, password
            except OperationalError as exc:
                session.rollback()
                if attempt == 2 or "locked" not in str(exc):
                    raise

    return make


@pytest.fixture
def login(make_editor):
    """Log a test client in as an editor of the given role."""

    def do(client, role: str = "owner"):
        editor, password = make_editor(role)
        page = client.get("/admin/login")
        token = csrf_from(page.get_data(as_text=True))
        response = client.post(
            "/admin/login", data={"email": editor.email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return editor

    return do


@pytest.fixture(autouse=True)
def fast_password_hashing(monkeypatch):
    """Argon2 with the cheapest parameters: tests log in often; production keeps the defaults."""
    from argon2 import PasswordHasher

    from clarion import editors

    monkeypatch.setattr(
        editors, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    )


@pytest.fixture
def kept_tasks():
    """The tasks the test's code publishes are kept, not run: a Celery worker left running by
    an earlier test module must not take them and write between a test session's read and its
    write (SQLite then refuses the write at once: "database is locked", seen twice in CI)."""
    from clarion import jobqueue
    from tests.sendkit import InlineQueue

    kept = InlineQueue()
    previous = jobqueue.set_backend(kept)
    yield kept
    jobqueue.set_backend(previous)
