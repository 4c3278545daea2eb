"""Our Mastodon hand-off page: it asks for the reader's server and sends them only there."""

from __future__ import annotations

from tests.helpers import csrf_from


def test_the_page_asks_for_the_server_and_remembers_it_with_our_own_script(client, settings):
    page = client.get("/share/mastodon?text=Sign%20now")
    assert page.status_code == 200
    assert ">Sign now</textarea>" in page.text and "/static/share.js" in page.text
    assert "form-action 'self' https:" in page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_server_name_leads_to_its_share_page(client, settings):
    token = csrf_from(client.get("/share/mastodon").text)
    response = client.post(
        "/share/mastodon",
        data={"csrf_token": token, "instance": "@ana@Mastodon.Social", "text": "Sign #now"},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "https://mastodon.social/share?text=Sign%20%23now"


def test_anything_else_is_refused_and_the_text_kept(client, settings):
    token = csrf_from(client.get("/share/mastodon").text)
    response = client.post(
        "/share/mastodon",
        data={"csrf_token": token, "instance": "evil.example/phish?", "text": "Sign #now"},
    )
    assert response.status_code == 422 and "Location" not in response.headers
    assert 'id="instance-error"' in response.text and ">Sign #now</textarea>" in response.text


def test_the_hand_off_cannot_be_triggered_by_a_link_from_elsewhere(client, settings):
    # Without our form's CSRF token the redirect never happens: no open redirect by link.
    response = client.post("/share/mastodon", data={"instance": "evil.example", "text": "x"})
    assert response.status_code == 400 and "Location" not in response.headers
