"""The dashboard: lists with their counts, the latest alerts, the embeddable sign-up snippet."""

from __future__ import annotations

from flask import current_app, render_template

from clarion.alerts import campaigns
from clarion.audience import lists, subscribers
from clarion.bounces import policy
from webapp.admin import bp
from webapp.admin.access import requires
from webapp.extensions import db


@bp.get("/")
@requires("view")
def dashboard():
    """Notices to act on, counts per list and status, the latest alerts, the blog snippet."""
    settings = current_app.config["CLARION"]
    return render_template(
        "admin/dashboard.html",
        counts=lists.counts(db()),
        all_lists=lists.all_lists(db()),
        recent_alerts=campaigns.page(db(), size=8).items,
        notices=policy.open_notices(db()),
        snippet=render_template(
            "admin/embed_snippet.html",
            lists=subscribers.public_lists(db()),
            base_url=settings.base_url,
        ),
    )
