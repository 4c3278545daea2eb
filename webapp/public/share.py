"""Sharing to Mastodon: ask for the reader's own server, then hand over to its share page."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request

from clarion.alerts import sharing
from clarion.errors import ValidationError
from webapp.public import bp

# The hand-off is a form post answered with a redirect to the reader's server; browsers apply
# form-action to that redirect, so this page (and only this page) allows https targets.
SHARE_CSP = (
    "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self' https:; frame-ancestors 'none'"
)


def _page(text: str, instance: str = "", error: str = "", status: int = 200):
    response = current_app.make_response(
        (
            render_template(
                "public/share_mastodon.html",
                text=text[: sharing.MAX_SHARE_TEXT],
                instance=instance,
                error=error,
            ),
            status,
        )
    )
    response.headers["Content-Security-Policy"] = SHARE_CSP
    return response


@bp.get("/share/mastodon")
def share_mastodon():
    """Ask which server the reader uses (our script fills in the one they used last)."""
    return _page(request.args.get("text", ""))


@bp.post("/share/mastodon")
def share_mastodon_go():
    """Send the reader to https://<their server>/share with the text; nowhere else."""
    text = request.form.get("text", "")
    instance = request.form.get("instance", "")
    try:
        target = sharing.mastodon_share_url(instance, text)
    except ValidationError as exc:
        return _page(text, instance, exc.errors["instance"], status=422)
    return redirect(target, 303)
