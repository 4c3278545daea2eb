"""Petitions in the admin: write and change them, see how they grow, export signatures."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import current_app, jsonify, redirect, render_template, request, url_for

from clarion.actions import petition_export, petitions, stats
from clarion.alerts import media, uploads
from clarion.errors import ValidationError
from clarion.i18n import gettext
from clarion.models import Petition
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.extensions import db
from webapp.utils import client_ip

FLAGS = ("raise_goal", "require_confirmation", "is_open")


def _zone() -> str:
    return current_editor().timezone or "UTC"


def _local(petition: Petition, fmt: str = "%d %b %Y %H:%M %Z") -> str:
    if petition.deadline is None:
        return ""
    return petition.deadline.astimezone(ZoneInfo(_zone())).strftime(fmt)


def _values_of(petition: Petition) -> dict:
    deadline = _local(petition, "%Y-%m-%dT%H:%M")
    return {
        "title": petition.title,
        "slug": petition.slug,
        "body_md": petition.body_md,
        "target": petition.target,
        "goal": str(petition.goal or ""),
        "deadline": deadline,
        "image_url": petition.image_url,
        "image_alt": petition.image_alt,
        **{flag: getattr(petition, flag) for flag in FLAGS},
    }


def _form_values() -> dict:
    fields = ("title", "slug", "body_md", "target", "goal", "image_url", "image_alt")
    values = {k: request.form.get(k, "") for k in fields}
    values["deadline"] = request.form.get("deadline", "")
    values.update({flag: request.form.get(flag) == "on" for flag in FLAGS})
    return values


def _form(petition: Petition | None, values: dict, errors: dict, status: int = 200):
    return (
        render_template(
            "admin/petition_form.html",
            petition=petition,
            values=values,
            errors=errors,
            zone=_zone(),
        ),
        status,
    )


def _validated(petition_id: int | None) -> tuple[dict, petitions.PetitionValues]:
    values = _form_values()
    return values, petitions.validate(db(), values, _zone(), petition_id)


def _apply_image(petition: Petition) -> None:
    """An uploaded image, or one copied once from an address; never a link to elsewhere."""
    settings = current_app.config["CLARION"]
    upload = request.files.get("image")
    address = request.form.get("image_url", "").strip()
    if upload is not None and upload.filename:
        name = uploads.store_upload(upload.stream, settings.instance_dir)
        petition.image_url = media.media_url(settings.base_url, name)
    elif request.form.get("remove_image") == "on":
        petition.image_url = ""
    elif address and address != petition.image_url:
        petition.image_url = media.copy_image(address, settings.instance_dir, settings.base_url)


@bp.get("/petitions")
@requires("view")
def petitions_list():
    """Every petition with its count."""
    found = petitions.all_petitions(db())
    counts = {p.id: petitions.count_signatures(db(), p.id) for p in found}
    return render_template("admin/petitions.html", petitions=found, counts=counts)


@bp.get("/petitions/new")
@requires("compose")
def petition_new():
    """An empty petition form."""
    return _form(None, {"is_open": True, "goal": "1000"}, {})


@bp.post("/petitions/new")
@requires("compose")
def petition_create():
    """Create a petition; a rejected form keeps what was typed."""
    values: dict = _form_values()
    try:
        values, checked = _validated(None)
        petition = petitions.create(db(), current_editor(), checked, client_ip())
        _apply_image(petition)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(None, values, exc.errors, 422)
    return redirect(url_for("admin.petition_detail", petition_id=petition.id))


@bp.get("/petitions/<int:petition_id>/edit")
@requires("compose")
def petition_edit(petition_id: int):
    """The petition's form, filled in."""
    petition = petitions.get(db(), petition_id)
    return _form(petition, _values_of(petition), {})


@bp.post("/petitions/<int:petition_id>/edit")
@requires("compose")
def petition_update(petition_id: int):
    """Save changes; nothing is saved unless every field is right."""
    petition = petitions.get(db(), petition_id)
    values: dict = _form_values()
    try:
        values, checked = _validated(petition.id)
        petitions.update(db(), current_editor(), petition, checked, client_ip())
        _apply_image(petition)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _form(petition, values, exc.errors, 422)
    return redirect(url_for("admin.petition_detail", petition_id=petition.id))


@bp.post("/petitions/<int:petition_id>/delete")
@requires("compose")
def petition_delete(petition_id: int):
    """Delete a petition and its signatures, once its address is typed to confirm."""
    petition = petitions.get(db(), petition_id)
    if request.form.get("confirm_slug", "").strip() != petition.slug:
        return _detail(
            petition, delete_error=gettext("Type the petition's address exactly to delete it.")
        )
    petitions.delete(db(), current_editor(), petition, client_ip())
    db().commit()
    return redirect(url_for("admin.petitions_list"))


def _detail(petition: Petition, delete_error: str = ""):
    settings = current_app.config["CLARION"]
    status = 422 if delete_error else 200
    return (
        render_template(
            "admin/petition_detail.html",
            petition=petition,
            progress=petitions.progress(db(), petition),
            unconfirmed=petitions.count_unconfirmed(db(), petition.id),
            sources=stats.petition_sources(db(), petition.id),
            base_url=settings.base_url,
            delete_error=delete_error,
            deadline_local=_local(petition),
        ),
        status,
    )


@bp.get("/petitions/<int:petition_id>")
@requires("view")
def petition_detail(petition_id: int):
    """Count, goal, signatures over time and by source, the embed snippet."""
    return _detail(petitions.get(db(), petition_id))


@bp.get("/petitions/<int:petition_id>/stats.json")
@requires("view")
def petition_stats_json(petition_id: int):
    """Signatures per day and the running total, for the chart."""
    petition = petitions.get(db(), petition_id)
    return jsonify(stats.petition_daily(db(), petition.id, _zone()).as_json())


@bp.get("/petitions/<int:petition_id>/signatures.csv")
@requires("export")
def petition_export_csv(petition_id: int):
    """Every signature as CSV (owners only); recorded in the audit log."""
    petition = petitions.get(db(), petition_id)
    body = petition_export.export_signatures(db(), current_editor(), petition, client_ip())
    db().commit()
    response = current_app.response_class(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="signatures-{petition.slug}.csv"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response
