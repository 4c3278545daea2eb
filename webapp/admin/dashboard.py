"""The dashboard: lists with their counts, the latest alerts, the embeddable sign-up snippet."""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import force_locale

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
        snippets=_snippets(settings),
    )


def _snippets(settings) -> list[tuple[str, str, str]]:
    """(code, label, HTML) of the blog's sign-up form in each of the readers' languages."""
    public = subscribers.public_lists(db())
    found = []
    for code, label in settings.languages:
        with force_locale(code):
            html = render_template(
                "admin/embed_snippet.html", lists=public, base_url=settings.base_url, code=code
            )
        found.append((code, label, html))
    return found
