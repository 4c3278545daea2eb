"""The public petition page: read, sign (prefilled for a reader from an alert), confirm, share."""

from __future__ import annotations

from flask import (
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from clarion.actions import petitions, signing
from clarion.alerts import sharing
from clarion.audience import subscribers
from clarion.errors import ValidationError
from clarion.models import Petition
from tasks.mail import queue_confirmation
from tasks.petitions import queue_signature_confirmation
from webapp.extensions import db
from webapp.i18n import page_language, use_reader_language
from webapp.public import bp
from webapp.utils import client_ip, int_list, user_agent

HONEYPOT = "website"
READER_KEY = "petition_reader"


def _no_store(response):
    # Pages may carry a reader's own name and address: no cache may keep them for others.
    response.headers["Cache-Control"] = "no-store, private"
    return response


def _reader(petition: Petition) -> signing.Prefill | None:
    held = session.get(READER_KEY) or {}
    if held.get("slug") != petition.slug:
        return None
    reader = signing.reader_prefill(db(), petition, held.get("token"))
    if reader is not None:
        use_reader_language(reader.language)  # the page the reader's mail led to speaks theirs
    return reader


def _offered_lists(reader: signing.Prefill | None) -> list:
    """Public lists to offer with the signature: a recognised reader's own lists are left out."""
    offered = subscribers.public_lists(db())
    if reader is None:
        return offered
    joined = subscribers.joined_list_ids(db(), reader.subscriber_id)
    return [ml for ml in offered if ml.id not in joined]


def _page(petition: Petition, reader, values: dict, errors: dict, status: int = 200):
    settings = current_app.config["CLARION"]
    signed_at = signing.reader_signed_at(db(), petition, reader)
    html = render_template(
        "public/petition.html",
        petition=petition,
        body_html=petitions.body_html(petition, settings.base_url),
        progress=petitions.progress(db(), petition),
        reader=reader,
        signed_at=signed_at,
        share=sharing.petition_share_links(settings.base_url, petition.slug, petition.title)
        if signed_at
        else None,
        values=values,
        errors=errors,
        countries=signing.countries(page_language()),
        lists=_offered_lists(reader),
        honeypot=HONEYPOT,
    )
    return _no_store(current_app.make_response((html, status)))


@bp.get("/p/<slug>")
def petition_page(slug: str):
    """The petition and its sign form, prefilled for the reader a valid token names."""
    petition = petitions.by_slug(db(), slug)
    source = subscribers.clean_source(request.args.get("source"))
    if "r" in request.args:
        # Keep the token out of the address bar (and out of anything shared from it).
        if signing.reader_prefill(db(), petition, request.args["r"]) is not None:
            session[READER_KEY] = {"slug": slug, "token": request.args["r"]}
        else:
            session.pop(READER_KEY, None)
        target = url_for(".petition_page", slug=slug, source=source, lang=request.args.get("lang"))
        return _no_store(redirect(target, 303))
    reader = _reader(petition)
    values = {"source": source or "", "name": "", "email": "", "country": "", "comment": ""}
    return _page(petition, reader, values, {})


@bp.post("/p/<slug>/not-you")
def petition_not_you(slug: str):
    """Forget the reader this browser was recognised as, and show the plain form."""
    petitions.by_slug(db(), slug)
    session.pop(READER_KEY, None)
    return _no_store(redirect(url_for(".petition_page", slug=slug), 303))


def _form_values() -> dict:
    return {
        "name": request.form.get("name", ""),
        "email": request.form.get("email", ""),
        "country": request.form.get("country", ""),
        "comment": request.form.get("comment", ""),
        "source": request.form.get("source", ""),
        "lists": int_list(request.form.getlist("lists")),
    }


@bp.post("/p/<slug>")
def petition_sign(slug: str):
    """Sign; a second signature from the same address changes nothing."""
    petition = petitions.by_slug(db(), slug)
    reader = _reader(petition)
    values = _form_values()
    if request.form.get(HONEYPOT):
        return _thanks(petition, signing.SignOutcome(signing.SignStatus.SIGNED))
    if not petitions.is_accepting(petition):
        return _page(petition, reader, values, {}, status=409)
    req = signing.SignRequest(
        name=values["name"],
        email=values["email"],
        country=values["country"],
        comment=values["comment"],
        source=values["source"],
        list_ids=values["lists"],
        ip=client_ip(),
        user_agent=user_agent(),
        reader=reader,
        language=page_language(),
    )
    try:
        outcome = signing.sign(db(), petition, req)
        db().commit()
    except ValidationError as exc:
        db().rollback()
        return _page(petition, reader, values, exc.errors, status=422)
    if outcome.confirm_signature_id is not None:
        queue_signature_confirmation(outcome.confirm_signature_id)
    if outcome.list_consent_id is not None:
        queue_confirmation(outcome.list_consent_id)
    session.pop(READER_KEY, None)  # a shared computer should not prefill the next person
    return _thanks(petition, outcome)


def _thanks(petition: Petition, outcome: signing.SignOutcome):
    settings = current_app.config["CLARION"]
    html = render_template(
        "public/petition_thanks.html",
        petition=petition,
        outcome=outcome,
        progress=petitions.progress(db(), petition),
        share=sharing.petition_share_links(settings.base_url, petition.slug, petition.title),
    )
    return _no_store(current_app.make_response(html))


@bp.get("/p/<slug>/confirm/<token>")
def signature_confirm_page(slug: str, token: str):
    """Ask for a press: link scanners that open the mail must not confirm anything."""
    petition = petitions.by_slug(db(), slug)
    signature = signing.signature_for_token(db(), petition, token)
    use_reader_language(signature.language)
    return render_template(
        "public/signature_confirm.html", petition=petition, token=token, signature=signature
    )


@bp.post("/p/<slug>/confirm/<token>")
def signature_confirm(slug: str, token: str):
    """Count the signature."""
    petition = petitions.by_slug(db(), slug)
    signing.confirm(db(), petition, token)
    db().commit()
    return _thanks(petition, signing.SignOutcome(signing.SignStatus.SIGNED))


def _count_json(petition: Petition) -> dict:
    progress = petitions.progress(db(), petition)
    return {
        "count": progress.count,
        "goal": progress.goal,
        "percent": progress.percent,
        "open": progress.accepting,
    }


@bp.get("/p/<slug>/count.json")
def petition_count(slug: str):
    """The live counter, for our page and for the blog (public figures, any origin)."""
    response = current_app.make_response(_count_json(petitions.by_slug(db(), slug)))
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=5"
    return response


@bp.get("/p/<slug>/embed")
def petition_embed(slug: str):
    """A small counter the blog can put in an iframe; only this page may be framed."""
    petition = petitions.by_slug(db(), slug)
    settings = current_app.config["CLARION"]
    response = current_app.make_response(
        render_template(
            "public/petition_embed.html",
            petition=petition,
            progress=petitions.progress(db(), petition),
            url=sharing.petition_url(settings.base_url, slug, "embed"),
        )
    )
    ancestors = " ".join(settings.embed_origins) or "*"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"form-action 'none'; frame-ancestors {ancestors}"
    )
    response.headers["Cache-Control"] = "public, max-age=30"
    return response
