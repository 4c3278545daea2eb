"""Every petition and stats page renders, runs no inline script or style, loads nothing remote."""

from __future__ import annotations

import re

from clarion.db import utcnow
from clarion.models import Signature
from tests.integration.alertkit import frozen_alert, make_petition, make_readers
from tests.integration.test_admin_pages import INLINE

LOADS = re.compile(
    r"""\s(?:src|srcset|poster)=["']?((?:https?:)?//[^"'\s>]*)|<link[^>]+href=["']?((?:https?:)?//[^"'\s>]*)"""
)


def assert_clean(client, path: str, base_url: str) -> str:
    response = client.get(path)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, path
    assert "script-src 'self'" in response.headers["Content-Security-Policy"] or path.endswith(
        "/embed"
    ), path
    remote = [u for pair in LOADS.findall(html) for u in pair if u and not u.startswith(base_url)]
    assert remote == [], path
    assert not INLINE.search(html), path
    return html


def test_petition_and_stats_pages_are_clean(client, session, login, settings, lists):
    login(client, "owner")
    petition = make_petition(
        session, image_url=f"{settings.base_url}/media/{'a' * 32}.jpg", target="The Minister"
    )
    session.add(
        Signature(
            petition_id=petition.id,
            email="a@example.org",
            name="A",
            created_at=utcnow(),
            confirmed_at=utcnow(),
        )
    )
    session.commit()
    alert, _ = frozen_alert(session, ["https://blog.example.org/"], make_readers(session, 1))
    base = settings.base_url
    for path in [
        "/admin/petitions",
        "/admin/petitions/new",
        f"/admin/petitions/{petition.id}",
        f"/admin/petitions/{petition.id}/edit",
        "/admin/stats",
        f"/admin/alerts/{alert.id}/stats",
        "/admin/settings/tracking",
        "/p/free-them",
        "/p/free-them/embed",
        "/share/mastodon?text=x",
    ]:
        assert_clean(client, path, base)
