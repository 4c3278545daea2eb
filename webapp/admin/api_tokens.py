"""An editor's own API tokens on the Account page: make one (shown once), see them, revoke."""

from __future__ import annotations

from flask import flash, redirect, request, url_for

from clarion.errors import ValidationError
from clarion.i18n import gettext
from clarion.integrations import apitokens
from webapp.admin import account, bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, whole


def context() -> dict:
    """What the Account page's token section shows."""
    return {
        "api_tokens": apitokens.tokens_of(db(), current_editor()),
        "api_scopes": apitokens.SCOPES,
    }


@bp.post("/account/api-tokens")
@requires("view")
def api_token_create():
    """Make a token within the editor's role; its secret is shown on this page once."""
    scopes = request.form.getlist("scope")
    raw_days = request.form.get("expires_days", "").strip()
    try:
        days = whole(raw_days, "expires_days") if raw_days else None
        token, secret = apitokens.create_token(
            db(),
            current_editor(),
            scopes,
            name=request.form.get("name", ""),
            expires_days=days,
            ip=client_ip(),
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return account.render(exc.errors, 422)
    return account.render({}, 201, new_token={"id": token.id, "secret": secret})


@bp.post("/account/api-tokens/<int:token_id>/revoke")
@requires("view")
def api_token_revoke(token_id: int):
    """Switch one of one's tokens off for good."""
    apitokens.revoke(db(), current_editor(), token_id, client_ip())
    db().commit()
    flash(gettext("The token is revoked."))
    return redirect(url_for("admin.account") + "#api-tokens")
