"""The admin shows a sign-up snippet for the blog; a form built from it subscribes."""

from __future__ import annotations

import html as htmllib
import re

from tests.helpers import subscription_states


def test_dashboard_snippet_posts_to_clarion_and_works(client, session, login, lists, settings):
    login(client, "editor")
    page = client.get("/admin/").get_data(as_text=True)
    snippet = htmllib.unescape(
        re.search(r'<textarea[^>]*id="embed-snippet"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    )
    assert f'action="{settings.base_url}/subscribe"' in snippet
    assert 'name="website"' in snippet  # the honeypot travels with it
    assert "Staff only" not in snippet
    values = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', snippet))
    list_ids = re.findall(r'name="lists" value="(\d+)"', snippet)
    assert sorted(map(int, list_ids)) == sorted([lists["alerts"].id, lists["news"].id])
    fresh = client.application.test_client()  # the blog's visitor: no admin session
    response = fresh.post(
        "/subscribe",
        data={**values, "email": "blog@example.org", "website": "", "lists": list_ids[:1]},
        headers={"Origin": "https://blog.example.net"},
    )
    assert response.status_code == 200
    assert set(subscription_states(session, "blog@example.org").values()) == {"pending"}
