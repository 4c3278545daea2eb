"""The composer's live preview and test send: what is typed, rendered as the send path does.

The script posts the whole form as the editor types; the mail is rendered for a sample reader
through the same code as a send (clarion.delivery.testsend.render_for_reader), its HTML kept
for a few minutes under a random key for the sandboxed frame to load (a srcdoc frame would
inherit the admin's policy, which forbids the mail's inline styles), its text and the problems
found returned as JSON. Nothing is saved.
"""

from __future__ import annotations

import secrets

from flask import current_app, jsonify, make_response, request, url_for

from clarion.alerts import campaigns, kinds
from clarion.delivery import testsend
from clarion.errors import ValidationError
from clarion.redisconn import get_redis
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.admin.alerts import _draft_from_form
from webapp.extensions import db
from webapp.security import OUTBOX_FRAME_CSP
from webapp.utils import client_ip, optional_int

FRAME_SECONDS = 600
MAX_SAMPLE_NAME = 200


def _frame_key(key: str) -> str:
    # Bound to the editor: another editor cannot load it even with the key.
    return f"clarion:preview:{current_editor().id}:{key}"


def _typed():
    """The alert as typed on the posted form, the problems found in it, and the version and
    sample reader asked for."""
    kind = kinds.spec(request.form.get("kind", "")).kind.value
    alert, problems = campaigns.draft_alert(db(), _draft_from_form(kind))
    lang = request.form.get("preview_lang") or None
    if lang not in (alert.translations or {}):
        lang = None
    name = " ".join(request.form.get("sample_name", "").split())[:MAX_SAMPLE_NAME] or None
    return alert, problems, lang, name


def _languages(alert) -> list[list[str]]:
    """The versions a preview can show, the primary first: [code, name]."""
    names = dict(current_app.config["CLARION"].languages)
    codes = [alert.language, *(alert.translations or {})]
    return [[code, names.get(code, code)] for code in codes]


@bp.post("/alerts/composer/preview")
@requires("compose")
def composer_preview():
    """The typed alert rendered for a sample reader: subject, text, the frame's address, and
    every problem named by its field (nothing is saved; what was typed stays in the form)."""
    try:
        alert, problems, lang, name = _typed()
    except ValidationError as exc:
        return jsonify({"errors": exc.errors, "frame": None}), 422
    answer = {"errors": problems, "versions": _languages(alert), "language": lang or alert.language}
    try:
        mail = testsend.render_for_reader(db(), alert, lang, name)
    except ValidationError as exc:
        return jsonify({**answer, "errors": {**problems, **exc.errors}, "frame": None})
    finally:
        db().rollback()  # the petition's count may have been read; nothing is written
    key = secrets.token_urlsafe(16)
    get_redis().set(_frame_key(key), mail.html.encode(), ex=FRAME_SECONDS)
    frame = url_for("admin.composer_frame", key=key)
    return jsonify({**answer, "subject": mail.subject, "text": mail.text, "frame": frame})


@bp.get("/alerts/composer/frame/<key>")
@requires("compose")
def composer_frame(key: str):
    """A preview's HTML alone, for the sandboxed frame; no script can run in it."""
    html = get_redis().get(_frame_key(key))
    if html is None:
        return make_response("", 404)
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = OUTBOX_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/alerts/composer/test")
@requires("compose")
def composer_test():
    """Send what the preview shows (the version and sample reader chosen) as a [Test] to the
    addresses typed; rate limited and audited like every test send."""
    try:
        alert, _problems, lang, name = _typed()
        alert.id = optional_int(request.form.get("alert_id", ""), "alert_id")
        sent = testsend.send_test(
            db(), current_editor(), alert, request.form.get("test_to", ""), client_ip(), lang, name
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return jsonify({"errors": exc.errors}), 422
    return jsonify({"sent": sent})
