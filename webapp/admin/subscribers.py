"""Subscribers: search and filter with keyset paging, detail, deletion, suppression lifts."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from clarion.audience import directory, lists, tags
from clarion.bounces.policy import soft_standing
from clarion.errors import ValidationError
from clarion.i18n import gettext, ngettext
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip, int_arg, optional_int


def read_filter(source) -> directory.SubscriberFilter:
    """The filter from query arguments or a form; a bad status is dropped with a message."""
    list_id = source.get("list", "")
    tag_id = source.get("tag", "")
    status = source.get("status", "")
    if status not in directory.STATUSES:
        status = ""
    return directory.SubscriberFilter(
        q=source.get("q", "")[:200],
        list_id=optional_int(list_id, "list"),
        status=status,
        tag_id=optional_int(tag_id, "tag"),
    )


@bp.get("/subscribers")
@requires("view")
def subscribers():
    """Search by address or name; filter by list, status and tag; page by id."""
    f = read_filter(request.args)
    page = directory.page(db(), f, after=int_arg("after"), before=int_arg("before"))
    return render_template(
        "admin/subscribers.html",
        page=page,
        f=f,
        all_lists=lists.all_lists(db()),
        all_tags=tags.all_tags(db()),
        statuses=directory.STATUSES,
    )


@bp.post("/subscribers/tag")
@requires("manage_subscribers")
def subscribers_tag():
    """Attach or detach a tag for everyone the filter matches (not only this page)."""
    f = read_filter(request.form)
    try:
        tag = tags.find_or_create(db(), request.form.get("tag_name", ""))
        if request.form.get("operation") == "detach":
            n = tags.detach(db(), current_editor(), tag, f, client_ip())
            message = ngettext(
                "Removed the tag %(tag)s from %(num)s subscriber.",
                "Removed the tag %(tag)s from %(num)s subscribers.",
                n,
                tag=tag.name,
            )
        else:
            n = tags.attach(db(), current_editor(), tag, f, client_ip())
            message = ngettext(
                "Tagged %(num)s more subscriber with %(tag)s.",
                "Tagged %(num)s more subscribers with %(tag)s.",
                n,
                tag=tag.name,
            )
        db().commit()
        flash(message)
    except ValidationError as exc:
        db().rollback()
        flash(gettext("Tag:") + " " + " ".join(exc.errors.values()), "error")
    return redirect(url_for("admin.subscribers", **f.as_args()))


@bp.get("/subscribers/<int:subscriber_id>")
@requires("view")
def subscriber(subscriber_id: int):
    """Consent records, subscriptions, deliveries and bounces of one reader."""
    return render_template(
        "admin/subscriber.html", d=soft_standing(db(), directory.detail(db(), subscriber_id))
    )


@bp.post("/subscribers/<int:subscriber_id>/delete")
@requires("delete_subscribers")
def subscriber_delete(subscriber_id: int):
    """Erase a subscriber and their history (recorded in the audit log)."""
    found = directory.get_subscriber(db(), subscriber_id)
    directory.delete_subscriber(db(), current_editor(), found, client_ip())
    db().commit()
    flash(gettext("The subscriber and their history are deleted."))
    return redirect(url_for("admin.subscribers"))


@bp.post("/subscribers/<int:subscriber_id>/lift-suppression")
@requires("lift_suppression")
def subscriber_lift(subscriber_id: int):
    """Let a suppressed address receive mail again."""
    found = directory.get_subscriber(db(), subscriber_id)
    directory.lift_suppression(db(), current_editor(), found.email, client_ip())
    db().commit()
    flash(gettext("The suppression is lifted; the address can receive mail again."))
    return redirect(url_for("admin.subscriber", subscriber_id=subscriber_id))
