"""Webhooks under Settings (owners): register endpoints, rotate secrets, read the delivery log
and resend."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion.errors import ValidationError
from clarion.i18n import gettext
from clarion.integrations import webhooks
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip


def _form() -> dict:
    form = request.form
    return {
        "url": form.get("url", ""),
        "events": form.getlist("events"),
        "description": form.get("description", ""),
        "enabled": form.get("enabled") == "on",
    }


def _index(errors: dict, status: int = 200, values: dict | None = None, **extra):
    return (
        render_template(
            "admin/webhooks.html",
            endpoints=webhooks.endpoints(db()),
            events=webhooks.EVENTS,
            errors=errors,
            values=values or {"events": []},
            **extra,
        ),
        status,
    )


def _detail(endpoint, errors: dict, status: int = 200, values: dict | None = None, **extra):
    return (
        render_template(
            "admin/webhook.html",
            endpoint=endpoint,
            events=webhooks.EVENTS,
            log=webhooks.delivery_log(db(), endpoint.id),
            errors=errors,
            values=values
            or {
                "url": endpoint.url,
                "events": endpoint.events,
                "description": endpoint.description,
                "enabled": endpoint.enabled,
            },
            **extra,
        ),
        status,
    )


@bp.get("/settings/webhooks")
@requires("manage_settings")
def webhooks_index():
    """The endpoints and their state, and the form to add one."""
    return _index({})


@bp.post("/settings/webhooks")
@requires("manage_settings")
def webhook_create():
    """Register an endpoint; its secret is shown on the page this once."""
    values = _form()
    try:
        endpoint, secret = webhooks.create_endpoint(
            db(),
            current_editor(),
            values["url"],
            values["events"],
            values["description"],
            client_ip(),
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _index(exc.errors, 422, values)
    return _detail(endpoint, {}, 201, new_secret=secret)


@bp.get("/settings/webhooks/<int:endpoint_id>")
@requires("manage_settings")
def webhook(endpoint_id: int):
    """One endpoint: its settings, and what was delivered to it, newest first."""
    return _detail(webhooks.get_endpoint(db(), endpoint_id), {})


@bp.post("/settings/webhooks/<int:endpoint_id>")
@requires("manage_settings")
def webhook_update(endpoint_id: int):
    """Change the address, the events, or switch the endpoint on or off."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    values = _form()
    try:
        webhooks.update_endpoint(
            db(),
            current_editor(),
            endpoint,
            values["url"],
            values["events"],
            values["description"],
            values["enabled"],
            client_ip(),
        )
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _detail(webhooks.get_endpoint(db(), endpoint_id), exc.errors, 422, values)
    flash(gettext("The webhook is saved."))
    return redirect(url_for("admin.webhook", endpoint_id=endpoint_id))


@bp.post("/settings/webhooks/<int:endpoint_id>/rotate")
@requires("manage_settings")
def webhook_rotate(endpoint_id: int):
    """A new secret, shown once; the old one goes on signing for 24 hours."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    secret = webhooks.rotate_secret(db(), current_editor(), endpoint, client_ip())
    db().commit()
    return _detail(endpoint, {}, 200, new_secret=secret)


@bp.post("/settings/webhooks/<int:endpoint_id>/delete")
@requires("manage_settings")
def webhook_delete(endpoint_id: int):
    """Forget the endpoint and its log."""
    endpoint = webhooks.get_endpoint(db(), endpoint_id)
    webhooks.delete_endpoint(db(), current_editor(), endpoint, client_ip())
    db().commit()
    flash(gettext("The webhook is deleted."))
    return redirect(url_for("admin.webhooks_index"))


@bp.post("/settings/webhooks/deliveries/<int:delivery_id>/resend")
@requires("manage_settings")
def webhook_resend(delivery_id: int):
    """Deliver one event again (same webhook-id, so a receiver can tell it is the same)."""
    delivery = webhooks.resend(db(), current_editor(), delivery_id, client_ip())
    db().commit()
    flash(gettext("The event will be sent again."))
    return redirect(url_for("admin.webhook", endpoint_id=delivery.endpoint_id))
