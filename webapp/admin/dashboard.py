"""The dashboard and the embeddable sign-up snippet."""

from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy import func, select

from clarion import subscribers
from clarion.models import Subscription, SubscriptionStatus
from webapp.admin import bp
from webapp.admin.access import requires
from webapp.extensions import db


@bp.get("/")
@requires("view")
def dashboard():
    """Counts per list and status, and the snippet for the blog."""
    rows = (
        db()
        .execute(
            select(Subscription.list_id, Subscription.status, func.count()).group_by(
                Subscription.list_id, Subscription.status
            )
        )
        .all()
    )
    counts: dict[int, dict[str, int]] = {}
    for list_id, status, n in rows:
        counts.setdefault(list_id, {})[SubscriptionStatus(status).value] = n
    lists = subscribers.public_lists(db())
    settings = current_app.config["CLARION"]
    return render_template(
        "admin/dashboard.html",
        counts=counts,
        all_lists=lists,
        snippet=render_template(
            "admin/embed_snippet.html", lists=lists, base_url=settings.base_url
        ),
    )
