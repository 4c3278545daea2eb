"""One-click unsubscribe (RFC 8058): POST leaves at once, GET only asks."""

from __future__ import annotations

from flask import render_template, request

from clarion import tokens
from clarion.audience import subscribers
from clarion.errors import InvalidToken
from clarion.i18n import gettext as _
from webapp.extensions import csrf, db
from webapp.i18n import use_reader_language
from webapp.public import bp
from webapp.utils import client_ip


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str):
    """Show a confirmation page; a GET never unsubscribes (mail scanners follow links)."""
    scope = tokens.read_unsubscribe_token(token)
    subscriber = subscribers.subscriber_by_uid(db(), scope.subscriber_uid)
    use_reader_language(subscriber.language)
    list_ids = subscribers.scope_list_ids(db(), scope)
    names = subscribers.list_names(db(), list_ids) if list_ids else []
    return render_template(
        "public/unsubscribe.html",
        token=token,
        list_names=names,
        preferences_token=tokens.preferences_token(subscriber.uid),
    )


@bp.post("/unsubscribe/<token>")
@csrf.exempt  # RFC 8058: mailbox providers POST with no cookie, session or CSRF token
def unsubscribe_one_click(token: str):
    """Leave the lists the token covers; idempotent, 200 without redirect."""
    # Accept the RFC 8058 body in form-urlencoded or multipart; our own page sends the same.
    if request.form.get("List-Unsubscribe") != "One-Click":
        raise InvalidToken(_("This request is not a one-click unsubscribe."))
    scope = tokens.read_unsubscribe_token(token)
    use_reader_language(subscribers.subscriber_by_uid(db(), scope.subscriber_uid).language)
    subscribers.unsubscribe_by_token(db(), token, ip=client_ip())
    db().commit()
    return render_template("public/unsubscribed.html"), 200
