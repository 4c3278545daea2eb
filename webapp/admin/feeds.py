"""Feeds in the admin: add and edit, see each feed's state and errors, cancel automatic sends."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion.alerts import campaigns
from clarion.audience import lists
from clarion.errors import InvalidTransition, ValidationError
from clarion.feeds import feeds
from clarion.i18n import gettext
from tasks.feeds import poll
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, int_list


def _form_values() -> dict:
    form = request.form
    return {
        "url": form.get("url", ""),
        "name": form.get("name", ""),
        "enabled": form.get("enabled") == "on",
        "auto_send": form.get("auto_send") == "on",
        "auto_send_lists": int_list(form.getlist("auto_send_lists")),
        "auto_send_delay_minutes": form.get("auto_send_delay_minutes", ""),
    }


def _values_of(feed) -> dict:
    return {
        "url": feed.url,
        "name": feed.name,
        "enabled": feed.enabled,
        "auto_send": feed.auto_send,
        "auto_send_lists": list(feed.auto_send_lists or []),
        "auto_send_delay_minutes": feed.auto_send_delay_minutes,
    }


def _check_soon(feed) -> bool:
    """Claim the feed and hand its poll to a worker after the commit; False if one just ran."""
    claimed = feeds.claim_now(db(), feed)
    db().commit()
    if claimed:
        poll.delay(feed.id)
    return claimed


@bp.get("/feeds", endpoint="feeds")
@requires("view")
def feeds_page():
    """Every feed with its last check and error."""
    return render_template("admin/feeds.html", all_feeds=feeds.all_feeds(db()))


def _feed_page(feed, values: dict, errors: dict, status: int = 200):
    return (
        render_template(
            "admin/feed.html",
            feed=feed,
            values=values,
            errors=errors,
            all_lists=lists.all_lists(db()),
            pending=feeds.pending_sends(db(), feed) if feed else [],
            entries=feeds.recent_entries(db(), feed) if feed else [],
            delays=(feeds.MIN_DELAY_MINUTES, feeds.MAX_DELAY_MINUTES),
        ),
        status,
    )


@bp.get("/feeds/new")
@requires("compose")
def feed_new():
    """An empty feed form."""
    return _feed_page(None, {"enabled": True, "auto_send_delay_minutes": 60}, {})


@bp.post("/feeds/new")
@requires("compose")
def feed_create():
    """Add a feed and check it at once (the first check only marks what is there as seen)."""
    values = _form_values()
    values["enabled"] = True
    try:
        feed = feeds.create_feed(db(), current_editor(), values, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _feed_page(None, values, exc.errors, 422)
    _check_soon(feed)
    flash(gettext("Feed added. Its first check marks the posts already there as seen: "
                  "only new posts become alerts."))  # fmt: skip
    return redirect(url_for("admin.feed", feed_id=feed.id))


@bp.get("/feeds/<int:feed_id>")
@requires("view")
def feed(feed_id: int):
    """A feed's state, its automatic sends waiting, the entries seen, and its settings."""
    found = feeds.get_feed(db(), feed_id)
    return _feed_page(found, _values_of(found), {})


@bp.post("/feeds/<int:feed_id>")
@requires("compose")
def feed_update(feed_id: int):
    """Save a feed's settings."""
    found = feeds.get_feed(db(), feed_id)
    values = _form_values()
    try:
        feeds.update_feed(db(), current_editor(), found, values, client_ip())
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _feed_page(feeds.get_feed(db(), feed_id), values, exc.errors, 422)
    flash(gettext("Saved."))
    return redirect(url_for("admin.feed", feed_id=feed_id))


@bp.post("/feeds/<int:feed_id>/check")
@requires("compose")
def feed_check(feed_id: int):
    """Check the feed now rather than at its next turn."""
    if _check_soon(feeds.get_feed(db(), feed_id)):
        flash(gettext("Checking now: reload this page in a moment."))
    else:
        flash(gettext("The feed was checked seconds ago; try again shortly."), "error")
    return redirect(url_for("admin.feed", feed_id=feed_id))


@bp.post("/feeds/<int:feed_id>/delete")
@requires("compose")
def feed_delete(feed_id: int):
    """Remove a feed; alerts made from it stay."""
    feeds.delete_feed(db(), current_editor(), feeds.get_feed(db(), feed_id), client_ip())
    db().commit()
    flash(gettext("Feed removed. Alerts made from it are still under Alerts."))
    return redirect(url_for("admin.feeds"))


@bp.post("/feeds/<int:feed_id>/cancel/<int:alert_id>")
@requires("send")
def feed_cancel_send(feed_id: int, alert_id: int):
    """Stop an automatic send before its time; the alert stays as a draft."""
    found = feeds.get_feed(db(), feed_id)
    alert = campaigns.get_alert(db(), alert_id)
    try:
        feeds.cancel_auto_send(db(), current_editor(), found, alert, client_ip())
        db().commit()
    except InvalidTransition as exc:
        db().rollback()
        flash(str(exc), "error")
    else:
        flash(
            gettext(
                "Automatic send of “%(subject)s” cancelled: it is a draft now.",
                subject=alert.subject,
            )
        )
    return redirect(url_for("admin.feed", feed_id=feed_id))
