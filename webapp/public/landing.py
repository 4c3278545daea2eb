"""The front page: the sign-up form, the petitions open now, and the way to the archive."""

from __future__ import annotations

from flask import render_template, request

from clarion.actions import petitions
from webapp.extensions import db
from webapp.i18n import page_language
from webapp.public import bp
from webapp.public.subscribe import form_context


@bp.get("/")
def landing():
    """What a visitor of the bare address finds, instead of a "Not Found"."""
    values = {"language": page_language(), "lists": [], "source": request.args.get("source", "")}
    found = petitions.open_petitions(db())
    return render_template(
        "public/landing.html",
        petitions=[(p, petitions.progress(db(), p)) for p in found],
        **form_context(values, {}),
    )
