"""Route walks over the whole URL map: each role reaches exactly what its permissions allow,
every admin form needs the CSRF token, every API route needs its proof.

The expected permission of each admin route is `webapp.admin.access.ROUTE_PERMISSIONS`; a route
missing from it fails here, so a new view cannot slip in unguarded.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select, text
from werkzeug.routing import Rule

from clarion import jobs
from clarion.bounces.webhooks.events import PROVIDERS
from clarion.config import get_settings, reset_settings
from clarion.db import Base, utcnow
from clarion.editors import PERMISSIONS
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

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
ROLES = ["owner", "editor", "viewer", "anonymous"]
# Ids and keys that name nothing: an allowed role gets past the guard and is told "not found".
MISSING = {"int": 987654, "default": "no-such-thing"}
WEBHOOK_SAMPLES = Path(__file__).resolve().parents[1] / "data" / "webhooks"


def snapshot(session) -> dict[str, list]:
    """Every row of every table, except the columns a mere request may touch."""
    refresh(session)
    skip = {"editors": {"last_login_at"}}
    tables = {}
    for table in Base.metadata.sorted_tables:
        columns = [c.name for c in table.columns if c.name not in skip.get(table.name, set())]
        rows = session.execute(text(f"SELECT {', '.join(columns)} FROM {table.name} ORDER BY 1"))
        tables[table.name] = [tuple(map(str, row)) for row in rows]
    return tables


@pytest.fixture
def world(session, settings, lists, make_editor):
    """One of each thing an action could touch, named by the URL arguments that point at it."""
    other, _ = make_editor("editor", "other@example.org")
    reader = Subscriber(email="reader@example.org", name="Reader")
    session.add_all(
        [
            reader,
            Tag(name="minsk"),
            Suppression(email="reader@example.org", reason=SuppressionReason.HARD_BOUNCE),
        ]
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
    upload = settings.instance_dir / "a.csv"
    upload.write_text("email\na@example.org\n")
    mapping = Job(
        kind="import",
        status=jobs.MAPPING,
        options={"file_name": "a.csv"},
        input_path=str(upload),
    )
    session.add_all([scheduled, mapping])
    session.commit()
    return {
        "editor_id": other.id,
        "subscriber_id": reader.id,
        "tag_id": session.scalar(select(Tag.id)),
        "list_id": lists["alerts"].id,
        # Scheduled: sending, cancelling, unscheduling and editing would all succeed.
        "alert_id": scheduled.id,
        "uid": mapping.uid,
    }


def rules(app, blueprint: str) -> list[tuple[Rule, str]]:
    """(rule, method) for every route of a blueprint; logging out comes last."""
    found = [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{blueprint}.")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    return sorted(found, key=lambda pair: (pair[0].endpoint == "admin.logout", pair[0].rule))


def url(rule: Rule, values: dict) -> str:
    """The rule's path with each argument from `values` (or a missing id when absent)."""
    path = rule.rule
    for name, converter in rule._converters.items():
        kind = "int" if type(converter).__name__ == "IntegerConverter" else "default"
        value = values.get(name, MISSING[kind])
        path = path.replace(f"<{kind}:{name}>" if kind == "int" else f"<{name}>", str(value))
    return path


def access():
    """The web layer's tables; imported late because importing webapp builds the Celery app
    from the settings of the moment, and those are the test's only once it runs."""
    from webapp.admin import access as admin_access

    return admin_access


def may(role: str, endpoint: str) -> bool:
    """What the table says this role may do on this route."""
    table = access()
    need = table.ROUTE_PERMISSIONS[endpoint]
    if need == table.ANYONE:
        return True
    if role == "anonymous":
        return False
    return need == table.LOGGED_IN or role in {r.value for r in PERMISSIONS[need]}


def request(client, method: str, path: str, token: str | None):
    data = {"csrf_token": token} if token else {}
    return client.open(path, method=method, data=data if method in UNSAFE else None)


def logged_in(client, login, role: str) -> str:
    """Log in as `role` (unless anonymous); the CSRF token of the session."""
    if role != "anonymous":
        login(client, role)
    return csrf_from(client.get("/admin/login" if role == "anonymous" else "/admin/account").text)


