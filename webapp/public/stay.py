"""The "Yes, keep me" page of a "stay subscribed?" mail: GET asks, POST keeps the reader."""

from __future__ import annotations

from flask import render_template, request

from clarion.audience import repermission
from webapp.extensions import db
from webapp.i18n import use_reader_language
from webapp.public import bp


@bp.get("/stay")
def stay_page():
    """Ask for one press; a GET keeps no one (mail scanners follow links)."""
    token = request.args.get("t", "")
    found = repermission.card(db(), token)
    use_reader_language(found.subscriber.language)
    return render_template("public/stay.html", token=token, card=found)


@bp.post("/stay")
def stay_press():
    """Keep the reader subscribed (once; pressing again changes nothing)."""
    token = request.form.get("t", "")
    found = repermission.stay(db(), token)
    db().commit()
    use_reader_language(found.subscriber.language)
    return render_template("public/stay.html", token=token, card=found)
