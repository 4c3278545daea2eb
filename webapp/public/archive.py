"""The public archive of sent alerts, its RSS feed, and images Clarion stores."""

from __future__ import annotations

from flask import abort, current_app, make_response, render_template, send_from_directory

from clarion.alerts import archive, media
from webapp.extensions import db
from webapp.public import bp
from webapp.security import OUTBOX_FRAME_CSP
from webapp.utils import int_arg


@bp.get("/archive")
def archive_index():
    """Alerts their editors chose to publish, newest first."""
    page = archive.page(db(), after=int_arg("after"), before=int_arg("before"))
    return render_template("public/archive.html", page=page, sent_on=archive.sent_on)


@bp.get("/archive/<uid>")
def archive_alert(uid: str):
    """One published alert as readers received it."""
    alert = archive.get_public(db(), uid)
    mail = archive.rendered(db(), alert)
    return render_template(
        "public/archive_alert.html", alert=alert, mail=mail, sent_on=archive.sent_on(alert)
    )


@bp.get("/archive/<uid>/html")
def archive_html(uid: str):
    """The alert's HTML for the sandboxed frame."""
    alert = archive.get_public(db(), uid)
    response = make_response(archive.rendered(db(), alert).html)
    response.headers["Content-Security-Policy"] = OUTBOX_FRAME_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@bp.get("/archive.rss")
def archive_feed():
    """RSS 2.0 of the newest published alerts."""
    response = make_response(archive.feed(db()))
    response.headers["Content-Type"] = "application/rss+xml; charset=utf-8"
    return response


@bp.get("/media/<name>")
def media_file(name: str):
    """An image copied by Clarion (content-addressed, so it never changes)."""
    if not media.NAME_RE.fullmatch(name):
        abort(404)
    directory = media.media_dir(current_app.config["CLARION"].instance_dir)
    response = send_from_directory(
        directory, name, mimetype=media.MIME_TYPES[name.rsplit(".", 1)[1]], max_age=31536000
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'"
    return response
