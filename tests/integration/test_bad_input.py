"""Malformed numbers and JSON from anyone get a 400 that says what to fix, never a 500."""

from __future__ import annotations

import pytest

from clarion import tokens
from tests.helpers import csrf_from
from tests.integration.alertkit import make_petition

HUGE = "9" * 30
JUNK_ARGS = {
    "after": HUGE,
    "before": "²",
    "list": "٣",
    "tag": HUGE,
    "lists": "²",
    "tags": "²",
    "page": HUGE,
}


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


@pytest.fixture
def petition(session, lists):
    return make_petition(session)


def form_post(client, path, data):
    html = client.get(path).get_data(as_text=True)
    token = csrf_from(html) if "csrf_token" in html else ""
    return client.post(path, data={**data, "csrf_token": token})


@pytest.mark.parametrize("lists_value", ["²", "\u0661", HUGE, "1e3"])
def test_subscribe_with_a_malformed_list_id_is_a_clear_400(client, lists, lists_value):
    data = {"email": "a@example.org", "lists": lists_value}
    response = form_post(client, "/subscribe", data)
    assert response.status_code == 400
    assert "whole number" in response.get_data(as_text=True)


def test_signing_with_a_malformed_list_id_is_a_clear_400(client, petition):
    data = {"email": "a@example.org", "name": "A", "lists": "²"}
    response = form_post(client, f"/p/{petition.slug}", data)
    assert response.status_code == 400
    assert "whole number" in response.get_data(as_text=True)


@pytest.mark.parametrize("after", [HUGE, "²", "-1", "1" * 5000])
def test_paging_with_a_malformed_cursor_is_a_clear_400(client, after):
    response = client.get(f"/archive?after={after}")
    assert response.status_code == 400
    assert "whole number" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "body",
    [deep_json(), '{"email": "a@example.org", "lists": ' + deep_json() + "}", "[1, 2]", '"x"'],
)
def test_subscribe_json_too_deep_or_of_the_wrong_shape_is_a_400(client, lists, body):
    response = client.post(
        "/subscribe",
        data=body,
        content_type="application/json",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400


def test_subscribe_json_with_junk_list_ids_is_a_400(client, lists):
    for junk in (["²"], [10**30], [True], [[1]], 5):
        response = client.post(
            "/subscribe",
            json={"email": "a@example.org", "lists": junk},
            headers={"Accept": "application/json"},
        )
        assert response.status_code == 400, junk


def _fill(rule, petition_slug: str, prefs: str) -> str:
    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__
        if arg == "slug":
            values[arg] = petition_slug
        elif arg == "token" and rule.rule.startswith("/preferences"):
            values[arg] = prefs
        else:
            values[arg] = "1" if converter == "IntegerConverter" else "x"
    path = rule.rule
    for arg, value in values.items():
        path = path.replace(f"<{rule._converters[arg].__class__.__name__}:{arg}>", value)
        path = path.replace(f"<int:{arg}>", value).replace(f"<path:{arg}>", value)
        path = path.replace(f"<{arg}>", value)
    return path


def test_no_route_answers_junk_numbers_with_a_500(app, client, session, login, subscribed):
    """Walk every GET route (public, and admin as an owner) and every public POST route."""
    petition = make_petition(session)
    prefs = tokens.preferences_token(subscribed.uid)
    login(client, "owner")
    token = csrf_from(client.get("/admin/account").get_data(as_text=True))
    query = "&".join(f"{k}={v}" for k, v in JUNK_ARGS.items())
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"admin.logout", "static"} or "path:" in rule.rule:
            continue
        path = _fill(rule, petition.slug, prefs)
        if "GET" in rule.methods:
            response = client.get(f"{path}?{query}")
            assert response.status_code < 500, (path, response.status_code)
            checked += 1
        if "POST" in rule.methods and rule.endpoint.startswith("public."):
            form = {**JUNK_ARGS, "email": "a@example.org", "csrf_token": token}
            response = client.post(path, data=form)
            assert response.status_code < 500, (path, response.status_code)
            checked += 1
    assert checked > 40
