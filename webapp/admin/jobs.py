"""Import and export pages: upload, map columns, watch progress, download results."""

from __future__ import annotations

from flask import (
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)

from clarion import jobs
from clarion.audience import csvfiles, exports, imports, lists
from clarion.errors import ValidationError
from clarion.i18n import gettext
from tasks.imports import run_export, run_import
from webapp.admin import bp
from webapp.admin.access import current_editor, requires
from webapp.admin.subscribers import read_filter
from webapp.extensions import db
from webapp.utils import client_ip, int_list, whole


def _page(errors: dict | None = None, status: int = 200):
    return (
        render_template(
            "admin/jobs.html",
            recent=jobs.recent(db()),
            encodings=csvfiles.ENCODINGS,
            errors=errors or {},
        ),
        status,
    )


@bp.get("/jobs", endpoint="jobs")
@requires("view")
def jobs_page():
    """Upload a CSV, export subscribers, and the latest jobs."""
    return _page()


@bp.post("/imports")
@requires("manage_subscribers")
def import_upload():
    """Keep the file and go on to the column mapping."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _page({"file": gettext("Choose a CSV file to upload.")}, 422)
    try:
        job = imports.upload(db(), current_editor(), upload.read(), upload.filename)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(exc.errors, 422)
    return redirect(url_for("admin.import_map", uid=job.uid))


def _map_page(job, values: dict, errors: dict | None = None, status: int = 200):
    try:
        found = imports.file_preview(
            job, values.get("encoding", "auto"), values.get("delimiter", "")
        )
    except ValidationError as exc:
        found, errors = None, {**(errors or {}), **exc.errors}
    return (
        render_template(
            "admin/import_map.html",
            job=job,
            preview=found,
            values=values,
            errors=errors or {},
            fields=imports.FIELDS,
            encodings=csvfiles.ENCODINGS,
            all_lists=lists.all_lists(db()),
        ),
        status,
    )


@bp.get("/imports/<uid>/map")
@requires("manage_subscribers")
def import_map(uid: str):
    """The first rows as read, with a guess of which column is what."""
    job = jobs.get_job(db(), uid, "import")
    if job.status != jobs.MAPPING:
        return redirect(url_for("admin.job", uid=uid))
    values = {
        "encoding": request.args.get("encoding", "auto"),
        "delimiter": request.args.get("delimiter", ""),
    }
    return _map_page(job, values)


@bp.post("/imports/<uid>/map")
@requires("manage_subscribers")
def import_start(uid: str):
    """Save the mapping and queue the import."""
    job = jobs.get_job(db(), uid, "import")
    form = request.form
    mapping = {
        whole(key[4:], "column"): value
        for key, value in form.items()
        if key.startswith("col-") and value in imports.FIELDS
    }
    values = {
        "encoding": form.get("encoding", "auto"),
        "delimiter": form.get("delimiter", ","),
        "has_header": form.get("has_header") == "on",
        "mapping": mapping,
        "lists": int_list(form.getlist("lists")),
        "extra_tags": form.get("extra_tags", ""),
    }
    options = imports.ImportOptions(
        file_name=job.options.get("file_name", "upload.csv"),
        list_ids=values["lists"],
        mapping=mapping,
        encoding=values["encoding"],
        delimiter=values["delimiter"] if values["delimiter"] in {",", ";", "\t"} else ",",
        has_header=values["has_header"],
        extra_tags=[t.strip() for t in values["extra_tags"].split(",") if t.strip()],
        editor_email=current_editor().email,
    )
    try:
        imports.configure(db(), job, options)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _map_page(job, values, exc.errors, 422)
    run_import.delay(job.id)
    return redirect(url_for("admin.job", uid=uid))


@bp.post("/exports")
@requires("export")
def export_start():
    """Export the subscribers matching the filter (all when none) as CSV."""
    job = exports.start_export(db(), current_editor(), read_filter(request.form), client_ip())
    db().commit()
    run_export.delay(job.id)
    return redirect(url_for("admin.job", uid=job.uid))


def _visible(uid: str):
    job = jobs.get_job(db(), uid)
    if job.kind == "export":
        from clarion.editors import require

        require(current_editor(), "export")
    return job


@bp.get("/jobs/<uid>")
@requires("view")
def job(uid: str):
    """A job's progress bar and, once finished, its results."""
    found = _visible(uid)
    return render_template("admin/job.html", job=found, progress=jobs.progress(found))


@bp.get("/jobs/<uid>/progress")
@requires("view")
def job_progress(uid: str):
    """Progress as JSON, polled by the page's script."""
    return jsonify(jobs.progress(_visible(uid)))


@bp.get("/imports/<uid>/rejected.csv")
@requires("manage_subscribers")
def import_rejected(uid: str):
    """The rejected rows with their reasons."""
    found = jobs.get_job(db(), uid, "import")
    if found.status != jobs.DONE or not found.result_path:
        abort(404)
    name = f"rejected-{found.options.get('file_name', 'import.csv')}"
    return send_file(found.result_path, mimetype="text/csv", as_attachment=True, download_name=name)


@bp.get("/exports/<uid>/download")
@requires("export")
def export_download(uid: str):
    """The export file (audited)."""
    found = jobs.get_job(db(), uid, "export")
    if found.status != jobs.DONE or not found.result_path:
        abort(404)
    path = exports.download(db(), current_editor(), found, client_ip())
    db().commit()
    if not path.exists():
        flash(
            gettext("This export has been deleted (exports are kept for a week). Export again."),
            "error",
        )
        return redirect(url_for("admin.jobs"))
    response = send_file(
        path, mimetype="text/csv", as_attachment=True, download_name="subscribers.csv"
    )
    response.headers["Cache-Control"] = "no-store"
    return response
