"""What each alert achieved, and the owner's switch for open tracking."""

from __future__ import annotations

from flask import jsonify, redirect, render_template, request, url_for
from sqlalchemy import select

from clarion.actions import stats
from clarion.errors import NotFound
from clarion.i18n import gettext
from clarion.models import Alert
from clarion.tracking import opens
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def _alert(alert_id: int) -> Alert:
    alert = db().get(Alert, alert_id)
    if alert is None:
        raise NotFound(gettext("This alert does not exist."))
    return alert


@bp.get("/stats")
@requires("view")
def stats_index():
    """Alerts that went out (or are going out), newest first, each with its stats."""
    alerts = db().scalars(
        select(Alert).where(Alert.frozen_at.is_not(None)).order_by(Alert.frozen_at.desc())
    )
    return render_template("admin/stats_index.html", alerts=list(alerts))


@bp.get("/alerts/<int:alert_id>/stats")
@requires("view")
def alert_stats(alert_id: int):
    """Recipients, delivery, bounces, unsubscribes, clicks per link, signatures, charts."""
    alert = _alert(alert_id)
    return render_template(
        "admin/alert_stats.html",
        alert=alert,
        s=stats.alert_stats(db(), alert),
        opens_tracked=opens.is_enabled(db()),
    )


@bp.get("/alerts/<int:alert_id>/stats.json")
@requires("view")
def alert_stats_json(alert_id: int):
    """Clicks (people and scanners) and signatures per hour, for the chart."""
    alert = _alert(alert_id)
    return jsonify(stats.alert_hourly(db(), alert, current_editor().timezone or "UTC").as_json())


@bp.get("/settings/tracking")
@requires("manage_settings")
def tracking_settings():
    """Whether opens are tracked, and what that means."""
    return render_template("admin/tracking.html", enabled=opens.is_enabled(db()))


@bp.post("/settings/tracking")
@requires("manage_settings")
def tracking_settings_save():
    """Turn open tracking on or off (recorded in the audit log)."""
    opens.set_enabled(
        db(), current_editor(), request.form.get("open_tracking") == "on", client_ip()
    )
    db().commit()
    return redirect(url_for("admin.tracking_settings"))
