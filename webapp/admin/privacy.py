"""What Clarion keeps about readers, for how long, and when retention last ran (owners)."""

from __future__ import annotations

from flask import render_template

from clarion import retention
from webapp.admin import bp
from webapp.admin.access import requires
from webapp.extensions import db


@bp.get("/settings/privacy")
@requires("manage_settings")
def privacy():
    """The retention policy with the configured periods, and the last run's figures."""
    return render_template(
        "admin/privacy.html", rules=retention.policy(), last_run=retention.last_run(db())
    )