def test_every_admin_route_has_a_permission_and_every_entry_a_route(app):
    table = access()
    endpoints = {rule.endpoint for rule, _ in rules(app, "admin")}
    assert endpoints - table.ROUTE_PERMISSIONS.keys() == set(), "add these to ROUTE_PERMISSIONS"
    assert table.ROUTE_PERMISSIONS.keys() - endpoints == set(), "these routes no longer exist"
    known = set(PERMISSIONS) | {table.ANYONE, table.LOGGED_IN}
    assert {p for p in table.ROUTE_PERMISSIONS.values() if p not in known} == set()
    # Each view's own guard says the same as the table (the domain may check again behind it,
    # which would hide a weakened guard from the walk below).
    guards = {
        endpoint: getattr(app.view_functions[endpoint], "required_permission", None)
        for endpoint in endpoints
    }
    expected = {
        endpoint: None if need in {table.ANYONE, table.LOGGED_IN} else need
        for endpoint, need in table.ROUTE_PERMISSIONS.items()
    }
    assert guards == expected


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_the_routes_its_permissions_allow(
    client, session, login, world, role
):
    token = logged_in(client, login, role)
    wrong = []
    for rule, method in rules(client.application, "admin"):
        if may(role, rule.endpoint):
            # Past the guard: an id that names nothing is "not found", an empty form is
            # explained; never "your role does not allow" and never the login page.
            response = request(client, method, url(rule, {}), token)
            refused = response.status_code == 403 or (
                response.status_code == 302 and "/admin/login" in response.location
            )
            if refused and rule.endpoint not in {"admin.logout", "admin.login"}:
                wrong.append((rule.endpoint, method, response.status_code, "refused"))
            continue
        before = snapshot(session)
        response = request(client, method, url(rule, world), token)
        expected = 302 if role == "anonymous" else 403
        if response.status_code != expected or snapshot(session) != before:
            wrong.append((rule.endpoint, method, response.status_code, "allowed"))
        elif role == "anonymous":
            assert "/admin/login" in response.location
        else:
            assert "does not allow" in response.text
    assert wrong == []


def test_every_admin_form_refuses_a_post_without_or_with_a_wrong_csrf_token(
    client, session, login, world
):
    login(client, "owner")
    before = snapshot(session)
    unsafe = [(r, m) for r, m in rules(client.application, "admin") if m in UNSAFE]
    send_control = {f"admin.alert_{a}" for a in ("send", "pause", "resume", "cancel")}
    assert {r.endpoint for r, _ in unsafe} >= send_control | {"admin.alert_send_unreached"}
    accepted = []
    for rule, method in unsafe:
        for token in (None, "forged-token"):
            response = request(client, method, url(rule, world), token)
            if response.status_code != 400 or "The form expired" not in response.text:
                accepted.append((rule.endpoint, token, response.status_code))
    assert accepted == []
    assert snapshot(session) == before
    # Still logged in: the refused logout did not log out.
    assert client.get("/admin/").status_code == 200


def test_only_the_listed_public_forms_take_a_post_without_the_csrf_token(app):
    from webapp.public import CSRF_EXEMPT

    client = app.test_client()
    exempt = set()
    for rule, method in rules(app, "public"):
        if method in UNSAFE:
            response = request(client, method, url(rule, {}), None)
            if "The form expired" not in response.text:
                exempt.add(rule.endpoint)
    assert exempt == set(CSRF_EXEMPT)


@pytest.fixture
def providers_configured(settings, monkeypatch):
    """Every webhook provider set up, so that a refusal is about the proof, not the setup."""
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    monkeypatch.setenv("CLARION_SES_TOPIC_ARNS", "arn:aws:sns:us-west-2:123456789012:MyTopic")
    monkeypatch.setenv("CLARION_MAILGUN_SIGNING_KEY", "key-" + "3ax6xnjp29jd6fds4gc373sgvjxteol0")
    monkeypatch.setenv("CLARION_SENDGRID_PUBLIC_KEY", base64.b64encode(public).decode())
    monkeypatch.setenv("CLARION_POSTMARK_WEBHOOK_AUTH", "postmark:a-long-webhook-password-0123")
    reset_settings()
    return get_settings()


def test_every_api_route_refuses_a_request_without_its_proof(session, providers_configured):
    from webapp import create_app
    from webapp.api import ROUTE_PROOF

    fetched: list[str] = []
    app = create_app(
        providers_configured, TESTING=True, SNS_FETCH=lambda u: fetched.append(u) or b"junk"
    )
    endpoints = {rule.endpoint for rule, _ in rules(app, "api")}
    assert endpoints == set(ROUTE_PROOF)
    samples = {
        "ses": "sns-notification.json",
        "mailgun": "mailgun-failed-permanent.json",
        "sendgrid": "sendgrid-events.json",
        "postmark": "postmark-bounce.json",
    }
    assert set(samples) == set(PROVIDERS)
    client = app.test_client()
    before = snapshot(session)
    for rule, method in rules(app, "api"):
        for provider, name in samples.items():
            body = json.loads((WEBHOOK_SAMPLES / name).read_text())
            response = client.open(url(rule, {"provider": provider}), method=method, json=body)
            assert response.status_code in {401, 403}, (rule.endpoint, provider)
    assert snapshot(session) == before


def test_every_admin_page_carries_a_csrf_token_in_each_form(client, login, world):
    login(client, "owner")
    checked = 0
    for rule, method in rules(client.application, "admin"):
        if method != "GET":
            continue
        response = client.get(url(rule, world))
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        html = response.text
        assert html.count('name="csrf_token"') == html.count('method="post"'), rule.rule
        checked += 1
    assert checked > 20
